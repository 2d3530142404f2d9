//! Tauri commands: the IPC surface of the control panel and the consent dialog. IPC only: each command
//! reads the shell's state and forwards to `webapi-core` (mostly `daemon::panel`, `settings`, `monitor`).
//! Every command has an `allow-<name>` permission (build.rs) granted only to the window that needs it
//! (capabilities/*.json). Errors reach JavaScript as strings.

mod cache;
mod consent;
mod events;
mod idle;
mod logs;
mod relay;
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

// Globs, so that the macros `#[tauri::command]` generates next to each function are re-exported too
// (`generate_handler!` looks them up next to the path it is given).
pub use cache::*;
pub use consent::*;
pub use events::*;
pub use idle::*;
pub use logs::*;
pub use relay::relay;
pub use sessions::*;
pub use settings::*;
pub use status::*;

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
