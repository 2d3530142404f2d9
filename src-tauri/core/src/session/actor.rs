//! The session actor: one task per session owns its VM and its record. Commands arrive on a channel;
//! control actions set a target state and the actor walks the route step by step, reporting progress,
//! while it keeps answering `get`/`set`/`sync` and accepting new targets between steps.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::sync::{broadcast, mpsc, watch};

use super::image_port::{ImageHold, ImageRequest, ImageSource, ProgressFn};
use super::in_flight::InFlightToken;
use super::macros::expand_user_data;
use super::outbox::Outbox;
use super::params::{api_url, SETTABLE};
use super::record::{SessionRecord, VmRecord};
use super::route::{plan, retry_delay, Step, Target};
use super::secret::SecretHash;
use super::view::{ViewPublisher, ViewReader};
use crate::events::{EventFeed, EventKind};
use crate::hypervisor::{BootMedium, HvError, Hypervisor, Vm, VmEvent, VmSpec, VmState};
use crate::idle::{IdleAction, IdlePolicy};
use crate::protocol::{ErrorCode, Outgoing, SessionState, HVF_DEPLOYMENT_HDD, HVF_SYSTEM_64BIT};
use crate::store::DataDir;

/// What a session actor needs from the outside.
#[derive(Clone)]
pub struct SessionContext {
    pub hypervisor: Arc<dyn Hypervisor>,
    pub images: Arc<dyn ImageSource>,
    pub data_dir: DataDir,
    /// How long `stop` waits for the guest to power off after the ACPI button before a hard stop.
    pub shutdown_deadline: Duration,
    /// Interval of the API-port probe.
    pub probe_tick: Duration,
    /// The daemon-wide event feed the session reports to.
    pub events: EventFeed,
}

/// A connection-bound view of a session: events for it carry `wire_id` and go to `outbox`.
#[derive(Clone, Debug)]
pub struct Subscriber {
    pub wire_id: u32,
    pub outbox: Outbox,
}

/// Where the reply to one action goes.
#[derive(Clone, Debug)]
pub struct Reply {
    pub request_id: String,
    /// The session id the action addressed (its `stateVariables` carry it).
    pub wire_id: u32,
    pub outbox: Outbox,
    /// Counts the command as queued on its connection until it is answered (see `InFlight`).
    pub in_flight: Option<InFlightToken>,
}

/// A control action (§2.5.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// `start` with its start values (the `userData` macro values).
    Start(BTreeMap<String, String>),
    Stop,
    Pause,
    Resume,
    Hibernate,
    Reset,
    Close,
}

impl Control {
    fn target(&self) -> Target {
        match self {
            Control::Start(_) | Control::Resume => Target::Running,
            Control::Stop => Target::PowerOff,
            Control::Pause => Target::Paused,
            Control::Hibernate => Target::Saved,
            Control::Reset => Target::Reset,
            Control::Close => Target::Missing,
        }
    }

    fn verb(&self) -> &'static str {
        match self {
            Control::Start(_) => "start",
            Control::Stop => "stop",
            Control::Pause => "pause",
            Control::Resume => "resume",
            Control::Hibernate => "hibernate",
            Control::Reset => "reset",
            Control::Close => "close",
        }
    }
}

/// A message to a session actor.
#[derive(Debug)]
pub enum Command {
    /// Bind a connection's session id: it receives `stateVariables` and `stateChanged` at once, then all
    /// session events.
    Subscribe(Subscriber),
    /// The connection went away or re-requested: stop sending to this session id.
    Unsubscribe {
        wire_id: u32,
    },
    Control {
        action: Control,
        reply: Reply,
    },
    Get {
        key: String,
        reply: Reply,
    },
    Set {
        key: String,
        value: String,
        reply: Reply,
    },
    SetProperty {
        key: String,
        value: String,
        reply: Reply,
    },
    Sync {
        reply: Reply,
    },
    /// A snapshot of the session for in-process callers (tray panel, idle policy).
    Inspect(tokio::sync::oneshot::Sender<SessionSnapshot>),
    /// An action of the idle controller. Unlike a page's [`Command::Control`] it never marks the session
    /// as held by hand, and it is refused (answered at once, before the VM acts) when the session is busy,
    /// not under idle control, held by hand, or not in the state the action starts from.
    Idle {
        action: IdleAction,
        answer: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// The user's own idle policy for this session (control panel), or `None` to clear it. While set it
    /// wins over the page's `daemon*` values; it is persisted with the session. Refused when invalid.
    SetUserPolicy {
        policy: Option<IdlePolicy>,
        answer: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
}

/// What a session looks like right now.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSnapshot {
    pub state: SessionState,
    pub params: super::params::SessionParams,
    /// The origin that created the session (`CallerOrigin::serialized()`).
    pub origin: String,
    /// Connections currently holding a session id for it.
    pub subscribers: usize,
    /// A transition (create, boot, pause, save, ...) is running: `state` is where it started.
    pub busy: bool,
    /// The user or the page paused, saved or stopped the VM and did not start or resume it since.
    pub held_by_hand: bool,
    /// The CPU cap last applied to the running VM (`None` when not running or not applied since boot).
    pub applied_cap: Option<u8>,
    /// The user's idle policy override (control panel), if any; see [`SessionSnapshot::effective_policy`].
    pub user_policy: Option<IdlePolicy>,
    /// The process id of the running VM, when the backend has one (QEMU).
    pub pid: Option<u32>,
    /// The guest API URL (`apiURL`) once the API port answers.
    pub api_url: Option<String>,
    /// What the VM boots: the `diskURL`, or `cernvm <version> <flavor>`.
    pub image: String,
    /// The local image file the VM was created from, once it exists.
    pub image_path: Option<PathBuf>,
}

impl SessionSnapshot {
    /// The idle policy the idle controller applies: the user's override if set, else the page's.
    pub fn effective_policy(&self) -> IdlePolicy {
        self.user_policy
            .unwrap_or_else(|| self.params.idle_policy())
    }
}

/// The address of a session actor. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SessionHandle {
    tx: mpsc::Sender<Command>,
    name: Arc<str>,
    secret: Arc<SecretHash>,
    view: ViewReader,
}

