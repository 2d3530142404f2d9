//! What the idle controller publishes (through a `tokio::sync::watch`) for the tray, the control panel and
//! the protocol extension (`isSystemIdle`, `idleTime`).

use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::policy::{IdleAction, Presence};

/// What the controller is doing right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Doing {
    /// No session is under idle control: only watching.
    Watching,
    /// The user is active: controlled VMs are held at their "in use" setting (min cap, paused or saved).
    HoldingBack,
    /// The user is idle: controlled VMs get their "idle" setting (max cap, resumed, restored or started).
    Lending,
    /// Idle control is snoozed: VMs are held at their "in use" setting until the deadline.
    Snoozed,
}

/// The last action the controller asked of a session, and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastAction {
    pub session: String,
    pub action: IdleAction,
    /// `None` when the session accepted it; else why not.
    pub error: Option<String>,
}

/// A snapshot of the idle controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdleStatus {
    /// The idle source in use ("x11", "gnome-mutter", "macos-iokit", "windows-lastinput", "unknown").
    pub source: &'static str,
    pub presence: Presence,
    /// Time since the last input, in whole seconds; `None` when the source cannot tell.
    #[serde(serialize_with = "secs")]
    pub idle_time: Option<Duration>,
    #[serde(serialize_with = "secs_req")]
    pub threshold: Duration,
    /// Wall-clock end of the snooze, if snoozed now.
    pub snoozed_until: Option<SystemTime>,
    /// Number of sessions under idle control.
    pub controlled: usize,
    pub doing: Doing,
    pub last_action: Option<LastAction>,
    /// Why the last probe failed (cleared by the next good one).
    pub source_error: Option<String>,
}

impl IdleStatus {
    pub(crate) fn initial(source: &'static str, threshold: Duration) -> Self {
        Self {
            source,
            presence: Presence::Active,
            idle_time: None,
            threshold,
            snoozed_until: None,
            controlled: 0,
            doing: Doing::Watching,
            last_action: None,
            source_error: None,
        }
    }

    /// The daemon-level properties of the old API, for the protocol extension:
    /// `{"isSystemIdle": bool, "idleTime": seconds}` (`idleTime` is 0 when unknown).
    pub fn protocol_properties(&self) -> serde_json::Value {
        serde_json::json!({
            "isSystemIdle": self.presence == Presence::Idle,
            "idleTime": self.idle_time.map_or(0, |t| t.as_secs()),
        })
    }

    /// One line for the tray's status item, e.g. "in use · 2 VMs held back".
    pub fn summary(&self) -> String {
        let who = match self.presence {
            Presence::Idle => "idle",
            Presence::Active if self.source == "unknown" => "in use (idle time unknown)",
            Presence::Active => "in use",
        };
        let vms = match self.controlled {
            1 => "1 VM".to_string(),
            n => format!("{n} VMs"),
        };
        match self.doing {
            Doing::Watching => format!("{who} · no VM under idle control"),
            Doing::HoldingBack => format!("{who} · {vms} held back"),
            Doing::Lending => format!("{who} · {vms} running at the idle setting"),
            Doing::Snoozed => {
                let left = self
                    .snoozed_until
                    .and_then(|u| u.duration_since(SystemTime::now()).ok())
                    .map_or(0, |d| d.as_secs().div_ceil(60));
                format!("{who} · idle control snoozed ({left} min left)")
            }
        }
    }
}

fn secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs()),
        None => s.serialize_none(),
    }
}

fn secs_req<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_properties_and_summary() {
        let mut st = IdleStatus::initial("x11", Duration::from_secs(60));
        assert_eq!(
            st.protocol_properties(),
            serde_json::json!({"isSystemIdle": false, "idleTime": 0})
        );
        st.presence = Presence::Idle;
        st.idle_time = Some(Duration::from_millis(61_900));
        st.controlled = 2;
        st.doing = Doing::Lending;
        assert_eq!(
            st.protocol_properties(),
            serde_json::json!({"isSystemIdle": true, "idleTime": 61})
        );
        assert_eq!(st.summary(), "idle · 2 VMs running at the idle setting");
        let json = serde_json::to_value(&st).unwrap();
        assert_eq!(json["idleTime"], 61);
        assert_eq!(json["doing"], "lending");
        assert_eq!(json["presence"], "idle");
    }
}
