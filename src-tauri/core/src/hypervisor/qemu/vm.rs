//! One QEMU VM: its folder, its process (when running) and the `Vm` operations over QMP.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::args::{self, qemu_args, ArgsEnv};
use super::qmp::{QmpClient, QmpError};
use super::shared::Shared;
use super::{disk, duty, monitor, process, usernet, QemuEnv};
use crate::hypervisor::cap::{self, CapMethod, CgroupGroup};
use crate::hypervisor::context::{context_iso, context_sh};
use crate::hypervisor::{BootMedium, HvError, Vm, VmEvent, VmHandle, VmSpec, VmState};

/// How long QEMU may take to open its QMP socket.
const SPAWN_TIMEOUT: Duration = Duration::from_secs(15);
/// How long saving or restoring memory may take.
const MIGRATE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long QEMU may take to exit after `quit`.
const QUIT_TIMEOUT: Duration = Duration::from_secs(10);

/// A running QEMU process of this VM.
struct Proc {
    pid: u32,
    qmp: Arc<QmpClient>,
    api: Option<SocketAddr>,
    monitor: JoinHandle<()>,
    duty: Option<JoinHandle<()>>,
    cgroup: Option<CgroupGroup>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.monitor.abort();
        if let Some(d) = &self.duty {
            d.abort();
        }
    }
}

/// A VM of the QEMU backend.
pub struct QemuVm {
    env: Arc<QemuEnv>,
    spec: VmSpec,
    cap: Arc<AtomicU8>,
    proc: Option<Proc>,
    shared: Arc<Shared>,
}

impl QemuVm {
    /// Creates the VM's folder, disk and context media. An existing disk is kept (its data is the guest's).
    pub(super) async fn create(env: Arc<QemuEnv>, spec: VmSpec) -> Result<Self, HvError> {
        let io = |action| move |source| HvError::Io { action, source };
        create_private_dir(&spec.dir).map_err(io("create the VM folder"))?;
        let disk_path = spec.dir.join(args::DISK);
        if !disk_path.exists() {
            match &spec.medium {
                BootMedium::Disk(base) => {
                    disk::create_overlay(&env.qemu_img, base, &disk_path).await?
                }
                BootMedium::Iso(_) if spec.disk_mb > 0 => {
                    disk::create_blank(&env.qemu_img, &disk_path, spec.disk_mb).await?
                }
                BootMedium::Iso(_) => {}
            }
        }
        write_context(&spec).map_err(io("write the context media"))?;
        let vm = Self::new(env, spec);
        tracing::info!(name = %vm.spec.name, "QEMU VM created");
        Ok(vm)
    }