impl SessionHandle {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `secret` opens this session.
    pub fn secret_matches(&self, secret: &str) -> bool {
        self.secret.matches(secret)
    }

    /// Whether the actor still runs (it retires when closed and released).
    pub fn is_alive(&self) -> bool {
        !self.tx.is_closed()
    }

    /// The value of `key` as `get` shows it, read from the view the actor published, without a round
    /// trip through its mailbox (`""` for unknown keys). `None` while a recovered session re-attaches.
    pub fn get(&self, key: &str) -> Option<String> {
        self.view.get(key)
    }

    /// Asks the actor for a snapshot; `None` when it has retired or does not answer within `wait`.
    pub async fn inspect(&self, wait: Duration) -> Option<SessionSnapshot> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let ask = async {
            self.send(Command::Inspect(tx)).await.ok()?;
            rx.await.ok()
        };
        tokio::time::timeout(wait, ask).await.ok()?
    }

    /// Queues a command without waiting.
    // The error gives the command back so the caller can wait for room in a task; boxing it would cost
    // an allocation per command on the fast path.
    #[allow(clippy::result_large_err)]
    pub fn try_send(&self, command: Command) -> Result<(), mpsc::error::TrySendError<Command>> {
        self.tx.try_send(command)
    }

    /// Sends a command; `Err` gives it back when the actor has retired.
    pub async fn send(&self, command: Command) -> Result<(), Command> {
        self.tx.send(command).await.map_err(|e| e.0)
    }
}

/// Starts the actor of a session created just now (no VM yet). Persists its record first.
pub fn spawn_new(record: SessionRecord, ctx: SessionContext) -> anyhow::Result<SessionHandle> {
    record.save(&ctx.data_dir.sessions())?;
    Ok(spawn(record, ctx, false))
}

/// Starts the actor of a session loaded from disk; it re-attaches to its VM before serving commands.
pub fn spawn_recovered(record: SessionRecord, ctx: SessionContext) -> SessionHandle {
    spawn(record, ctx, true)
}

fn spawn(record: SessionRecord, ctx: SessionContext, recover: bool) -> SessionHandle {
    let (tx, rx) = mpsc::channel(64);
    let (view, view_reader) = super::view::channel(&record.params, !recover);
    let handle = SessionHandle {
        tx,
        name: record.params.name.as_str().into(),
        secret: Arc::new(record.secret.clone()),
        view: view_reader,
    };
    let (probe_target, probe_watch) = watch::channel(None);
    let (probe_tx, probe_rx) = mpsc::channel(4);
    ctx.events.publish(EventKind::SessionOpened {
        session: record.params.name.clone(),
        origin: record.origin.clone(),
        vm: SessionRecord::vm_name(&record.params.name),
    });
    tokio::spawn(super::probe::run(probe_watch, probe_tx, ctx.probe_tick));
    let actor = Actor {
        rx,
        rx_open: true,
        vm: None,
        image_hold: ImageHold::default(),
        vm_events: None,
        probe_target,
        probe_rx,
        core: Core {
            sessions_dir: ctx.data_dir.sessions(),
            state: record.state,
            events: ctx.events.clone(),
            published_state: record.state,
            closed_published: false,
            record,
            subscribers: Vec::new(),
            api_addr: None,
            api_up: false,
            retarget: None,
            cap_dirty: false,
            idle_cap: None,
            applied_cap: None,
            ever_subscribed: false,
            view,
            pid: None,
        },
        ctx,
    };
    tokio::spawn(actor.run(recover));
    handle
}

struct Actor {
    rx: mpsc::Receiver<Command>,
    rx_open: bool,
    ctx: SessionContext,
    vm: Option<Box<dyn Vm>>,
    /// Keeps the VM's boot image in the cache while the VM exists (released by destroy or close).
    image_hold: ImageHold,
    vm_events: Option<broadcast::Receiver<VmEvent>>,
    probe_target: watch::Sender<Option<SocketAddr>>,
    probe_rx: mpsc::Receiver<(SocketAddr, bool)>,
    core: Core,
}

/// Everything of the actor except the VM, so commands can be served while a VM step is in flight.
struct Core {
    record: SessionRecord,
    sessions_dir: PathBuf,
    state: SessionState,
    subscribers: Vec<Subscriber>,
    api_addr: Option<SocketAddr>,
    api_up: bool,
    /// A new target accepted while a transition runs.
    retarget: Option<Target>,
    /// `executionCap` changed and must be applied to the VM.
    cap_dirty: bool,
    /// The cap the idle controller asked for; wins over `executionCap` while the session is controlled
    /// with `daemonMinCap` > 0.
    idle_cap: Option<u8>,
    /// The cap last applied to the running VM.
    applied_cap: Option<u8>,
    ever_subscribed: bool,
    /// The daemon-wide event feed (tray, control panel).
    events: EventFeed,
    /// The state last published to the feed.
    published_state: SessionState,
    /// `SessionClosed` was published (and the session did not come back since).
    closed_published: bool,
    /// What `get` reads; published before any reply or event that follows a change.
    view: ViewPublisher,
    /// The VM's process id as of the last step (for the resource monitor).
    pid: Option<u32>,
}

