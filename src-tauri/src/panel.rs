//! The control panel window: created when opened, destroyed when closed.

use tauri::{AppHandle, Emitter, Manager, WebviewUrl, WebviewWindowBuilder};

pub const LABEL: &str = "panel";
pub const TITLE: &str = "CernVM WebAPI";

/// Shows the control panel, creating its webview if none exists.
pub fn open(app: &AppHandle) {
    if !raise(app) {
        create(app, "index.html".into());
    }
}

/// Shows the control panel with session `name` highlighted: a live panel gets the `show-session`
/// event; a new one is told through its URL (`#session=NAME`), since it cannot hear events yet.
pub fn show_session(app: &AppHandle, name: &str) {
    if raise(app) {
        if let Err(e) = app.emit_to(LABEL, crate::tray::SHOW_SESSION_EVENT, name) {
            tracing::warn!("cannot tell the panel which session to show: {e}");
        }
        return;
    }
    let fragment: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
    create(app, format!("index.html#session={fragment}"));
}

/// Raises the panel if it exists.
fn raise(app: &AppHandle) -> bool {
    let Some(window) = app.get_webview_window(LABEL) else {
        return false;
    };
    let _ = window.unminimize();
    let _ = window.show();
    let _ = window.set_focus();
    true
}

fn create(app: &AppHandle, page: String) {
    let built = WebviewWindowBuilder::new(app, LABEL, WebviewUrl::App(page.into()))
        .title(TITLE)
        .inner_size(1024.0, 700.0)
        .min_inner_size(640.0, 420.0)
        .center()
        .build();
    match built {
        Ok(window) => {
            crate::commands::forward_to_panel(app, &window);
            let _ = window.set_focus();
        }
        Err(e) => tracing::error!("cannot open the control panel: {e}"),
    }
}
