//! Desktops that show no tray icons (GNOME without the AppIndicator extension): there the volunteer would
//! not see the app at all. After start-up it looks for a tray host for a while (a desktop starting at
//! login may register its tray after the app); if none appears, it opens the control panel and says why
//! in a notification. The panel can then be reopened by starting the app again (single instance).

use std::time::{Duration, Instant};

use tauri::{AppHandle, Manager};

use super::notify::Note;
use super::TrayState;

/// How long a tray host may take to appear.
const WAIT: Duration = Duration::from_secs(8);
/// How often to look meanwhile.
const STEP: Duration = Duration::from_secs(1);

pub async fn open_panel_without_tray(app: AppHandle) {
    let deadline = Instant::now() + WAIT;
    loop {
        if webapi_core::desktop::tray_icons_shown().await {
            tracing::info!("a tray host shows the icon");
            return;
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(STEP).await;
    }
    tracing::warn!(
        "this desktop shows no tray icons (no StatusNotifierItem host, no XEmbed tray): \
         opening the control panel instead"
    );
    if let Some(state) = app.try_state::<TrayState>() {
        state.notifier.show(Note::no_tray_icon());
    }
    let handle = app.clone();
    if let Err(e) = app.run_on_main_thread(move || crate::panel::open(&handle)) {
        tracing::warn!("cannot open the control panel: {e}");
    }
}
