//! Real-part tests of the Linux idle sources: the X11 source against a private Xvfb driven by xdotool,
//! the GNOME source against a private dbus-daemon serving Mutter's IdleMonitor interface, and `detect`.

use std::time::{Duration, Instant};

use super::detect::{detect_in, SessionEnv};
use super::gnome::{GnomeSource, BUS_NAME, OBJECT_PATH};
use super::source::IdleSource;
use super::x11::X11Source;
use crate::testutil_linux::{tool, PrivateBus, Xvfb};

/// Probes until the source answers (Xvfb needs a moment to accept connections after -displayfd with a number).
async fn probe_until_ok(source: &dyn IdleSource) -> Duration {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match source.idle_time().await {
            Ok(t) => return t,
            Err(e) if Instant::now() > deadline => panic!("source never answered: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test]
async fn x11_idle_grows_and_input_resets_it() {
    if tool("Xvfb").is_none() || tool("xdotool").is_none() {
        return;
    }
    let mut x = Xvfb::start(Some(Xvfb::unused_high_number()));
    let source = X11Source::new(Some(x.display.clone()));
    let first = probe_until_ok(&source).await;
    assert!(
        x.child.try_wait().unwrap().is_none(),
        "our Xvfb is the one answering"
    );

    // Without input the idle time grows.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = source.idle_time().await.unwrap();
    assert!(
        later > first,
        "idle time did not grow: {first:?} then {later:?}"
    );
    assert!(later >= Duration::from_secs(1), "{later:?}");

    // Synthetic input (XTest) resets it: the reading is no older than the input we just made.
    let before_input = Instant::now();
    x.xdotool(&["mousemove", "123", "77"]);
    let after = source.idle_time().await.unwrap();
    let bound = before_input.elapsed() + Duration::from_millis(50);
    assert!(
        after <= bound,
        "idle {after:?} after input made {bound:?} ago"
    );
    assert!(after < later, "{after:?} !< {later:?}");

    // All those probes (and 20 more) used one X connection.
    for _ in 0..20 {
        source.idle_time().await.unwrap();
    }
    assert_eq!(x.connections_from_this_process(), 1);

    // The server goes away: the probe fails cleanly; a new server on the same display is found again.
    let number = x.number();
    x.stop();
    assert!(source.idle_time().await.is_err());
    let mut x2 = Xvfb::start(Some(number));
    let again = probe_until_ok(&source).await;
    assert!(
        x2.child.try_wait().unwrap().is_none(),
        "our Xvfb is the one answering"
    );
    assert!(again < Duration::from_secs(60), "{again:?}");
}

#[tokio::test]
async fn x11_without_display_is_an_error_not_a_crash() {
    let source = X11Source::new(Some(":4000".into()));
    let err = source.idle_time().await.unwrap_err();
    assert!(err.to_string().contains("cannot connect"), "{err}");
    let unknown = detect_in(&SessionEnv {
        display: Some(":4000".into()),
        wayland: false,
        wayland_socket: None,
        dbus_address: Some("unix:path=/nonexistent/bus".into()),
    })
    .await;
    assert_eq!(unknown.source.name(), "unknown");
    let tried: Vec<_> = unknown.rejected.iter().map(|(n, _)| *n).collect();
    assert_eq!(tried, ["x11", "gnome-mutter"]);
}

#[tokio::test]
async fn detect_prefers_x11_when_a_display_answers() {
    if tool("Xvfb").is_none() {
        return;
    }
    let x = Xvfb::start(None);
    // Wait until the server accepts connections.
    probe_until_ok(&X11Source::new(Some(x.display.clone()))).await;
    let found = detect_in(&SessionEnv {
        display: Some(x.display.clone()),
        wayland: false,
        wayland_socket: None,
        dbus_address: None,
    })
    .await;
    assert_eq!(found.source.name(), "x11", "{:?}", found.rejected);
    assert!(found.source.idle_time().await.is_ok());
}

/// Mutter's IdleMonitor as a test service on a private bus, reporting a fixed idle time.
struct FakeMutter(u64);

#[zbus::interface(name = "org.gnome.Mutter.IdleMonitor")]
impl FakeMutter {
    fn get_idletime(&self) -> u64 {
        self.0
    }
}

#[tokio::test]
async fn gnome_source_reads_mutter_idle_monitor_over_dbus() {
    let Some(bus) = PrivateBus::start() else {
        return;
    };
    let address = bus.address.clone();

    // Before the service exists the source fails cleanly (and then reconnects).
    let source = GnomeSource::new(Some(address.clone()));
    assert!(source.idle_time().await.is_err());

    let _service = zbus::connection::Builder::address(address.as_str())
        .unwrap()
        .name(BUS_NAME)
        .unwrap()
        .serve_at(OBJECT_PATH, FakeMutter(93_250))
        .unwrap()
        .build()
        .await
        .expect("serve the IdleMonitor");
    assert_eq!(
        source.idle_time().await.unwrap(),
        Duration::from_millis(93_250)
    );

    let found = detect_in(&SessionEnv {
        display: Some(":4000".into()),
        wayland: true,
        wayland_socket: None,
        dbus_address: Some(address),
    })
    .await;
    assert_eq!(found.source.name(), "gnome-mutter");
}
