//! Test-only fakes for the daemon's ports (VMCP source, consent, images, an in-memory hypervisor), a
//! real daemon on 127.0.0.1:0, and a real tokio-tungstenite client. Shared by the integration tests and
//! the WebSocket benchmark.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, Notify};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use webapi_core::config::DaemonConfig;
use webapi_core::daemon::ports::*;
use webapi_core::daemon::{Daemon, DaemonState, Limits, Services};
use webapi_core::hypervisor::*;
use webapi_core::protocol::CallerOrigin;
use webapi_core::protocol::ErrorCode;

// ---------------------------------------------------------------- VMCP source

/// Serves VMCP documents by URL; trusts only the domains it was given.
pub struct FakeVmcp {
    pub docs: Mutex<HashMap<String, Map<String, Value>>>,
    pub trusted: Vec<String>,
    pub fetches: AtomicU64,
}

impl FakeVmcp {
    pub fn new(trusted: &[&str]) -> Arc<Self> {
        Arc::new(Self {
            docs: Mutex::new(HashMap::new()),
            trusted: trusted.iter().map(|s| s.to_string()).collect(),
            fetches: AtomicU64::new(0),
        })
    }
    pub fn add(&self, url: &str, doc: Value) {
        self.docs
            .lock()
            .unwrap()
            .insert(url.into(), doc.as_object().unwrap().clone());
    }
}

#[async_trait]
impl VmcpSource for FakeVmcp {
    async fn fetch_verified(
        &self,
        url: &str,
        origin: &CallerOrigin,
    ) -> Result<Map<String, Value>, VmcpFailure> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        if !self.trusted.iter().any(|d| d == origin.domain()) {
            return Err(VmcpFailure {
                message: "The domain is not trusted".into(),
                code: ErrorCode::NotTrusted,
                detail: format!("{} is not in the keystore", origin.domain()),
            });
        }
        self.docs
            .lock()
            .unwrap()
            .get(url)
            .cloned()
            .ok_or_else(|| VmcpFailure {
                message: "Unable to contact the VMCP endpoint".into(),
                code: ErrorCode::IoError,
                detail: format!("no document at {url}"),
            })
    }
}

// ---------------------------------------------------------------- consent

/// Answers with scripted decisions (default: allowed); can be held until released.
pub struct FakeConsent {
    pub script: Mutex<VecDeque<ConsentDecision>>,
    pub asked: Mutex<Vec<ConsentRequest>>,
    pub hold: Mutex<bool>,
    pub release: Notify,
}

impl FakeConsent {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            script: Mutex::new(VecDeque::new()),
            asked: Mutex::new(Vec::new()),
            hold: Mutex::new(false),
            release: Notify::new(),
        })
    }
    pub fn then(&self, d: ConsentDecision) {
        self.script.lock().unwrap().push_back(d);
    }
    pub fn count(&self) -> usize {
        self.asked.lock().unwrap().len()
    }
    pub fn hold(&self, on: bool) {
        *self.hold.lock().unwrap() = on;
        if !on {
            self.release.notify_waiters();
        }
    }
}

#[async_trait]
impl ConsentGate for FakeConsent {
    async fn ask(&self, request: ConsentRequest) -> ConsentDecision {
        self.asked.lock().unwrap().push(request);
        loop {
            let notified = self.release.notified();
            if !*self.hold.lock().unwrap() {
                break;
            }
            notified.await;
        }
        self.script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(ConsentDecision::Allowed)
    }
}

// ---------------------------------------------------------------- images

/// Returns a small file in a temp folder; records what was asked.
pub struct FakeImages {
    pub dir: PathBuf,
    pub requests: Mutex<Vec<ImageRequest>>,
}

impl FakeImages {
    pub fn new(dir: &Path) -> Arc<Self> {
        Arc::new(Self {
            dir: dir.to_path_buf(),
            requests: Mutex::new(Vec::new()),
        })
    }
}

/// The version the fake image source resolves `latest` to.
pub const RESOLVED_LATEST: &str = "2026.11-1";

