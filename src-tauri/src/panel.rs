//! The control panel, tray side: the panel window lives in a process of its own (`cernvm-webapi
//! --panel-window`, see `panel_window`), started when the panel is opened and gone when it is closed, so
//! that the web engine's memory leaves with it. This side starts that process, serves the commands it
//! relays (`commands::relay`), sends it the daemon's events, and tells it to come to the front.

use std::sync::Mutex;
use std::time::Duration;

use tauri::{AppHandle, Manager};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::panel_link::{self, ToPanel, ToTray};
use crate::ShellState;

pub const LABEL: &str = "panel";
pub const TITLE: &str = "CernVM WebAPI";

/// The command-line flag that makes the program the panel process.
pub const PANEL_FLAG: &str = "--panel-window";
/// Followed by a session name: the panel opens with that session highlighted.
pub const SESSION_FLAG: &str = "--panel-session";

/// How long after the panel process ended unused code pages are given back.
const RELEASE_DELAY: Duration = Duration::from_secs(1);

/// The running panel process, if any (Tauri state of the tray app).
#[derive(Default)]
pub struct PanelHost {
    link: Mutex<Option<mpsc::UnboundedSender<ToPanel>>>,
}

/// Shows the control panel, starting its process if none runs.
pub fn open(app: &AppHandle) {
    show(app, None);
}

/// Shows the control panel with session `name` highlighted.
pub fn show_session(app: &AppHandle, name: &str) {
    show(app, Some(name.to_string()));
}

fn show(app: &AppHandle, session: Option<String>) {
    crate::tray::failures_seen(app);
    let Some(host) = app.try_state::<PanelHost>() else {
        return;
    };
    let mut link = host.link.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(tx) = link.as_ref() {
        if tx
            .send(ToPanel::Show {
                session: session.clone(),
            })
            .is_ok()
        {
            return;
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    *link = Some(tx.clone());
    drop(link);
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let mut rx = rx;
        if let Err(e) = serve(&app, session, &mut rx, &tx).await {
            tracing::error!("control panel: {e}");
        }
        forget(&app, &tx);
        // A "show" that reached this process while its window was closing: open a new one.
        let mut reopen = None;
        while let Ok(message) = rx.try_recv() {
            if let ToPanel::Show { session } = message {
                reopen = Some(session);
            }
        }
        if let Some(session) = reopen {
            show(&app, session);
            return;
        }
        tokio::time::sleep(RELEASE_DELAY).await;
        crate::webview_release::release_code_pages("control panel closed");
    });
}

/// Forgets the process behind `tx` (unless a newer one took its place): the next "show" starts a new one.
fn forget(app: &AppHandle, tx: &mpsc::UnboundedSender<ToPanel>) {
    if let Some(host) = app.try_state::<PanelHost>() {
        let mut link = host.link.lock().unwrap_or_else(|e| e.into_inner());
        if link.as_ref().is_some_and(|l| l.same_channel(tx)) {
            *link = None;
        }
    }
}

/// Runs one panel process until it exits.
async fn serve(
    app: &AppHandle,
    session: Option<String>,
    shows: &mut mpsc::UnboundedReceiver<ToPanel>,
    link: &mpsc::UnboundedSender<ToPanel>,
) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the program: {e}"))?;
    let mut command = tokio::process::Command::new(exe);
    command.arg(PANEL_FLAG);
    if let Some(name) = &session {
        command.arg(SESSION_FLAG).arg(name);
    }
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the panel process: {e}"))?;
    tracing::info!(pid = child.id(), "control panel opened");
    let mut to_panel = child.stdin.take().ok_or("the panel process has no stdin")?;
    let from_panel = child
        .stdout
        .take()
        .ok_or("the panel process has no stdout")?;

    // The panel's calls, answered by tasks of their own (a slow action must not hold up the others).
    let (replies_tx, mut replies) = mpsc::unbounded_channel::<ToPanel>();
    let (closing_tx, mut closing) = mpsc::unbounded_channel::<()>();
    let caller = app.clone();
    let this_link = link.clone();
    let reader = tauri::async_runtime::spawn(async move {
        let mut from_panel = tokio::io::BufReader::new(from_panel);
        loop {
            let line = match panel_link::read_line(&mut from_panel).await {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("control panel: {e}");
                    break;
                }
            };
            match panel_link::decode::<ToTray>(&line) {
                Ok(ToTray::Closing) => {
                    let _ = closing_tx.send(());
                }
                Ok(ToTray::Unshown { session }) => {
                    // Its window was already closing: a new process shows the panel.
                    let _ = closing_tx.send(());
                    forget(&caller, &this_link);
                    show(&caller, session);
                }
                Ok(ToTray::Call { id, cmd, args }) => {
                    let (app, replies) = (caller.clone(), replies_tx.clone());
                    tauri::async_runtime::spawn(async move {
                        let result = crate::commands::relay(&app, &cmd, &args).await;
                        let _ = replies.send(ToPanel::Reply { id, result });
                    });
                }
                Err(e) => tracing::warn!("control panel sent {e}"),
            }
        }
    });

    let mut feed = app.state::<ShellState>().daemon.events().subscribe();
    let mut feed_open = true;
    let mut ending = false;
    let status = loop {
        let message = tokio::select! {
            status = child.wait() => break status,
            // The window is gone: "show" requests from now on start a new process; those already
            // queued are left for the caller (see `show`).
            Some(()) = closing.recv(), if !ending => {
                ending = true;
                forget(app, link);
                continue;
            }
            Some(m) = shows.recv(), if !ending => m,
            Some(m) = replies.recv() => m,
            event = feed.recv(), if feed_open => match event {
                Ok(e) => ToPanel::Event(serde_json::to_value(&e).unwrap_or_default()),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(skipped = n, "control panel events lagged");
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    feed_open = false;
                    continue;
                }
            },
        };
        let line = panel_link::encode(&message);
        if to_panel.write_all(line.as_bytes()).await.is_err() || to_panel.flush().await.is_err() {
            break child.wait().await;
        }
    };
    reader.abort();
    match status {
        Ok(s) => tracing::info!(%s, "control panel closed"),
        Err(e) => tracing::warn!("control panel: cannot wait for its process: {e}"),
    }
    Ok(())
}
