//! The tray icon and its live menu. On Linux a click on the icon does nothing, so everything is in the
//! menu: status lines, one submenu per session, Pause all / Resume all, Snooze, the control panel, the
//! blocked sites, the logs folder, Start at login, Quit. A watcher task looks at the sessions, the idle
//! controller and the consent dialogs about once a second, and at once when the daemon's event feed
//! reports something; it rebuilds the menu only when what it shows changed, switches the icon (idle,
//! running, attention) and sends notifications.

mod failures;
mod icons;
mod model;
mod no_tray;
mod notify;
mod quit;
pub(crate) mod sessions;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tauri::menu::{CheckMenuItem, IsMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager, Wry};
use tauri_plugin_autostart::ManagerExt;
use tokio::sync::broadcast;
use webapi_core::events::DaemonEvent;
use webapi_core::idle::IdleHandle;
use webapi_core::protocol::SessionState;
use webapi_core::session::Control;

use crate::consent_dialog::DialogPrompter;
use crate::{blocked_menu, panel, ShellState};

pub const TRAY_ID: &str = "cernvm-webapi";

/// Menu ids of the fixed entries.
mod ids {
    pub const PANEL: &str = "panel";
    pub const PAUSE_ALL: &str = "pause-all";
    pub const RESUME_ALL: &str = "resume-all";
    pub const SNOOZE: &str = "snooze";
    pub const LOGS: &str = "logs";
    pub const AUTOSTART: &str = "autostart";
    pub const QUIT: &str = "quit";
}

/// Labels the GUI tests and the user guide refer to.
pub const SNOOZE_LABEL: &str = "Snooze idle control for 1 hour";
const SNOOZE_FOR: Duration = Duration::from_secs(60 * 60);
/// How often the watcher looks.
const POLL: Duration = Duration::from_secs(1);
/// How long a per-session action from the menu waits for the session's answer.
const ACTION_WAIT: Duration = Duration::from_secs(10);
/// The event the control panel receives with a session name when "Show in panel" is chosen.
pub const SHOW_SESSION_EVENT: &str = "show-session";

/// The tray's state in Tauri's state.
struct TrayState {
    tray: TrayIcon<Wry>,
    blocked: Submenu<Wry>,
    shown: Mutex<Option<model::MenuModel>>,
    icon: Mutex<Option<model::IconKind>>,
    notifier: notify::Notifier,
    failures: Mutex<failures::Failures>,
}

/// Creates the tray icon with its menu and starts the watcher.
pub fn build(app: &AppHandle) -> tauri::Result<()> {
    app.plugin(tauri_plugin_dialog::init())?;
    app.plugin(tauri_plugin_autostart::init(
        tauri_plugin_autostart::MacosLauncher::LaunchAgent,
        None,
    ))?;
    let daemon = app.state::<ShellState>().daemon.clone();
    let first = model::MenuModel::new(daemon.local_addr(), Vec::new(), None, false, 0);
    let blocked = blocked_menu::submenu(app)?;
    let menu = menu_for(app, &first, &blocked)?;
    let tray = TrayIconBuilder::with_id(TRAY_ID)
        .icon(icons::image(model::IconKind::Idle)?)
        .tooltip("CernVM WebAPI")
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| on_menu_event(app, event.id.as_ref()))
        .build(app)?;
    app.manage(TrayState {
        tray,
        blocked,
        shown: Mutex::new(Some(first)),
        icon: Mutex::new(Some(model::IconKind::Idle)),
        notifier: notify::Notifier::new(notify::Limits::default(), open_panel_on_click(app)),
        failures: Mutex::default(),
    });
    tauri::async_runtime::spawn(no_tray::open_panel_without_tray(app.clone()));
    let app = app.clone();
    tauri::async_runtime::spawn(watch(app));
    Ok(())
}

/// A notification's click opens the control panel (on the main thread, where windows are made).
fn open_panel_on_click(app: &AppHandle) -> notify::OnClick {
    let app = app.clone();
    Arc::new(move || {
        let handle = app.clone();
        if let Err(e) = app.run_on_main_thread(move || panel::open(&handle)) {
            tracing::warn!("cannot open the control panel from a notification: {e}");
        }
    })
}

