//! One VirtualBox VM behind the `Vm` trait: every operation is a VBoxManage run through the
//! [`Runner`]; the state is re-read before acting so a wrong-state request gets a clear error instead
//! of a VBoxManage failure.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::command::{self, clamp_cap};
use super::parse::{MachineInfo, Observed};
use super::probe::{self, Shared};
use super::runner::Runner;
use crate::hypervisor::{HvError, Vm, VmEvent, VmHandle, VmState};

/// Backend name in [`VmHandle::backend`].
pub const BACKEND: &str = "virtualbox";

/// What is persisted in [`VmHandle::data`] to find the VM again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandleData {
    pub uuid: String,
    pub name: String,
    pub flags: u32,
    pub api_host_port: Option<u16>,
    pub rdp_port: Option<u16>,
    /// Files we made for this VM outside VirtualBox's own folder (context medium, scratch disk).
    pub own_files: Vec<PathBuf>,
    /// The VM's folder (`<basefolder>/<name>`), removed on destroy if VirtualBox left it behind.
    pub vm_folder: PathBuf,
}

impl HandleData {
    pub fn to_handle(&self) -> VmHandle {
        VmHandle {
            backend: BACKEND.into(),
            data: serde_json::to_value(self).expect("plain data serialises"),
        }
    }
    pub fn from_handle(handle: &VmHandle) -> Result<Self, HvError> {
        if handle.backend != BACKEND {
            return Err(HvError::InvalidSpec(format!(
                "handle of backend {:?}, not {BACKEND}",
                handle.backend
            )));
        }
        let data: Self = serde_json::from_value(handle.data.clone())
            .map_err(|e| HvError::InvalidSpec(format!("bad VirtualBox VM handle: {e}")))?;
        if !command::valid_uuid(&data.uuid) {
            return Err(HvError::InvalidSpec(format!(
                "bad VirtualBox VM UUID {:?}",
                data.uuid
            )));
        }
        Ok(data)
    }
}

/// A VirtualBox VM.
pub struct VboxVm {
    runner: Runner,
    data: HandleData,
    shared: Arc<Shared>,
    events: broadcast::Sender<VmEvent>,
    poller: tokio::task::JoinHandle<()>,
    /// A cap set while the VM was saved (VirtualBox refuses `modifyvm` then); applied after boot.
    pending_cap: Option<u8>,
    /// How often `shutdown` re-reads the state while waiting for the guest.
    pub shutdown_poll: Duration,
}

impl Drop for VboxVm {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

impl VboxVm {
    pub(super) fn new(runner: Runner, data: HandleData, state: VmState, poll: Duration) -> Self {
        let shared = Shared::new(state);
        let (events, _) = broadcast::channel(32);
        let poller = probe::spawn(
            runner.clone(),
            data.uuid.clone(),
            shared.clone(),
            events.clone(),
            poll,
        );
        Self {
            runner,
            data,
            shared,
            events,
            poller,
            pending_cap: None,
            shutdown_poll: Duration::from_millis(250),
        }
    }

    pub fn uuid(&self) -> &str {
        &self.data.uuid
    }

    /// The full `showvminfo --machinereadable` of this VM.
    pub async fn info(&self) -> Result<MachineInfo, HvError> {
        let out = self
            .runner
            .check("showvminfo", &command::showvminfo(&self.data.uuid))
            .await?;
        Ok(MachineInfo::parse(&out.stdout))
    }

