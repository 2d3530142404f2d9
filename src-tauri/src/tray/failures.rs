//! The VM failures the volunteer has not looked at yet: they keep the tray icon on "attention" and are
//! counted in the menu's status line. A failure is seen when the control panel is opened, and is over
//! when its session runs again or is closed.

use std::collections::BTreeSet;

use webapi_core::events::EventKind;
use webapi_core::protocol::SessionState;

/// Sessions with a failure not yet seen.
#[derive(Debug, Default)]
pub struct Failures(BTreeSet<String>);

impl Failures {
    /// Takes note of an event of the daemon's feed.
    pub fn note(&mut self, kind: &EventKind) {
        match kind {
            EventKind::VmFailed { session, .. } => {
                self.0.insert(session.clone());
            }
            EventKind::SessionStateChanged {
                session,
                state: SessionState::Running,
            }
            | EventKind::SessionClosed { session } => {
                self.0.remove(session);
            }
            _ => {}
        }
    }

    /// The volunteer opened the control panel, which lists what happened.
    pub fn seen(&mut self) {
        self.0.clear();
    }

    pub fn count(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(session: &str) -> EventKind {
        EventKind::VmFailed {
            session: session.into(),
            message: "the VM's QEMU process ended unexpectedly".into(),
        }
    }

    fn state(session: &str, state: SessionState) -> EventKind {
        EventKind::SessionStateChanged {
            session: session.into(),
            state,
        }
    }

    #[test]
    fn a_failure_lasts_until_seen_restarted_or_closed() {
        let mut f = Failures::default();
        f.note(&failed("a"));
        f.note(&failed("a"));
        f.note(&failed("b"));
        assert_eq!(f.count(), 2, "one per session");
        f.note(&state("a", SessionState::PowerOff));
        assert_eq!(f.count(), 2, "powered off after the crash: still a failure");
        f.note(&state("a", SessionState::Running));
        assert_eq!(f.count(), 1, "running again");
        f.note(&EventKind::SessionClosed {
            session: "b".into(),
        });
        assert_eq!(f.count(), 0, "closed");
        f.note(&failed("c"));
        f.seen();
        assert_eq!(f.count(), 0, "the panel was opened");
    }
}
