//! The desktop-side commands of the panel's "This app" section: `open_logs_folder` shows the daemon's log
//! folder in the file manager; `quit_app` quits as the tray menu's Quit does (asking first when VMs run),
//! for desktops without a tray icon.

use tauri::AppHandle;

#[tauri::command]
pub fn open_logs_folder(app: AppHandle) {
    crate::tray::open_logs(&app);
}

#[tauri::command]
pub fn quit_app(app: AppHandle) {
    tracing::info!("Quit chosen in the control panel");
    crate::tray::request_quit(&app);
}