    /// Reads the state, waiting out transitional states (starting, saving, ...) for up to 30 s.
    async fn settled_state(&self) -> Result<VmState, HvError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.info().await?.observed() {
                Some(Observed::Stable(s)) => {
                    self.shared.set_known(s);
                    return Ok(s);
                }
                Some(Observed::Stuck) => {
                    // A stuck guest still has a VM process; treat it as running so it can be powered off.
                    self.shared.set_known(VmState::Running);
                    return Ok(VmState::Running);
                }
                other => {
                    if Instant::now() >= deadline {
                        return Err(HvError::Failed {
                            action: "read state",
                            detail: format!("VirtualBox reports {other:?} for over 30 s"),
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    /// Runs `controlvm <action>` when the VM is in one of `allowed`, then records `after`.
    async fn control(
        &mut self,
        action: &'static str,
        verb: &str,
        allowed: &[VmState],
        after: VmState,
    ) -> Result<(), HvError> {
        let state = self.settled_state().await?;
        if !allowed.contains(&state) {
            return Err(HvError::InvalidState { action, state });
        }
        self.acting(action, command::controlvm(&self.data.uuid, verb), after)
            .await
    }

    /// Presses the ACPI power button and waits up to `deadline` for the guest to power off.
    async fn press_power_button(&self, deadline: Duration) -> Result<bool, HvError> {
        let uuid = &self.data.uuid;
        self.runner
            .check(
                "acpipowerbutton",
                &command::controlvm(uuid, "acpipowerbutton"),
            )
            .await?;
        let until = Instant::now() + deadline;
        while Instant::now() < until {
            tokio::time::sleep(
                self.shutdown_poll
                    .min(until.saturating_duration_since(Instant::now())),
            )
            .await;
            if let Ok(info) = self.info().await {
                if info.observed() == Some(Observed::Stable(VmState::PoweredOff)) {
                    self.shared.set_known(VmState::PoweredOff);
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Runs one state-changing command with the poller held off, and records the new state.
    async fn acting(
        &mut self,
        action: &'static str,
        argv: Vec<String>,
        after: VmState,
    ) -> Result<(), HvError> {
        self.shared.begin();
        let result = self.runner.check(action, &argv).await;
        if result.is_ok() {
            self.shared.set_known(after);
        }
        self.shared.end();
        result.map(drop)
    }
}

#[async_trait]
impl Vm for VboxVm {
    fn handle(&self) -> VmHandle {
        self.data.to_handle()
    }

    async fn state(&mut self) -> Result<VmState, HvError> {
        self.settled_state().await
    }

    async fn boot(&mut self) -> Result<(), HvError> {
        let state = self.settled_state().await?;
        if !matches!(state, VmState::PoweredOff | VmState::Saved) {
            return Err(HvError::InvalidState {
                action: "boot",
                state,
            });
        }
        let mut runner = self.runner.clone();
        runner.timeout = Duration::from_secs(300); // startvm waits for the VM process to power up
        self.shared.begin();
        let result = runner
            .check(
                "startvm",
                &command::startvm(&self.data.uuid, self.data.flags),
            )
            .await;
        if result.is_ok() {
            self.shared.set_known(VmState::Running);
        }
        self.shared.end();
        result?;
        if let Some(cap) = self.pending_cap.take() {
            self.runner
                .check(
                    "cpuexecutioncap",
                    &command::controlvm_cap(&self.data.uuid, cap),
                )
                .await?;
        }
        Ok(())
    }

    async fn pause(&mut self) -> Result<(), HvError> {
        self.control("pause", "pause", &[VmState::Running], VmState::Paused)
            .await
    }

    async fn resume(&mut self) -> Result<(), HvError> {
        self.control("resume", "resume", &[VmState::Paused], VmState::Running)
            .await
    }

    async fn save(&mut self) -> Result<(), HvError> {
        self.control(
            "savestate",
            "savestate",
            &[VmState::Running, VmState::Paused],
            VmState::Saved,
        )
        .await
    }

    async fn reset(&mut self) -> Result<(), HvError> {
        let state = self.settled_state().await?;
        if !matches!(state, VmState::Running | VmState::Paused) {
            return Err(HvError::InvalidState {
                action: "reset",
                state,
            });
        }
        self.acting("reset", command::controlvm(&self.data.uuid, "reset"), state)
            .await
    }

    async fn shutdown(&mut self, deadline: Duration) -> Result<(), HvError> {
        match self.settled_state().await? {
            VmState::PoweredOff => return Ok(()),
            VmState::Saved => {
                return self
                    .acting(
                        "discardstate",
                        command::discardstate(&self.data.uuid),
                        VmState::PoweredOff,
                    )
                    .await
            }
            VmState::Paused => {
                // A paused guest cannot see the power button.
                self.acting(
                    "resume",
                    command::controlvm(&self.data.uuid, "resume"),
                    VmState::Running,
                )
                .await?;
            }
            VmState::Running => {}
        }
        // The poller stays quiet until the guest is off (its power-off is the session's doing).
        self.shared.begin();
        let stopped = self.press_power_button(deadline).await;
        self.shared.end();
        if stopped? {
            return Ok(());
        }
        tracing::info!(target: "vboxmanage", uuid = %self.data.uuid, ?deadline, "guest ignored the ACPI power button; powering off");
        self.power_off().await
    }

    async fn power_off(&mut self) -> Result<(), HvError> {
        match self.settled_state().await? {
            VmState::PoweredOff => Ok(()),
            VmState::Saved => {
                self.acting(
                    "discardstate",
                    command::discardstate(&self.data.uuid),
                    VmState::PoweredOff,
                )
                .await
            }
            VmState::Running | VmState::Paused => {
                let mut runner = self.runner.clone();
                runner.timeout = Duration::from_secs(120);
                self.shared.begin();
                let r = runner
                    .check("poweroff", &command::controlvm(&self.data.uuid, "poweroff"))
                    .await;
                if r.is_ok() {
                    self.shared.set_known(VmState::PoweredOff);
                }
                self.shared.end();
                r.map(drop)
            }
        }
    }

    async fn destroy(mut self: Box<Self>) -> Result<(), HvError> {
        self.poller.abort();
        self.power_off().await?;
        // The VM's session lock is released a moment after the VM process ends: lock errors are retried.
        self.runner
            .check(
                "unregistervm",
                &command::unregistervm_delete(&self.data.uuid),
            )
            .await?;
        for file in &self.data.own_files {
            match std::fs::remove_file(file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(HvError::Io {
                        action: "delete VM files",
                        source,
                    })
                }
            }
        }
        if self.data.vm_folder.is_dir() {
            std::fs::remove_dir_all(&self.data.vm_folder).map_err(|source| HvError::Io {
                action: "delete VM folder",
                source,
            })?;
        }
        Ok(())
    }

    async fn set_cpu_cap(&mut self, percent: u8) -> Result<(), HvError> {
        let cap = clamp_cap(percent);
        match self.settled_state().await? {
            VmState::Running | VmState::Paused => self
                .runner
                .check(
                    "cpuexecutioncap",
                    &command::controlvm_cap(&self.data.uuid, cap),
                )
                .await
                .map(drop),
            VmState::PoweredOff => self
                .runner
                .check(
                    "cpuexecutioncap",
                    &command::modifyvm_cap(&self.data.uuid, cap),
                )
                .await
                .map(drop),
            VmState::Saved => {
                self.pending_cap = Some(cap);
                Ok(())
            }
        }
    }

    fn api_endpoint(&self) -> Option<SocketAddr> {
        let port = self.data.api_host_port?;
        matches!(self.shared.known(), VmState::Running | VmState::Paused)
            .then(|| SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
    }

    fn events(&self) -> broadcast::Receiver<VmEvent> {
        self.events.subscribe()
    }
}
