//! The event log: `recent_events` for what happened before the panel opened, and the `daemon-event`
//! Tauri event carrying each new event to the panel while its window exists.

use tauri::{AppHandle, Emitter, Manager, State, WebviewWindow, WindowEvent};
use tokio::sync::broadcast::error::RecvError;
use webapi_core::events::DaemonEvent;

use crate::ShellState;

/// The Tauri event name of live daemon events.
pub const DAEMON_EVENT: &str = "daemon-event";

/// The recent events with a sequence number above `after_seq` (0 for all kept), oldest first.
#[tauri::command]
pub fn recent_events(state: State<'_, ShellState>, after_seq: Option<u64>) -> Vec<DaemonEvent> {
    state.daemon.events().recent_since(after_seq.unwrap_or(0))
}

/// Emits every new feed event to `window` until it is destroyed.
pub fn forward_to_panel(app: &AppHandle, window: &WebviewWindow) {
    let Some(shell) = app.try_state::<ShellState>() else {
        return;
    };
    let mut feed = shell.daemon.events().subscribe();
    let (closed_tx, mut closed) = tokio::sync::oneshot::channel::<()>();
    let closed_tx = std::sync::Mutex::new(Some(closed_tx));
    window.on_window_event(move |event| {
        if matches!(event, WindowEvent::Destroyed) {
            if let Some(tx) = closed_tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = tx.send(());
            }
        }
    });
    let (window, label) = (window.clone(), window.label().to_string());
    tauri::async_runtime::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut closed => break,
                next = feed.recv() => match next {
                    Ok(event) => {
                        if let Err(e) = window.emit_to(label.as_str(), DAEMON_EVENT, &event) {
                            tracing::debug!("cannot send an event to the panel: {e}");
                            break;
                        }
                    }
                    Err(RecvError::Lagged(n)) => tracing::debug!(skipped = n, "panel event forwarder lagged"),
                    Err(RecvError::Closed) => break,
                },
            }
        }
    });
}
