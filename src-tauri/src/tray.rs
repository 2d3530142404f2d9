//! The tray icon and its menu. On Linux a click on the icon does nothing, so everything is in the menu.

use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager};

use crate::{blocked_menu, panel, ShellState};

pub const TRAY_ID: &str = "cernvm-webapi";

/// Creates the tray icon with its menu.
pub fn build(app: &AppHandle) -> tauri::Result<()> {
    let state = app.state::<ShellState>();
    let status_text = status_line(state.daemon.local_addr(), 0);
    let status = MenuItem::with_id(app, "status", status_text, false, None::<&str>)?;
    let open_panel = MenuItem::with_id(app, "panel", "Open control panel", true, None::<&str>)?;
    let blocked = blocked_menu::submenu(app)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let separator = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(app, &[&status, &separator, &open_panel, &blocked, &quit])?;

    let icon = app
        .default_window_icon()
        .cloned()
        .ok_or_else(|| tauri::Error::AssetNotFound("app icon".into()))?;
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon)
        .tooltip("CernVM WebAPI")
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| match event.id.as_ref() {
            "panel" => panel::open(app),
            id if blocked_menu::handle(app, id) => {}
            "quit" => {
                tracing::info!("Quit chosen in the tray menu");
                app.exit(0);
            }
            _ => {}
        })
        .build(app)?;
    Ok(())
}

/// The first, informational line of the menu.
pub fn status_line(addr: std::net::SocketAddr, sessions: usize) -> String {
    let sessions = match sessions {
        0 => "no sessions".to_string(),
        1 => "1 session".to_string(),
        n => format!("{n} sessions"),
    };
    format!("Listening on {addr} · {sessions}")
}

#[cfg(test)]
mod tests {
    use super::status_line;

    #[test]
    fn status_line_counts_sessions() {
        let addr = "127.0.0.1:5624".parse().unwrap();
        assert_eq!(
            status_line(addr, 0),
            "Listening on 127.0.0.1:5624 · no sessions"
        );
        assert_eq!(
            status_line(addr, 1),
            "Listening on 127.0.0.1:5624 · 1 session"
        );
        assert_eq!(
            status_line(addr, 3),
            "Listening on 127.0.0.1:5624 · 3 sessions"
        );
    }
}
