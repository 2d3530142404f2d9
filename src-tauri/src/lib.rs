//! The tray app: a thin Tauri shell over `webapi-core`. It starts the same `Daemon` as
//! `cvmwebapi serve`, shows a tray icon with a menu, and opens the control panel on demand in a process
//! of its own (`panel`, `panel_window`), which ends when it is closed (small footprint in the tray).
//! Consent dialogs are windows of this process, created per request and destroyed once answered.

mod args;
mod blocked_menu;
mod commands;
mod consent_dialog;
mod display;
mod panel;
mod panel_link;
mod panel_window;
mod tray;
mod webview_release;

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::Parser;
use tauri::{Manager, RunEvent};
use tokio::sync::watch;
use webapi_core::config::DaemonConfig;
use webapi_core::consent::ConsentBroker;
use webapi_core::daemon::{wiring, Daemon, DaemonState, Services, StartError};
use webapi_core::store::DataDir;

pub use args::AppArgs;

/// Exit codes shared with `cvmwebapi serve`.
const EXIT_USAGE: u8 = 2;
const EXIT_ADDRESS_IN_USE: u8 = 3;
const EXIT_NO_DISPLAY: u8 = 4;

/// Runs the tray app; returns the process exit code.
pub fn main() -> ExitCode {
    // The control panel's own process (started by the tray app, see `panel`).
    let mut raw = std::env::args().skip(1);
    if raw.next().as_deref() == Some(panel::PANEL_FLAG) {
        let session = match (raw.next().as_deref(), raw.next()) {
            (Some(panel::SESSION_FLAG), Some(name)) => Some(name),
            _ => None,
        };
        return panel_window::run(session);
    }
    let args = AppArgs::parse();
    let config = match args.serve.validate() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cernvm-webapi: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Err(why) = display::check() {
        eprintln!(
            "cernvm-webapi: {why}. Use `cvmwebapi serve` to run the daemon without a desktop."
        );
        return ExitCode::from(EXIT_NO_DISPLAY);
    }

    let failure: Arc<Mutex<Option<(u8, String)>>> = Arc::default();
    let setup_failure = failure.clone();
    let app = tauri::Builder::default()
        // Registered first, as the plugin requires: a second launch hands its arguments to the running
        // instance (which shows the control panel) and exits before binding anything.
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            tracing::info!(?argv, "second launch: showing the control panel");
            panel::open(app);
        }))
        .invoke_handler(tauri::generate_handler![
            commands::daemon_status,
            commands::list_sessions,
            commands::session_action,
            commands::set_session_policy,
            commands::session_samples,
            commands::idle_info,
            commands::recent_events,
            commands::get_settings,
            commands::save_settings,
            commands::cache_info,
            commands::clear_cache,
            commands::blocked_sites,
            commands::unblock_site,
            commands::remembered_sites,
            commands::forget_site,
            commands::get_start_at_login,
            commands::set_start_at_login,
            commands::open_logs_folder,
            commands::quit_app,
            consent_dialog::consent_answer
        ])
        .setup(move |app| {
            let fail = |code: u8, msg: String| {
                *setup_failure.lock().unwrap() = Some((code, msg.clone()));
                msg
            };
            let data_dir =
                DataDir::open(&config.data_dir).map_err(|e| fail(1, format!("{e:#}")))?;
            let log_guard = webapi_core::logging::init(data_dir.root())
                .map_err(|e| fail(1, format!("{e:#}")))?;
            // Consent: the broker asks the user through a dialog window (blocks persist in the data dir).
            let prompter = consent_dialog::DialogPrompter::new();
            prompter.attach(app.handle().clone());
            // One event feed for the whole daemon (consent, images, sessions, idle control).
            let events = webapi_core::events::EventFeed::new();
            let consent = Arc::new(
                ConsentBroker::open(
                    data_dir.root(),
                    prompter.clone(),
                    webapi_core::consent::ConsentOptions::default(),
                )
                .with_events(events.clone()),
            );
            let real = tauri::async_runtime::block_on(wiring::build(
                &args.serve,
                &config,
                consent.clone(),
                events,
            ))
            .map_err(|e| fail(EXIT_USAGE, e.to_string()))?;
            let mut shell = start_daemon(&config, real.services, consent.clone(), Some(log_guard))
                .map_err(|(code, msg)| fail(code, msg))?;
            // Idle control: raises or lowers the caps of sessions that opted in. The settings (threshold,
            // default policy) apply from here; command-line flags win over them.
            let idle = tauri::async_runtime::block_on(webapi_core::settings::start_idle(
                &shell.daemon,
                &real.startup,
            ));
            // The control panel's CPU chart samples every session from now on.
            let state = shell.daemon.clone();
            let monitor = tauri::async_runtime::block_on(async move {
                webapi_core::monitor::ResourceMonitor::spawn(state)
            });
            app.manage(commands::PanelState {
                settings: real.settings.clone(),
                startup: real.startup.clone(),
                verifier: Some(real.verifier.clone()),
                images: Some(real.images.clone()),
                monitor,
            });
            app.manage(idle.clone()); // the tray's status line and "Snooze" read it from here
            shell.idle = Some(idle);
            app.manage(prompter);
            app.manage(shell);
            app.manage(panel::PanelHost::default());
            tray::build(app.handle())?;
            webview_release::app_started(app.handle());
            Ok(())
        })
        .build(context());
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            return match failure.lock().unwrap().take() {
                Some((code, msg)) => {
                    eprintln!("cernvm-webapi: {msg}");
                    ExitCode::from(code)
                }
                None => {
                    eprintln!("cernvm-webapi: cannot start the user interface: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    };

    app.run(|app, event| match event {
        // The last window closed: keep living in the tray. An explicit exit (code set) goes through.
        RunEvent::ExitRequested {
            api, code: None, ..
        } => api.prevent_exit(),
        RunEvent::WindowEvent {
            event: tauri::WindowEvent::Destroyed,
            ..
        } => webview_release::window_destroyed(app),
        RunEvent::Exit => {
            if let Some(shell) = app.try_state::<ShellState>() {
                shell.shut_down();
            }
        }
        _ => {}
    });
    ExitCode::SUCCESS
}

/// The app's Tauri context (configuration and the `ui/` assets), for the tray app and the panel process.
fn context() -> tauri::Context<tauri::Wry> {
    tauri::generate_context!()
}

/// What the shell keeps in Tauri's state.
pub struct ShellState {
    pub daemon: Arc<DaemonState>,
    /// The consent broker (blocked sites, remembered answers) for the tray and the control panel.
    pub consent: Arc<ConsentBroker>,
    /// The idle controller (status for the tray, snooze), once started.
    pub idle: Option<webapi_core::idle::IdleHandle>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<tauri::async_runtime::JoinHandle<()>>>,
    /// Flushes the file log when the app ends.
    _log_guard: Option<webapi_core::logging::FlushGuard>,
}

impl ShellState {
    /// Stops the daemon and waits until it has closed its listener.
    fn shut_down(&self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.lock().unwrap().take() {
            let _ = tauri::async_runtime::block_on(task);
        }
    }
}

/// Binds the daemon (failing clearly when another instance holds the port), starts logging and serving.
fn start_daemon(
    config: &DaemonConfig,
    services: Services,
    consent: Arc<ConsentBroker>,
    log_guard: Option<webapi_core::logging::FlushGuard>,
) -> Result<ShellState, (u8, String)> {
    let bind = Daemon::builder(config).services(services).bind();
    let daemon = match tauri::async_runtime::block_on(bind) {
        Ok(d) => d,
        Err(e @ StartError::AddressInUse(_)) => return Err((EXIT_ADDRESS_IN_USE, e.to_string())),
        Err(e) => return Err((1, e.to_string())),
    };
    let (stop, mut stop_rx) = watch::channel(false);
    let state = daemon.state();
    let task = tauri::async_runtime::spawn(async move {
        let shutdown = async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        };
        if let Err(e) = daemon.run(shutdown).await {
            tracing::error!("daemon failed: {e:#}");
        }
    });
    Ok(ShellState {
        daemon: state,
        consent,
        idle: None,
        stop,
        task: Mutex::new(Some(task)),
        _log_guard: log_guard,
    })
}
