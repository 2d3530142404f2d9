//! Tauri commands: the IPC surface of the control panel and the consent dialog. IPC only: each command
//! reads the shell's state and forwards to `webapi-core` (mostly `daemon::panel`, `settings`, `monitor`).
//! Every command has an `allow-<name>` permission (build.rs) granted only to the window that needs it
//! (capabilities/*.json). Errors reach JavaScript as strings.

pub mod cache;
pub mod consent;
pub mod events;
pub mod idle;
pub mod logs;
pub mod sessions;
pub mod settings;
pub mod status;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use webapi_core::daemon::adapters::CachedImages;
use webapi_core::monitor::ResourceMonitor;
use webapi_core::settings::{SettingsStore, Startup};
use webapi_core::trust::Verifier;

// Commands are named by their module path in `generate_handler!` (it needs the macro items that
// `#[tauri::command]` puts next to each function, which a `pub use` of the function does not bring).
pub use events::forward_to_panel;

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
