//! The `Hypervisor` trait: what a session needs from a VM backend, and the backends behind it
//! (QEMU over QMP, VirtualBox over VBoxManage). A session actor owns one `Box<dyn Vm>` and is the only
//! caller of its methods, so backends need no locking around one VM's operations.
//!
//! This is the contract between `session` and the backends; extend it additively.
//!
//! Entry points: [`choose`] / [`select`] pick a backend, [`probe_api`] checks the guest API behind
//! `apiURL`. The session expands the VMCP `userData` into `VmSpec::context`.

pub mod cap;
pub mod context;
mod probe;
#[cfg(unix)]
pub mod qemu;
mod select;
pub mod validate;

pub use probe::{probe_api, PROBE_TIMEOUT};
pub use select::{choose, select, virtualbox_backend};
pub use validate::{valid_name, validate_spec, HostLimits};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// Which backend the user asked for (`--hypervisor auto|qemu|virtualbox`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum HypervisorChoice {
    /// What is installed and working: VirtualBox where it is, QEMU otherwise.
    #[default]
    Auto,
    Qemu,
    Virtualbox,
}

/// What `detect` found out about a backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HypervisorInfo {
    /// "qemu" or "virtualbox"; also the word shown in the consent dialog.
    pub name: String,
    pub version: String,
    /// Hardware acceleration in use ("kvm", "tcg", "hvf", "whpx", "vt-x/amd-v", ...).
    pub accelerator: String,
    /// How CPU caps are applied ("cgroup-v1", "cgroup-v2", "systemd-scope", "qmp-duty-cycle", "native").
    pub cap_method: String,
}

/// The boot medium of a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BootMedium {
    /// A µCernVM-style ISO: boots from CD, with a blank scratch disk of `VmSpec::disk_mb`.
    Iso(PathBuf),
    /// A bootable disk image (from `diskURL`), used as the read-only base of a per-session overlay.
    Disk(PathBuf),
}

/// Everything needed to create a VM for a session. All values are already validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmSpec {
    /// A name safe for file names and hypervisor object names: `[A-Za-z0-9_-]{1,64}`.
    pub name: String,
    /// The session's own folder in the data dir; the backend keeps all its files in it.
    pub dir: PathBuf,
    pub cpus: u32,
    pub memory_mb: u32,
    pub disk_mb: u32,
    pub medium: BootMedium,
    /// Contextualisation data (the VMCP `userData` after macro substitution), delivered to the guest.
    pub context: Option<String>,
    /// The guest port forwarded to a loopback port on the host (the guest API behind `apiURL`).
    pub api_guest_port: Option<u16>,
    /// Initial CPU execution cap, 1..=100.
    pub execution_cap: u8,
    /// Session flags (`HVF_*`, shared/spec/protocol.md §6.2): 64-bit guest, headful, ...
    pub flags: u32,
}

/// The power state of a VM as the backend sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VmState {
    /// Created (files exist) but not running and with no saved state.
    PoweredOff,
    /// Not running; its memory is saved to disk (hibernated) and `boot` restores it.
    Saved,
    Paused,
    Running,
}

/// Something that happened to a VM without the session asking for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmEvent {
    /// The VM's state changed on its own (the guest powered off, the process died, someone paused it).
    StateChanged(VmState),
    /// The guest rebooted (reset by itself or by a panic).
    Rebooted,
    /// The backend reports a failure (e.g. no hardware virtualisation, guest panic).
    Failure(String),
}

/// A serialisable reference to a VM, persisted with the session so a restarted daemon finds it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmHandle {
    /// The backend's name ("qemu", "virtualbox").
    pub backend: String,
    /// Backend-specific data (for QEMU: the QMP socket path, pid, forwarded port; for VirtualBox: the UUID).
    pub data: serde_json::Value,
}

/// A backend failure, with what was being done and what the backend said.
#[derive(Debug, thiserror::Error)]
pub enum HvError {
    #[error("the hypervisor is not available: {0}")]
    Unavailable(String),
    #[error("the VM cannot {action} while it is {state:?}")]
    InvalidState {
        action: &'static str,
        state: VmState,
    },
    #[error("invalid VM parameter: {0}")]
    InvalidSpec(String),
    #[error("{action} timed out after {after:?}")]
    Timeout {
        action: &'static str,
        after: Duration,
    },
    #[error("{action} failed: {detail}")]
    Failed {
        action: &'static str,
        detail: String,
    },
    #[error("I/O error during {action}: {source}")]
    Io {
        action: &'static str,
        source: std::io::Error,
    },
}

/// A VM backend: creates VMs and finds them again after a restart.
#[async_trait]
pub trait Hypervisor: Send + Sync + 'static {
    /// Name, version, accelerator and cap method of this backend.
    fn info(&self) -> &HypervisorInfo;
    /// Creates (defines) a VM from `spec`. It is powered off afterwards.
    async fn create(&self, spec: &VmSpec) -> Result<Box<dyn Vm>, HvError>;
    /// Re-attaches to a VM created earlier, e.g. by a daemon that was killed. A VM whose process is gone
    /// comes back powered off (or saved, if a saved state exists).
    async fn reattach(&self, spec: &VmSpec, handle: &VmHandle) -> Result<Box<dyn Vm>, HvError>;
}

/// One VM. Only its session actor calls these methods.
#[async_trait]
pub trait Vm: Send + Sync {
    /// What to persist to find this VM again. It changes when a process starts or stops (QEMU: pid,
    /// cgroup, cap), so persist it again after `boot`, `save`, `set_cpu_cap` and power changes.
    fn handle(&self) -> VmHandle;
    /// Re-reads the real state from the backend.
    async fn state(&mut self) -> Result<VmState, HvError>;
    /// Boots a powered-off VM, or restores a saved one.
    async fn boot(&mut self) -> Result<(), HvError>;
    async fn pause(&mut self) -> Result<(), HvError>;
    async fn resume(&mut self) -> Result<(), HvError>;
    /// Saves the VM's memory to disk and stops it (hibernate).
    async fn save(&mut self) -> Result<(), HvError>;
    /// Hard reset: the guest reboots.
    async fn reset(&mut self) -> Result<(), HvError>;
    /// ACPI power button; hard power-off if the guest has not stopped within `deadline`.
    async fn shutdown(&mut self, deadline: Duration) -> Result<(), HvError>;
    /// Hard power-off.
    async fn power_off(&mut self) -> Result<(), HvError>;
    /// Powers off if needed and deletes the VM and all its files.
    async fn destroy(self: Box<Self>) -> Result<(), HvError>;
    /// Sets the CPU execution cap live (1..=100; 0 is raised to 1).
    async fn set_cpu_cap(&mut self, percent: u8) -> Result<(), HvError>;
    /// The loopback address forwarded to the guest API port, once the VM runs.
    fn api_endpoint(&self) -> Option<SocketAddr>;
    /// Events the VM raises by itself. Each call returns a new receiver.
    fn events(&self) -> broadcast::Receiver<VmEvent>;
    /// The host process running the VM, when there is one (for the control panel's CPU chart).
    fn pid(&self) -> Option<u32> {
        None
    }
}
pub mod virtualbox;
