//! The idle policy as pure functions: whether the user counts as present, and what to do with one
//! controlled session given its policy, its state and the user's presence (the table in shared/DESIGN.md).

use std::time::{Duration, Instant};

use serde::Serialize;

use super::params::{IdlePolicy, PolicyMode};
use crate::hypervisor::VmState;

/// Default idle threshold: no keyboard or mouse input for this long means "idle".
pub const DEFAULT_THRESHOLD: Duration = Duration::from_secs(60);

/// Whether the volunteer is using the computer, as far as the controller is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Presence {
    /// Someone uses the computer (or we cannot tell, or idle control is snoozed).
    Active,
    /// No input for at least the threshold: the VMs may have the CPU.
    Idle,
}

/// What the controller knows about one session when it decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionView {
    /// The VM's power state; `None` while the session is busy (creating, downloading, booting, saving)
    /// or in error: the controller leaves such a session alone.
    pub state: Option<VmState>,
    /// The CPU cap the VM runs at now, if known.
    pub cap: Option<u8>,
    /// The current paused / saved / powered-off state was set by the user or the page, not by the idle
    /// controller: the controller never resumes, restores or starts it.
    pub held_by_hand: bool,
}

/// One thing the controller asks a session to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "action", content = "value")]
pub enum IdleAction {
    /// Set the running VM's CPU cap (percent, 1..=100).
    SetCap(u8),
    Pause,
    Resume,
    /// Save the VM to disk and stop it (hibernate).
    Save,
    /// Restore a VM saved to disk.
    Restore,
    /// Boot a powered-off VM (`DF_AUTOSTART`), at this cap if the policy sets one.
    Start {
        cap: Option<u8>,
    },
}

/// Whether the user counts as present.
///
/// Idle when `idle_time` ≥ `threshold` (exactly at the threshold counts as idle). While snoozed (`now` before
/// `snoozed_until`) the user counts as active whatever the input says: the VMs keep their "in use" setting.
/// `idle_time = None` (the source cannot tell) counts as active, so nothing runs at full cap by mistake.
pub fn presence(
    idle_time: Option<Duration>,
    threshold: Duration,
    snoozed_until: Option<Instant>,
    now: Instant,
) -> Presence {
    if snoozed_until.is_some_and(|until| now < until) {
        return Presence::Active;
    }
    match idle_time {
        Some(t) if t >= threshold => Presence::Idle,
        _ => Presence::Active,
    }
}

