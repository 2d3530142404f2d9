//! The tray-host checks against a real private D-Bus bus and a real private Xvfb, each first without and
//! then with a tray host.

use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::{ConnectionExt as _, CreateWindowAux, WindowClass};
use x11rb::wrapper::ConnectionExt as _;

use super::*;
use crate::testutil_linux::{tool, PrivateBus, Xvfb};

#[tokio::test]
async fn a_statusnotifier_watcher_on_the_bus_is_a_tray_host() {
    let Some(bus) = PrivateBus::start() else {
        return;
    };
    assert!(!sni_host_on(Some(&bus.address)).await, "an empty bus");
    let _watcher = zbus::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .name(SNI_WATCHER)
        .unwrap()
        .build()
        .await
        .expect("own the watcher's name");
    assert!(sni_host_on(Some(&bus.address)).await, "the watcher runs");
    assert!(
        !sni_host_on(Some("unix:path=/nonexistent/bus")).await,
        "no bus at all is no host, not an error"
    );
}

#[tokio::test]
async fn an_xembed_system_tray_on_the_display_is_a_tray_host() {
    if tool("Xvfb").is_none() {
        return;
    }
    let x = Xvfb::start(None);
    let display = x.display.clone();
    // Xvfb needs a moment before it accepts connections.
    let mut tries = 0;
    let (conn, screen) = loop {
        match x11rb::rust_connection::RustConnection::connect(Some(&display)) {
            Ok(c) => break c,
            Err(e) if tries > 100 => panic!("Xvfb never accepted a connection: {e}"),
            Err(_) => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    };
    assert!(!xembed_tray_on(Some(&display)).await, "a bare X server");

    // A tray: a window owning the _NET_SYSTEM_TRAY_S<screen> selection.
    let root = conn.setup().roots[screen].root;
    let window = conn.generate_id().unwrap();
    conn.create_window(
        0,
        window,
        root,
        0,
        0,
        1,
        1,
        0,
        WindowClass::INPUT_ONLY,
        0,
        &CreateWindowAux::new(),
    )
    .unwrap();
    let atom = conn
        .intern_atom(false, format!("_NET_SYSTEM_TRAY_S{screen}").as_bytes())
        .unwrap()
        .reply()
        .unwrap()
        .atom;
    conn.set_selection_owner(window, atom, x11rb::CURRENT_TIME)
        .unwrap();
    conn.sync().unwrap();
    assert!(
        xembed_tray_on(Some(&display)).await,
        "the tray owns its selection"
    );
    drop(conn);
    assert!(
        !xembed_tray_on(Some(":65000")).await,
        "no display at all is no tray, not an error"
    );
}
