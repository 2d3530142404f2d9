//! Tests of the ext-idle-notify-v1 source against a minimal compositor built with wayland-server: it offers a
//! seat and (optionally) the idle notifier over a real Wayland socket, and sends "idled" / "resumed" when the
//! test says so. (No compositor packaged in Debian 12 implements ext-idle-notify-v1, so this stands in for
//! sway or KDE here; the wire protocol is the real one.)

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wayland_protocols::ext::idle_notify::v1::server::{
    ext_idle_notification_v1::ExtIdleNotificationV1,
    ext_idle_notifier_v1::{self, ExtIdleNotifierV1},
};
use wayland_server::backend::ClientData;
use wayland_server::protocol::wl_seat::{self, WlSeat};
use wayland_server::{
    Client, DataInit, Dispatch, Display, DisplayHandle, GlobalDispatch, ListeningSocket, New,
};

use super::detect::{detect_in, SessionEnv};
use super::source::IdleSource;
use super::wayland::{WaylandIdleSource, NOTIFY_AFTER};

enum Cmd {
    Idled,
    Resumed,
    Stop,
}

#[derive(Default)]
struct Comp {
    /// Notifications the clients asked for, with their timeout in ms.
    notifications: Vec<(ExtIdleNotificationV1, u32)>,
}

struct NoData;
impl ClientData for NoData {}

