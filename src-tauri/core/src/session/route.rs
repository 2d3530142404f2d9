//! Target-state routing (vm-lifecycle.md §2.4, decided anew): which backend steps take a session from
//! its current state to the state an action asks for. Pure.

use crate::protocol::SessionState;

/// What an action asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `start`, `resume`.
    Running,
    /// `stop`.
    PowerOff,
    /// `pause`.
    Paused,
    /// `hibernate`.
    Saved,
    /// `close`.
    Missing,
    /// `reset`: reboot the guest, staying in the current state.
    Reset,
}

/// One backend operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Fetch the image and define the VM (Missing → PowerOff).
    Create,
    /// Boot or restore (PowerOff/Saved → Running).
    Boot,
    /// Paused → Running.
    Resume,
    /// Running → Paused.
    Pause,
    /// Running/Paused → Saved.
    Save,
    /// ACPI power button, then hard stop after a deadline (Running → PowerOff).
    Shutdown,
    /// Hard power-off; discards a saved state (Paused/Saved → PowerOff).
    PowerOff,
    /// Power off and delete the VM and its files (any → Missing).
    Destroy,
    /// Hard reset (Running/Paused, unchanged).
    Reset,
}

impl Step {
    /// The state the session is in after this step succeeds, given the state before it.
    pub fn outcome(self, before: SessionState) -> SessionState {
        match self {
            Step::Create | Step::Shutdown | Step::PowerOff => SessionState::PowerOff,
            Step::Boot | Step::Resume => SessionState::Running,
            Step::Pause => SessionState::Paused,
            Step::Save => SessionState::Saved,
            Step::Destroy => SessionState::Missing,
            Step::Reset => before,
        }
    }

    /// Progress message while the step runs.
    pub fn message(self) -> &'static str {
        match self {
            Step::Create => "Creating the virtual machine",
            Step::Boot => "Starting the virtual machine",
            Step::Resume => "Resuming the virtual machine",
            Step::Pause => "Pausing the virtual machine",
            Step::Save => "Saving the virtual machine state",
            Step::Shutdown => "Shutting down the virtual machine",
            Step::PowerOff => "Powering off the virtual machine",
            Step::Destroy => "Destroying the virtual machine",
            Step::Reset => "Resetting the virtual machine",
        }
    }
}

/// The steps from `from` to `target`; `None` when the target cannot be reached from there (the action
/// is refused with `HVE_INVALID_STATE` instead of booting a VM only to pause it, as the original did).
pub fn plan(from: SessionState, target: Target) -> Option<Vec<Step>> {
    use SessionState as S;
    use Step::*;
    let steps = match (target, from) {
        (Target::Running, S::Missing) => vec![Create, Boot],
        (Target::Running, S::PowerOff | S::Available | S::Saved) => vec![Boot],
        (Target::Running, S::Paused) => vec![Resume],
        (Target::Running, S::Running) => vec![],
        (Target::PowerOff, S::Running) => vec![Shutdown],
        (Target::PowerOff, S::Paused | S::Saved) => vec![PowerOff],
        (Target::PowerOff, S::PowerOff | S::Available | S::Missing) => vec![],
        (Target::Paused, S::Running) => vec![Pause],
        (Target::Paused, S::Paused) => vec![],
        (Target::Saved, S::Running | S::Paused) => vec![Save],
        (Target::Saved, S::Saved) => vec![],
        (Target::Missing, S::Missing) => vec![],
        (Target::Missing, _) => vec![Destroy],
        (Target::Reset, S::Running | S::Paused) => vec![Reset],
        _ => return None,
    };
    Some(steps)
}

/// Delay before retry number `attempt` (1-based) of a failed step, `None` when no retry is left.
/// Bounded: at most two retries, never destroying anything (unlike the original's fatal sink).
pub fn retry_delay(attempt: u32) -> Option<std::time::Duration> {
    match attempt {
        1 => Some(std::time::Duration::from_millis(200)),
        2 => Some(std::time::Duration::from_millis(1000)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SessionState as S;

    #[test]
    fn start_from_every_state() {
        assert_eq!(
            plan(S::Missing, Target::Running).unwrap(),
            vec![Step::Create, Step::Boot]
        );
        assert_eq!(
            plan(S::PowerOff, Target::Running).unwrap(),
            vec![Step::Boot]
        );
        assert_eq!(plan(S::Saved, Target::Running).unwrap(), vec![Step::Boot]);
        assert_eq!(
            plan(S::Paused, Target::Running).unwrap(),
            vec![Step::Resume]
        );
        assert!(plan(S::Running, Target::Running).unwrap().is_empty());
    }

    #[test]
    fn every_plan_ends_in_its_target() {
        let states = [S::Missing, S::PowerOff, S::Saved, S::Paused, S::Running];
        let targets = [
            (Target::Running, S::Running),
            (Target::PowerOff, S::PowerOff),
            (Target::Paused, S::Paused),
            (Target::Saved, S::Saved),
            (Target::Missing, S::Missing),
        ];
        for from in states {
            for (target, end) in targets {
                if let Some(steps) = plan(from, target) {
                    let reached = steps.iter().fold(from, |s, step| step.outcome(s));
                    if !(target == Target::PowerOff && from == S::Missing) {
                        assert_eq!(reached, end, "{from:?} -> {target:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn refuses_pointless_routes_and_bounds_retries() {
        assert!(plan(S::PowerOff, Target::Paused).is_none());
        assert!(plan(S::Missing, Target::Saved).is_none());
        assert!(plan(S::PowerOff, Target::Reset).is_none());
        assert_eq!(plan(S::Running, Target::Reset).unwrap(), vec![Step::Reset]);
        assert!(retry_delay(1).is_some() && retry_delay(2).is_some() && retry_delay(3).is_none());
    }
}
