//! Idle control wired to a real daemon: the controller (`idle::spawn_with`) over the daemon's session
//! actors, with a scripted idle source (the only fake besides the in-memory test hypervisor of
//! `support`), a real WebSocket client for the page's actions, the `daemon*` parameters through `set`
//! and across a restart, and the `getIdleStatus` protocol extension.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use support::*;
use webapi_core::hypervisor::VmState;
use webapi_core::idle::{self, IdleHandle, SystemClock};
use webapi_core::session::Command;

const THRESHOLD: Duration = Duration::from_secs(60);
const AWAY: Duration = Duration::from_secs(3600);
const HERE: Duration = Duration::ZERO;

/// The user's presence as the test scripts it, and the controller's handle.
struct User {
    source: Arc<ScriptedIdle>,
    handle: IdleHandle,
}

impl User {
    fn start(daemon: &Running, idle_time: Duration) -> Self {
        let source = Arc::new(ScriptedIdle(Mutex::new(idle_time)));
        let handle = idle::spawn_with(
            &daemon.state,
            source.clone(),
            Arc::new(SystemClock),
            THRESHOLD,
        );
        Self { source, handle }
    }
    fn set(&self, idle_time: Duration) {
        *self.source.0.lock().unwrap() = idle_time;
        self.handle.wake();
    }
}