    /// Finds the VM again from its persisted handle.
    pub(super) async fn reattach(
        env: Arc<QemuEnv>,
        spec: VmSpec,
        handle: &VmHandle,
    ) -> Result<Self, HvError> {
        let mut vm = Self::new(env, spec);
        if let Some(cap) = handle.data["cap"].as_u64() {
            vm.cap
                .store(cap::clamp_cap(cap.min(100) as u8), Ordering::SeqCst);
        }
        let pid_hint = handle.data["pid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok());
        let sock = vm.path(args::QMP_SOCKET);
        let cgroup = cgroup_from_handle(&vm.env.cap, &handle.data);
        match find_running(&sock, pid_hint, &vm.spec.dir).await? {
            Some((pid, qmp)) => {
                let status = query_status(&qmp).await?;
                vm.shared.set_user_paused(status == "paused");
                vm.adopt(pid, qmp, cgroup).await?;
                vm.apply_cap().await?;
                tracing::info!(name = %vm.spec.name, pid, status, "re-attached to running QEMU");
            }
            None => {
                if let Some(g) = cgroup {
                    let _ = g.remove();
                }
                let _ = std::fs::remove_file(&sock);
                tracing::info!(name = %vm.spec.name, "QEMU process gone; VM is not running");
            }
        }
        Ok(vm)
    }

    fn new(env: Arc<QemuEnv>, spec: VmSpec) -> Self {
        let cap = Arc::new(AtomicU8::new(cap::clamp_cap(spec.execution_cap)));
        Self {
            env,
            spec,
            cap,
            proc: None,
            shared: Arc::new(Shared::new()),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.spec.dir.join(name)
    }

    /// The QEMU process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(|p| p.pid)
    }

    /// Runs a QMP command on the running process (for tests and benchmarks of raw QMP).
    pub async fn qmp(&self, command: &str, arguments: Option<Value>) -> Result<Value, HvError> {
        let p = self.running_proc("run a QMP command")?;
        p.qmp
            .execute(command, arguments)
            .await
            .map_err(qmp_err("run a QMP command"))
    }

    fn running_proc(&self, action: &'static str) -> Result<&Proc, HvError> {
        match &self.proc {
            Some(p) if p.qmp.is_open() => Ok(p),
            _ => Err(HvError::InvalidState {
                action,
                state: self.offline_state(),
            }),
        }
    }

    fn offline_state(&self) -> VmState {
        if self.path(args::STATE).exists() {
            VmState::Saved
        } else {
            VmState::PoweredOff
        }
    }

    /// Forgets a process that has exited (removing its cgroup and socket).
    fn reap_if_exited(&mut self) {
        let exited = self
            .proc
            .as_ref()
            .is_some_and(|p| !p.qmp.is_open() || !process::alive(p.pid));
        if exited {
            self.drop_proc();
        }
    }

    fn drop_proc(&mut self) {
        if let Some(p) = self.proc.take() {
            if let Some(g) = &p.cgroup {
                if let Err(e) = g.remove() {
                    tracing::warn!(cgroup = %g.dir.display(), "cannot remove the VM's cgroup: {e}");
                }
            }
        }
        let _ = std::fs::remove_file(self.path(args::QMP_SOCKET));
    }

    /// Wires up a QEMU process: cgroup, event monitor, API address. The caller applies the cap next
    /// (after a restore has finished, so the duty cycle never races the incoming migration).
    async fn adopt(
        &mut self,
        pid: u32,
        qmp: QmpClient,
        cgroup: Option<CgroupGroup>,
    ) -> Result<(), HvError> {
        let qmp = Arc::new(qmp);
        let cgroup = match (cgroup, &self.env.cap) {
            (Some(g), _) => Some(g),
            (None, CapMethod::CgroupV1 { parent }) => {
                Some(new_cgroup(parent, &self.spec.name, pid, false)?)
            }
            (None, CapMethod::CgroupV2 { parent }) => {
                Some(new_cgroup(parent, &self.spec.name, pid, true)?)
            }
            _ => None,
        };
        if let Some(g) = &cgroup {
            g.add(pid).map_err(|source| HvError::Io {
                action: "move QEMU into its cgroup",
                source,
            })?;
        }
        self.shared.set_expect_exit(false);
        let monitor = monitor::start(
            &qmp,
            self.shared.clone(),
            pid,
            self.path(args::STATE),
            cgroup.clone(),
        );
        let api = match self.spec.api_guest_port {
            Some(port) => Some(read_forward(&qmp, port).await?),
            None => None,
        };
        self.proc = Some(Proc {
            pid,
            qmp,
            api,
            monitor,
            duty: None,
            cgroup,
        });
        Ok(())
    }

    /// Applies the current cap to the running process by the host's method.
    async fn apply_cap(&mut self) -> Result<(), HvError> {
        let percent = self.cap.load(Ordering::SeqCst);
        let cpus = self.spec.cpus;
        let Some(p) = self.proc.as_mut() else {
            return Ok(());
        };
        match &self.env.cap {
            CapMethod::CgroupV1 { .. } | CapMethod::CgroupV2 { .. } => {
                if let Some(g) = &p.cgroup {
                    g.set_cap(percent, cpus).map_err(|source| HvError::Io {
                        action: "set the CPU cap",
                        source,
                    })?;
                }
            }
            CapMethod::SystemdScope => cap::set_scope_quota(&self.spec.name, percent, cpus).await?,
            CapMethod::DutyCycle => {
                if percent < 100 && p.duty.is_none() {
                    self.shared.set_duty_active(true);
                    p.duty = Some(duty::start(
                        p.qmp.clone(),
                        self.shared.clone(),
                        self.cap.clone(),
                    ));
                } else if percent >= 100 {
                    if let Some(d) = p.duty.take() {
                        d.abort();
                        let _g = self.shared.run.lock().await;
                        if !self.shared.user_paused() {
                            let _ = p.qmp.execute("cont", None).await;
                        }
                    }
                    self.shared.set_duty_active(false);
                }
            }
        }
        Ok(())
    }

    /// Stops the duty cycle (before save/quit), leaving the VM as the session last set it.
    async fn stop_duty(&mut self) {
        if let Some(p) = self.proc.as_mut() {
            if let Some(d) = p.duty.take() {
                d.abort();
            }
        }
        self.shared.set_duty_active(false);
    }

    /// Spawns QEMU (restoring the saved state if there is one) and waits until it answers on QMP.
    async fn spawn(&mut self) -> Result<(), HvError> {
        let state = self.path(args::STATE);
        let incoming = state.exists();
        let _ = std::fs::remove_file(self.path(args::QMP_SOCKET));
        // an unfinished save (daemon died mid-way) is not a valid state
        let _ = std::fs::remove_file(self.path(args::STATE_PART));
        let has_disk = self.path(args::DISK).exists();
        let argv = qemu_args(
            &self.spec,
            &ArgsEnv {
                accel: &self.env.accel,
                has_disk,
            },
            incoming,
        );
        let (program, argv) = match &self.env.cap {
            CapMethod::SystemdScope => {
                let mut full = cap::scope_prefix(
                    &self.spec.name,
                    self.cap.load(Ordering::SeqCst),
                    self.spec.cpus,
                );
                full.push(self.env.qemu.to_string_lossy().into_owned());
                full.extend(argv);
                (PathBuf::from("systemd-run"), full)
            }
            _ => (self.env.qemu.clone(), argv),
        };
        tracing::info!(name = %self.spec.name, ?program, ?argv, "starting QEMU");
        let log = self.path(args::QEMU_LOG);
        let pid = process::spawn_detached(&program, &argv, &self.spec.dir, &log)?;
        let qmp = match connect_qmp(&self.path(args::QMP_SOCKET), pid).await {
            Ok(q) => q,
            Err(e) => {
                process::kill(pid);
                return Err(with_log(e, &log));
            }
        };
        self.shared.set_user_paused(false);
        if let Err(e) = self.adopt(pid, qmp, None).await {
            self.kill_now().await;
            return Err(e);
        }
        if incoming {
            if let Err(e) = self.restore(&state).await {
                self.kill_now().await;
                return Err(with_log(e, &log));
            }
        }
        if let Err(e) = self.apply_cap().await {
            self.kill_now().await;
            return Err(e);
        }
        Ok(())
    }

    /// Loads the saved state into a process started with `-incoming defer`, then runs it.
    async fn restore(&mut self, state: &Path) -> Result<(), HvError> {
        let uri = self.migration_uri(args::STATE);
        let qmp = self.running_proc("restore")?.qmp.clone();
        qmp.execute("migrate-incoming", Some(json!({ "uri": uri })))
            .await
            .map_err(qmp_err("restore the saved state"))?;
        let deadline = tokio::time::Instant::now() + MIGRATE_TIMEOUT;
        loop {
            let status = query_status(&qmp).await?;
            if status != "inmigrate" {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(HvError::Timeout {
                    action: "restore the saved state",
                    after: MIGRATE_TIMEOUT,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let m = qmp
            .execute("query-migrate", None)
            .await
            .map_err(qmp_err("restore the saved state"))?;
        if m["status"].as_str() != Some("completed") {
            return Err(HvError::Failed {
                action: "restore the saved state",
                detail: format!("migration status {}", m["status"]),
            });
        }
        qmp.execute("cont", None)
            .await
            .map_err(qmp_err("run the restored VM"))?;
        std::fs::remove_file(state).map_err(|source| HvError::Io {
            action: "remove the used saved state",
            source,
        })?;
        Ok(())
    }

    /// `file:` URIs exist since QEMU 8.2; older ones use `exec:cat` (the relative name needs no quoting).
    fn migration_uri(&self, name: &str) -> String {
        if self.env.version >= (8, 2) {
            format!("file:{name}")
        } else {
            format!("exec:cat {name}")
        }
    }

    /// Asks QEMU to quit, waits for the process to go, kills it if it does not.
    async fn quit(&mut self) -> Result<(), HvError> {
        self.stop_duty().await;
        self.shared.set_expect_exit(true);
        if let Some(p) = &self.proc {
            let _ = p.qmp.execute_timeout("quit", None, QUIT_TIMEOUT).await;
            if !process::wait_gone(p.pid, QUIT_TIMEOUT).await {
                tracing::warn!(pid = p.pid, "QEMU did not quit; killing it");
                process::kill(p.pid);
                process::wait_gone(p.pid, QUIT_TIMEOUT).await;
            }
        }
        self.drop_proc();
        Ok(())
    }

    async fn kill_now(&mut self) {
        self.shared.set_expect_exit(true);
        if let Some(p) = &self.proc {
            process::kill(p.pid);
            process::wait_gone(p.pid, QUIT_TIMEOUT).await;
        }
        self.drop_proc();
    }

    async fn current_state(&mut self) -> Result<VmState, HvError> {
        self.reap_if_exited();
        let Some(p) = &self.proc else {
            return Ok(self.offline_state());
        };
        let status = match query_status(&p.qmp).await {
            Ok(s) => s,
            Err(_) if !p.qmp.is_open() || !process::alive(p.pid) => {
                self.drop_proc();
                return Ok(self.offline_state());
            }
            Err(e) => return Err(e),
        };
        Ok(match status.as_str() {
            "running" => VmState::Running,
            "paused" if self.shared.duty_active() && !self.shared.user_paused() => VmState::Running,
            "shutdown" => VmState::PoweredOff,
            // paused, suspended, guest-panicked, io-error, internal-error, inmigrate, postmigrate, ...
            _ => VmState::Paused,
        })
    }

    fn require(
        &self,
        action: &'static str,
        state: VmState,
        allowed: &[VmState],
    ) -> Result<(), HvError> {
        if allowed.contains(&state) {
            Ok(())
        } else {
            Err(HvError::InvalidState { action, state })
        }
    }
}

#[async_trait]
impl Vm for QemuVm {
    fn pid(&self) -> Option<u32> {
        QemuVm::pid(self)
    }

    fn handle(&self) -> VmHandle {
        let p = self.proc.as_ref();
        VmHandle {
            backend: "qemu".into(),
            data: json!({
                "dir": self.spec.dir,
                "qmp": self.path(args::QMP_SOCKET),
                "pid": p.map(|p| p.pid),
                "api_port": p.and_then(|p| p.api).map(|a| a.port()),
                "cgroup": p.and_then(|p| p.cgroup.as_ref()).map(|g| json!({"dir": g.dir, "v2": g.v2})),
                "cap": self.cap.load(Ordering::SeqCst),
            }),
        }
    }

    async fn state(&mut self) -> Result<VmState, HvError> {
        self.current_state().await
    }

    async fn boot(&mut self) -> Result<(), HvError> {
        let s = self.current_state().await?;
        self.require("boot", s, &[VmState::PoweredOff, VmState::Saved])?;
        self.spawn().await
    }

    async fn pause(&mut self) -> Result<(), HvError> {
        let s = self.current_state().await?;
        self.require("pause", s, &[VmState::Running])?;
        let p = self.running_proc("pause")?;
        let _g = self.shared.run.lock().await;
        self.shared.set_user_paused(true);
        p.qmp
            .execute("stop", None)
            .await
            .map_err(qmp_err("pause"))
            .map(drop)
    }

    async fn resume(&mut self) -> Result<(), HvError> {
        let s = self.current_state().await?;
        self.require("resume", s, &[VmState::Paused])?;
        let p = self.running_proc("resume")?;
        let _g = self.shared.run.lock().await;
        self.shared.set_user_paused(false);
        p.qmp
            .execute("cont", None)
            .await
            .map_err(qmp_err("resume"))
            .map(drop)
    }

    async fn save(&mut self) -> Result<(), HvError> {
        let s = self.current_state().await?;
        self.require("save", s, &[VmState::Running, VmState::Paused])?;
        let was_paused = self.shared.user_paused();
        self.stop_duty().await;
        let qmp = self.running_proc("save")?.qmp.clone();
        let part = self.path(args::STATE_PART);
        let _ = std::fs::remove_file(&part);
        {
            let _g = self.shared.run.lock().await;
            self.shared.set_user_paused(true);
            qmp.execute("stop", None).await.map_err(qmp_err("save"))?;
        }
        self.shared.set_expect_exit(true);
        let result = migrate_to_file(&qmp, &self.migration_uri(args::STATE_PART)).await;
        if let Err(e) = result {
            let _ = std::fs::remove_file(&part);
            self.shared.set_expect_exit(false);
            if !was_paused {
                let _g = self.shared.run.lock().await;
                self.shared.set_user_paused(false);
                let _ = qmp.execute("cont", None).await;
            }
            let _ = self.apply_cap().await;
            return Err(e);
        }
        self.quit().await?;
        std::fs::rename(&part, self.path(args::STATE)).map_err(|source| HvError::Io {
            action: "keep the saved state",
            source,
        })?;
        Ok(())
    }

    async fn reset(&mut self) -> Result<(), HvError> {
        let s = self.current_state().await?;
        self.require("reset", s, &[VmState::Running, VmState::Paused])?;
        let p = self.running_proc("reset")?;
        p.qmp
            .execute("system_reset", None)
            .await
            .map_err(qmp_err("reset"))
            .map(drop)
    }

    async fn shutdown(&mut self, deadline: Duration) -> Result<(), HvError> {
        let s = self.current_state().await?;
        if matches!(s, VmState::PoweredOff | VmState::Saved) {
            return Ok(());
        }
        self.stop_duty().await;
        let (pid, qmp) = {
            let p = self.running_proc("shut down")?;
            (p.pid, p.qmp.clone())
        };
        self.shared.set_expect_exit(true);
        {
            // a paused guest cannot see the power button
            let _g = self.shared.run.lock().await;
            self.shared.set_user_paused(false);
            let _ = qmp.execute("cont", None).await;
        }
        qmp.execute("system_powerdown", None)
            .await
            .map_err(qmp_err("press the ACPI power button"))?;
        if process::wait_gone(pid, deadline).await {
            self.drop_proc();
            Ok(())
        } else {
            tracing::info!(
                pid,
                ?deadline,
                "guest ignored the power button; powering off"
            );
            self.quit().await
        }
    }

    async fn power_off(&mut self) -> Result<(), HvError> {
        self.reap_if_exited();
        if self.proc.is_none() {
            return Ok(());
        }
        self.quit().await
    }

    async fn destroy(mut self: Box<Self>) -> Result<(), HvError> {
        self.power_off().await?;
        match std::fs::remove_dir_all(&self.spec.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(HvError::Io {
                action: "delete the VM folder",
                source: e,
            }),
            _ => {
                tracing::info!(name = %self.spec.name, "QEMU VM destroyed");
                Ok(())
            }
        }
    }

    async fn set_cpu_cap(&mut self, percent: u8) -> Result<(), HvError> {
        self.cap.store(cap::clamp_cap(percent), Ordering::SeqCst);
        self.reap_if_exited();
        self.apply_cap().await
    }

    fn api_endpoint(&self) -> Option<SocketAddr> {
        self.proc
            .as_ref()
            .filter(|p| p.qmp.is_open())
            .and_then(|p| p.api)
    }

    fn events(&self) -> broadcast::Receiver<VmEvent> {
        self.shared.events.subscribe()
    }
}

/// Writes `context.txt` (fw_cfg) and `context.iso` (CONTEXT.SH disk), or removes stale ones.
fn write_context(spec: &VmSpec) -> std::io::Result<()> {
    let txt = spec.dir.join(args::CONTEXT_TXT);
    let iso = spec.dir.join(args::CONTEXT_ISO);
    match &spec.context {
        Some(ctx) => {
            crate::store::write_atomic(&txt, ctx.as_bytes()).map_err(std::io::Error::other)?;
            let image = context_iso("CONTEXT.SH", context_sh(ctx).as_bytes());
            crate::store::write_atomic(&iso, &image).map_err(std::io::Error::other)
        }
        None => {
            let _ = std::fs::remove_file(txt);
            let _ = std::fs::remove_file(iso);
            Ok(())
        }
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// The VM's cgroup, named by VM and pid so two daemons (or test runs) never share one.
fn new_cgroup(parent: &Path, name: &str, pid: u32, v2: bool) -> Result<CgroupGroup, HvError> {
    CgroupGroup::create(parent, &format!("cvmwebapi-{name}-{pid}"), v2).map_err(|source| {
        HvError::Io {
            action: "create the VM's cgroup",
            source,
        }
    })
}

fn cgroup_from_handle(method: &CapMethod, data: &Value) -> Option<CgroupGroup> {
    let g = &data["cgroup"];
    let dir = PathBuf::from(g["dir"].as_str()?);
    let parent = match method {
        CapMethod::CgroupV1 { parent } | CapMethod::CgroupV2 { parent } => parent,
        _ => return None,
    };
    // only ever touch groups we own: directly under our parent, named by us
    let named = dir
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("cvmwebapi-"));
    (dir.parent() == Some(parent.as_path()) && named).then(|| CgroupGroup {
        dir,
        v2: g["v2"].as_bool().unwrap_or(false),
    })
}

/// Finds the VM's running QEMU: through its QMP socket (the peer's pid tells which process it is, so a
/// handle saved before the first boot is enough), or by the pid of the handle. `Ok(None)`: not running.
/// A QEMU that runs in the folder but does not answer QMP is an error, never "gone" (no orphans).
async fn find_running(
    sock: &Path,
    pid_hint: Option<u32>,
    dir: &Path,
) -> Result<Option<(u32, QmpClient)>, HvError> {
    let ours = |p: u32| process::alive(p) && process::runs_in(p, dir);
    if sock.exists() {
        if let Ok(Ok(qmp)) =
            tokio::time::timeout(Duration::from_secs(5), QmpClient::connect(sock)).await
        {
            return match qmp.peer_pid().or(pid_hint) {
                Some(pid) if ours(pid) => Ok(Some((pid, qmp))),
                other => Err(HvError::Failed {
                    action: "re-attach",
                    detail: format!(
                        "the QMP socket {} belongs to process {other:?}, not to this VM",
                        sock.display()
                    ),
                }),
            };
        }
    }
    match pid_hint.filter(|&p| ours(p)) {
        Some(pid) => Err(HvError::Failed {
            action: "re-attach",
            detail: format!("QEMU (pid {pid}) runs but its QMP socket does not answer"),
        }),
        None => Ok(None),
    }
}

/// Connects to QEMU's QMP socket, retrying while the process starts up.
async fn connect_qmp(sock: &Path, pid: u32) -> Result<QmpClient, HvError> {
    let deadline = tokio::time::Instant::now() + SPAWN_TIMEOUT;
    loop {
        match QmpClient::connect(sock).await {
            Ok(c) => return Ok(c),
            Err(e) => {
                if !process::alive(pid) {
                    return Err(HvError::Failed {
                        action: "start QEMU",
                        detail: format!("QEMU exited: {e}"),
                    });
                }
                if tokio::time::Instant::now() > deadline {
                    return Err(HvError::Timeout {
                        action: "connect to QMP",
                        after: SPAWN_TIMEOUT,
                    });
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn query_status(qmp: &QmpClient) -> Result<String, HvError> {
    let v = qmp
        .execute("query-status", None)
        .await
        .map_err(qmp_err("read the VM status"))?;
    Ok(v["status"].as_str().unwrap_or("unknown").to_string())
}

async fn read_forward(qmp: &QmpClient, guest_port: u16) -> Result<SocketAddr, HvError> {
    let text = qmp
        .execute(
            "human-monitor-command",
            Some(json!({"command-line": "info usernet"})),
        )
        .await
        .map_err(qmp_err("read the forwarded port"))?;
    usernet::forwarded_addr(text.as_str().unwrap_or(""), guest_port).ok_or_else(|| {
        HvError::Failed {
            action: "read the forwarded port",
            detail: format!("no forward for guest port {guest_port} in {text}"),
        }
    })
}

/// Writes the (stopped) VM's state to a file and waits until the migration completes.
async fn migrate_to_file(qmp: &QmpClient, uri: &str) -> Result<(), HvError> {
    qmp.execute("migrate", Some(json!({ "uri": uri })))
        .await
        .map_err(qmp_err("save the VM state"))?;
    let deadline = tokio::time::Instant::now() + MIGRATE_TIMEOUT;
    loop {
        let m = qmp
            .execute("query-migrate", None)
            .await
            .map_err(qmp_err("save the VM state"))?;
        match m["status"].as_str() {
            Some("completed") => return Ok(()),
            Some("failed") | Some("cancelled") => {
                return Err(HvError::Failed {
                    action: "save the VM state",
                    detail: m["error-desc"]
                        .as_str()
                        .unwrap_or("migration failed")
                        .into(),
                })
            }
            _ => {}
        }
        if tokio::time::Instant::now() > deadline {
            return Err(HvError::Timeout {
                action: "save the VM state",
                after: MIGRATE_TIMEOUT,
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn qmp_err(action: &'static str) -> impl Fn(QmpError) -> HvError {
    move |e| match e {
        QmpError::Timeout(_) => HvError::Timeout {
            action,
            after: super::qmp::COMMAND_TIMEOUT,
        },
        other => HvError::Failed {
            action,
            detail: other.to_string(),
        },
    }
}

/// Adds the end of QEMU's own log to an error, where QEMU says why it failed.
fn with_log(e: HvError, log: &Path) -> HvError {
    let tail = std::fs::read_to_string(log)
        .map(|t| {
            let lines: Vec<&str> = t.lines().rev().take(5).collect();
            lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
        })
        .unwrap_or_default();
    if tail.is_empty() {
        return e;
    }
    match e {
        HvError::Failed { action, detail } => HvError::Failed {
            action,
            detail: format!("{detail}; QEMU said: {tail}"),
        },
        other => HvError::Failed {
            action: "start QEMU",
            detail: format!("{other}; QEMU said: {tail}"),
        },
    }
}
