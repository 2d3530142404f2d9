//! `open_logs_folder`: shows the daemon's log folder in the file manager.

use tauri::AppHandle;

#[tauri::command]
pub fn open_logs_folder(app: AppHandle) {
    crate::tray::open_logs(&app);
}