/// The idle controller's handle, once the app manages one.
fn idle_handle(app: &AppHandle) -> Option<IdleHandle> {
    app.try_state::<IdleHandle>().map(|h| h.inner().clone())
}

/// What the watcher saw last time, to tell what changed.
#[derive(Default)]
struct Seen {
    sessions: Vec<model::SessionView>,
    blocked: BTreeSet<String>,
    dialogs: BTreeSet<(String, String)>,
}

/// Looks at sessions, idle control and consent about once a second; updates the menu, icon, notifications.
async fn watch(app: AppHandle) {
    let daemon = app.state::<ShellState>().daemon.clone();
    let mut feed = daemon.events().subscribe();
    let mut seen = Seen {
        blocked: blocked_origins(&app),
        ..Seen::default()
    };
    let mut first = true;
    loop {
        let views = sessions::snapshot(&daemon).await;
        let idle = idle_handle(&app).map(|h| h.status().borrow().clone());
        let dialogs = app
            .try_state::<Arc<DialogPrompter>>()
            .map(|p| p.waiting_dialogs())
            .unwrap_or_default();
        let blocked = blocked_origins(&app);
        let state = app.state::<TrayState>();
        let failed = lock(&state.failures).count();
        let m = model::MenuModel::new(
            daemon.local_addr(),
            views.clone(),
            idle.as_ref().map(|s| s.summary()).as_deref(),
            idle.as_ref().is_some_and(|s| s.snoozed_until.is_some()),
            failed,
        );
        // Sessions recovered at startup are not news; later changes are.
        if !first {
            for note in notify::started(&seen.sessions, &views)
                .into_iter()
                .chain(notify::newly_blocked(&seen.blocked, &blocked))
                .chain(notify::new_consent_dialogs(&seen.dialogs, &dialogs))
            {
                state.notifier.show(note);
            }
        }
        first = false;
        refresh(&app, &state, m, !dialogs.is_empty() || failed > 0);
        seen = Seen {
            sessions: views,
            blocked,
            dialogs,
        };
        wait_for_news(&mut feed, &state).await;
    }
}

