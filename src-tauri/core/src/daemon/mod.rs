//! The application service: owns the listener, the session registry and the ports to trust, consent,
//! images and the hypervisor; both the tray app and `cvmwebapi serve` start this same `Daemon`.
//!
//! Build one with [`Daemon::bind`] (no ports: `requestSession` fails with -11) or with
//! [`Daemon::builder`] + [`Services`] to inject the real (or test) implementations.

pub mod adapters;
mod connection;
pub mod panel;
pub mod ports;
mod registry;
mod request_session;
mod session_action;
pub mod token;
pub mod wiring;

pub use connection::Connection;
pub use registry::Registry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::config::DaemonConfig;
use crate::hypervisor::Hypervisor;
use crate::protocol::FrameLimits;
use crate::session::{SessionContext, SessionRecord};
use crate::store::DataDir;
use ports::{ConsentGate, ImageSource, VmcpSource};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("another CernVM WebAPI (or another program) already listens on {0}; only one may run")]
    AddressInUse(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0:#}")]
    DataDir(anyhow::Error),
}

/// The implementations behind the daemon's ports. A missing one makes `requestSession` fail with
/// `-11` ("not supported") and a message naming what is missing.
#[derive(Clone, Default)]
pub struct Services {
    pub vmcp: Option<Arc<dyn VmcpSource>>,
    pub consent: Option<Arc<dyn ConsentGate>>,
    pub images: Option<Arc<dyn ImageSource>>,
    pub hypervisor: Option<Arc<dyn Hypervisor>>,
    /// The daemon-wide event feed (tray, control panel, notifications). Services that publish into it
    /// (image cache, consent broker) are given a clone of this one.
    pub events: crate::events::EventFeed,
}

impl Services {
    /// Names of the ports without an implementation.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut m = Vec::new();
        if self.vmcp.is_none() {
            m.push("VMCP verification");
        }
        if self.consent.is_none() {
            m.push("consent");
        }
        if self.images.is_none() {
            m.push("images");
        }
        if self.hypervisor.is_none() {
            m.push("hypervisor");
        }
        m
    }
}

/// Bounds and timings of the WebSocket API (docs/protocol.md "Limits").
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted message (and frame), in bytes.
    pub max_message_bytes: usize,
    /// Deepest accepted JSON nesting.
    pub max_json_depth: usize,
    /// Actions of one connection that may run at the same time.
    pub max_pending_per_connection: usize,
    /// Open WebSocket connections.
    pub max_connections: usize,
    /// Frames queued for one connection before it counts as too slow and is dropped.
    pub outbox_frames: usize,
    /// A connection silent this long gets a ping.
    pub ping_after: Duration,
    /// A connection silent this long (no frame, no pong) is dropped.
    pub idle_timeout: Duration,
    /// How long `stop` waits for an ACPI shutdown before a hard power-off.
    pub shutdown_deadline: Duration,
    /// Interval of the API-port probe of running sessions.
    pub probe_tick: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 256 * 1024,
            max_json_depth: 32,
            max_pending_per_connection: 64,
            max_connections: 4096,
            outbox_frames: 4096,
            ping_after: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            shutdown_deadline: Duration::from_secs(60),
            probe_tick: Duration::from_secs(1),
        }
    }
}

impl Limits {
    pub fn frame_limits(&self) -> FrameLimits {
        FrameLimits {
            max_bytes: self.max_message_bytes,
            max_depth: self.max_json_depth,
        }
    }
}

/// State shared by the listener's tasks.
pub struct DaemonState {
    local_addr: SocketAddr,
    data_dir: DataDir,
    services: Services,
    limits: Limits,
    registry: Registry,
    token: String,
    connections: AtomicUsize,
    next_connection: AtomicU64,
    /// The idle policy of new sessions whose VMCP sets none of the `daemon*` keys (user setting).
    default_idle_policy: std::sync::Mutex<crate::idle::IdlePolicy>,
}

