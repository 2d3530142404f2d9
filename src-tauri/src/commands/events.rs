//! The event log: `recent_events` for what happened before the panel opened, and the name of the
//! `daemon-event` Tauri event that carries each new event to the panel (sent by `panel`).

use tauri::State;
use webapi_core::events::DaemonEvent;

use crate::ShellState;

/// The Tauri event name of live daemon events.
pub const DAEMON_EVENT: &str = "daemon-event";

/// The recent events with a sequence number above `after_seq` (0 for all kept), oldest first.
#[tauri::command]
pub fn recent_events(state: State<'_, ShellState>, after_seq: Option<u64>) -> Vec<DaemonEvent> {
    state.daemon.events().recent_since(after_seq.unwrap_or(0))
}