/// A step that failed for good.
struct StepError {
    message: String,
    code: ErrorCode,
    retryable: bool,
}

fn vm_state(s: VmState) -> SessionState {
    match s {
        VmState::PoweredOff => SessionState::PowerOff,
        VmState::Saved => SessionState::Saved,
        VmState::Paused => SessionState::Paused,
        VmState::Running => SessionState::Running,
    }
}

impl Actor {
    async fn run(mut self, recover: bool) {
        if recover {
            self.reattach().await;
            self.core.publish_state();
            self.core.view.serving();
        }
        let mut target: Option<Target> = None;
        loop {
            if let Some(t) = target.take() {
                target = self.transition(t).await;
                self.apply_cap().await;
                continue;
            }
            if self.core.should_retire() {
                self.core.publish_closed();
                tracing::info!(session = %self.core.record.params.name, "session closed and released; removing its record");
                if let Err(e) =
                    SessionRecord::delete(&self.core.sessions_dir, &self.core.record.params.name)
                {
                    tracing::warn!("cannot delete session record: {e}");
                }
                return;
            }
            tokio::select! {
                cmd = self.rx.recv(), if self.rx_open => match cmd {
                    Some(cmd) => target = self.core.handle(cmd, None),
                    None => self.rx_open = false,
                },
                event = next_vm_event(&mut self.vm_events) => self.on_vm_event(event).await,
                Some((addr, up)) = self.probe_rx.recv() => self.core.on_probe(addr, up),
                else => return,
            }
            self.apply_cap().await;
        }
    }

    /// Finds the VM of a recovered session again; a VM that is gone leaves the session without one.
    async fn reattach(&mut self) {
        let name = self.core.record.params.name.clone();
        let Some(vm_record) = self.core.record.vm.clone() else {
            self.core.set_state(SessionState::Missing);
            return;
        };
        match self
            .ctx
            .hypervisor
            .reattach(&vm_record.spec, &vm_record.handle)
            .await
        {
            Ok(mut vm) => {
                let state = match vm.state().await {
                    Ok(s) => vm_state(s),
                    Err(e) => {
                        tracing::warn!(session = %name, "cannot read the state of a re-attached VM: {e}");
                        SessionState::PowerOff
                    }
                };
                tracing::info!(session = %name, ?state, "re-attached to the session's VM");
                // The session's executionCap is the truth, whatever the stored handle remembered.
                self.core.cap_dirty = true;
                self.vm_events = Some(vm.events());
                self.vm = Some(vm);
                let (BootMedium::Iso(image) | BootMedium::Disk(image)) = &vm_record.spec.medium;
                self.image_hold = self.ctx.images.hold(image);
                self.core.set_state(state);
                self.update_probe();
            }
            Err(e) => {
                tracing::warn!(session = %name, "the session's VM cannot be found again ({e}); it is marked missing");
                self.core.record.vm = None;
                self.core.set_state(SessionState::Missing);
            }
        }
    }

    /// Walks from the current state to `target`. Returns a new target accepted meanwhile.
    async fn transition(&mut self, target: Target) -> Option<Target> {
        let Some(steps) = plan(self.core.state, target) else {
            // The state changed under us since the action was accepted.
            self.refresh_api_addr();
            self.core.emit_state();
            self.after_state_change();
            return self.core.retarget.take();
        };
        let total = steps.len().max(1) as f64;
        self.core
            .broadcast("started", vec![json!("Serving request")]);
        for (i, step) in steps.iter().copied().enumerate() {
            self.core.broadcast(
                "progress",
                vec![json!(step.message()), json!(i as f64 / total)],
            );
            let before = self.core.state;
            let end = end_state(target).unwrap_or(before);
            if let Err(e) = self
                .step_with_retries(step, i as f64 / total, total, end)
                .await
            {
                self.core
                    .broadcast("failed", vec![json!(e.message), json!(e.code.code())]);
                self.core.publish_failure(&e.message);
                self.reread_state().await;
                self.refresh_api_addr();
                self.core.emit_state();
                self.after_state_change();
                return self.core.retarget.take();
            }
            self.core.set_state(step.outcome(before));
            if let Some(next) = self.core.retarget.take() {
                return Some(next);
            }
        }
        // Events raised during our own steps are stale now.
        if let Some(vm) = &self.vm {
            self.vm_events = Some(vm.events());
        }
        let done = format!("Session is {}", self.core.state.js_name());
        self.core
            .broadcast("progress", vec![json!(done), json!(1.0)]);
        self.core.broadcast("completed", vec![json!(done)]);
        self.refresh_api_addr();
        self.core.emit_state();
        // `apiStateChanged [0, url]` follows the stateChanged to a non-running state (§5.10).
        self.after_state_change();
        if target == Target::Missing && self.core.state == SessionState::Missing {
            self.core.publish_closed();
        }
        None
    }

