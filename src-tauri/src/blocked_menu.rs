//! The tray's "Blocked sites…" submenu: one "Unblock <origin>" item per site the consent broker
//! blocks, rebuilt whenever the list changes.

use tauri::menu::{MenuItem, Submenu};
use tauri::{AppHandle, Manager, Wry};

use crate::ShellState;

/// Menu ids of the unblock items are this prefix followed by the origin.
pub const ID_PREFIX: &str = "unblock:";

/// Creates the submenu and keeps it current.
pub fn submenu(app: &AppHandle) -> tauri::Result<Submenu<Wry>> {
    let sub = Submenu::with_id(app, "blocked-sites", "Blocked sites…", true)?;
    fill(app, &sub)?;
    let mut changes = app.state::<ShellState>().consent.subscribe();
    let (app, menu) = (app.clone(), sub.clone());
    tauri::async_runtime::spawn(async move {
        while changes.changed().await.is_ok() {
            if let Err(e) = fill(&app, &menu) {
                tracing::warn!("cannot update the Blocked sites menu: {e}");
            }
        }
    });
    Ok(sub)
}

fn fill(app: &AppHandle, sub: &Submenu<Wry>) -> tauri::Result<()> {
    while sub.remove_at(0)?.is_some() {}
    let blocked = app.state::<ShellState>().consent.blocked_sites();
    if blocked.is_empty() {
        let none = MenuItem::with_id(app, "blocked-none", "No blocked sites", false, None::<&str>)?;
        return sub.append(&none);
    }
    for site in blocked {
        let id = format!("{ID_PREFIX}{}", site.origin);
        let item = MenuItem::with_id(
            app,
            id,
            format!("Unblock {}", site.origin),
            true,
            None::<&str>,
        )?;
        sub.append(&item)?;
    }
    Ok(())
}

/// Handles a click on an unblock item; `false` when `id` is not one.
pub fn handle(app: &AppHandle, id: &str) -> bool {
    let Some(origin) = id.strip_prefix(ID_PREFIX) else {
        return false;
    };
    tracing::info!(%origin, "Unblock chosen in the tray menu");
    if let Err(e) = app.state::<ShellState>().consent.unblock(origin) {
        tracing::error!(%origin, "cannot unblock: {e:#}");
    }
    true
}
