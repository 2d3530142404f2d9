//! Shared helpers of the real-QEMU tests: the test guest (built on demand by tests/guest/build.sh,
//! cached), VM specs in temp folders, HTTP to the guest API, CPU use of a process from /proc.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use webapi_core::hypervisor::qemu::{find_on_path, QemuHypervisor, QEMU_BINARY};
use webapi_core::hypervisor::{BootMedium, VmSpec};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The QEMU backend and the test guest ISO, or `None` (test skipped) when QEMU is missing outside CI.
/// In CI (`CI=true`) a missing tool is a failure.
pub fn setup() -> Option<(QemuHypervisor, PathBuf)> {
    setup_tools_only()?;
    let hv = QemuHypervisor::detect().expect("QEMU backend");
    Some((hv, guest_iso().clone()))
}

/// `Some(())` when QEMU is installed; `None` (skip) when it is not and `CI` is unset; panics in CI.
pub fn setup_tools_only() -> Option<()> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    if find_on_path(QEMU_BINARY).is_none() {
        assert!(
            !ci,
            "{QEMU_BINARY} is missing (run scripts/install-deps.sh test)"
        );
        eprintln!("SKIPPED: {QEMU_BINARY} is not installed");
        return None;
    }
    Some(())
}

/// Builds (or reuses) the test guest and returns its ISO path.
pub fn guest_iso() -> &'static PathBuf {
    static ISO: OnceLock<PathBuf> = OnceLock::new();
    ISO.get_or_init(|| {
        let root = repo_root();
        let out = std::process::Command::new(root.join("tests/guest/build.sh"))
            .arg(root.join("tests/.cache/guest"))
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("run tests/guest/build.sh");
        assert!(out.status.success(), "tests/guest/build.sh failed");
        let path = String::from_utf8(out.stdout).unwrap();
        let iso = PathBuf::from(path.lines().last().expect("ISO path").trim());
        assert!(iso.is_file(), "{} missing", iso.display());
        // the image ships with its SHA-256, as a VMCP's diskChecksum: it must match
        let sums =
            std::fs::read_to_string(iso.with_extension("iso.sha256")).expect("guest.iso.sha256");
        let want = sums.split_whitespace().next().expect("checksum");
        let got = ring::digest::digest(&ring::digest::SHA256, &std::fs::read(&iso).unwrap());
        assert_eq!(
            hex::encode(got.as_ref()),
            want,
            "guest.iso does not match its .sha256"
        );
        iso.canonicalize().unwrap()
    })
}

/// A spec for a 1-vCPU, 128 MiB test VM in `base/name`.
pub fn spec(base: &Path, name: &str, medium: BootMedium, context: &str) -> VmSpec {
    VmSpec {
        name: name.into(),
        dir: base.join(name),
        cpus: 1,
        memory_mb: 128,
        disk_mb: 64,
        medium,
        context: Some(context.into()),
        api_guest_port: Some(80),
        execution_cap: 100,
        flags: 0,
    }
}

/// GET `path` from the guest API; `None` on any failure.
pub async fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .pool_max_idle_per_host(0)
        .no_proxy()
        .build()
        .ok()?;
    let r = client
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.text().await.ok()
}

/// The guest's `/cgi-bin/status`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Status {
    pub uptime: f64,
    pub boot_id: String,
}

pub async fn status(addr: SocketAddr) -> Option<Status> {
    serde_json::from_str(&get(addr, "/cgi-bin/status").await?).ok()
}

/// Waits until the guest API answers (generous: TCG on a busy shared machine).
pub async fn wait_api(addr: SocketAddr) -> Status {
    let start = Instant::now();
    loop {
        if let Some(s) = status(addr).await {
            return s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "guest API at {addr} did not answer"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// CPU time (user + system) of `pid` in seconds, from /proc/PID/stat.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("process stat");
    let rest = stat.rsplit_once(')').unwrap().1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // after ")": state(0) ppid(1) ... utime(11) stime(12)
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz
}

/// Average CPU use of `pid` (percent of one core) over `window`.
pub async fn cpu_percent(pid: u32, window: Duration) -> f64 {
    let (c0, t0) = (cpu_seconds(pid), Instant::now());
    tokio::time::sleep(window).await;
    (cpu_seconds(pid) - c0) / t0.elapsed().as_secs_f64() * 100.0
}

pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let st = s
                .rsplit_once(')')
                .unwrap()
                .1
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
            st != "Z" && st != "X"
        })
        .unwrap_or(false)
}

/// The QEMU pid stored in a VM handle.
pub fn handle_pid(h: &webapi_core::hypervisor::VmHandle) -> u32 {
    h.data["pid"].as_u64().expect("pid in handle") as u32
}

/// Kills a QEMU process when a failing test unwinds, so no VM outlives its test.
pub struct KillOnDrop(pub u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if std::thread::panicking() && alive(self.0) {
            // SAFETY: kill(2) on the pid of the VM this test started.
            unsafe {
                libc::kill(self.0 as libc::pid_t, libc::SIGKILL);
            }
        }
    }
}