/// Waits (up to 10 s) until the only VM satisfies `pred`.
async fn vm_until(fakes: &Fakes, what: &str, pred: impl Fn(VmState, u8) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (state, cap) = {
            let vm = fakes.hv.only_vm();
            let d = vm.lock().unwrap();
            (d.state, d.cap)
        };
        if pred(state, cap) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: VM is {state:?} at cap {cap}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn vm_state(fakes: &Fakes) -> VmState {
    fakes.hv.only_vm().lock().unwrap().state
}

/// A VMCP with the given idle parameters at `url`.
fn idle_vmcp(fakes: &Fakes, url: &str, min: u8, max: u8, flags: u32) {
    let mut doc = vmcp_doc("idle-vm", "s3cret");
    doc["daemonControlled"] = json!(1);
    doc["daemonMinCap"] = json!(min);
    doc["daemonMaxCap"] = json!(max);
    doc["daemonFlags"] = json!(flags);
    fakes.vmcp.add(url, doc);
}

/// A daemon with one started session of the given policy; the page's client and its session id.
async fn running_session(fakes: &Fakes, min: u8, max: u8, flags: u32) -> (Running, Client, u64) {
    let url = "http://test.local/idle-vmcp";
    idle_vmcp(fakes, url, min, max, flags);
    let d = start_daemon(fakes.services(), test_limits(), &fakes.data_dir()).await;
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    let sid = c.open(url).await;
    c.act("start", sid, json!({})).await;
    assert_eq!(c.state_changed(sid).await, 5);
    (d, c, sid)
}

async fn idle_status(c: &mut Client) -> Value {
    let id = c.send("getIdleStatus", json!({})).await;
    c.event("succeed", &id).await["data"][0].clone()
}

async fn get(c: &mut Client, sid: u64, key: &str) -> Value {
    let id = c.act("get", sid, json!({ "key": key })).await;
    c.event("succeed", &id).await["data"][0].clone()
}

#[tokio::test]
async fn the_cap_follows_the_user_and_the_page_sees_its_own_execution_cap() {
    let fakes = Fakes::new();
    let (d, mut c, sid) = running_session(&fakes, 10, 100, 0).await;
    assert_eq!(fakes.hv.only_vm().lock().unwrap().cap, 100);
    // Before the controller runs, the extension answers "not idle".
    assert_eq!(
        idle_status(&mut c).await,
        json!({"isSystemIdle": false, "idleTime": 0})
    );

    let user = User::start(&d, HERE);
    vm_until(&fakes, "cap 10 while active", |s, cap| {
        s == VmState::Running && cap == 10
    })
    .await;
    user.set(AWAY);
    vm_until(&fakes, "cap 100 while idle", |s, cap| {
        s == VmState::Running && cap == 100
    })
    .await;
    assert_eq!(
        idle_status(&mut c).await,
        json!({"isSystemIdle": true, "idleTime": 3600})
    );
    user.set(HERE);
    vm_until(&fakes, "cap 10 again when back", |_, cap| cap == 10).await;
    assert!(fakes.hv.calls().iter().any(|c| c == "set_cpu_cap"));
    assert_eq!(
        idle_status(&mut c).await,
        json!({"isSystemIdle": false, "idleTime": 0})
    );

    // The page's executionCap stays what the page set; the idle cap is not written into it.
    assert_eq!(get(&mut c, sid, "executionCap").await, "100");
    let id = c.act("sync", sid, json!({})).await;
    let _ = id;
    let sv = c.event("stateVariables", &sid.to_string()).await;
    assert_eq!(sv["data"][0]["executionCap"], 100);
    assert_eq!(sv["data"][0]["daemonMinCap"], 10);
    assert_eq!(sv["data"][0]["daemonMaxCap"], 100);

    // The controller's status counts the session.
    let status = user.handle.status().borrow().clone();
    assert_eq!(status.controlled, 1);
    assert_eq!(status.source, "scripted");
}

#[tokio::test]
async fn pause_mode_respects_a_pause_by_the_page() {
    let fakes = Fakes::new();
    let (d, mut c, sid) = running_session(&fakes, 0, 0, 0).await;
    let user = User::start(&d, HERE);
    vm_until(&fakes, "paused while active", |s, _| s == VmState::Paused).await;
    user.set(AWAY);
    vm_until(&fakes, "resumed while idle", |s, _| s == VmState::Running).await;

    // The page pauses it by hand: idle control must not resume it, though the user stays away.
    c.act("pause", sid, json!({})).await;
    vm_until(&fakes, "paused by the page", |s, _| s == VmState::Paused).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // four polls of the controller
    assert_eq!(vm_state(&fakes), VmState::Paused, "a page's pause wins");
    let (tx, rx) = tokio::sync::oneshot::channel();
    d.state.registry().sessions()[0]
        .send(Command::Inspect(tx))
        .await
        .unwrap();
    assert!(rx.await.unwrap().held_by_hand);

    // The page resumes it: it is under idle control again, and the controller's own pause does not
    // count as "by hand" (it is resumed again when the user leaves).
    c.act("resume", sid, json!({})).await;
    vm_until(&fakes, "resumed by the page", |s, _| s == VmState::Running).await;
    user.set(HERE);
    vm_until(&fakes, "paused by the controller", |s, _| {
        s == VmState::Paused
    })
    .await;
    user.set(AWAY);
    vm_until(&fakes, "resumed by the controller", |s, _| {
        s == VmState::Running
    })
    .await;
}

#[tokio::test]
async fn suspend_mode_saves_and_restores() {
    let fakes = Fakes::new();
    let (d, _c, _sid) = running_session(&fakes, 0, 0, idle::DF_SUSPEND).await;
    let user = User::start(&d, HERE);
    vm_until(&fakes, "saved while active", |s, _| s == VmState::Saved).await;
    user.set(AWAY);
    vm_until(&fakes, "restored while idle", |s, _| s == VmState::Running).await;
    user.set(HERE);
    vm_until(&fakes, "saved again", |s, _| s == VmState::Saved).await;
    let calls = fakes.hv.calls();
    assert_eq!(
        calls.iter().filter(|c| *c == "save").count(),
        2,
        "{calls:?}"
    );
}

#[tokio::test]
async fn bad_values_are_refused_and_good_ones_survive_a_restart_with_autostart() {
    let fakes = Fakes::new();
    let (d1, mut c, sid) = running_session(&fakes, 10, 100, idle::DF_AUTOSTART).await;
    for (key, value, says) in [
        ("daemonMinCap", "101", "between 0 and 100"),
        ("daemonFlags", "4", "DF_AUTODESTROY"),
        ("daemonFlags", "8", "unknown bits"),
        ("daemonMaxCap", "5", "below daemonMinCap"),
    ] {
        let id = c.act("set", sid, json!({"key": key, "value": value})).await;
        let f = c.event("failed", &id).await;
        assert!(
            f["data"][0].as_str().unwrap().contains(says),
            "{key}={value}: {f}"
        );
    }
    assert_eq!(get(&mut c, sid, "daemonMinCap").await, "10");
    assert_eq!(get(&mut c, sid, "daemonFlags").await, "2");
    let id = c
        .act("set", sid, json!({"key": "daemonMaxCap", "value": "80"}))
        .await;
    c.event("succeed", &id).await;
    d1.stop().await;
    drop(c);

    // The VM died with the daemon (e.g. a host reboot): it comes back powered off, not held by hand.
    fakes.hv.only_vm().lock().unwrap().dead = true;
    let d2 = start_daemon(fakes.services(), test_limits(), &fakes.data_dir()).await;
    let session = d2.state.registry().sessions().pop().expect("recovered");
    let (tx, rx) = tokio::sync::oneshot::channel();
    session.send(Command::Inspect(tx)).await.unwrap();
    let snap = rx.await.unwrap();
    let p = &snap.params;
    assert_eq!(
        (
            p.daemon_controlled,
            p.daemon_min_cap,
            p.daemon_max_cap,
            p.daemon_flags
        ),
        (true, 10, 80, idle::DF_AUTOSTART)
    );
    assert!(!snap.held_by_hand);

    let user = User::start(&d2, HERE);
    vm_until(&fakes, "powered off after the restart", |s, _| {
        s == VmState::PoweredOff
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        vm_state(&fakes),
        VmState::PoweredOff,
        "never started while active"
    );
    user.set(AWAY);
    vm_until(&fakes, "autostarted at the max cap", |s, cap| {
        s == VmState::Running && cap == 80
    })
    .await;
    user.set(HERE);
    vm_until(&fakes, "min cap when back", |_, cap| cap == 10).await;
}

#[tokio::test]
async fn a_stop_by_the_page_is_not_undone_by_autostart() {
    let fakes = Fakes::new();
    let (d, mut c, sid) = running_session(&fakes, 0, 0, idle::DF_AUTOSTART).await;
    c.act("stop", sid, json!({})).await;
    vm_until(&fakes, "stopped by the page", |s, _| {
        s == VmState::PoweredOff
    })
    .await;
    let _user = User::start(&d, AWAY);
    tokio::time::sleep(Duration::from_secs(2)).await; // four polls of the controller
    assert_eq!(vm_state(&fakes), VmState::PoweredOff);
    assert!(!fakes
        .hv
        .calls()
        .iter()
        .skip_while(|c| *c != "shutdown")
        .any(|c| c == "boot"));
}

// ---------------------------------------------------------------- real X server

/// Finds an external tool; missing is a failure under CI and a skip (false) otherwise.
fn have(name: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{name} is required for this test under CI (scripts/install-deps.sh installs it)");
    }
    if !found {
        eprintln!("skipping: {name} not installed");
    }
    found
}

/// A private Xvfb on a display number it picks itself (`-displayfd`); killed on drop.
struct Xvfb {
    child: std::process::Child,
    display: String,
}

impl Xvfb {
    fn start() -> Self {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-nolisten",
                "tcp",
                "-screen",
                "0",
                "640x480x24",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start Xvfb");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read the display number from Xvfb");
        assert!(!line.trim().is_empty(), "Xvfb reported no display number");
        Self {
            child,
            display: format!(":{}", line.trim()),
        }
    }

    fn mousemove(&self, x: u32, y: u32) {
        let status = std::process::Command::new("xdotool")
            .args(["mousemove", &x.to_string(), &y.to_string()])
            .env("DISPLAY", &self.display)
            .status()
            .expect("run xdotool");
        assert!(status.success(), "xdotool mousemove failed");
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real X11 idle source under Xvfb drives the daemon's controlled session: no input for the
/// threshold raises the cap to max, an `xdotool mousemove` drops it to min.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn real_x11_input_drives_the_cap() {
    if !have("Xvfb") || !have("xdotool") {
        return;
    }
    let x = Xvfb::start();
    let fakes = Fakes::new();
    let (d, _c, _sid) = running_session(&fakes, 10, 100, 0).await;
    let source = Arc::new(idle::x11::X11Source::new(Some(x.display.clone())));
    let handle = idle::spawn_with(
        &d.state,
        source,
        Arc::new(SystemClock),
        Duration::from_secs(3),
    );
    for round in 0..2 {
        x.mousemove(10 + round, 20);
        vm_until(&fakes, "cap 10 right after input", |s, cap| {
            s == VmState::Running && cap == 10
        })
        .await;
        vm_until(&fakes, "cap 100 after 3 s without input", |_, cap| {
            cap == 100
        })
        .await;
    }
    assert_eq!(handle.status().borrow().source, "x11");
}
