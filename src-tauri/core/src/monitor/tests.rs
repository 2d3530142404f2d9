//! Tests of the resource monitor against real processes (a busy loop and a sleeper).

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::cpu::percent;
use super::*;

/// A child process killed when the test ends, whatever happens.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_sh(script: &str) -> KillOnDrop {
    KillOnDrop(
        Command::new("sh")
            .args(["-c", script])
            .spawn()
            .expect("sh runs"),
    )
}

fn wall_ms(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64 + 1
}

#[test]
fn percent_is_cpu_time_over_wall_time() {
    assert_eq!(percent(1_000, 10_000, 1_500, 11_000), Some(50.0));
    assert_eq!(percent(0, 0, 4_000, 2_000), Some(200.0));
    assert_eq!(percent(5, 100, 9, 100), None, "no wall time passed");
    assert_eq!(percent(500, 0, 100, 1_000), None, "counter went backwards");
}

#[test]
fn history_keeps_the_window_and_is_bounded() {
    let mut h = History::new(Duration::from_secs(10));
    let sample = |at_ms| Sample {
        at_ms,
        cap: Some(50),
        cpu_percent: None,
    };
    for at in (0..=20_000).step_by(2_000) {
        h.push("a", sample(at));
    }
    let a = &h.snapshot()["a"];
    assert_eq!(a.first().unwrap().at_ms, 10_000, "older than 10 s dropped");
    assert_eq!(a.last().unwrap().at_ms, 20_000);
    for at in 0..(MAX_SAMPLES as u64 + 50) {
        h.push("b", sample(100_000 + at));
    }
    assert_eq!(h.snapshot()["b"].len(), MAX_SAMPLES);
    for i in 0..MAX_SESSIONS + 10 {
        h.push(&format!("s{i}"), sample(1));
    }
    assert_eq!(h.snapshot().len(), MAX_SESSIONS);
    h.retain_sessions(|name| name == "a");
    assert_eq!(h.snapshot().keys().collect::<Vec<_>>(), ["a"]);
}

#[test]
fn a_busy_process_uses_more_cpu_than_a_sleeping_one() {
    let busy = spawn_sh("while :; do :; done");
    let idle = spawn_sh("sleep 60");
    let pids = [busy.0.id(), idle.0.id()];
    let mut meter = CpuMeter::new();
    let start = Instant::now();
    assert!(
        meter.measure(&pids, 0).is_empty(),
        "the first reading has nothing to compare with"
    );
    std::thread::sleep(Duration::from_millis(800));
    let cpu = meter.measure(&pids, wall_ms(start));
    let (busy_cpu, idle_cpu) = (cpu[&pids[0]], cpu[&pids[1]]);
    assert!(busy_cpu > 1.0, "busy loop: {busy_cpu}%");
    assert!(
        idle_cpu < busy_cpu,
        "sleeper {idle_cpu}% vs busy {busy_cpu}%"
    );
    assert!(
        meter.measure(&[u32::MAX - 1], wall_ms(start)).is_empty(),
        "no such process"
    );
}

#[test]
fn the_sampler_records_cap_and_cpu_and_forgets_closed_sessions() {
    let busy = spawn_sh("while :; do :; done");
    let mut sampler = Sampler::new();
    let observed = vec![
        Observed {
            name: "vm-a".into(),
            cap: Some(40),
            pid: Some(busy.0.id()),
        },
        Observed {
            name: "vm-b".into(),
            cap: None,
            pid: None,
        },
    ];
    let start = Instant::now();
    sampler.record(&observed, 1);
    std::thread::sleep(Duration::from_millis(500));
    sampler.record(&observed, 1 + wall_ms(start));
    let all = sampler.history().snapshot();
    let a = &all["vm-a"];
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].cpu_percent, None);
    assert!(a[1].cpu_percent.is_some_and(|c| c > 0.0), "{a:?}");
    assert_eq!(a[1].cap, Some(40));
    assert_eq!(all["vm-b"][1].cpu_percent, None);
    sampler.record(&observed[..1], 2 + wall_ms(start));
    assert!(!sampler.history().snapshot().contains_key("vm-b"));
    let json = serde_json::to_value(a[1]).unwrap();
    assert_eq!(json["cap"], 40);
    assert!(json["atMs"].is_u64() && json["cpuPercent"].is_number());
}

/// On a real daemon without sessions the monitor runs and reports nothing.
#[tokio::test]
async fn the_monitor_of_a_real_daemon_without_sessions_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::config::DaemonConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        allow_origins: Vec::new(),
        image_mirror: None,
    };
    let daemon = crate::daemon::Daemon::bind(&config).await.unwrap();
    let monitor = ResourceMonitor::spawn(daemon.state());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(monitor.samples().is_empty());
}
