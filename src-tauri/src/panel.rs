//! The control panel window: created when opened, destroyed when closed.

use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindowBuilder};

pub const LABEL: &str = "panel";
pub const TITLE: &str = "CernVM WebAPI";

/// Shows the control panel, creating its webview if none exists.
pub fn open(app: &AppHandle) {
    if let Some(window) = app.get_webview_window(LABEL) {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
        return;
    }
    let built = WebviewWindowBuilder::new(app, LABEL, WebviewUrl::App("index.html".into()))
        .title(TITLE)
        .inner_size(960.0, 640.0)
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
