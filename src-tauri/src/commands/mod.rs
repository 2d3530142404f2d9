//! Tauri commands: the IPC surface of the control panel and the consent dialog. IPC only: each command
//! reads the shell's state and forwards to `webapi-core` (mostly `daemon::panel`, `settings`, `monitor`).
//! Every command has an `allow-<name>` permission (build.rs) granted only to the window that needs it
//! (capabilities/*.json). Errors reach JavaScript as strings.

mod cache;
mod consent;
mod events;
mod idle;
mod logs;
mod sessions;
mod settings;
mod status;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use webapi_core::daemon::adapters::CachedImages;
use webapi_core::monitor::ResourceMonitor;
use webapi_core::settings::{SettingsStore, Startup};
use webapi_core::trust::Verifier;

pub use cache::{cache_info, clear_cache};
pub use consent::{blocked_sites, forget_site, remembered_sites, unblock_site};
pub use events::{forward_to_panel, recent_events, DAEMON_EVENT};
pub use idle::idle_info;
pub use logs::open_logs_folder;
pub use sessions::{list_sessions, session_action, session_samples, set_session_policy};
pub use settings::{get_settings, get_start_at_login, save_settings, set_start_at_login};
pub use status::daemon_status;

/// What the panel's commands need beyond [`crate::ShellState`]: settings, trust, images, the monitor.
pub struct PanelState {
    pub settings: Arc<SettingsStore>,
    /// How the daemon was started (which settings flags override).
    pub startup: Startup,
    /// Re-reads the trusted local keystores when the settings change.
    pub verifier: Option<Arc<Verifier>>,
    /// The image cache (usage, clear); `None` when the daemon runs without one.
    pub images: Option<Arc<CachedImages>>,
    pub monitor: ResourceMonitor,
}
