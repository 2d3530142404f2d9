//! End to end with real parts: a daemon with the real QEMU backend (TCG) runs a controlled session of the
//! test guest, the real X11 idle source watches a private Xvfb, and `xdotool mousemove` is the user.
//! No input for the threshold raises the cap to daemonMaxCap (QEMU's CPU use follows), input drops it to
//! daemonMinCap; the pause mode and the DF_SUSPEND mode pause/save and resume/restore the real VM.
//! Only the VMCP source and consent are the test fakes of `support`.

#![cfg(target_os = "linux")]

#[path = "qemu_support/mod.rs"]
mod qemu;
mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::StreamExt;
use serde_json::{json, Value};
use support::*;
use tokio_tungstenite::tungstenite::Message;
use webapi_core::daemon::ports::ImageSource;
use webapi_core::daemon::Services;
use webapi_core::idle::{self, SystemClock};
use webapi_core::protocol::SessionState;
use webapi_core::session::{Command, ImageFailure, ImageRequest, LocalImage, ProgressFn};

/// Hands out the test guest ISO for every image request.
struct GuestIso(PathBuf);

#[async_trait]
impl ImageSource for GuestIso {
    async fn fetch(
        &self,
        _request: &ImageRequest,
        progress: ProgressFn,
    ) -> Result<LocalImage, ImageFailure> {
        progress(1.0, "Image ready");
        Ok(LocalImage {
            path: self.0.clone(),
            resolved_version: None,
            hold: Default::default(),
        })
    }
}

fn have(name: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{name} is required for this test under CI (scripts/install-deps.sh installs it)");
    }
    found
}

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
        Self {
            child,
            display: format!(":{}", line.trim()),
        }
    }

    fn mousemove(&self, x: u32) {
        let ok = std::process::Command::new("xdotool")
            .args(["mousemove", &x.to_string(), "40"])
            .env("DISPLAY", &self.display)
            .status()
            .expect("run xdotool")
            .success();
        assert!(ok, "xdotool mousemove failed");
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads frames until the session's `stateChanged` reports `want` (TCG boots slowly: up to 4 minutes).
async fn wait_state(c: &mut Client, sid: u64, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, c.ws.next())
            .await
            .unwrap_or_else(|_| panic!("no stateChanged {want}"))
            .expect("connection open")
            .expect("valid frame");
        let Message::Text(t) = msg else { continue };
        let v: Value = serde_json::from_str(&t).unwrap();
        if v["name"] == "failed" {
            panic!("the session failed: {v}");
        }
        let for_us = v["id"].as_str() == Some(sid.to_string().as_str());
        if v["name"] == "stateChanged" && for_us && v["data"][0] == want {
            return;
        }
    }
}

/// The pid of the QEMU process that runs in (or names) a folder under `dir`.
fn qemu_pid_under(dir: &std::path::Path) -> u32 {
    let dir = dir.canonicalize().unwrap();
    let needle = dir.to_string_lossy().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            let in_dir = std::fs::read_link(format!("/proc/{pid}/cwd"))
                .is_ok_and(|cwd| cwd.starts_with(&dir));
            cmdline.contains("qemu-system") && (in_dir || cmdline.contains(&needle))
        })
        .expect("the session's QEMU process")
}

/// The cap the session's VM runs at, as the session reports it.
async fn applied_cap(d: &Running) -> Option<u8> {
    let session = d.state.registry().sessions().pop()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    session.send(Command::Inspect(tx)).await.ok()?;
    rx.await.ok()?.applied_cap
}

