//! The tray app: a thin Tauri shell over `webapi-core`. It starts the same `Daemon` as
//! `cvmwebapi serve`, shows a tray icon with a menu, and creates the control panel window on demand.
//! No webview exists until the user opens one; closing it destroys it (small footprint in the tray).

mod args;
mod blocked_menu;
mod commands;
mod consent_dialog;
#[cfg(feature = "e2e-hooks")]
mod e2e_hooks;
mod panel;
mod tray;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tauri::{Manager, RunEvent};
use tokio::sync::watch;
use webapi_core::consent::ConsentBroker;
use webapi_core::daemon::{Daemon, StartError};

pub use args::AppArgs;

/// Runs the tray app; returns the process exit code.
pub fn main() -> ExitCode {
    let args = AppArgs::parse();
    let config = match args.serve.validate() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cernvm-webapi: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(why) = display_available() {
        eprintln!("cernvm-webapi: {why}. Run `cvmwebapi serve` for the headless daemon.");
        return ExitCode::from(4);
    }

    // Bind before the GUI starts, so a taken port is reported before any window or tray icon appears.
    let runtime = tauri::async_runtime::handle();
    let daemon = match runtime.block_on(Daemon::bind(&config)) {
        Ok(d) => d,
        Err(e @ StartError::AddressInUse(_)) => {
            eprintln!("cernvm-webapi: {e}");
            return ExitCode::from(3);
        }
        Err(e) => {
            eprintln!("cernvm-webapi: {e}");
            return ExitCode::FAILURE;
        }
    };
    let log_guard = match webapi_core::logging::init(daemon.state().data_dir().root()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("cernvm-webapi: {e:#}");
            return ExitCode::FAILURE;
        }
    };

    // Consent: the broker asks the user through a dialog window (blocks persist in the data dir).
    let consent_prompter = consent_dialog::DialogPrompter::new();
    let consent = Arc::new(ConsentBroker::open(
        daemon.state().data_dir().root(),
        consent_prompter.clone(),
        consent_dialog::broker_options(),
    ));

    let (stop_tx, mut stop_rx) = watch::channel(false);
    let daemon_state = daemon.state();
    let daemon_task = tauri::async_runtime::spawn(async move {
        let shutdown = async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        };
        if let Err(e) = daemon.run(shutdown).await {
            tracing::error!("daemon failed: {e:#}");
        }
    });

    let app = tauri::Builder::default()
        // Registered first, as the plugin requires: a second launch hands its arguments to us and exits.
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            tracing::info!(?argv, "second launch: showing the control panel");
            panel::open(app);
        }))
        .invoke_handler(tauri::generate_handler![
            commands::daemon_status,
            consent_dialog::consent_answer
        ])
        .manage(ShellState {
            daemon: daemon_state,
            stop: stop_tx,
            consent: consent.clone(),
        })
        .manage(consent_prompter.clone())
        .setup(move |app| {
            consent_prompter.attach(app.handle().clone());
            #[cfg(feature = "e2e-hooks")]
            e2e_hooks::start(app.handle(), consent.clone());
            tray::build(app.handle())?;
            Ok(())
        })
        .build(tauri::generate_context!());
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            eprintln!("cernvm-webapi: cannot start the user interface: {e}");
            return ExitCode::FAILURE;
        }
    };

    app.run(|app, event| match event {
        // The last window closed: keep living in the tray. An explicit exit (code set) goes through.
        RunEvent::ExitRequested {
            api, code: None, ..
        } => api.prevent_exit(),
        RunEvent::Exit => {
            let _ = app.state::<ShellState>().stop.send(true);
        }
        _ => {}
    });
    let _ = tauri::async_runtime::block_on(daemon_task);
    drop(log_guard);
    ExitCode::SUCCESS
}

/// What the shell keeps in Tauri's state.
pub struct ShellState {
    pub daemon: Arc<webapi_core::daemon::DaemonState>,
    pub stop: watch::Sender<bool>,
    /// The consent broker (blocked sites, remembered answers) for the tray and the control panel.
    pub consent: Arc<ConsentBroker>,
}

/// GTK aborts the process without a display; say so clearly instead.
fn display_available() -> Result<(), &'static str> {
    if cfg!(any(
        target_os = "linux",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd"
    )) {
        let has = |v: &str| std::env::var_os(v).is_some_and(|s| !s.is_empty());
        if !has("DISPLAY") && !has("WAYLAND_DISPLAY") {
            return Err("no graphical display (neither DISPLAY nor WAYLAND_DISPLAY is set)");
        }
    }
    Ok(())
}
