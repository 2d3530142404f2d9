//! Wayland idle source: the `ext-idle-notify-v1` protocol (sway ≥ 1.8, KDE Plasma ≥ 5.27, Hyprland, other
//! wlroots compositors). The compositor tells us when the seat has had no input for [`NOTIFY_AFTER`]
//! ("idled") and when input comes back ("resumed"); a worker thread keeps one connection open and
//! records those events, and a probe only reads what it recorded. Idle inhibitors (e.g. a playing video)
//! keep the user "active", which is what we want.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{oneshot, Mutex as AsyncMutex};
use wayland_client::globals::{registry_queue_init, GlobalListContents};
use wayland_client::protocol::{wl_registry, wl_seat};
use wayland_client::{Connection, Dispatch, QueueHandle};
use wayland_protocols::ext::idle_notify::v1::client::{
    ext_idle_notification_v1::{self, ExtIdleNotificationV1},
    ext_idle_notifier_v1::ExtIdleNotifierV1,
};

use super::source::{with_timeout, IdleError, IdleSource};

const NAME: &str = "wayland-ext-idle-notify";
/// The notification timeout asked of the compositor. While not "idled", the idle time is below this
/// and reported as zero; once idled it is this plus the time since the event.
pub const NOTIFY_AFTER: Duration = Duration::from_secs(1);

/// What the worker thread has seen.
#[derive(Debug, Default)]
struct Seen {
    /// When the compositor said "idled" (already NOTIFY_AFTER after the last input); `None` while active.
    idled_at: Option<Instant>,
    /// Why the connection ended, once it has.
    closed: Option<String>,
}

/// One live connection: the worker's record and a handle to shut its socket down.
struct Worker {
    seen: Arc<Mutex<Seen>>,
    socket: UnixStream,
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Wakes the worker's blocking read with end-of-file, so the thread ends.
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }
}

/// Idle time from a Wayland compositor with ext-idle-notify-v1.
pub struct WaylandIdleSource {
    socket_path: PathBuf,
    worker: AsyncMutex<Option<Worker>>,
}

/// The compositor's socket from `$WAYLAND_DISPLAY` (absolute, or relative to `$XDG_RUNTIME_DIR`).
pub fn socket_from_env() -> Option<PathBuf> {
    let name = PathBuf::from(std::env::var_os("WAYLAND_DISPLAY").filter(|v| !v.is_empty())?);
    if name.is_absolute() {
        return Some(name);
    }
    let dir = PathBuf::from(std::env::var_os("XDG_RUNTIME_DIR")?);
    dir.is_absolute().then(|| dir.join(name))
}

impl WaylandIdleSource {
    pub fn new(socket_path: PathBuf) -> Self {
        Self {
            socket_path,
            worker: AsyncMutex::new(None),
        }
    }

    /// Connects and subscribes once, so a caller learns at start whether the compositor has the protocol.
    pub async fn open(socket_path: PathBuf) -> Result<Self, IdleError> {
        let source = Self::new(socket_path);
        source.idle_time().await?;
        Ok(source)
    }
}

#[async_trait]
impl IdleSource for WaylandIdleSource {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn idle_time(&self) -> Result<Duration, IdleError> {
        let connecting = self.worker.try_lock().is_ok_and(|g| g.is_none());
        with_timeout(NAME, connecting, async {
            let mut slot = self.worker.lock().await;
            let closed = slot.as_ref().and_then(|w| lock(&w.seen).closed.clone());
            if let Some(why) = closed {
                *slot = None;
                return Err(IdleError::failed(NAME, why));
            }
            if slot.is_none() {
                *slot = Some(start_worker(&self.socket_path).await?);
            }
            let seen = lock(&slot.as_ref().expect("started above").seen);
            Ok(seen
                .idled_at
                .map_or(Duration::ZERO, |at| NOTIFY_AFTER + at.elapsed()))
        })
        .await
    }
}

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|p| p.into_inner())
}