/// A compositor thread listening on a socket in a temporary folder.
struct TestCompositor {
    _dir: Option<tempfile::TempDir>,
    socket: PathBuf,
    cmds: mpsc::Sender<Cmd>,
    timeouts: Arc<Mutex<Vec<u32>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestCompositor {
    fn start(with_idle_notify: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut comp = Self::start_at(dir.path().join("wayland-test"), with_idle_notify);
        comp._dir = Some(dir);
        comp
    }

    fn start_at(socket: PathBuf, with_idle_notify: bool) -> Self {
        let listener = ListeningSocket::bind_absolute(socket.clone()).unwrap();
        let (cmds, rx) = mpsc::channel();
        let timeouts = Arc::new(Mutex::new(Vec::new()));
        let seen_timeouts = Arc::clone(&timeouts);
        let thread = std::thread::spawn(move || {
            let mut display: Display<Comp> = Display::new().unwrap();
            let mut dh = display.handle();
            dh.create_global::<Comp, WlSeat, ()>(7, ());
            if with_idle_notify {
                dh.create_global::<Comp, ExtIdleNotifierV1, ()>(1, ());
            }
            let mut comp = Comp::default();
            loop {
                if let Some(stream) = listener.accept().unwrap() {
                    dh.insert_client(stream, Arc::new(NoData)).unwrap();
                }
                display.dispatch_clients(&mut comp).unwrap();
                *seen_timeouts.lock().unwrap() =
                    comp.notifications.iter().map(|(_, t)| *t).collect();
                match rx.try_recv() {
                    Ok(Cmd::Idled) => comp.notifications.iter().for_each(|(n, _)| n.idled()),
                    Ok(Cmd::Resumed) => comp.notifications.iter().for_each(|(n, _)| n.resumed()),
                    Ok(Cmd::Stop) | Err(mpsc::TryRecvError::Disconnected) => return,
                    Err(mpsc::TryRecvError::Empty) => {}
                }
                display.flush_clients().unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Self {
            _dir: None,
            socket,
            cmds,
            timeouts,
            thread: Some(thread),
        }
    }

    fn send(&self, cmd: Cmd) {
        self.cmds.send(cmd).unwrap();
    }

    fn stop(&mut self) {
        let _ = self.cmds.send(Cmd::Stop);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for TestCompositor {
    fn drop(&mut self) {
        self.stop();
    }
}

impl GlobalDispatch<WlSeat, ()> for Comp {
    fn bind(
        _: &mut Self,
        _: &DisplayHandle,
        _: &Client,
        resource: New<WlSeat>,
        _: &(),
        data_init: &mut DataInit<'_, Self>,
    ) {
        let seat = data_init.init(resource, ());
        seat.capabilities(wl_seat::Capability::Pointer | wl_seat::Capability::Keyboard);
    }
}

impl Dispatch<WlSeat, ()> for Comp {
    fn request(
        _: &mut Self,
        _: &Client,
        _: &WlSeat,
        _: wl_seat::Request,
        _: &(),
        _: &DisplayHandle,
        _: &mut DataInit<'_, Self>,
    ) {
    }
}

impl GlobalDispatch<ExtIdleNotifierV1, ()> for Comp {
    fn bind(
        _: &mut Self,
        _: &DisplayHandle,
        _: &Client,
        resource: New<ExtIdleNotifierV1>,
        _: &(),
        data_init: &mut DataInit<'_, Self>,
    ) {
        data_init.init(resource, ());
    }
}

impl Dispatch<ExtIdleNotifierV1, ()> for Comp {
    fn request(
        state: &mut Self,
        _: &Client,
        _: &ExtIdleNotifierV1,
        request: ext_idle_notifier_v1::Request,
        _: &(),
        _: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        if let ext_idle_notifier_v1::Request::GetIdleNotification { id, timeout, .. } = request {
            let notification = data_init.init(id, ());
            state.notifications.push((notification, timeout));
        }
    }
}

impl Dispatch<ExtIdleNotificationV1, ()> for Comp {
    fn request(
        _: &mut Self,
        _: &Client,
        _: &ExtIdleNotificationV1,
        _: <ExtIdleNotificationV1 as wayland_server::Resource>::Request,
        _: &(),
        _: &DisplayHandle,
        _: &mut DataInit<'_, Self>,
    ) {
    }
}

/// Polls the source until `ok` holds for its reading (events cross a thread and a socket).
async fn wait_for(source: &dyn IdleSource, ok: impl Fn(Duration) -> bool) -> Duration {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let t = source.idle_time().await.expect("probe");
        if ok(t) {
            return t;
        }
        assert!(Instant::now() < deadline, "last reading {t:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn follows_idled_and_resumed_events() {
    let comp = TestCompositor::start(true);
    let source = WaylandIdleSource::open(comp.socket.clone()).await.unwrap();
    assert_eq!(source.name(), "wayland-ext-idle-notify");
    assert_eq!(
        *comp.timeouts.lock().unwrap(),
        [NOTIFY_AFTER.as_millis() as u32]
    );
    assert_eq!(source.idle_time().await.unwrap(), Duration::ZERO);

    comp.send(Cmd::Idled);
    let first = wait_for(&source, |t| t >= NOTIFY_AFTER).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = source.idle_time().await.unwrap();
    assert!(
        later > first,
        "idle time grows while idled: {first:?} {later:?}"
    );

    comp.send(Cmd::Resumed);
    wait_for(&source, |t| t == Duration::ZERO).await;
}

#[tokio::test]
async fn compositor_without_the_protocol_is_refused() {
    let comp = TestCompositor::start(false);
    let err = WaylandIdleSource::open(comp.socket.clone())
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("lacks ext-idle-notify-v1"),
        "{err}"
    );
}

#[tokio::test]
async fn compositor_going_away_is_an_error_then_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("wayland-0");
    let mut comp = TestCompositor::start_at(socket.clone(), true);
    let source = WaylandIdleSource::open(socket.clone()).await.unwrap();
    comp.stop();
    drop(comp);
    let deadline = Instant::now() + Duration::from_secs(10);
    while source.idle_time().await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "probe never noticed the compositor left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A new compositor on the same socket: the same source connects again.
    let comp2 = TestCompositor::start_at(socket, true);
    assert_eq!(source.idle_time().await.unwrap(), Duration::ZERO);
    comp2.send(Cmd::Idled);
    wait_for(&source, |t| t >= NOTIFY_AFTER).await;
}

#[tokio::test]
async fn detect_prefers_ext_idle_notify_on_wayland() {
    let comp = TestCompositor::start(true);
    let found = detect_in(&SessionEnv {
        display: Some(":4000".into()),
        wayland: true,
        wayland_socket: Some(comp.socket.clone()),
        dbus_address: Some("unix:path=/nonexistent/bus".into()),
    })
    .await;
    assert_eq!(found.source.name(), "wayland-ext-idle-notify");
    let without = TestCompositor::start(false);
    let fallback = detect_in(&SessionEnv {
        display: Some(":4000".into()),
        wayland: true,
        wayland_socket: Some(without.socket.clone()),
        dbus_address: Some("unix:path=/nonexistent/bus".into()),
    })
    .await;
    assert_eq!(fallback.source.name(), "unknown");
    let tried: Vec<_> = fallback.rejected.iter().map(|(n, _)| *n).collect();
    assert_eq!(tried, ["wayland-ext-idle-notify", "gnome-mutter", "x11"]);
}
