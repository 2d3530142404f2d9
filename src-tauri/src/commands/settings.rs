//! Settings commands: read and save the user's settings (applied live where possible), and "Start at
//! login" (the autostart plugin, shared with the tray's check item).

use serde::Serialize;
use tauri::{AppHandle, State};
use tauri_plugin_autostart::ManagerExt;
use webapi_core::settings::{self, Settings};

use super::PanelState;
use crate::ShellState;

#[tauri::command]
pub fn get_settings(panel: State<'_, PanelState>) -> Settings {
    panel.settings.get()
}

/// What `save_settings` answers: the settings as stored, and the fields that apply after a restart.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Saved {
    pub settings: Settings,
    pub restart_needed: Vec<&'static str>,
}

/// Validates and stores `settings`; applies the idle threshold, the default idle policy and the local
/// keystores at once. Refused settings change nothing.
#[tauri::command]
pub fn save_settings(
    state: State<'_, ShellState>,
    panel: State<'_, PanelState>,
    settings: Settings,
) -> Result<Saved, String> {
    let before = panel.settings.get();
    let stored = panel.settings.update(settings).map_err(|e| e.to_string())?;
    settings::apply_live(
        &state.daemon,
        panel.verifier.as_deref(),
        &panel.startup,
        &stored,
    );
    Ok(Saved {
        restart_needed: settings::restart_needed(&before, &stored),
        settings: stored,
    })
}

#[tauri::command]
pub fn get_start_at_login(app: AppHandle) -> Result<bool, String> {
    app.autolaunch().is_enabled().map_err(|e| e.to_string())
}

#[tauri::command]
pub fn set_start_at_login(app: AppHandle, enabled: bool) -> Result<(), String> {
    let launcher = app.autolaunch();
    let result = if enabled {
        launcher.enable()
    } else {
        launcher.disable()
    };
    result.map_err(|e| format!("cannot change Start at login: {e}"))?;
    tracing::info!(enabled, "Start at login changed in the control panel");
    crate::tray::invalidate(&app);
    Ok(())
}
