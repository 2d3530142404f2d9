//! The whole life of a real QEMU VM (TCG) through the `Vm` trait: boot from a disk image (overlay over the
//! test guest), guest API with context (fw_cfg and CONTEXT.SH disk), CPU cap under a CPU burn, pause,
//! resume, save and restore, reset, ACPI shutdown, destroy.

#![cfg(target_os = "linux")]

#[path = "qemu_support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::*;
use webapi_core::hypervisor::{BootMedium, Hypervisor, VmState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qemu_vm_lifecycle_through_the_vm_trait() {
    let Some((hv, iso)) = setup() else { return };
    let info = hv.info().clone();
    eprintln!("backend: {info:?}");
    let tmp = tempfile::tempdir().unwrap();
    let ctx = "CONTEXT for the lifecycle test: user=alice, \"quoted\" & more\n";
    let spec = spec(tmp.path(), "life", BootMedium::Disk(iso.clone()), ctx);
    let iso_sha_before = std::fs::read(&iso).unwrap();

    let mut vm = hv.create(&spec).await.expect("create");
    assert_eq!(vm.state().await.unwrap(), VmState::PoweredOff);
    assert!(spec.dir.join("disk.qcow2").is_file());
    assert!(vm.api_endpoint().is_none());

    // boot → the guest API answers with the context it received both ways
    vm.boot().await.expect("boot");
    assert_eq!(vm.state().await.unwrap(), VmState::Running);
    let api = vm.api_endpoint().expect("api endpoint");
    assert!(api.ip().is_loopback() && api.port() != 0);
    let first = wait_api(api).await;
    assert_eq!(
        get(api, "/context.txt").await.as_deref(),
        Some(ctx),
        "fw_cfg context"
    );
    assert_eq!(
        get(api, "/disk-context.txt").await.as_deref(),
        Some(ctx),
        "CONTEXT.SH context"
    );
    let pid = handle_pid(&vm.handle());
    let _guard = KillOnDrop(pid);
    let cgroup_of = |h: &webapi_core::hypervisor::VmHandle| {
        h.data["cgroup"]["dir"]
            .as_str()
            .map(std::path::PathBuf::from)
    };
    let first_cgroup = cgroup_of(&vm.handle());
    if info.cap_method.starts_with("cgroup") {
        assert!(
            first_cgroup.as_ref().is_some_and(|d| d.is_dir()),
            "no cgroup for QEMU"
        );
    }

    // CPU cap: a burning guest capped at 25 % stays well below its uncapped ~80 %
    get(api, "/cgi-bin/burn?seconds=12").await.expect("burn");
    vm.set_cpu_cap(25).await.expect("cap 25");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let capped = cpu_percent(pid, Duration::from_secs(4)).await;
    eprintln!(
        "QEMU CPU use at cap 25 % ({}): {capped:.1} %",
        info.cap_method
    );
    assert!(
        capped < 45.0,
        "capped CPU use {capped:.1} % is not near 25 %"
    );
    if let Some(dir) = vm.handle().data["cgroup"]["dir"].as_str() {
        let stat = std::fs::read_to_string(format!("{dir}/cpu.stat")).unwrap();
        let throttled: u64 = stat
            .lines()
            .find_map(|l| l.strip_prefix("nr_throttled "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(throttled > 0, "the cgroup never throttled QEMU: {stat}");
    }
    vm.set_cpu_cap(100).await.expect("uncap");

    // pause: the guest clock stops
    let before = wait_api(api).await;
    let t0 = Instant::now();
    vm.pause().await.expect("pause");
    assert_eq!(vm.state().await.unwrap(), VmState::Paused);
    assert!(
        get(api, "/cgi-bin/status").await.is_none(),
        "a paused guest answered"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    vm.resume().await.expect("resume");
    assert_eq!(vm.state().await.unwrap(), VmState::Running);
    let after = wait_api(api).await;
    let wall = t0.elapsed().as_secs_f64();
    let guest = after.uptime - before.uptime;
    eprintln!("pause: wall {wall:.2} s, guest clock advanced {guest:.2} s");
    assert!(
        guest < wall - 2.0,
        "guest clock ran while paused ({guest:.2} of {wall:.2} s)"
    );
    assert_eq!(after.boot_id, first.boot_id);

    // save: state file written, process gone; boot restores it without a reboot
    let before_save = wait_api(api).await;
    vm.save().await.expect("save");
    assert_eq!(vm.state().await.unwrap(), VmState::Saved);
    assert!(spec.dir.join("state.bin").is_file());
    assert!(!alive(pid), "QEMU still runs after save");
    assert!(vm.api_endpoint().is_none());
    if let Some(dir) = &first_cgroup {
        assert!(!dir.exists(), "cgroup {} left after save", dir.display());
    }
    // a daemon restarted while the VM is saved finds it saved
    let saved_handle = vm.handle();
    drop(vm);
    let mut vm = hv
        .reattach(&spec, &saved_handle)
        .await
        .expect("reattach saved");
    assert_eq!(vm.state().await.unwrap(), VmState::Saved);
    vm.boot().await.expect("restore");
    assert_eq!(vm.state().await.unwrap(), VmState::Running);
    assert!(!spec.dir.join("state.bin").exists(), "used state file kept");
    let api = vm.api_endpoint().expect("api after restore");
    let _guard2 = KillOnDrop(handle_pid(&vm.handle()));
    let restored = wait_api(api).await;
    assert_eq!(
        restored.boot_id, first.boot_id,
        "the guest rebooted instead of restoring"
    );
    assert!(
        restored.uptime >= before_save.uptime,
        "uptime went back: {restored:?} < {before_save:?}"
    );

    // reset: the guest reboots
    vm.reset().await.expect("reset");
    let rebooted = wait_api(api).await;
    assert_ne!(
        rebooted.boot_id, first.boot_id,
        "reset did not reboot the guest"
    );
    assert!(rebooted.uptime < restored.uptime + 60.0);

    // ACPI shutdown: the guest's acpid powers it off
    let pid = handle_pid(&vm.handle());
    let last_cgroup = cgroup_of(&vm.handle());
    vm.shutdown(Duration::from_secs(60))
        .await
        .expect("shutdown");
    assert_eq!(vm.state().await.unwrap(), VmState::PoweredOff);
    assert!(!alive(pid));
    let serial = std::fs::read_to_string(spec.dir.join("serial.log")).unwrap();
    assert!(
        serial.contains("CVM-ACPI-POWERDOWN"),
        "no ACPI power-down in {serial:?}"
    );

    // destroy: folder and process gone, the cached base image untouched
    vm.destroy().await.expect("destroy");
    assert!(!spec.dir.exists(), "VM folder left behind");
    if let Some(dir) = &last_cgroup {
        assert!(!dir.exists(), "cgroup {} left after destroy", dir.display());
    }
    assert_eq!(
        std::fs::read(&iso).unwrap(),
        iso_sha_before,
        "base image changed"
    );
}
