//! Benchmark (ignored by default; run by hand, results go to docs/benchmarks.md "## QEMU backend"):
//! per-operation cost of the QEMU backend against the bare QMP command on the same VM in the same run,
//! and boot-to-API time of the test guest.
//!
//! `cargo test -p webapi-core --test qemu_bench -- --ignored --nocapture`

#![cfg(target_os = "linux")]

#[path = "qemu_support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::*;
use webapi_core::hypervisor::{BootMedium, Hypervisor, Vm};

const N: u32 = 20;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run by hand"]
async fn qemu_backend_overhead() {
    let Some((hv, iso)) = setup() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let spec = spec(tmp.path(), "bench", BootMedium::Disk(iso), "bench");
    let mut vm = hv.create_qemu(&spec).await.unwrap();
    let t = Instant::now();
    vm.boot().await.unwrap();
    let booted = t.elapsed();
    let api = vm.api_endpoint().unwrap();
    wait_api(api).await;
    let boot_to_api = t.elapsed();
    let pid = vm.pid().unwrap();
    let _guard = KillOnDrop(pid);

    let mut rows = Vec::new();
    // pause / resume
    let (mut ours_p, mut raw_p, mut ours_r, mut raw_r) = (vec![], vec![], vec![], vec![]);
    for _ in 0..N {
        let t = Instant::now();
        vm.pause().await.unwrap();
        ours_p.push(ms(t.elapsed()));
        let t = Instant::now();
        vm.resume().await.unwrap();
        ours_r.push(ms(t.elapsed()));
        let t = Instant::now();
        vm.qmp("stop", None).await.unwrap();
        raw_p.push(ms(t.elapsed()));
        let t = Instant::now();
        vm.qmp("cont", None).await.unwrap();
        raw_r.push(ms(t.elapsed()));
    }
    rows.push(("pause (vs QMP stop)", median(ours_p), median(raw_p)));
    rows.push(("resume (vs QMP cont)", median(ours_r), median(raw_r)));

    // cap change: ours vs writing the cgroup file directly (cgroup methods) or nothing to compare
    let cgroup = vm.handle().data["cgroup"]["dir"].as_str().map(String::from);
    let (mut ours_c, mut raw_c) = (vec![], vec![]);
    for i in 0..N {
        let pct = if i % 2 == 0 { 30 } else { 60 };
        let t = Instant::now();
        vm.set_cpu_cap(pct).await.unwrap();
        ours_c.push(ms(t.elapsed()));
        if let Some(dir) = &cgroup {
            let t = Instant::now();
            std::fs::write(
                format!("{dir}/cpu.cfs_quota_us"),
                (pct as u32 * 1000).to_string(),
            )
            .unwrap();
            raw_c.push(ms(t.elapsed()));
        }
    }
    vm.set_cpu_cap(100).await.unwrap();
    rows.push((
        "cap change (vs cgroup file write)",
        median(ours_c),
        if raw_c.is_empty() {
            f64::NAN
        } else {
            median(raw_c)
        },
    ));

    // save: ours (stop + migrate + quit + rename) vs raw stop + migrate to file + poll (process kept)
    let mut raw_s = vec![];
    for _ in 0..3 {
        let t = Instant::now();
        vm.qmp("stop", None).await.unwrap();
        vm.qmp("migrate", Some(json!({"uri": "file:raw-state.bin"})))
            .await
            .unwrap();
        loop {
            let m = vm.qmp("query-migrate", None).await.unwrap();
            if m["status"] == "completed" {
                break;
            }
            assert_ne!(m["status"], "failed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        raw_s.push(ms(t.elapsed()));
        vm.qmp("cont", None).await.unwrap();
        std::fs::remove_file(spec.dir.join("raw-state.bin")).unwrap();
    }
    let (mut ours_s, mut restore) = (vec![], vec![]);
    for _ in 0..3 {
        let t = Instant::now();
        vm.save().await.unwrap();
        ours_s.push(ms(t.elapsed()));
        let t = Instant::now();
        vm.boot().await.unwrap();
        wait_api(vm.api_endpoint().unwrap()).await;
        restore.push(ms(t.elapsed()));
    }
    rows.push((
        "save (vs QMP stop+migrate, process kept)",
        median(ours_s),
        median(raw_s),
    ));
    let _guard2 = KillOnDrop(vm.pid().unwrap());

    println!("| operation | backend, median ms | bare, median ms |");
    println!("|---|---|---|");
    for (name, ours, raw) in rows {
        println!("| {name} | {ours:.2} | {raw:.2} |");
    }
    println!(
        "| restore from saved state to API answer | {:.0} | |",
        median(restore)
    );
    println!("| boot → QMP ready (spawn) | {:.0} | |", ms(booted));
    println!(
        "| boot → guest API answers (cold boot) | {:.0} | |",
        ms(boot_to_api)
    );
    println!(
        "cap method: {}, accelerator: {}",
        hv.info().cap_method,
        hv.info().accelerator
    );
    Box::new(vm).destroy().await.unwrap();
}
