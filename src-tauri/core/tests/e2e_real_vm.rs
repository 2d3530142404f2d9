//! The whole product path on a real VM, as a website drives it: `cvmwebapi serve` with its real
//! services (trust, consent, image cache, QEMU), a loopback website serving a VMCP signed with a key
//! from the operator tools and the test guest image, and a real WebSocket client speaking the protocol.
//!
//! requestSession → start → running → apiStateChanged and the guest shows the substituted userData →
//! set executionCap → pause → resume → hibernate → start restores (same boot) → reset (new boot) →
//! `kill -9` of the daemon and a restart: the page gets the same running VM back → the cap holds on a
//! burning guest → stop (ACPI) → start → the guest powers itself off and the page is told → close
//! (VM folder and process gone). Linux only (the QEMU backend needs unix sockets and /proc).
//!
//! Also a benchmark, run only when asked (`--ignored`): the daemon's RSS with no VM, one and two VMs.
#![cfg(target_os = "linux")]

#[path = "qemu_support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use webapi_core::trust::tools::{self, NewKey};

const BIN: &str = env!("CARGO_BIN_EXE_cvmwebapi");
/// Generous: a TCG guest on a busy 2-core machine.
const VM_WAIT: Duration = Duration::from_secs(300);

/// The website: `/vmcp` answers each request with a VMCP signed for its `cvm_salt`; `/guest.iso` is
/// the image the VMCP points at.
struct Site {
    key: webapi_core::trust::SigningKey,
    image: Vec<u8>,
    vmcp: Value,
}

async fn vmcp(
    State(site): State<Arc<Site>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> impl IntoResponse {
    let salt = q.get("cvm_salt").cloned().unwrap_or_default();
    // `?vm=NAME` gives a VMCP for another session name (the benchmark runs two VMs of one site).
    let mut vmcp = site.vmcp.clone();
    if let Some(name) = q.get("vm") {
        vmcp["name"] = json!(name);
    }
    let doc = serde_json::to_vec(&vmcp).unwrap();
    match tools::sign_vmcp(&doc, &salt, &site.key, false) {
        Ok(signed) => ([("content-type", "application/json")], signed.json).into_response(),
        Err(e) => (axum::http::StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

async fn image(State(site): State<Arc<Site>>) -> impl IntoResponse {
    site.image.clone()
}

fn serve_site(listener: tokio::net::TcpListener, site: Arc<Site>) {
    let app = axum::Router::new()
        .route("/vmcp", get(vmcp))
        .route("/guest.iso", get(image))
        .with_state(site);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

fn spawn_daemon(port: u16, data: &Path, keystore: &Path, origin: &str) -> Child {
    Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--hypervisor",
            "qemu",
        ])
        .arg("--data-dir")
        .arg(data)
        .arg("--keystore")
        .arg(keystore)
        .args(["--allow-origin", origin])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn cvmwebapi serve")
}

/// A protocol client with long waits (real VMs are slow here).
struct Page {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next: u64,
    seen: Vec<Value>,
}

impl Page {
    async fn open(port: u16, origin: &str) -> Self {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let mut req = format!("ws://127.0.0.1:{port}/")
                .into_client_request()
                .unwrap();
            req.headers_mut().insert("origin", origin.parse().unwrap());
            match tokio_tungstenite::connect_async(req).await {
                Ok((ws, _)) => {
                    let mut page = Self {
                        ws,
                        next: 0,
                        seen: Vec::new(),
                    };
                    let id = page.send("handshake", json!({"version": "2.0.12"})).await;
                    page.wait(
                        "handshake result",
                        |f| f["type"] == "result" && f["id"] == id.as_str(),
                        Duration::from_secs(10),
                    )
                    .await;
                    return page;
                }
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!("daemon on port {port} does not accept WebSockets: {e}"),
            }
        }
    }

    async fn send(&mut self, name: &str, data: Value) -> String {
        self.next += 1;
        let id = format!("a-{}", self.next);
        let frame = json!({"type": "action", "name": name, "id": id, "data": data});
        self.ws
            .send(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
        id
    }

    /// The first frame (already seen or new) matching `pred`; frames are kept for later waits.
    async fn wait(&mut self, what: &str, pred: impl Fn(&Value) -> bool, within: Duration) -> Value {
        if let Some(pos) = self.seen.iter().position(&pred) {
            return self.seen.remove(pos);
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "timed out waiting for {what}; last frames: {:?}",
                        self.tail()
                    )
                })
                .expect("connection open")
                .expect("valid frame");
            let Message::Text(text) = msg else { continue };
            let frame: Value = serde_json::from_str(&text).unwrap();
            if frame["name"] == "failed" {
                panic!("{what}: the daemon reported a failure: {frame}");
            }
            if pred(&frame) {
                return frame;
            }
            self.seen.push(frame);
        }
    }

    fn tail(&self) -> Vec<&Value> {
        self.seen.iter().rev().take(8).collect()
    }

    /// Sends a session action and waits for its `succeed`.
    async fn act(&mut self, sid: i64, name: &str, mut data: Value) -> Value {
        data["session_id"] = json!(sid);
        let id = self.send(name, data).await;
        self.wait(
            &format!("{name} succeed"),
            |f| f["name"] == "succeed" && f["id"] == id.as_str(),
            VM_WAIT,
        )
        .await
    }

    /// Waits for `stateChanged [state]` of session `sid`.
    async fn state(&mut self, sid: i64, state: i64) {
        let wire = sid.to_string();
        self.wait(
            &format!("stateChanged {state}"),
            |f| f["name"] == "stateChanged" && f["id"] == wire.as_str() && f["data"][0] == state,
            VM_WAIT,
        )
        .await;
    }

    async fn request_session(&mut self, vmcp: &str) -> i64 {
        let id = self.send("requestSession", json!({"vmcp": vmcp})).await;
        let ok = self
            .wait(
                "requestSession succeed",
                |f| f["name"] == "succeed" && f["id"] == id.as_str(),
                VM_WAIT,
            )
            .await;
        ok["data"][1].as_i64().expect("numeric session id")
    }

    /// Drops everything received so far (so later waits see only new frames).
    fn forget(&mut self) {
        self.seen.clear();
    }
}