#[async_trait]
impl ImageSource for FakeImages {
    async fn fetch(
        &self,
        request: &ImageRequest,
        progress: ProgressFn,
    ) -> Result<LocalImage, ImageFailure> {
        self.requests.lock().unwrap().push(request.clone());
        progress(0.5, "Downloading the image");
        let path = self.dir.join("image.iso");
        std::fs::write(&path, b"image").map_err(|e| ImageFailure {
            message: "Unable to store the image".into(),
            code: ErrorCode::IoError,
            detail: e.to_string(),
        })?;
        progress(1.0, "Image ready");
        // Like the real cache, `latest` comes back as the concrete version fetched.
        let resolved_version = match request {
            ImageRequest::CernVm { version, .. } if version == "latest" => {
                Some(RESOLVED_LATEST.into())
            }
            _ => None,
        };
        Ok(LocalImage {
            path,
            resolved_version,
            hold: Default::default(),
        })
    }
}

// ---------------------------------------------------------------- hypervisor

/// One in-memory VM, shared by the hypervisor (for reattach) and its `Vm` objects.
pub struct FakeVmData {
    pub spec: VmSpec,
    pub state: VmState,
    /// The "process" died: reattach finds it powered off.
    pub dead: bool,
    pub destroyed: bool,
    pub cap: u8,
    pub resets: u32,
    pub events: broadcast::Sender<VmEvent>,
}

#[derive(Default)]
pub struct FakeHvInner {
    pub vms: Mutex<HashMap<String, Arc<Mutex<FakeVmData>>>>,
    pub calls: Mutex<Vec<String>>,
    pub failures: Mutex<HashMap<String, u32>>,
    pub api: Mutex<Option<SocketAddr>>,
    next: AtomicU64,
}

/// A test-only in-memory hypervisor. Survives a daemon restart in the same test (like VM processes).
#[derive(Clone)]
pub struct FakeHv {
    pub inner: Arc<FakeHvInner>,
    info: HypervisorInfo,
}

impl FakeHv {
    pub fn new() -> Self {
        Self {
            inner: Arc::default(),
            info: HypervisorInfo {
                name: "fake".into(),
                version: "1".into(),
                accelerator: "none".into(),
                cap_method: "none".into(),
            },
        }
    }
    /// Makes the next `n` calls of `op` fail.
    pub fn fail(&self, op: &str, n: u32) {
        self.inner.failures.lock().unwrap().insert(op.into(), n);
    }
    pub fn calls(&self) -> Vec<String> {
        self.inner.calls.lock().unwrap().clone()
    }
    pub fn set_api(&self, addr: SocketAddr) {
        *self.inner.api.lock().unwrap() = Some(addr);
    }
    pub fn only_vm(&self) -> Arc<Mutex<FakeVmData>> {
        let vms = self.inner.vms.lock().unwrap();
        assert_eq!(vms.len(), 1, "expected exactly one VM");
        vms.values().next().unwrap().clone()
    }
}