/// Waits up to [`POLL`], less when the event feed reports something (progress does not count); shows the
/// notifications the feed's events deserve ("VM failed", "Image downloaded") and keeps count of the
/// failures not yet seen.
async fn wait_for_news(feed: &mut broadcast::Receiver<DaemonEvent>, state: &TrayState) {
    let poll = tokio::time::sleep(POLL);
    tokio::pin!(poll);
    loop {
        tokio::select! {
            () = &mut poll => return,
            event = feed.recv() => match event {
                Ok(event) => {
                    if let Some(note) = notify::from_event(&event.kind) {
                        state.notifier.show(note);
                    }
                    lock(&state.failures).note(&event.kind);
                    if !event.kind.is_transient() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::info!(missed, "the tray fell behind the event feed");
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return poll.await,
            },
        }
    }
}

fn blocked_origins(app: &AppHandle) -> BTreeSet<String> {
    app.state::<ShellState>()
        .consent
        .blocked_sites()
        .into_iter()
        .map(|s| s.origin)
        .collect()
}

/// Applies a new model: the menu when it changed, the icon when it changed.
fn refresh(app: &AppHandle, state: &TrayState, m: model::MenuModel, attention: bool) {
    let kind = model::icon_for(&m.sessions, attention);
    {
        let mut icon = lock(&state.icon);
        if *icon != Some(kind) {
            match icons::image(kind).and_then(|img| state.tray.set_icon(Some(img))) {
                Ok(()) => {
                    tracing::info!(?kind, "tray icon changed");
                    *icon = Some(kind);
                }
                Err(e) => tracing::warn!("cannot change the tray icon: {e}"),
            }
        }
    }
    let mut shown = lock(&state.shown);
    if shown.as_ref() == Some(&m) {
        return;
    }
    match menu_for(app, &m, &state.blocked).and_then(|menu| state.tray.set_menu(Some(menu))) {
        Ok(()) => *shown = Some(m),
        Err(e) => tracing::warn!("cannot update the tray menu: {e}"),
    }
}

/// Quit, as the menu's Quit does: at once with no VM running, else after asking what to do with them.
pub(crate) fn request_quit(app: &AppHandle) {
    quit::request(app);
}

/// The control panel was opened: the VM failures it lists count as seen (the icon leaves "attention").
pub(crate) fn failures_seen(app: &AppHandle) {
    if let Some(state) = app.try_state::<TrayState>() {
        lock(&state.failures).seen();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes the watcher rebuild the menu at its next look (after an action whose effect it should show).
pub(crate) fn invalidate(app: &AppHandle) {
    if let Some(state) = app.try_state::<TrayState>() {
        *lock(&state.shown) = None;
    }
}

/// Builds the whole menu for `m`.
fn menu_for(
    app: &AppHandle,
    m: &model::MenuModel,
    blocked: &Submenu<Wry>,
) -> tauri::Result<Menu<Wry>> {
    let menu = Menu::new(app)?;
    menu.append(&MenuItem::with_id(
        app,
        "status",
        &m.status,
        false,
        None::<&str>,
    )?)?;
    menu.append(&MenuItem::with_id(
        app,
        "idle-status",
        &m.idle,
        false,
        None::<&str>,
    )?)?;
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    for s in &m.sessions {
        menu.append(&session_submenu(app, s)?)?;
    }
    if !m.sessions.is_empty() {
        menu.append(&PredefinedMenuItem::separator(app)?)?;
    }
    let items: Vec<Box<dyn IsMenuItem<Wry>>> = vec![
        Box::new(MenuItem::with_id(
            app,
            ids::PAUSE_ALL,
            "Pause all",
            model::can_pause_all(&m.sessions),
            None::<&str>,
        )?),
        Box::new(MenuItem::with_id(
            app,
            ids::RESUME_ALL,
            "Resume all",
            model::can_resume_all(&m.sessions),
            None::<&str>,
        )?),
        Box::new(CheckMenuItem::with_id(
            app,
            ids::SNOOZE,
            SNOOZE_LABEL,
            m.idle_control,
            m.snoozed,
            None::<&str>,
        )?),
        Box::new(PredefinedMenuItem::separator(app)?),
        Box::new(MenuItem::with_id(
            app,
            ids::PANEL,
            "Open control panel",
            true,
            None::<&str>,
        )?),
    ];
    for item in &items {
        menu.append(item.as_ref())?;
    }
    menu.append(blocked)?;
    let autostart = app.autolaunch().is_enabled().unwrap_or(false);
    menu.append(&MenuItem::with_id(
        app,
        ids::LOGS,
        "Open logs folder",
        true,
        None::<&str>,
    )?)?;
    menu.append(&CheckMenuItem::with_id(
        app,
        ids::AUTOSTART,
        "Start at login",
        true,
        autostart,
        None::<&str>,
    )?)?;
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    menu.append(&MenuItem::with_id(
        app,
        ids::QUIT,
        "Quit",
        true,
        None::<&str>,
    )?)?;
    Ok(menu)
}

fn session_submenu(app: &AppHandle, s: &model::SessionView) -> tauri::Result<Submenu<Wry>> {
    let sub = Submenu::with_id(
        app,
        format!("session-menu:{}", s.name),
        model::session_title(s),
        true,
    )?;
    sub.append(&MenuItem::with_id(
        app,
        format!("session-detail:{}", s.name),
        model::session_detail(s),
        false,
        None::<&str>,
    )?)?;
    for action in model::actions_for(s.state) {
        let enabled =
            action != model::SessionAction::OpenWebsite || model::openable_origin(&s.origin);
        sub.append(&MenuItem::with_id(
            app,
            model::session_item_id(action, &s.name),
            action.label(),
            enabled,
            None::<&str>,
        )?)?;
    }
    Ok(sub)
}

fn on_menu_event(app: &AppHandle, id: &str) {
    match id {
        ids::PANEL => panel::open(app),
        ids::PAUSE_ALL => all(app, Control::Pause, SessionState::Running),
        ids::RESUME_ALL => all(app, Control::Resume, SessionState::Paused),
        ids::SNOOZE => toggle_snooze(app),
        ids::LOGS => open_logs(app),
        ids::AUTOSTART => toggle_autostart(app),
        ids::QUIT => quit::request(app),
        id if blocked_menu::handle(app, id) => {}
        id => {
            if let Some((action, name)) = model::parse_session_item_id(id) {
                session_action(app, action, name.to_string());
            }
        }
    }
}

/// Pause all / Resume all: `action` to every session in `from` (Resume all also resumes hibernated ones).
fn all(app: &AppHandle, action: Control, from: SessionState) {
    let daemon = app.state::<ShellState>().daemon.clone();
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let views = sessions::snapshot(&daemon).await;
        let targets = views.iter().filter(|s| {
            s.state == from || (from == SessionState::Paused && s.state == SessionState::Saved)
        });
        for s in targets {
            let outcome = sessions::control(&daemon, &s.name, action.clone(), ACTION_WAIT).await;
            tracing::info!(session = %s.name, ?action, ?outcome, "tray: all sessions");
        }
        invalidate(&app);
    });
}

fn session_action(app: &AppHandle, action: model::SessionAction, name: String) {
    use model::SessionAction as A;
    let control = match action {
        // The volunteer's Start keeps the website's start values: `resume` drives the VM to running
        // from any state without replacing them (shared/spec/protocol.md §2.5), where `start` would.
        A::Start => Control::Resume,
        A::Pause => Control::Pause,
        A::Resume => Control::Resume,
        A::Stop => Control::Stop,
        A::ShowInPanel => {
            panel::show_session(app, &name);
            return;
        }
        A::OpenWebsite => {
            open_website(app, name);
            return;
        }
    };
    let daemon = app.state::<ShellState>().daemon.clone();
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let outcome = sessions::control(&daemon, &name, control.clone(), ACTION_WAIT).await;
        tracing::info!(session = %name, ?control, ?outcome, "tray: session action");
        invalidate(&app);
    });
}