impl std::fmt::Debug for DaemonState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonState")
            .field("local_addr", &self.local_addr)
            .field("data_dir", &self.data_dir)
            .field("missing_services", &self.services.missing())
            .field("limits", &self.limits)
            .field("connections", &self.connections.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl DaemonState {
    /// The address the listener is bound to (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
    pub fn data_dir(&self) -> &DataDir {
        &self.data_dir
    }
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
    pub fn services(&self) -> &Services {
        &self.services
    }
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
    /// The daemon-wide event feed.
    pub fn events(&self) -> &crate::events::EventFeed {
        &self.services.events
    }
    /// The idle policy given to new sessions whose VMCP sets no `daemon*` key (not controlled by default).
    pub fn default_idle_policy(&self) -> crate::idle::IdlePolicy {
        *self
            .default_idle_policy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
    /// Changes the default idle policy of new sessions (settings); existing sessions keep theirs.
    pub fn set_default_idle_policy(&self, policy: crate::idle::IdlePolicy) {
        *self
            .default_idle_policy
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = policy;
    }
    /// The local token non-browser clients must present (also in `<data dir>/api-token`).
    pub fn token(&self) -> &str {
        &self.token
    }
    /// Open WebSocket connections.
    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Takes a connection slot, or `None` when `max_connections` are open.
    pub fn try_open_connection(self: &Arc<Self>) -> Option<ConnectionSlot> {
        let max = self.limits.max_connections;
        self.connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(ConnectionSlot {
            state: self.clone(),
            id: self.next_connection.fetch_add(1, Ordering::Relaxed) + 1,
        })
    }

    /// What a session actor needs, when the hypervisor and images ports are present.
    pub(crate) fn session_context(&self) -> Option<SessionContext> {
        Some(SessionContext {
            hypervisor: self.services.hypervisor.clone()?,
            images: self.services.images.clone()?,
            data_dir: self.data_dir.clone(),
            shutdown_deadline: self.limits.shutdown_deadline,
            probe_tick: self.limits.probe_tick,
            events: self.services.events.clone(),
        })
    }
}

/// One open connection's place in the count; frees it on drop.
pub struct ConnectionSlot {
    state: Arc<DaemonState>,
    id: u64,
}

impl ConnectionSlot {
    /// The connection's id (unique for the daemon's life).
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.state.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Configures a daemon before it binds.
pub struct DaemonBuilder {
    config: DaemonConfig,
    services: Services,
    limits: Limits,
}

impl DaemonBuilder {
    pub fn services(mut self, services: Services) -> Self {
        self.services = services;
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Opens the data dir, writes the local token, binds the listener and recovers stored sessions.
    pub async fn bind(self) -> Result<Daemon, StartError> {
        let config = self.config;
        let data_dir = DataDir::open(&config.data_dir).map_err(StartError::DataDir)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AddrInUse => StartError::AddressInUse(config.listen),
                _ => StartError::Bind {
                    addr: config.listen,
                    source: e,
                },
            })?;
        let local_addr = listener.local_addr().map_err(|e| StartError::Bind {
            addr: config.listen,
            source: e,
        })?;
        let token = token::write_new_token(&data_dir).map_err(StartError::DataDir)?;
        let state = Arc::new(DaemonState {
            local_addr,
            data_dir,
            services: self.services,
            limits: self.limits,
            registry: Registry::default(),
            token,
            connections: AtomicUsize::new(0),
            next_connection: AtomicU64::new(0),
            default_idle_policy: Default::default(),
        });
        recover_sessions(&state);
        Ok(Daemon { listener, state })
    }
}

/// Starts an actor for every stored session (it re-attaches to its VM). Without a hypervisor the
/// records stay on disk untouched.
fn recover_sessions(state: &Arc<DaemonState>) {
    let records = SessionRecord::load_all(&state.data_dir.sessions());
    if records.is_empty() {
        return;
    }
    let Some(ctx) = state.session_context() else {
        tracing::warn!(
            count = records.len(),
            "stored sessions are not resumed: no hypervisor/images backend is configured"
        );
        return;
    };
    for record in records {
        match record {
            Ok(record) => {
                let handle = crate::session::spawn_recovered(record, ctx.clone());
                if state.registry.insert(handle).is_err() {
                    tracing::warn!("two stored sessions have the same name; keeping the first");
                }
            }
            Err(e) => tracing::warn!("skipping an unreadable session record: {e:#}"),
        }
    }
    tracing::info!(
        count = state.registry.session_count(),
        "stored sessions recovered"
    );
}

/// A bound, not yet serving daemon.
pub struct Daemon {
    listener: TcpListener,
    state: Arc<DaemonState>,
}

impl Daemon {
    /// A daemon without ports (`requestSession` fails with -11 until they are wired).
    pub async fn bind(config: &DaemonConfig) -> Result<Self, StartError> {
        Self::builder(config).bind().await
    }

    /// Starts configuring a daemon: inject [`Services`] and [`Limits`], then [`DaemonBuilder::bind`].
    pub fn builder(config: &DaemonConfig) -> DaemonBuilder {
        DaemonBuilder {
            config: config.clone(),
            services: Services::default(),
            limits: Limits::default(),
        }
    }

    pub fn state(&self) -> Arc<DaemonState> {
        self.state.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.state.local_addr
    }

    /// Serves until `shutdown` completes, then stops accepting and returns.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = self.state.local_addr;
        tracing::info!(%addr, data_dir = %self.state.data_dir.root().display(), "CernVM WebAPI listening");
        tracing::info!(
            token_file = %token::token_path(&self.state.data_dir).display(),
            "clients without an Origin header must present the token in this file"
        );
        let missing = self.state.services.missing();
        if !missing.is_empty() {
            tracing::warn!(
                ?missing,
                "requestSession will fail with -11 until these parts are configured"
            );
        }
        let app = crate::server::router(self.state.clone());
        axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        tracing::info!("CernVM WebAPI stopped");
        Ok(())
    }
}
