//! `idle_info`: the idle source and what the idle controller sees and does.

use serde::Serialize;
use tauri::State;
use webapi_core::idle::Presence;

use crate::ShellState;

/// The idle controller's status, for the panel.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdleInfo {
    /// The idle source ("x11", "gnome-mutter", "wayland", "unknown", ...); "none" without a controller.
    pub source: &'static str,
    pub idle: bool,
    /// Seconds since the last input, when the source can tell.
    pub idle_seconds: Option<u64>,
    pub summary: String,
    /// End of a snooze (milliseconds since the Unix epoch), if snoozed.
    pub snoozed_until_ms: Option<u64>,
}

#[tauri::command]
pub fn idle_info(state: State<'_, ShellState>) -> IdleInfo {
    let Some(status) = state.daemon.registry().idle_status() else {
        return IdleInfo {
            source: "none",
            idle: false,
            idle_seconds: None,
            summary: "idle control is not running".into(),
            snoozed_until_ms: None,
        };
    };
    IdleInfo {
        source: status.source,
        idle: status.presence == Presence::Idle,
        idle_seconds: status.idle_time.map(|t| t.as_secs()),
        summary: status.summary(),
        snoozed_until_ms: status
            .snoozed_until
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64),
    }
}