fn api_addr(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("apiURL host:port")
}

fn qemu_pids_with(dir: &Path) -> Vec<u32> {
    // QEMU runs with its VM folder as working directory (see hypervisor/qemu).
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains("qemu-system") && cwd.starts_with(dir)
        })
        .collect()
}

fn kill9(child: &mut Child) {
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
}

/// Kills the daemon and any VM of this test when the test ends, passed or failed.
struct Cleanup {
    daemon: Option<Child>,
    vm_dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            kill9(&mut d);
        }
        for pid in qemu_pids_with(&self.vm_dir) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

fn daemon_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The test guest's bytes and their SHA-256 (hex), as a VMCP's `diskURL` + `diskChecksum` name them.
fn guest_image() -> (Vec<u8>, String) {
    let iso: PathBuf = support::guest_iso().clone();
    let image = std::fs::read(&iso).unwrap();
    let checksum = hex::encode(ring::digest::digest(&ring::digest::SHA256, &image).as_ref());
    (image, checksum)
}

/// A website key made with the operator tool in `dir`, and a keystore trusting it for 127.0.0.1.
fn trusted_site_key(dir: &Path) -> (webapi_core::trust::SigningKey, PathBuf) {
    let prefix = dir.join("site");
    let public = tools::keygen(NewKey::Ed25519, &prefix).expect("keygen");
    let key = tools::load_signing_key(&tools::key_paths(&prefix).0).unwrap();
    let keystore = dir.join("keystore.txt");
    std::fs::write(&keystore, format!("127.0.0.1={}\n", public.to_base64())).unwrap();
    (key, keystore)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_website_drives_a_real_vm_through_its_whole_life() {
    if support::setup_tools_only().is_none() {
        return;
    }
    let (image, checksum) = guest_image();

    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let (key, keystore) = trusted_site_key(work.path());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site_addr = listener.local_addr().unwrap();
    // The VMCP names the image by URL and checksum, as real sites do.
    let vmcp_doc = json!({
        "name": "e2e-vm",
        "secret": "a-secret-only-this-site-knows",
        "cpus": 1,
        "memory": 256,
        "disk": 1024,
        "diskURL": format!("http://{site_addr}/guest.iso"),
        "diskChecksum": checksum,
        "apiPort": 80,
        "flags": 3, // HVF_SYSTEM_64BIT | HVF_DEPLOYMENT_HDD: boot the diskURL image
        "userData": "greeting=${greeting:hello}\nsite=e2e\n",
    });
    serve_site(
        listener,
        Arc::new(Site {
            key,
            image,
            vmcp: vmcp_doc,
        }),
    );
    let origin = format!("http://{site_addr}");
    let vmcp_url = format!("http://{site_addr}/vmcp");

    let port = free_port();
    let vm_dir = data.join("vms");
    let mut guard = Cleanup {
        daemon: Some(spawn_daemon(port, &data, &keystore, &origin)),
        vm_dir: vm_dir.clone(),
    };
    let mut page = Page::open(port, &origin).await;

    // requestSession: VMCP fetched with a fresh salt, verified, consent pre-approved, session opened.
    let sid = page.request_session(&vmcp_url).await;
    page.state(sid, 0).await;

    // start with a start value that the userData macro picks up
    page.act(
        sid,
        "start",
        json!({"parameters": {"greeting": "hi-from-the-page"}}),
    )
    .await;
    page.state(sid, 5).await;
    let up = page
        .wait(
            "apiStateChanged 1",
            |f| f["name"] == "apiStateChanged" && f["data"][0] == 1,
            VM_WAIT,
        )
        .await;
    let url = up["data"][1].as_str().unwrap().to_string();
    // stateVariables already carried the real forwarded apiURL when the state became running
    page.wait(
        "stateVariables with the forwarded apiURL",
        |f| f["name"] == "stateVariables" && f["data"][0]["apiURL"] == url.as_str(),
        Duration::from_secs(5),
    )
    .await;
    let api = api_addr(&url);
    let first = support::wait_api(api).await;
    let context = support::get(api, "/context.txt")
        .await
        .expect("guest serves its context");
    assert!(
        context.contains("greeting=hi-from-the-page"),
        "context: {context:?}"
    );
    assert!(context.contains("site=e2e"), "context: {context:?}");

    // cap, pause, resume
    page.act(sid, "set", json!({"key": "executionCap", "value": 25}))
        .await;
    let cap = page.act(sid, "get", json!({"key": "executionCap"})).await;
    assert_eq!(cap["data"][0], "25");
    page.act(sid, "pause", json!({})).await;
    page.state(sid, 4).await;
    assert!(
        support::status(api).await.is_none(),
        "a paused guest does not answer"
    );
    page.act(sid, "resume", json!({})).await;
    page.state(sid, 5).await;
    support::wait_api(api).await;

    // hibernate: the process goes away; start restores the same boot
    page.act(sid, "hibernate", json!({})).await;
    page.state(sid, 3).await;
    assert!(
        qemu_pids_with(&vm_dir).is_empty(),
        "a hibernated VM has no process"
    );
    page.forget();
    page.act(sid, "start", json!({})).await;
    page.state(sid, 5).await;
    let up = page
        .wait(
            "apiStateChanged 1 after restore",
            |f| f["name"] == "apiStateChanged" && f["data"][0] == 1,
            VM_WAIT,
        )
        .await;
    let api = api_addr(up["data"][1].as_str().unwrap());
    let restored = support::wait_api(api).await;
    assert_eq!(
        restored.boot_id, first.boot_id,
        "restore continues the same boot"
    );
    assert!(
        restored.uptime >= first.uptime,
        "guest uptime continues after restore"
    );

    // reset: the guest reboots
    page.act(sid, "reset", json!({})).await;
    let deadline = tokio::time::Instant::now() + VM_WAIT;
    let rebooted = loop {
        if let Some(s) = support::status(api).await {
            if s.boot_id != first.boot_id {
                break s;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the guest did not reboot after reset"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };

    // kill -9 the daemon while the VM runs: the VM lives on, and a restarted daemon gives it back
    kill9(guard.daemon.as_mut().unwrap());
    assert!(
        !qemu_pids_with(&vm_dir).is_empty(),
        "the VM survives the daemon"
    );
    guard.daemon = Some(spawn_daemon(port, &data, &keystore, &origin));
    let mut page = Page::open(port, &origin).await;
    let sid = page.request_session(&vmcp_url).await;
    page.state(sid, 5).await;
    let same = support::wait_api(api).await;
    assert_eq!(
        same.boot_id, rebooted.boot_id,
        "the same running VM came back"
    );

    // The cap set before hibernation still holds: a CPU burn in the guest settles near 25 % of a core.
    let qemu = *qemu_pids_with(&vm_dir).first().expect("QEMU process");
    support::get(api, "/cgi-bin/burn?seconds=12")
        .await
        .expect("burn starts");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let used = support::cpu_percent(qemu, Duration::from_secs(4)).await;
    eprintln!("QEMU CPU use under a 25 % cap with a burning guest: {used:.1} %");
    assert!(
        used < 45.0,
        "cap 25 % not enforced: QEMU used {used:.1} % of a core"
    );
    let rss_kib = daemon_rss_kib(guard.daemon.as_ref().unwrap().id());
    eprintln!("daemon RSS with one running VM: {rss_kib} KiB");

    // stop (ACPI)
    page.act(sid, "stop", json!({})).await;
    page.state(sid, 2).await;

    // The guest powers itself off: the page is told without asking.
    page.forget();
    page.act(sid, "start", json!({})).await;
    page.state(sid, 5).await;
    let up = page
        .wait(
            "apiStateChanged 1 after a cold start",
            |f| f["name"] == "apiStateChanged" && f["data"][0] == 1,
            VM_WAIT,
        )
        .await;
    let api = api_addr(up["data"][1].as_str().unwrap());
    support::wait_api(api).await;
    let _ = support::get(api, "/cgi-bin/poweroff").await;
    page.state(sid, 2).await;

    // close: nothing left behind
    page.act(sid, "close", json!({})).await;
    page.state(sid, 0).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !qemu_pids_with(&vm_dir).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "QEMU still runs after close"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let left: Vec<_> = std::fs::read_dir(&vm_dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "VM files left after close: {left:?}");
}

/// Benchmark for docs/benchmarks.md ("QEMU backend"): the daemon's RSS with no VM, then with one and with
/// two running VMs of one website, each read after the guest's API answers and a short settle. Prints a
/// table; asserts only that both VMs ran and that nothing is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test -p webapi-core --test e2e_real_vm -- --ignored --nocapture"]
async fn bench_daemon_rss_with_one_and_two_vms() {
    if support::setup_tools_only().is_none() {
        return;
    }
    let (image, checksum) = guest_image();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let (key, keystore) = trusted_site_key(work.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site_addr = listener.local_addr().unwrap();
    let vmcp_doc = json!({
        "name": "bench-vm",
        "secret": "a-secret-only-this-site-knows",
        "cpus": 1,
        "memory": 256,
        "disk": 1024,
        "diskURL": format!("http://{site_addr}/guest.iso"),
        "diskChecksum": checksum,
        "apiPort": 80,
        "flags": 3,
    });
    serve_site(
        listener,
        Arc::new(Site {
            key,
            image,
            vmcp: vmcp_doc,
        }),
    );
    let origin = format!("http://{site_addr}");
    let port = free_port();
    let vm_dir = data.join("vms");
    let guard = Cleanup {
        daemon: Some(spawn_daemon(port, &data, &keystore, &origin)),
        vm_dir: vm_dir.clone(),
    };
    let pid = guard.daemon.as_ref().unwrap().id();
    let mut page = Page::open(port, &origin).await;
    let settle = Duration::from_secs(5);
    tokio::time::sleep(settle).await;
    let mut rows = vec![("no VM".to_string(), daemon_rss_kib(pid))];

    let mut sids = Vec::new();
    for (n, name) in ["bench-a", "bench-b"].into_iter().enumerate() {
        let sid = page
            .request_session(&format!("http://{site_addr}/vmcp?vm={name}"))
            .await;
        page.forget();
        page.act(sid, "start", json!({})).await;
        let wire = sid.to_string();
        let up = page
            .wait(
                "apiStateChanged 1",
                |f| f["name"] == "apiStateChanged" && f["id"] == wire.as_str() && f["data"][0] == 1,
                VM_WAIT,
            )
            .await;
        support::wait_api(api_addr(up["data"][1].as_str().unwrap())).await;
        tokio::time::sleep(settle).await;
        sids.push(sid);
        rows.push((format!("{} running VM(s)", n + 1), daemon_rss_kib(pid)));
    }
    assert_eq!(qemu_pids_with(&vm_dir).len(), 2, "two QEMU processes run");

    let base = rows[0].1.max(1) as f64;
    eprintln!("| daemon | RSS KiB | vs no VM |\n|---|---|---|");
    for (what, kib) in &rows {
        eprintln!("| {what} | {kib} | {:.2}× |", *kib as f64 / base);
    }
    for sid in sids {
        page.act(sid, "close", json!({})).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !qemu_pids_with(&vm_dir).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "QEMU still runs after close"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(guard);
}