impl FakeHvInner {
    fn call(&self, op: &'static str) -> Result<(), HvError> {
        self.calls.lock().unwrap().push(op.to_string());
        let mut f = self.failures.lock().unwrap();
        if let Some(n) = f.get_mut(op) {
            if *n > 0 {
                *n -= 1;
                return Err(HvError::Failed {
                    action: op,
                    detail: "injected failure".into(),
                });
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Hypervisor for FakeHv {
    fn info(&self) -> &HypervisorInfo {
        &self.info
    }
    async fn create(&self, spec: &VmSpec) -> Result<Box<dyn Vm>, HvError> {
        self.inner.call("create")?;
        let id = format!("vm{}", self.inner.next.fetch_add(1, Ordering::SeqCst));
        let (events, _) = broadcast::channel(16);
        let data = Arc::new(Mutex::new(FakeVmData {
            spec: spec.clone(),
            state: VmState::PoweredOff,
            dead: false,
            destroyed: false,
            cap: spec.execution_cap,
            resets: 0,
            events,
        }));
        self.inner
            .vms
            .lock()
            .unwrap()
            .insert(id.clone(), data.clone());
        Ok(Box::new(FakeVm {
            id,
            data,
            hv: self.inner.clone(),
        }))
    }
    async fn reattach(&self, _spec: &VmSpec, handle: &VmHandle) -> Result<Box<dyn Vm>, HvError> {
        self.inner.call("reattach")?;
        let id = handle.data["id"].as_str().unwrap_or_default().to_string();
        let data = self
            .inner
            .vms
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .ok_or_else(|| HvError::Failed {
                action: "reattach",
                detail: "no such VM".into(),
            })?;
        {
            let mut d = data.lock().unwrap();
            if d.destroyed {
                return Err(HvError::Failed {
                    action: "reattach",
                    detail: "destroyed".into(),
                });
            }
            if d.dead {
                d.dead = false;
                d.state = VmState::PoweredOff;
            }
        }
        Ok(Box::new(FakeVm {
            id,
            data,
            hv: self.inner.clone(),
        }))
    }
}

pub struct FakeVm {
    id: String,
    pub data: Arc<Mutex<FakeVmData>>,
    hv: Arc<FakeHvInner>,
}

impl FakeVm {
    fn go(&mut self, op: &'static str, from: &[VmState], to: VmState) -> Result<(), HvError> {
        self.hv.call(op)?;
        let mut d = self.data.lock().unwrap();
        if !from.contains(&d.state) {
            return Err(HvError::InvalidState {
                action: op,
                state: d.state,
            });
        }
        d.state = to;
        Ok(())
    }
}

#[async_trait]
impl Vm for FakeVm {
    fn handle(&self) -> VmHandle {
        VmHandle {
            backend: "fake".into(),
            data: json!({ "id": self.id }),
        }
    }
    async fn state(&mut self) -> Result<VmState, HvError> {
        Ok(self.data.lock().unwrap().state)
    }
    async fn boot(&mut self) -> Result<(), HvError> {
        self.go(
            "boot",
            &[VmState::PoweredOff, VmState::Saved],
            VmState::Running,
        )
    }
    async fn pause(&mut self) -> Result<(), HvError> {
        self.go("pause", &[VmState::Running], VmState::Paused)
    }
    async fn resume(&mut self) -> Result<(), HvError> {
        self.go("resume", &[VmState::Paused], VmState::Running)
    }
    async fn save(&mut self) -> Result<(), HvError> {
        self.go("save", &[VmState::Running, VmState::Paused], VmState::Saved)
    }
    async fn reset(&mut self) -> Result<(), HvError> {
        self.go(
            "reset",
            &[VmState::Running, VmState::Paused],
            VmState::Running,
        )?;
        self.data.lock().unwrap().resets += 1;
        Ok(())
    }
    async fn shutdown(&mut self, _deadline: Duration) -> Result<(), HvError> {
        self.go("shutdown", &[VmState::Running], VmState::PoweredOff)
    }
    async fn power_off(&mut self) -> Result<(), HvError> {
        self.go(
            "power_off",
            &[
                VmState::Running,
                VmState::Paused,
                VmState::Saved,
                VmState::PoweredOff,
            ],
            VmState::PoweredOff,
        )
    }
    async fn destroy(self: Box<Self>) -> Result<(), HvError> {
        self.hv.call("destroy")?;
        let mut d = self.data.lock().unwrap();
        d.destroyed = true;
        d.state = VmState::PoweredOff;
        Ok(())
    }
    async fn set_cpu_cap(&mut self, percent: u8) -> Result<(), HvError> {
        self.hv.call("set_cpu_cap")?;
        self.data.lock().unwrap().cap = percent.max(1);
        Ok(())
    }
    fn api_endpoint(&self) -> Option<SocketAddr> {
        *self.hv.api.lock().unwrap()
    }
    fn events(&self) -> broadcast::Receiver<VmEvent> {
        self.data.lock().unwrap().events.subscribe()
    }
}

// ---------------------------------------------------------------- daemon

/// The fakes of one test, reachable for assertions.
pub struct Fakes {
    pub vmcp: Arc<FakeVmcp>,
    pub consent: Arc<FakeConsent>,
    pub images: Arc<FakeImages>,
    pub hv: FakeHv,
    pub tmp: Arc<tempfile::TempDir>,
}

impl Fakes {
    pub fn new() -> Self {
        let tmp = Arc::new(tempfile::tempdir().unwrap());
        std::fs::create_dir_all(tmp.path().join("images")).unwrap();
        let f = Self {
            vmcp: FakeVmcp::new(&["test.local"]),
            consent: FakeConsent::new(),
            images: FakeImages::new(&tmp.path().join("images")),
            hv: FakeHv::new(),
            tmp,
        };
        f.vmcp.add(VMCP_URL, vmcp_doc("my-vm", "s3cret"));
        f
    }
    pub fn services(&self) -> Services {
        Services {
            vmcp: Some(self.vmcp.clone()),
            consent: Some(self.consent.clone()),
            images: Some(self.images.clone()),
            hypervisor: Some(Arc::new(self.hv.clone())),
            events: Default::default(),
        }
    }
    pub fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }
}

pub const VMCP_URL: &str = "http://test.local:8081/vmcp";
pub const ORIGIN: &str = "http://test.local:8080";

pub fn vmcp_doc(name: &str, secret: &str) -> Value {
    json!({
        "name": name, "secret": secret, "signature": "c2ln",
        "cpus": 2, "memory": 256, "disk": 512, "flags": 49, "cernvmVersion": "2.6-9",
        "userData": "greeting=${greeting:hello}\nwho=${who}\n",
        "canOverride": "cpus", "apiPort": 8000, "daemonControlled": 1, "daemonMinCap": 10,
        "daemonMaxCap": 90, "daemonFlags": 0, "extraKey": "kept"
    })
}

/// Test limits: short ping/idle times, otherwise the defaults.
pub fn test_limits() -> Limits {
    Limits {
        shutdown_deadline: Duration::from_millis(200),
        probe_tick: Duration::from_millis(50),
        ..Limits::default()
    }
}

/// A running daemon on 127.0.0.1:0; stops when dropped.
pub struct Running {
    pub addr: SocketAddr,
    pub state: Arc<DaemonState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops accepting and aborts the server task (sessions' tasks keep running, as after a kill).
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

pub async fn start_daemon(services: Services, limits: Limits, data_dir: &Path) -> Running {
    let config = DaemonConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        allow_origins: Vec::new(),
        image_mirror: None,
    };
    let daemon = Daemon::builder(&config)
        .services(services)
        .limits(limits)
        .bind()
        .await
        .expect("daemon binds");
    let addr = daemon.local_addr();
    let state = daemon.state();
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let _ = daemon
            .run(async {
                let _ = stopped.await;
            })
            .await;
    });
    Running {
        addr,
        state,
        stop: Some(stop),
        task: Some(task),
    }
}

// ---------------------------------------------------------------- client

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A real WebSocket client speaking the protocol like the 2.0.x JS.
pub struct Client {
    pub ws: Ws,
    next: u64,
    /// Frames received but not yet consumed by an `expect`.
    pub backlog: VecDeque<Value>,
}

pub async fn connect_raw(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(http_name(k), v.parse().unwrap());
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

fn http_name(k: &str) -> tokio_tungstenite::tungstenite::http::HeaderName {
    tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap()
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::connect_from(addr, ORIGIN).await
    }
    pub async fn connect_from(addr: SocketAddr, origin: &str) -> Self {
        let ws = connect_raw(addr, "/", &[("origin", origin)])
            .await
            .expect("WebSocket connects");
        Self {
            ws,
            next: 0,
            backlog: VecDeque::new(),
        }
    }
    pub fn from_ws(ws: Ws) -> Self {
        Self {
            ws,
            next: 0,
            backlog: VecDeque::new(),
        }
    }

    /// Sends an action with the next `a-N` id; returns the id.
    pub async fn send(&mut self, name: &str, data: Value) -> String {
        self.next += 1;
        let id = format!("a-{}", self.next);
        let frame = json!({"type": "action", "name": name, "id": id, "data": data});
        self.send_text(&frame.to_string()).await;
        id
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::Text(text.into())).await.unwrap();
    }

    /// The next text frame, raw (fails after 5 s).
    pub async fn next_text(&mut self) -> String {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(5), self.ws.next())
                .await
                .expect("a frame within 5 s")
                .expect("connection open")
                .expect("valid frame");
            match msg {
                Message::Text(t) => return t.to_string(),
                Message::Close(c) => panic!("connection closed: {c:?}"),
                _ => continue,
            }
        }
    }

    pub async fn next_frame(&mut self) -> Value {
        if let Some(v) = self.backlog.pop_front() {
            return v;
        }
        let text = self.next_text().await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("invalid JSON {text:?}: {e}"))
    }

    /// Waits for the first frame matching `pred`, keeping the others in the backlog, in order.
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(pos) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(pos).unwrap();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let text = tokio::time::timeout_at(deadline, self.next_text())
                .await
                .unwrap_or_else(|_| {
                    panic!("timed out waiting for {what}; backlog: {:?}", self.backlog)
                });
            let v: Value = serde_json::from_str(&text).unwrap();
            if pred(&v) {
                return v;
            }
            self.backlog.push_back(v);
        }
    }

    /// Waits for event `name` with `id`.
    pub async fn event(&mut self, name: &str, id: &str) -> Value {
        let (n, i) = (name.to_string(), id.to_string());
        self.expect(&format!("event {name} id {id}"), move |v| {
            v["type"] == "event" && v["name"] == n.as_str() && v["id"] == i.as_str()
        })
        .await
    }

    /// Waits for an error frame with `id` (`None`: without id).
    pub async fn error(&mut self, id: Option<&str>) -> Value {
        let i = id.map(str::to_string);
        self.expect(&format!("error for {id:?}"), move |v| {
            v["type"] == "error"
                && match &i {
                    Some(i) => v["id"] == i.as_str(),
                    None => v.get("id").is_none(),
                }
        })
        .await
    }

    /// Handshake as the JS does it; checks the result and `privileged`.
    pub async fn handshake(&mut self) {
        let id = self
            .send("handshake", json!({"version": "2.0.12", "auth": ""}))
            .await;
        let r = self
            .expect("handshake result", |v| v["type"] == "result")
            .await;
        assert_eq!(r["id"], id.as_str());
        assert_eq!(r["data"]["version"], "2.0.12");
        let p = self.event("privileged", "").await;
        assert_eq!(p["data"], json!([0]));
    }

    /// requestSession to success; returns the session id. Drains up to the first stateChanged.
    pub async fn open(&mut self, vmcp: &str) -> u64 {
        let id = self.send("requestSession", json!({ "vmcp": vmcp })).await;
        let ok = self
            .expect("succeed or failed", |v| {
                v["id"] == id.as_str() && (v["name"] == "succeed" || v["name"] == "failed")
            })
            .await;
        assert_eq!(ok["name"], "succeed", "{ok}");
        let sid = ok["data"][1].as_u64().expect("numeric session id");
        self.event("stateVariables", &sid.to_string()).await;
        self.event("stateChanged", &sid.to_string()).await;
        self.backlog.clear();
        sid
    }

    /// Sends a session action; returns the request id.
    pub async fn act(&mut self, name: &str, sid: u64, extra: Value) -> String {
        let mut data = json!({ "session_id": sid });
        if let Value::Object(m) = extra {
            data.as_object_mut().unwrap().extend(m);
        }
        self.send(name, data).await
    }

    /// Waits for the session's next `stateChanged` and returns its state, checking that a
    /// `stateVariables` came right before it.
    pub async fn state_changed(&mut self, sid: u64) -> i64 {
        let sid = sid.to_string();
        let want = sid.clone();
        let mut previous: Option<Value> = None;
        loop {
            let v = self.next_frame().await;
            if v["id"] == want.as_str() && v["name"] == "stateChanged" {
                let prev = previous.expect("a frame before stateChanged");
                assert_eq!(
                    prev["name"], "stateVariables",
                    "stateVariables must precede stateChanged"
                );
                assert_eq!(prev["id"], want.as_str());
                return v["data"][0].as_i64().unwrap();
            }
            previous = Some(v);
        }
    }
}

/// A loopback HTTP "guest API" that answers every request.
pub async fn guest_api() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
                    .await;
            });
        }
    });
    addr
}

/// An idle source whose idle time the test sets (`*source.0.lock().unwrap() = ...`).
pub struct ScriptedIdle(pub Mutex<Duration>);

#[async_trait]
impl webapi_core::idle::IdleSource for ScriptedIdle {
    fn name(&self) -> &'static str {
        "scripted"
    }
    async fn idle_time(&self) -> Result<Duration, webapi_core::idle::IdleError> {
        Ok(*self.0.lock().unwrap())
    }
}

/// Waits (up to 10 s) until the only VM of the in-memory hypervisor runs at `cap`.
pub async fn cap_until(fakes: &Fakes, cap: u8) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = fakes.hv.only_vm().lock().unwrap().cap;
        if now == cap {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for cap {cap}: the VM runs at {now}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