async fn cap_until(d: &Running, want: u8, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while applied_cap(d).await != Some(want) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Test limits without pings: the page's client does not read (and so does not answer pings) while the
/// test watches the VM for longer than the default 30 s silence limit.
fn quiet_limits() -> webapi_core::daemon::Limits {
    webapi_core::daemon::Limits {
        ping_after: Duration::from_secs(600),
        idle_timeout: Duration::from_secs(1200),
        ..test_limits()
    }
}

/// The session's state as its actor reports it.
async fn session_state(d: &Running) -> Option<SessionState> {
    let session = d.state.registry().sessions().pop()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    session.send(Command::Inspect(tx)).await.ok()?;
    let snap = rx.await.ok()?;
    (!snap.busy).then_some(snap.state)
}

async fn state_until(d: &Running, want: SessionState, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while session_state(d).await != Some(want) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Pause mode (daemonMinCap 0) and then, after `set daemonFlags 1`, suspend mode on a real VM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_suspend_modes_on_a_real_vm() {
    let Some((hv, iso)) = qemu::setup() else {
        return;
    };
    if !have("Xvfb") || !have("xdotool") {
        return;
    }
    let x = Xvfb::start();
    let fakes = Fakes::new();
    let url = "http://test.local/qemu-idle-pause";
    fakes.vmcp.add(
        url,
        json!({
            "name": "idle-pause", "secret": "s3cret", "signature": "c2ln",
            "cpus": 1, "memory": 128, "disk": 64, "flags": 0, "apiPort": 80,
            "userData": "ctx-idle",
            "daemonControlled": 1, "daemonMinCap": 0, "daemonMaxCap": 0, "daemonFlags": 0
        }),
    );
    let services = Services {
        images: Some(Arc::new(GuestIso(iso))),
        hypervisor: Some(Arc::new(hv)),
        ..fakes.services()
    };
    let d = start_daemon(services, quiet_limits(), &fakes.data_dir()).await;
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    let sid = c.open(url).await;
    c.act("start", sid, json!({})).await;
    wait_state(&mut c, sid, 5).await;
    let pid = qemu_pid_under(&fakes.data_dir());
    let _guard = qemu::KillOnDrop(pid);
    let id = c.act("get", sid, json!({"key": "apiURL"})).await;
    let api: SocketAddr = c.event("succeed", &id).await["data"][0]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("apiURL host:port");
    let booted = qemu::wait_api(api).await;

    let _handle = idle::spawn_with(
        &d.state,
        Arc::new(idle::x11::X11Source::new(Some(x.display.clone()))),
        Arc::new(SystemClock),
        // Long enough that the "paused guest does not answer" probe (3 s) ends before the resume.
        Duration::from_secs(10),
    );
    x.mousemove(10);
    state_until(&d, SessionState::Paused, "paused while active").await;
    assert!(qemu::status(api).await.is_none(), "a paused guest answered");
    state_until(&d, SessionState::Running, "resumed when idle").await;
    assert_eq!(qemu::wait_api(api).await.boot_id, booted.boot_id);

    // Suspend mode: saved to disk while active, restored (not rebooted) when idle.
    let id = c
        .act("set", sid, json!({"key": "daemonFlags", "value": "1"}))
        .await;
    c.event("succeed", &id).await;
    x.mousemove(20);
    state_until(&d, SessionState::Saved, "saved while active").await;
    assert!(!qemu::alive(pid), "a saved VM has no QEMU process");
    state_until(&d, SessionState::Running, "restored when idle").await;
    let pid = qemu_pid_under(&fakes.data_dir());
    let _guard2 = qemu::KillOnDrop(pid);
    let id = c.act("get", sid, json!({"key": "apiURL"})).await;
    let api: SocketAddr = c.event("succeed", &id).await["data"][0]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    assert_eq!(
        qemu::wait_api(api).await.boot_id,
        booted.boot_id,
        "restored, not rebooted"
    );

    let id = c.act("close", sid, json!({})).await;
    c.event("succeed", &id).await;
    wait_state(&mut c, sid, 0).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while qemu::alive(pid) {
        assert!(
            Instant::now() < deadline,
            "QEMU {pid} outlived the closed session"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_of_a_real_vm_follows_real_x11_input() {
    let Some((hv, iso)) = qemu::setup() else {
        return;
    };
    if !have("Xvfb") || !have("xdotool") {
        return;
    }
    let x = Xvfb::start();
    let fakes = Fakes::new();
    let url = "http://test.local/qemu-idle";
    fakes.vmcp.add(
        url,
        json!({
            "name": "idle-qemu", "secret": "s3cret", "signature": "c2ln",
            "cpus": 1, "memory": 128, "disk": 64, "flags": 0, "apiPort": 80,
            "userData": "ctx-idle",
            "daemonControlled": 1, "daemonMinCap": 10, "daemonMaxCap": 100, "daemonFlags": 0
        }),
    );
    let services = Services {
        images: Some(Arc::new(GuestIso(iso))),
        hypervisor: Some(Arc::new(hv)),
        ..fakes.services()
    };
    let d = start_daemon(services, quiet_limits(), &fakes.data_dir()).await;
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    let sid = c.open(url).await;
    c.act("start", sid, json!({})).await;
    wait_state(&mut c, sid, 5).await;
    let pid = qemu_pid_under(&fakes.data_dir());
    let _guard = qemu::KillOnDrop(pid);
    let id = c.act("get", sid, json!({"key": "apiURL"})).await;
    let api_url = c.event("succeed", &id).await["data"][0]
        .as_str()
        .unwrap()
        .to_string();
    let api: SocketAddr = api_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("apiURL host:port");
    qemu::wait_api(api).await;
    qemu::get(api, "/cgi-bin/burn?seconds=180")
        .await
        .expect("burn");

    // Threshold 15 s: long enough to measure the "in use" cap before the user counts as idle.
    let handle = idle::spawn_with(
        &d.state,
        Arc::new(idle::x11::X11Source::new(Some(x.display.clone()))),
        Arc::new(SystemClock),
        Duration::from_secs(15),
    );
    x.mousemove(10);
    cap_until(&d, 10, "cap 10 while the user is active").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let active = qemu::cpu_percent(pid, Duration::from_secs(4)).await;
    cap_until(&d, 100, "cap 100 after 15 s without input").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_use = qemu::cpu_percent(pid, Duration::from_secs(4)).await;
    eprintln!("QEMU CPU use: {active:.1} % at cap 10 (active), {idle_use:.1} % at cap 100 (idle)");
    assert!(
        idle_use > 2.0 * active,
        "CPU use did not follow the cap: {active:.1} % active, {idle_use:.1} % idle"
    );
    x.mousemove(20);
    cap_until(&d, 10, "cap 10 again after mousemove").await;
    assert_eq!(handle.status().borrow().source, "x11");

    let id = c.act("close", sid, json!({})).await;
    c.event("succeed", &id).await;
    wait_state(&mut c, sid, 0).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while qemu::alive(pid) {
        assert!(
            Instant::now() < deadline,
            "QEMU {pid} outlived the closed session"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