fn open_website(app: &AppHandle, name: String) {
    let shown = app
        .try_state::<TrayState>()
        .and_then(|s| s.shown.lock().ok().and_then(|m| m.clone()));
    let origin = shown
        .and_then(|m| m.sessions.into_iter().find(|s| s.name == name))
        .map(|s| s.origin);
    match origin {
        Some(origin) if model::openable_origin(&origin) => {
            // The `open` crate runs the desktop's opener with the URL as one argument (no shell).
            if let Err(e) = open::that_detached(&origin) {
                tracing::warn!(%origin, "cannot open the website: {e}");
            }
        }
        other => tracing::warn!(
            ?other,
            "not opening a website that is not a plain http(s) origin"
        ),
    }
}

fn toggle_snooze(app: &AppHandle) {
    let Some(idle) = idle_handle(app) else {
        tracing::info!("Snooze chosen but idle control does not run");
        invalidate(app);
        return;
    };
    let snoozed = idle.status().borrow().snoozed_until.is_some();
    if snoozed {
        idle.cancel_snooze();
    } else {
        idle.snooze_for(SNOOZE_FOR);
    }
    idle.wake();
    invalidate(app);
}

pub(crate) fn open_logs(app: &AppHandle) {
    let logs = app.state::<ShellState>().daemon.data_dir().logs();
    if let Err(e) = std::fs::create_dir_all(&logs) {
        tracing::warn!("cannot create the logs folder {}: {e}", logs.display());
    }
    if let Err(e) = open::that_detached(&logs) {
        tracing::warn!("cannot open the logs folder {}: {e}", logs.display());
    }
}

fn toggle_autostart(app: &AppHandle) {
    let launcher = app.autolaunch();
    let result = match launcher.is_enabled() {
        Ok(true) => launcher.disable().map(|()| false),
        Ok(false) => launcher.enable().map(|()| true),
        Err(e) => Err(e),
    };
    match result {
        Ok(on) => tracing::info!(on, "Start at login changed"),
        Err(e) => tracing::error!("cannot change Start at login: {e}"),
    }
    invalidate(app);
}
