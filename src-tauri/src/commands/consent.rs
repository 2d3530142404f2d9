//! Consent commands: blocked sites and remembered answers, unblock and forget.

use tauri::State;
use webapi_core::daemon::panel::{self, BlockedSite, RememberedSite};

use crate::ShellState;

#[tauri::command]
pub fn blocked_sites(state: State<'_, ShellState>) -> Vec<BlockedSite> {
    panel::blocked_sites(&state.consent)
}

#[tauri::command]
pub fn unblock_site(state: State<'_, ShellState>, origin: String) -> Result<(), String> {
    panel::unblock_site(&state.consent, &origin)
}

#[tauri::command]
pub fn remembered_sites(state: State<'_, ShellState>) -> Vec<RememberedSite> {
    panel::remembered_sites(&state.consent)
}

#[tauri::command]
pub fn forget_site(state: State<'_, ShellState>, origin: String) -> Result<(), String> {
    panel::forget_site(&state.consent, &origin)
}
