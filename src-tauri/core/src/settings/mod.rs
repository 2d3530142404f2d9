//! The user's settings (control panel): idle threshold, default idle policy, hypervisor, image mirror,
//! cache size limit and trusted local keystores. Validated as a whole, stored in the data dir's
//! `settings.json` ([`SettingsStore`]); command-line flags win over them, they win over the defaults
//! ([`Startup`]); what can change live is applied at once ([`apply_live`]), the rest after a restart.

mod apply;
mod store;
mod validate;

pub use apply::{apply_live, restart_needed, start_idle, Startup, RESTART_FIELDS};
pub use store::SettingsStore;
pub use validate::{SettingsError, MAX_CACHE_LIMIT, MAX_KEYSTORES, MIN_CACHE_LIMIT};

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::hypervisor::HypervisorChoice;
use crate::idle::IdlePolicy;

/// Every user setting, as the control panel reads and writes it (camelCase JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// Seconds without keyboard or mouse input after which the computer counts as idle (1..=86400).
    pub idle_threshold_secs: u64,
    /// The idle policy of new sessions whose VMCP sets none of the `daemon*` keys.
    pub default_idle_policy: IdlePolicy,
    /// Which hypervisor runs new VMs ("auto", "qemu", "virtualbox"). Applies after a restart.
    pub hypervisor: HypervisorChoice,
    /// Base URL replacing the official µCernVM release area; `None` for the official one.
    pub image_mirror: Option<String>,
    /// Images nobody uses are evicted above this many bytes.
    pub cache_limit_bytes: u64,
    /// Local keystore files (`domain=base64-SPKI` lines) whose domain keys are trusted.
    pub local_keystores: Vec<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            idle_threshold_secs: crate::idle::DEFAULT_THRESHOLD.as_secs(),
            default_idle_policy: IdlePolicy::default(),
            hypervisor: HypervisorChoice::Auto,
            image_mirror: None,
            cache_limit_bytes: crate::media::DEFAULT_CACHE_LIMIT,
            local_keystores: Vec::new(),
        }
    }
}