/// Connects, subscribes on a new thread, and returns once the subscription is in place.
async fn start_worker(path: &Path) -> Result<Worker, IdleError> {
    let socket = UnixStream::connect(path).map_err(|e| {
        IdleError::failed(NAME, format!("cannot connect to {}: {e}", path.display()))
    })?;
    let for_shutdown = socket
        .try_clone()
        .map_err(|e| IdleError::failed(NAME, format!("cloning the socket: {e}")))?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (ready_tx, ready_rx) = oneshot::channel();
    let thread_seen = Arc::clone(&seen);
    std::thread::Builder::new()
        .name("wayland-idle".into())
        .spawn(move || run(socket, thread_seen, ready_tx))
        .map_err(|e| IdleError::failed(NAME, format!("cannot start thread: {e}")))?;
    let worker = Worker {
        seen,
        socket: for_shutdown,
    };
    // If the caller's timeout drops us here, `worker` drops too and the thread ends.
    match ready_rx.await {
        Ok(Ok(())) => Ok(worker),
        Ok(Err(why)) => Err(IdleError::failed(NAME, why)),
        Err(_) => Err(IdleError::failed(NAME, "worker thread ended early")),
    }
}

/// The worker: subscribe, report readiness, then dispatch events until the connection ends.
fn run(socket: UnixStream, seen: Arc<Mutex<Seen>>, ready: oneshot::Sender<Result<(), String>>) {
    let mut state = Recorder {
        seen: Arc::clone(&seen),
    };
    let subscribed = (|| -> Result<_, String> {
        let conn = Connection::from_socket(socket).map_err(|e| format!("connecting: {e}"))?;
        let (globals, mut queue) =
            registry_queue_init::<Recorder>(&conn).map_err(|e| format!("registry: {e}"))?;
        let qh = queue.handle();
        let notifier: ExtIdleNotifierV1 = globals
            .bind(&qh, 1..=1, ())
            .map_err(|_| "the compositor lacks ext-idle-notify-v1".to_string())?;
        let seat: wl_seat::WlSeat = globals
            .bind(&qh, 1..=1, ())
            .map_err(|_| "the compositor has no seat".to_string())?;
        let timeout_ms = NOTIFY_AFTER.as_millis() as u32;
        let notification = notifier.get_idle_notification(timeout_ms, &seat, &qh, ());
        queue
            .roundtrip(&mut state)
            .map_err(|e| format!("subscribing: {e}"))?;
        Ok((queue, notification))
    })();
    let (mut queue, _notification) = match subscribed {
        Ok(q) => {
            let _ = ready.send(Ok(()));
            q
        }
        Err(why) => {
            lock(&seen).closed = Some(why.clone());
            let _ = ready.send(Err(why));
            return;
        }
    };
    let why = loop {
        if let Err(e) = queue.blocking_dispatch(&mut state) {
            break format!("connection to the compositor ended: {e}");
        }
    };
    lock(&seen).closed = Some(why);
}

/// Records the notification's events.
struct Recorder {
    seen: Arc<Mutex<Seen>>,
}

impl Dispatch<ExtIdleNotificationV1, ()> for Recorder {
    fn event(
        state: &mut Self,
        _: &ExtIdleNotificationV1,
        event: ext_idle_notification_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let mut seen = lock(&state.seen);
        match event {
            ext_idle_notification_v1::Event::Idled => seen.idled_at = Some(Instant::now()),
            ext_idle_notification_v1::Event::Resumed => seen.idled_at = None,
            _ => {}
        }
    }
}

impl Dispatch<wl_registry::WlRegistry, GlobalListContents> for Recorder {
    fn event(
        _: &mut Self,
        _: &wl_registry::WlRegistry,
        _: wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<wl_seat::WlSeat, ()> for Recorder {
    fn event(
        _: &mut Self,
        _: &wl_seat::WlSeat,
        _: wl_seat::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<ExtIdleNotifierV1, ()> for Recorder {
    fn event(
        _: &mut Self,
        _: &ExtIdleNotifierV1,
        _: <ExtIdleNotifierV1 as wayland_client::Proxy>::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}