/// What to do with one session, or `None` when it is already where the policy wants it.
///
/// Level-triggered: called on every poll, it returns an action only while the session differs from the
/// policy's wish, so it also corrects sessions that appear or change state between transitions.
pub fn decide(
    policy: &IdlePolicy,
    session: &SessionView,
    presence: Presence,
) -> Option<IdleAction> {
    let state = session.state?;
    let by_hand = session.held_by_hand;
    let idle = presence == Presence::Idle;
    match policy.mode() {
        PolicyMode::NotControlled => None,
        PolicyMode::Cap {
            active,
            idle: idle_cap,
        } => {
            let want = if idle { idle_cap } else { active };
            match state {
                VmState::Running if session.cap != Some(want) => Some(IdleAction::SetCap(want)),
                VmState::Running => None,
                // Held by the controller under an earlier pause / suspend policy: bring it back.
                VmState::Paused if !by_hand => Some(IdleAction::Resume),
                VmState::Saved if !by_hand => Some(IdleAction::Restore),
                VmState::PoweredOff if idle && !by_hand && policy.autostart() => {
                    Some(IdleAction::Start { cap: Some(want) })
                }
                _ => None,
            }
        }
        PolicyMode::Pause | PolicyMode::Suspend if !idle => match state {
            VmState::Running if policy.mode() == PolicyMode::Suspend => Some(IdleAction::Save),
            VmState::Running => Some(IdleAction::Pause),
            _ => None,
        },
        PolicyMode::Pause | PolicyMode::Suspend => match state {
            _ if by_hand => None,
            VmState::Paused => Some(IdleAction::Resume),
            VmState::Saved => Some(IdleAction::Restore),
            VmState::PoweredOff if policy.autostart() => Some(IdleAction::Start { cap: None }),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idle::params::{DF_AUTOSTART, DF_SUSPEND};
    use Presence::{Active, Idle};
    use VmState::{Paused, PoweredOff, Running, Saved};

    fn policy(min: u8, max: u8, flags: u32) -> IdlePolicy {
        IdlePolicy::validate(1, min.into(), max.into(), flags.into()).unwrap()
    }
    fn vm(state: VmState) -> SessionView {
        SessionView {
            state: Some(state),
            cap: None,
            held_by_hand: false,
        }
    }
    fn vm_cap(cap: u8) -> SessionView {
        SessionView {
            cap: Some(cap),
            ..vm(Running)
        }
    }
    fn by_hand(state: VmState) -> SessionView {
        SessionView {
            held_by_hand: true,
            ..vm(state)
        }
    }

    // Row 1: minCap > 0 → cap = min while active, max while idle.
    #[test]
    fn cap_row() {
        let p = policy(10, 80, 0);
        assert_eq!(
            decide(&p, &vm_cap(100), Active),
            Some(IdleAction::SetCap(10))
        );
        assert_eq!(decide(&p, &vm_cap(10), Idle), Some(IdleAction::SetCap(80)));
        assert_eq!(decide(&p, &vm(Running), Idle), Some(IdleAction::SetCap(80)));
        assert_eq!(decide(&p, &vm_cap(10), Active), None);
        assert_eq!(decide(&p, &vm_cap(80), Idle), None);
        // Without DF_AUTOSTART a powered-off VM stays off (the 1.x daemon's `||` bug is not kept).
        assert_eq!(decide(&p, &vm(PoweredOff), Idle), None);
    }

    // Row 2: minCap = 0 → paused while active, resumed when idle.
    #[test]
    fn pause_row() {
        let p = policy(0, 0, 0);
        assert_eq!(decide(&p, &vm(Running), Active), Some(IdleAction::Pause));
        assert_eq!(decide(&p, &vm(Paused), Idle), Some(IdleAction::Resume));
        assert_eq!(decide(&p, &vm(Paused), Active), None);
        assert_eq!(decide(&p, &vm(Running), Idle), None);
        assert_eq!(decide(&p, &vm(PoweredOff), Idle), None);
        // maxCap is ignored in this row: the policy never touches the cap.
        assert_eq!(decide(&policy(0, 50, 0), &vm_cap(100), Idle), None);
    }

    // Row 3: minCap = 0 with DF_SUSPEND → saved while active, restored when idle.
    #[test]
    fn suspend_row() {
        let p = policy(0, 0, DF_SUSPEND);
        assert_eq!(decide(&p, &vm(Running), Active), Some(IdleAction::Save));
        assert_eq!(decide(&p, &vm(Saved), Idle), Some(IdleAction::Restore));
        assert_eq!(decide(&p, &vm(Saved), Active), None);
        assert_eq!(decide(&p, &vm(Running), Idle), None);
        // A VM the controller paused under an earlier pause policy is resumed, not restored.
        assert_eq!(decide(&p, &vm(Paused), Idle), Some(IdleAction::Resume));
    }

    #[test]
    fn autostart_starts_powered_off_vm_only_when_idle() {
        let pause = policy(0, 0, DF_AUTOSTART);
        assert_eq!(
            decide(&pause, &vm(PoweredOff), Idle),
            Some(IdleAction::Start { cap: None })
        );
        assert_eq!(decide(&pause, &vm(PoweredOff), Active), None);
        let cap = policy(5, 60, DF_AUTOSTART);
        assert_eq!(
            decide(&cap, &vm(PoweredOff), Idle),
            Some(IdleAction::Start { cap: Some(60) })
        );
        assert_eq!(decide(&cap, &vm(PoweredOff), Active), None);
        let suspend = policy(0, 0, DF_AUTOSTART | DF_SUSPEND);
        assert_eq!(
            decide(&suspend, &vm(PoweredOff), Idle),
            Some(IdleAction::Start { cap: None })
        );
    }

    #[test]
    fn held_by_hand_is_never_resumed_restored_or_started() {
        for p in [
            policy(0, 0, DF_AUTOSTART),
            policy(0, 0, DF_SUSPEND | DF_AUTOSTART),
            policy(20, 90, DF_AUTOSTART),
        ] {
            for state in [Paused, Saved, PoweredOff] {
                assert_eq!(decide(&p, &by_hand(state), Idle), None, "{p:?} {state:?}");
                assert_eq!(decide(&p, &by_hand(state), Active), None, "{p:?} {state:?}");
            }
        }
        // Once the user resumes it by hand (running, no longer held), the policy applies again.
        assert_eq!(
            decide(&policy(0, 0, 0), &vm(Running), Active),
            Some(IdleAction::Pause)
        );
    }

    #[test]
    fn busy_and_uncontrolled_sessions_are_left_alone() {
        let busy = SessionView {
            state: None,
            cap: None,
            held_by_hand: false,
        };
        assert_eq!(decide(&policy(0, 0, 0), &busy, Active), None);
        let off = IdlePolicy::validate(0, 10, 90, 0).unwrap();
        assert_eq!(decide(&off, &vm_cap(100), Active), None);
        assert_eq!(decide(&off, &vm(Paused), Idle), None);
    }

    #[test]
    fn cap_mode_brings_back_vms_the_controller_held() {
        let p = policy(10, 90, 0);
        assert_eq!(decide(&p, &vm(Paused), Active), Some(IdleAction::Resume));
        assert_eq!(decide(&p, &vm(Saved), Idle), Some(IdleAction::Restore));
    }

    #[test]
    fn threshold_edges_are_exact() {
        let t = Duration::from_secs(60);
        let now = Instant::now();
        let just_below = t - Duration::from_millis(1);
        assert_eq!(presence(Some(just_below), t, None, now), Active);
        assert_eq!(presence(Some(t), t, None, now), Idle);
        assert_eq!(
            presence(Some(t + Duration::from_millis(1)), t, None, now),
            Idle
        );
        assert_eq!(presence(Some(Duration::ZERO), t, None, now), Active);
        assert_eq!(presence(None, t, None, now), Active);
        // A zero threshold means idle at once (useful in tests), still never without a reading.
        assert_eq!(
            presence(Some(Duration::ZERO), Duration::ZERO, None, now),
            Idle
        );
    }

    #[test]
    fn snooze_counts_as_active_until_its_deadline() {
        let t = Duration::from_secs(60);
        let now = Instant::now();
        let long_idle = Some(Duration::from_secs(3600));
        let until = now + Duration::from_secs(3600);
        assert_eq!(presence(long_idle, t, Some(until), now), Active);
        let last_moment = until - Duration::from_nanos(1);
        assert_eq!(presence(long_idle, t, Some(until), last_moment), Active);
        assert_eq!(presence(long_idle, t, Some(until), until), Idle);
        // A snooze in the past changes nothing.
        assert_eq!(presence(long_idle, t, Some(now), now + t), Idle);
        // While snoozed the policy gives the "in use" row.
        let p = policy(0, 0, 0);
        let pres = presence(long_idle, t, Some(until), now);
        assert_eq!(decide(&p, &vm(Running), pres), Some(IdleAction::Pause));
    }
}
