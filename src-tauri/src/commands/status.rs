//! `daemon_status`: what the control panel's header shows.

use serde::Serialize;
use tauri::State;

use crate::ShellState;

/// What the control panel's header shows.
#[derive(Debug, Serialize)]
pub struct DaemonStatus {
    pub version: &'static str,
    pub protocol: &'static str,
    pub listen: String,
    pub data_dir: String,
}

#[tauri::command]
pub fn daemon_status(state: State<'_, ShellState>) -> DaemonStatus {
    DaemonStatus {
        version: webapi_core::VERSION,
        protocol: webapi_core::PROTOCOL_VERSION,
        listen: state.daemon.local_addr().to_string(),
        data_dir: state.daemon.data_dir().root().display().to_string(),
    }
}
