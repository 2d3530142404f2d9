//! The control panel process (`cernvm-webapi --panel-window [--panel-session NAME]`), started by the tray
//! app (`panel`): one window showing the panel page, whose commands it relays to the tray over stdout and
//! whose answers, daemon events and "show" requests it reads from stdin (`panel_link`). It runs no daemon
//! and no tray icon; it ends when its window is closed or when the tray app goes away (stdin closes).
//! Tauri checks the page's calls against the panel capability here, as it would in the tray process.

use std::collections::HashMap;
use std::io::{BufRead, Read, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tauri::ipc::{Invoke, InvokeBody};
use tauri::{AppHandle, Emitter, Manager, WebviewUrl, WebviewWindowBuilder, Wry};
use tokio::sync::oneshot;

use crate::commands::DAEMON_EVENT;
use crate::panel::{LABEL, TITLE};
use crate::panel_link::{self, ToPanel, ToTray, MAX_LINE};

type Answer = Result<Value, String>;

/// The calls waiting for the tray's answer, and the way to the tray.
#[derive(Default)]
struct Relay {
    pending: Mutex<HashMap<u64, oneshot::Sender<Answer>>>,
    next_id: AtomicU64,
    out: Mutex<Option<std::io::Stdout>>,
    /// The window is being closed (the process ends with it).
    window_closing: AtomicBool,
}

impl Relay {
    /// Sends a call to the tray; the receiver gets its answer (or is dropped if the tray is gone).
    fn call(&self, cmd: String, args: Value) -> oneshot::Receiver<Answer> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        let line = panel_link::encode(&ToTray::Call { id, cmd, args });
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let sent = out.as_mut().is_some_and(|out| {
            line.len() <= MAX_LINE
                && out
                    .write_all(line.as_bytes())
                    .and_then(|_| out.flush())
                    .is_ok()
        });
        if !sent {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        }
        rx
    }

    /// Sends a message to the tray (no answer expected).
    fn tell(&self, message: &ToTray) {
        let line = panel_link::encode(message);
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(out) = out.as_mut() {
            let _ = out.write_all(line.as_bytes()).and_then(|_| out.flush());
        }
    }

    fn answer(&self, id: u64, result: Answer) {
        if let Some(tx) = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
        {
            let _ = tx.send(result);
        }
    }
}

/// Runs the panel process; returns its exit code.
pub fn run(session: Option<String>) -> ExitCode {
    let relay = Arc::new(Relay {
        out: Mutex::new(Some(std::io::stdout())),
        ..Relay::default()
    });
    let calls = relay.clone();
    let closing = relay.clone();
    let built = tauri::Builder::default()
        .invoke_handler(move |invoke: Invoke<Wry>| {
            let cmd = invoke.message.command().to_string();
            let args = match invoke.message.payload() {
                InvokeBody::Json(v) => v.clone(),
                InvokeBody::Raw(_) => Value::Null,
            };
            let answer = calls.call(cmd, args);
            let resolver = invoke.resolver;
            tauri::async_runtime::spawn(async move {
                match answer.await {
                    Ok(Ok(value)) => resolver.resolve(value),
                    Ok(Err(message)) => resolver.reject(message),
                    Err(_) => resolver.reject("the tray app is not running".to_string()),
                }
            });
            true
        })
        .setup(move |app| {
            open_window(app.handle(), session.as_deref())?;
            listen(app.handle().clone(), relay);
            Ok(())
        })
        .build(crate::context());
    match built {
        Ok(app) => {
            app.run(move |_, event| {
                // The window is closing: the tray starts a new process for the next "show".
                if let tauri::RunEvent::WindowEvent { event, .. } = event {
                    match event {
                        tauri::WindowEvent::CloseRequested { .. } => {
                            closing.window_closing.store(true, Ordering::SeqCst);
                        }
                        tauri::WindowEvent::Destroyed => {
                            closing.window_closing.store(true, Ordering::SeqCst);
                            closing.tell(&ToTray::Closing);
                        }
                        _ => {}
                    }
                }
            });
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cernvm-webapi: cannot open the control panel: {e}");
            ExitCode::FAILURE
        }
    }
}

fn open_window(app: &AppHandle, session: Option<&str>) -> tauri::Result<()> {
    let page = match session {
        // The page cannot hear events before it runs: a session to highlight goes in its URL.
        Some(name) => {
            let name: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
            format!("index.html#session={name}")
        }
        None => "index.html".into(),
    };
    let window = WebviewWindowBuilder::new(app, LABEL, WebviewUrl::App(page.into()))
        .title(TITLE)
        .inner_size(1024.0, 700.0)
        .min_inner_size(640.0, 420.0)
        .center()
        .build()?;
    let _ = window.set_focus();
    Ok(())
}

/// Reads the tray's messages on a thread of its own until stdin closes, then ends the process.
fn listen(app: AppHandle, relay: Arc<Relay>) {
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut line = Vec::new();
            match (&mut stdin)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)
            {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            match panel_link::decode::<ToPanel>(&line) {
                Ok(ToPanel::Reply { id, result }) => relay.answer(id, result),
                Ok(ToPanel::Event(event)) => {
                    let _ = app.emit_to(LABEL, DAEMON_EVENT, event);
                }
                Ok(ToPanel::Show { session }) => {
                    if relay.window_closing.load(Ordering::SeqCst) {
                        relay.tell(&ToTray::Unshown { session });
                    } else {
                        show(&app, session);
                    }
                }
                Err(e) => eprintln!("cernvm-webapi panel: the tray app sent {e}"),
            }
        }
        // The tray app is gone: nothing can be served any more.
        app.exit(0);
    });
}

/// Brings the window to the front; with a session, highlights it.
fn show(app: &AppHandle, session: Option<String>) {
    let handle = app.clone();
    let _ = app.run_on_main_thread(move || {
        if let Some(window) = handle.get_webview_window(LABEL) {
            let _ = window.unminimize();
            let _ = window.show();
            let _ = window.set_focus();
        }
        if let Some(name) = session {
            let _ = handle.emit_to(LABEL, crate::tray::SHOW_SESSION_EVENT, name);
        }
    });
}
