//! Benchmark of idle control (not part of the test run), recorded in docs/benchmarks.md "## Idle control".
//!
//! Starts a private Xvfb and measures, with the real X11 source and the real controller:
//! 1. reaction latency: from a synthetic input (`xdotool mousemove`) to the controller asking the session
//!    for its "in use" cap (p50/p95 over N trials);
//! 2. the cost of one probe on the kept connection against opening a new X connection per probe (the
//!    original daemon's way), measured in the same run;
//! 3. the process's CPU use while the controller watches one controlled session for a while.
//!
//! Run: `cargo run -p webapi-core --example idle_bench [-- TRIALS WATCH_SECONDS]` (defaults 50 and 60).
//! Needs Xvfb and xdotool.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::mpsc;
use webapi_core::hypervisor::VmState;
use webapi_core::idle::x11::X11Source;
use webapi_core::idle::{
    ControlledSession, Controller, IdleAction, IdlePolicy, IdleSource, IdleTarget, SessionView,
    SystemClock, TargetError,
};

/// One session in cap mode whose cap follows the actions; every action is reported with its time.
struct BenchSession {
    view: Mutex<SessionView>,
    policy: IdlePolicy,
    actions: mpsc::UnboundedSender<(IdleAction, Instant)>,
}

#[async_trait]
impl IdleTarget for BenchSession {
    async fn controlled_sessions(&self) -> Vec<ControlledSession> {
        vec![ControlledSession {
            id: "bench".into(),
            policy: self.policy,
            view: *self.view.lock().unwrap(),
        }]
    }
    async fn apply(&self, _id: &str, action: IdleAction) -> Result<(), TargetError> {
        let at = Instant::now();
        if let IdleAction::SetCap(c) = action {
            self.view.lock().unwrap().cap = Some(c);
        }
        let _ = self.actions.send((action, at));
        Ok(())
    }
}

/// CPU time (user + system) of a process so far, from /proc/PID/stat.
fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    let after_name = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the full line, i.e. 11 and 12 after "pid (comm)".
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let hz = 100; // USER_HZ on Linux
    Duration::from_millis(ticks * 1000 / hz)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let trials: usize = args.next().map_or(50, |a| a.parse().expect("TRIALS"));
    let watch_secs: u64 = args
        .next()
        .map_or(60, |a| a.parse().expect("WATCH_SECONDS"));

    let mut xvfb = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-nolisten",
            "tcp",
            "-noreset",
            "-screen",
            "0",
            "640x480x24",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start Xvfb");
    let mut line = String::new();
    BufReader::new(xvfb.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let display = format!(":{}", line.trim());
    let source = Arc::new(
        X11Source::open(Some(display.clone()))
            .await
            .expect("X11 source"),
    );

    // 2. Probe cost: kept connection vs a new connection per probe.
    let n = 300;
    let t = Instant::now();
    for _ in 0..n {
        source.idle_time().await.unwrap();
    }
    let kept = t.elapsed() / n;
    let t = Instant::now();
    for _ in 0..n {
        X11Source::new(Some(display.clone()))
            .idle_time()
            .await
            .unwrap();
    }
    let fresh = t.elapsed() / n;
    println!(
        "probe: kept connection {:.3} ms, new connection per probe {:.3} ms (ratio {:.1}x)",
        ms(kept),
        ms(fresh),
        fresh.as_secs_f64() / kept.as_secs_f64()
    );

    // 1. Reaction latency.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let target = Arc::new(BenchSession {
        view: Mutex::new(SessionView {
            state: Some(VmState::Running),
            cap: Some(10),
            held_by_hand: false,
        }),
        policy: IdlePolicy::validate(1, 10, 90, 0).unwrap(),
        actions: tx,
    });
    let threshold = Duration::from_secs(1);
    let (ctl, _handle) = Controller::new(
        source.clone(),
        target.clone(),
        Arc::new(SystemClock),
        threshold,
    );
    let task = tokio::spawn(ctl.run());
    let mut latencies = Vec::with_capacity(trials);
    for trial in 0..trials {
        // Wait until the controller has lent the CPU (user idle for the threshold).
        loop {
            let (action, _) = rx.recv().await.expect("controller alive");
            if action == IdleAction::SetCap(90) {
                break;
            }
        }
        // Vary the phase of the input against the poll period.
        tokio::time::sleep(Duration::from_millis((trial as u64 * 37) % 500)).await;
        let x = (trial % 200) + 10;
        let t0 = Instant::now();
        let status = Command::new("xdotool")
            .args(["mousemove", &x.to_string(), "20"])
            .env("DISPLAY", &display)
            .status()
            .expect("xdotool");
        assert!(status.success());
        let (action, at) = rx.recv().await.expect("controller alive");
        assert_eq!(action, IdleAction::SetCap(10));
        latencies.push(at - t0);
    }
    latencies.sort();
    println!(
        "reaction latency over {trials} trials: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms (poll period {} ms)",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.95)),
        ms(*latencies.last().unwrap()),
        webapi_core::idle::controller::FAST_POLL.as_millis()
    );

    // 3. CPU while watching: the user stays active (fresh input at the start), one session controlled.
    Command::new("xdotool")
        .args(["mousemove", "300", "300"])
        .env("DISPLAY", &display)
        .status()
        .unwrap();
    let xvfb_pid = xvfb.id().to_string();
    let (self0, x0, t0) = (cpu_time("self"), cpu_time(&xvfb_pid), Instant::now());
    tokio::time::sleep(Duration::from_secs(watch_secs)).await;
    let wall = t0.elapsed();
    let own = cpu_time("self") - self0;
    let server = cpu_time(&xvfb_pid) - x0;
    println!(
        "watching for {:.0} s: this process {:.3} % of one core ({} ms CPU), X server {:.3} % ({} ms)",
        wall.as_secs_f64(),
        100.0 * own.as_secs_f64() / wall.as_secs_f64(),
        own.as_millis(),
        100.0 * server.as_secs_f64() / wall.as_secs_f64(),
        server.as_millis()
    );
    task.abort();
    let _ = xvfb.kill();
    let _ = xvfb.wait();
}