    async fn step_with_retries(
        &mut self,
        step: Step,
        base: f64,
        total: f64,
        end: SessionState,
    ) -> Result<(), StepError> {
        let mut attempt = 0;
        loop {
            match self.step(step, base, total, end).await {
                Ok(()) => return Ok(()),
                Err(e) if e.retryable => {
                    attempt += 1;
                    let Some(delay) = retry_delay(attempt) else {
                        return Err(e);
                    };
                    tracing::warn!(session = %self.core.record.params.name, ?step, attempt, "step failed, retrying: {}", e.message);
                    tokio::time::sleep(delay).await;
                    if let (Some(vm), Some(expected)) = (self.vm.as_mut(), expected_vm_state(step))
                    {
                        if vm.state().await.ok() == Some(expected) {
                            return Ok(());
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs one step while still serving commands.
    async fn step(
        &mut self,
        step: Step,
        base: f64,
        total: f64,
        end: SessionState,
    ) -> Result<(), StepError> {
        let Actor {
            rx,
            rx_open,
            ctx,
            vm,
            image_hold,
            core,
            ..
        } = self;
        let create = if step == Step::Create {
            Some(core.create_inputs(ctx, base, total))
        } else {
            None
        };
        let outcome = {
            let fut = execute(step, vm, image_hold, ctx, create);
            tokio::pin!(fut);
            loop {
                let effective = core.retarget.and_then(end_state).unwrap_or(end);
                tokio::select! {
                    result = &mut fut => break result,
                    cmd = rx.recv(), if *rx_open => match cmd {
                        Some(cmd) => {
                            if let Some(t) = core.handle(cmd, Some(effective)) {
                                core.retarget = Some(t);
                            }
                        }
                        None => *rx_open = false,
                    },
                }
            }
        };
        match outcome {
            Ok(Some((created, resolved_version))) => {
                core.record.vm = Some(created);
                if let Some(version) = resolved_version {
                    // `latest` becomes the version actually booted (shared/spec/protocol.md §2.8).
                    core.record.params.cernvm_version = version;
                }
                core.persist();
                Ok(())
            }
            Ok(None) => {
                if step == Step::Destroy {
                    core.record.vm = None;
                    core.persist();
                } else if let (Some(record), Some(vm)) = (core.record.vm.as_mut(), vm.as_ref()) {
                    // The handle changes with the VM's life (a new process after boot or restore):
                    // keep the stored one current, so a restarted daemon finds the VM as it is now.
                    let handle = vm.handle();
                    if record.handle != handle {
                        record.handle = handle;
                        core.persist();
                    }
                }
                if step == Step::Boot {
                    // A new VM process: give it the session's cap.
                    core.cap_dirty = true;
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn reread_state(&mut self) {
        let state = match self.vm.as_mut() {
            None => SessionState::Missing,
            Some(vm) => match vm.state().await {
                Ok(s) => vm_state(s),
                Err(e) => {
                    tracing::warn!("cannot re-read the VM state: {e}");
                    self.core.state
                }
            },
        };
        self.core.set_state(state);
    }

    /// The forwarded API address of a running VM, known before `stateVariables` announce the state,
    /// so pages see the real `apiURL` with `stateChanged [5]` (the port changes with every boot).
    fn refresh_api_addr(&mut self) {
        if let Some(vm) = &self.vm {
            if self.core.state == SessionState::Running {
                if let Some(addr) = vm.api_endpoint() {
                    self.core.set_api_addr(addr);
                }
            }
        }
    }

    /// Starts/stops the API probe and reports the API down when the VM stopped running.
    fn after_state_change(&mut self) {
        self.refresh_api_addr();
        if self.core.state != SessionState::Running && self.core.api_up {
            self.core.api_up = false;
            let url = self.core.api_event_url();
            self.core
                .broadcast("apiStateChanged", vec![json!(0), json!(url)]);
        }
        self.update_probe();
    }

    fn update_probe(&mut self) {
        let want = match (&self.vm, self.core.state) {
            (Some(vm), SessionState::Running) => vm.api_endpoint(),
            _ => None,
        };
        if let Some(addr) = want {
            self.core.set_api_addr(addr);
        }
        self.probe_target.send_if_modified(|cur| {
            let changed = *cur != want;
            *cur = want;
            changed
        });
    }

    async fn on_vm_event(&mut self, event: Option<VmEvent>) {
        let Some(event) = event else {
            // The VM's event stream ended or lagged: re-read the state.
            self.vm_events = self.vm.as_ref().map(|vm| vm.events());
            self.check_external_change().await;
            return;
        };
        match event {
            VmEvent::StateChanged(_) => self.check_external_change().await,
            VmEvent::Rebooted => {
                tracing::info!(session = %self.core.record.params.name, "the guest rebooted")
            }
            VmEvent::Failure(message) => {
                tracing::warn!(session = %self.core.record.params.name, "VM failure: {message}");
                self.core.broadcast(
                    "failed",
                    vec![json!(message), json!(ErrorCode::ExternalError.code())],
                );
                self.core.publish_failure(&message);
                self.check_external_change().await;
            }
        }
    }

    async fn check_external_change(&mut self) {
        let before = self.core.state;
        self.reread_state().await;
        if self.core.state != before {
            self.refresh_api_addr();
            self.core.emit_state();
            self.after_state_change();
        }
    }

    /// Applies `executionCap` after it changed, or the idle controller's cap when it differs from the one
    /// the VM runs at (e.g. after a boot).
    async fn apply_cap(&mut self) {
        let running = matches!(
            self.core.state,
            SessionState::Running | SessionState::Paused
        );
        if !running {
            self.core.applied_cap = None;
        }
        self.core.pid = self.vm.as_ref().and_then(|vm| vm.pid());
        let idle_cap = self.core.active_idle_cap();
        let idle_stale = idle_cap.is_some() && self.core.applied_cap != idle_cap;
        if !std::mem::take(&mut self.core.cap_dirty) && !idle_stale {
            return;
        }
        let cap = idle_cap
            .unwrap_or(self.core.record.params.execution_cap)
            .max(1);
        if let (Some(vm), true) = (self.vm.as_mut(), running) {
            match vm.set_cpu_cap(cap).await {
                Ok(()) => {
                    if self.core.applied_cap != Some(cap) {
                        self.core.events.publish(EventKind::CapApplied {
                            session: self.core.record.params.name.clone(),
                            cap,
                        });
                    }
                    self.core.applied_cap = Some(cap);
                }
                Err(e) => {
                    self.core.applied_cap = None;
                    tracing::warn!(session = %self.core.record.params.name, "cannot apply the CPU cap {cap}: {e}");
                }
            }
        }
    }
}

/// What the VM's state is after a step that succeeded (for retry short-cuts).
fn expected_vm_state(step: Step) -> Option<VmState> {
    match step {
        Step::Boot | Step::Resume => Some(VmState::Running),
        Step::Pause => Some(VmState::Paused),
        Step::Save => Some(VmState::Saved),
        Step::Shutdown | Step::PowerOff => Some(VmState::PoweredOff),
        Step::Create | Step::Destroy | Step::Reset => None,
    }
}

fn end_state(target: Target) -> Option<SessionState> {
    Some(match target {
        Target::Running => SessionState::Running,
        Target::PowerOff => SessionState::PowerOff,
        Target::Paused => SessionState::Paused,
        Target::Saved => SessionState::Saved,
        Target::Missing => SessionState::Missing,
        Target::Reset => return None,
    })
}

async fn next_vm_event(events: &mut Option<broadcast::Receiver<VmEvent>>) -> Option<VmEvent> {
    match events {
        None => std::future::pending().await,
        Some(rx) => match rx.recv().await {
            Ok(e) => Some(e),
            Err(broadcast::error::RecvError::Lagged(_)) => None,
            Err(broadcast::error::RecvError::Closed) => {
                *events = None;
                None
            }
        },
    }
}

/// What creating a VM needs, computed before the step borrows the VM.
struct CreateInputs {
    image: ImageRequest,
    spec: VmSpec,
    progress: ProgressFn,
}

/// Runs one backend step. `Ok(Some(..))` when a VM was created (with the image's resolved version).
/// The image's hold is taken with the VM's creation and released with its destruction.
async fn execute(
    step: Step,
    vm: &mut Option<Box<dyn Vm>>,
    image_hold: &mut ImageHold,
    ctx: &SessionContext,
    create: Option<CreateInputs>,
) -> Result<Option<(VmRecord, Option<String>)>, StepError> {
    if step == Step::Create {
        let Some(inputs) = create else {
            return Err(hard("Unable to create the VM", ErrorCode::CreateError));
        };
        let image = ctx
            .images
            .fetch(&inputs.image, inputs.progress)
            .await
            .map_err(|e| {
                tracing::warn!("image fetch failed: {e}");
                StepError {
                    message: format!("Unable to download the VM image: {}", e.message),
                    code: e.code,
                    retryable: false,
                }
            })?;
        let mut spec = inputs.spec;
        spec.medium = match inputs.image {
            ImageRequest::Disk { .. } => BootMedium::Disk(image.path),
            ImageRequest::CernVm { .. } => BootMedium::Iso(image.path),
        };
        let created = ctx
            .hypervisor
            .create(&spec)
            .await
            .map_err(|e| hv_error(step, e))?;
        let handle = created.handle();
        *vm = Some(created);
        *image_hold = image.hold;
        return Ok(Some((VmRecord { spec, handle }, image.resolved_version)));
    }
    if step == Step::Destroy {
        if let Some(v) = vm.take() {
            if let Err(e) = v.destroy().await {
                return Err(hv_error(step, e));
            }
        }
        *image_hold = ImageHold::default();
        return Ok(None);
    }
    let Some(v) = vm.as_mut() else {
        return Err(hard(
            "The session has no virtual machine",
            ErrorCode::InvalidState,
        ));
    };
    let result = match step {
        Step::Boot => v.boot().await,
        Step::Resume => v.resume().await,
        Step::Pause => v.pause().await,
        Step::Save => v.save().await,
        Step::Shutdown => v.shutdown(ctx.shutdown_deadline).await,
        Step::PowerOff => v.power_off().await,
        Step::Reset => v.reset().await,
        Step::Create | Step::Destroy => Ok(()),
    };
    result.map(|()| None).map_err(|e| hv_error(step, e))
}

/// Whether a page's control action holds the VM (pause, hibernate, stop), releases it (start, resume),
/// or leaves the hold as it is (reset, close).
fn action_hold(action: &Control) -> Option<bool> {
    match action {
        Control::Pause | Control::Hibernate | Control::Stop => Some(true),
        Control::Start(_) | Control::Resume => Some(false),
        Control::Reset | Control::Close => None,
    }
}

fn hard(message: &str, code: ErrorCode) -> StepError {
    StepError {
        message: message.to_string(),
        code,
        retryable: false,
    }
}

fn hv_error(step: Step, e: HvError) -> StepError {
    let step_code = match step {
        Step::Create => ErrorCode::CreateError,
        Step::Destroy => ErrorCode::DeleteError,
        _ => ErrorCode::ControlError,
    };
    let (code, retryable) = match &e {
        HvError::Unavailable(_) => (ErrorCode::NotSupported, false),
        HvError::InvalidState { .. } => (ErrorCode::InvalidState, false),
        HvError::InvalidSpec(_) => (ErrorCode::UsageError, false),
        HvError::Timeout { .. } | HvError::Failed { .. } | HvError::Io { .. } => (step_code, true),
    };
    StepError {
        message: format!("{} failed: {e}", step.message()),
        code,
        retryable,
    }
}

impl Core {
    /// The idle controller's cap, while the session is still controlled in the cap mode.
    fn active_idle_cap(&self) -> Option<u8> {
        let p = self.effective_policy();
        self.idle_cap.filter(|_| p.controlled && p.min_cap > 0)
    }

    /// Serves an action of the idle controller (see [`Command::Idle`]).
    fn idle(&mut self, action: IdleAction, busy: bool) -> Result<Option<Target>, String> {
        use SessionState as S;
        if busy {
            return Err("the session is busy with another action".into());
        }
        if !self.effective_policy().controlled {
            return Err("the session is not under idle control".into());
        }
        let by_hand = self.record.held_by_hand;
        let state = self.state;
        let refuse = || {
            Err(format!(
                "not possible while the session is {}",
                state.js_name()
            ))
        };
        let target = match action {
            IdleAction::SetCap(cap) => {
                if !(1..=100).contains(&cap) {
                    return Err(format!("cap {cap} is outside 1..=100"));
                }
                self.idle_cap = Some(cap);
                self.cap_dirty = true;
                return Ok(None);
            }
            IdleAction::Pause if state == S::Running => Target::Paused,
            IdleAction::Save if matches!(state, S::Running | S::Paused) => Target::Saved,
            IdleAction::Resume | IdleAction::Restore | IdleAction::Start { .. } if by_hand => {
                return Err("the user or the page paused or stopped it by hand".into())
            }
            IdleAction::Resume if state == S::Paused => Target::Running,
            IdleAction::Restore if state == S::Saved => Target::Running,
            IdleAction::Start { cap } if state == S::PowerOff => {
                if let Some(cap) = cap.filter(|c| (1..=100).contains(c)) {
                    self.idle_cap = Some(cap);
                }
                Target::Running
            }
            _ => return refuse(),
        };
        tracing::info!(session = %self.record.params.name, ?action, "idle control");
        Ok(Some(target))
    }

    /// The idle policy changed (the caller wakes the controller, which asks for its cap afresh). Until
    /// it does, the cap it asked for last stays, moved into the new policy's range, so the VM does not
    /// drop to `executionCap` in between; a policy that no longer sets caps gives `executionCap` back.
    fn idle_policy_changed(&mut self) {
        let p = self.effective_policy();
        self.idle_cap = self
            .idle_cap
            .filter(|_| p.controlled && p.min_cap > 0 && p.min_cap <= p.max_cap)
            .map(|cap| cap.clamp(p.min_cap, p.max_cap));
        self.cap_dirty = true;
    }

    /// The user's override if set, else the page's `daemon*` values.
    fn effective_policy(&self) -> IdlePolicy {
        self.record
            .user_policy
            .unwrap_or_else(|| self.record.params.idle_policy())
    }

    /// Serves [`Command::SetUserPolicy`].
    fn set_user_policy(&mut self, policy: Option<IdlePolicy>) -> Result<(), String> {
        if let Some(p) = policy {
            IdlePolicy::validate(
                i64::from(p.controlled),
                i64::from(p.min_cap),
                i64::from(p.max_cap),
                i64::from(p.flags),
            )
            .map_err(|e| e.to_string())?;
        }
        if self.record.user_policy == policy {
            return Ok(());
        }
        let before = self.effective_policy();
        self.record.user_policy = policy;
        if self.effective_policy() != before {
            self.idle_policy_changed();
        }
        tracing::info!(session = %self.record.params.name, ?policy, "idle policy override set by the user");
        self.persist();
        Ok(())
    }

    fn should_retire(&self) -> bool {
        self.ever_subscribed && self.subscribers.is_empty() && self.state == SessionState::Missing
    }

    fn set_state(&mut self, state: SessionState) {
        if self.state != state || self.record.state != state {
            self.state = state;
            self.record.state = state;
            self.persist();
        }
    }

    fn persist(&self) {
        self.publish_view();
        if let Err(e) = self.record.save(&self.sessions_dir) {
            tracing::error!(session = %self.record.params.name, "cannot save the session record: {e:#}");
        }
    }

    /// Publishes what `get` reads (a no-op when nothing changed).
    fn publish_view(&self) {
        self.view.publish(&self.record.params, self.api_port());
    }

    /// Sets the forwarded API address and publishes it.
    fn set_api_addr(&mut self, addr: SocketAddr) {
        self.api_addr = Some(addr);
        self.publish_view();
    }

    fn api_port(&self) -> Option<u16> {
        self.api_addr.map(|a| a.port())
    }

    fn api_event_url(&self) -> String {
        match self.api_addr {
            Some(a) => format!("http://{}:{}", a.ip(), a.port()),
            None => api_url(None),
        }
    }

    fn state_variables(&self) -> Vec<Value> {
        let props = if self.record.properties.is_empty() {
            Value::Null
        } else {
            Value::Object(
                self.record
                    .properties
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect::<Map<_, _>>(),
            )
        };
        vec![self.record.params.config_object(self.api_port()), props]
    }

    /// Sends an event to every subscriber, with its own session id.
    fn broadcast(&self, name: &'static str, data: Vec<Value>) {
        for s in &self.subscribers {
            s.outbox
                .send(Outgoing::event(name, s.wire_id.to_string(), data.clone()));
        }
    }

    /// `stateVariables` then `stateChanged` to every subscriber; the new state to the event feed.
    fn emit_state(&mut self) {
        self.broadcast("stateVariables", self.state_variables());
        self.broadcast("stateChanged", vec![json!(self.state.code())]);
        self.publish_state();
    }

    /// Publishes `SessionStateChanged` when the state differs from the one published last.
    fn publish_state(&mut self) {
        if self.state == self.published_state {
            return;
        }
        self.published_state = self.state;
        if self.state != SessionState::Missing {
            self.closed_published = false;
        }
        self.events.publish(EventKind::SessionStateChanged {
            session: self.record.params.name.clone(),
            state: self.state,
        });
    }

    /// Publishes `VmFailed` (an operation failed or the VM reported a failure).
    fn publish_failure(&self, message: &str) {
        self.events.publish(EventKind::VmFailed {
            session: self.record.params.name.clone(),
            message: message.to_string(),
        });
    }

    /// Publishes `SessionClosed` once per close.
    fn publish_closed(&mut self) {
        if std::mem::replace(&mut self.closed_published, true) {
            return;
        }
        self.events.publish(EventKind::SessionClosed {
            session: self.record.params.name.clone(),
        });
    }

    fn send_to(&self, reply: &Reply, name: &'static str, data: Vec<Value>) {
        reply
            .outbox
            .send(Outgoing::event(name, reply.request_id.clone(), data));
    }

    fn state_variables_to(&self, reply: &Reply) {
        reply.outbox.send(Outgoing::event(
            "stateVariables",
            reply.wire_id.to_string(),
            self.state_variables(),
        ));
    }

    fn on_probe(&mut self, addr: SocketAddr, up: bool) {
        if self.state != SessionState::Running || self.api_up == up {
            return;
        }
        self.api_up = up;
        self.set_api_addr(addr);
        let url = self.api_event_url();
        self.broadcast("apiStateChanged", vec![json!(u8::from(up)), json!(url)]);
    }

    fn create_inputs(&self, ctx: &SessionContext, base: f64, total: f64) -> CreateInputs {
        let p = &self.record.params;
        let image = if p.flags & HVF_DEPLOYMENT_HDD != 0 && !p.disk_url.is_empty() {
            ImageRequest::Disk {
                url: p.disk_url.clone(),
                sha256: p.disk_checksum.clone(),
            }
        } else {
            ImageRequest::CernVm {
                version: p.cernvm_version.clone(),
                flavor: p.cernvm_flavor.clone(),
                x86_64: p.flags & HVF_SYSTEM_64BIT != 0,
            }
        };
        let vm_name = SessionRecord::vm_name(&p.name);
        let context = (!p.user_data.is_empty())
            .then(|| expand_user_data(&p.user_data, &self.record.user_values));
        let spec = VmSpec {
            dir: ctx.data_dir.vms().join(&vm_name),
            name: vm_name,
            cpus: p.cpus,
            memory_mb: p.memory,
            disk_mb: p.disk,
            medium: BootMedium::Iso(PathBuf::new()),
            context,
            api_guest_port: Some(p.api_port),
            execution_cap: p.execution_cap.max(1),
            flags: p.flags,
        };
        let subscribers = self.subscribers.clone();
        let progress: ProgressFn = Arc::new(move |fraction: f64, message: &str| {
            let value = base + fraction.clamp(0.0, 1.0) / total;
            for s in &subscribers {
                s.outbox.send(Outgoing::event(
                    "progress",
                    s.wire_id.to_string(),
                    vec![json!(message), json!(value)],
                ));
            }
        });
        CreateInputs {
            image,
            spec,
            progress,
        }
    }

    /// Serves one command. Returns a new target when a control action was accepted. `effective` is the
    /// state the session will be in when the running transition ends (`None` when idle).
    fn handle(&mut self, cmd: Command, effective: Option<SessionState>) -> Option<Target> {
        match cmd {
            Command::Subscribe(sub) => {
                self.ever_subscribed = true;
                self.subscribers.retain(|s| s.wire_id != sub.wire_id);
                sub.outbox.send(Outgoing::event(
                    "stateVariables",
                    sub.wire_id.to_string(),
                    self.state_variables(),
                ));
                sub.outbox.send(Outgoing::event(
                    "stateChanged",
                    sub.wire_id.to_string(),
                    vec![json!(self.state.code())],
                ));
                if self.api_up {
                    sub.outbox.send(Outgoing::event(
                        "apiStateChanged",
                        sub.wire_id.to_string(),
                        vec![json!(1), json!(self.api_event_url())],
                    ));
                }
                self.subscribers.push(sub);
                None
            }
            Command::Unsubscribe { wire_id } => {
                self.subscribers.retain(|s| s.wire_id != wire_id);
                None
            }
            Command::Control { action, reply } => {
                self.control(action, &reply, effective.unwrap_or(self.state))
            }
            Command::Get { key, reply } => {
                let value = self.record.params.get(&key, self.api_port());
                self.send_to(&reply, "succeed", vec![json!(value)]);
                None
            }
            Command::Set { key, value, reply } => {
                if !SETTABLE.contains(&key.as_str()) {
                    // The original acknowledges keys it ignores (diskURL, diskChecksum, ...).
                    self.send_to(&reply, "succeed", vec![json!(1)]);
                    return None;
                }
                match self.record.params.apply(&key, &value) {
                    Ok(()) => {
                        if key == "executionCap" {
                            self.cap_dirty = true;
                        }
                        if key.starts_with("daemon") && self.record.user_policy.is_none() {
                            self.idle_policy_changed();
                        }
                        self.persist();
                        self.send_to(&reply, "succeed", vec![json!(1)]);
                    }
                    Err(e) => self.send_to(
                        &reply,
                        "failed",
                        vec![
                            json!(format!("Unable to set {key}: {}", e.reason)),
                            json!(ErrorCode::UsageError.code()),
                        ],
                    ),
                }
                None
            }
            Command::SetProperty { key, value, reply } => {
                if let Err(reason) = self.set_property(&key, &value) {
                    self.send_to(
                        &reply,
                        "failed",
                        vec![
                            json!(format!("Unable to set property: {reason}")),
                            json!(ErrorCode::UsageError.code()),
                        ],
                    );
                } else {
                    self.send_to(&reply, "succeed", vec![json!(1)]);
                }
                None
            }
            Command::Sync { reply } => {
                self.state_variables_to(&reply);
                None
            }
            Command::Inspect(answer) => {
                let _ = answer.send(SessionSnapshot {
                    state: self.state,
                    params: self.record.params.clone(),
                    origin: self.record.origin.clone(),
                    subscribers: self.subscribers.len(),
                    busy: effective.is_some(),
                    held_by_hand: self.record.held_by_hand,
                    applied_cap: self.applied_cap,
                    user_policy: self.record.user_policy,
                    pid: self.pid,
                    api_url: self.api_up.then(|| self.api_event_url()),
                    image: image_label(&self.record.params),
                    image_path: self.record.vm.as_ref().map(|v| match &v.spec.medium {
                        BootMedium::Iso(p) | BootMedium::Disk(p) => p.clone(),
                    }),
                });
                None
            }
            Command::SetUserPolicy { policy, answer } => {
                let _ = answer.send(self.set_user_policy(policy));
                None
            }
            Command::Idle { action, answer } => {
                let result = self.idle(action, effective.is_some());
                let target = result.as_ref().ok().copied().flatten();
                let _ = answer.send(result.map(|_| ()));
                target
            }
        }
    }

    fn set_property(&mut self, key: &str, value: &str) -> Result<(), String> {
        use super::params::{MAX_EXTRA_KEYS, MAX_KEY, MAX_VALUE};
        if key.is_empty() || key.len() > MAX_KEY || value.len() > MAX_VALUE {
            return Err(format!(
                "the key must have 1 to {MAX_KEY} bytes and the value at most {MAX_VALUE}"
            ));
        }
        if !self.record.properties.contains_key(key)
            && self.record.properties.len() >= MAX_EXTRA_KEYS
        {
            return Err(format!("at most {MAX_EXTRA_KEYS} properties"));
        }
        if self.record.params.can_override(key) {
            self.record
                .params
                .apply(key, value)
                .map_err(|e| e.to_string())?;
            if key == "executionCap" {
                self.cap_dirty = true;
            }
        }
        self.record
            .properties
            .insert(key.to_string(), value.to_string());
        self.persist();
        Ok(())
    }

    fn control(&mut self, action: Control, reply: &Reply, from: SessionState) -> Option<Target> {
        let verb = action.verb();
        let target = action.target();
        if plan(from, target).is_none() {
            self.send_to(
                reply,
                "failed",
                vec![
                    json!(format!("Unable to {verb} session")),
                    json!(ErrorCode::InvalidState.code()),
                ],
            );
            self.state_variables_to(reply);
            return None;
        }
        if let Control::Start(values) = &action {
            let values = values.clone();
            let mut params = self.record.params.clone();
            for (key, value) in &values {
                if params.can_override(key) {
                    if let Err(e) = params.apply(key, value) {
                        self.send_to(
                            reply,
                            "failed",
                            vec![
                                json!(format!("Unable to start session: {e}")),
                                json!(ErrorCode::UsageError.code()),
                            ],
                        );
                        self.state_variables_to(reply);
                        return None;
                    }
                }
            }
            self.record.params = params;
            self.record.user_values = values;
        }
        // A page's pause, hibernate or stop holds the VM there: idle control never undoes it. Its start
        // or resume hands the VM back to idle control.
        if let Some(hold) = action_hold(&action) {
            self.record.held_by_hand = hold;
        }
        self.persist();
        self.send_to(
            reply,
            "succeed",
            vec![json!(format!("Session will {verb} promptly"))],
        );
        self.state_variables_to(reply);
        Some(target)
    }
}

/// What a session boots, in words: its `diskURL`, or the µCernVM release it asks for.
fn image_label(p: &super::params::SessionParams) -> String {
    if p.disk_url.is_empty() {
        format!("cernvm {} {}", p.cernvm_version, p.cernvm_flavor)
    } else {
        p.disk_url.clone()
    }
}
