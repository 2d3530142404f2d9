//! The last-resort CPU cap, forced on: a QMP stop/cont duty cycle caps a burning real QEMU VM (TCG), and
//! never resumes a VM the session paused.

#![cfg(target_os = "linux")]

#[path = "qemu_support/mod.rs"]
mod support;

use std::time::Duration;

use support::*;
use webapi_core::hypervisor::qemu::QemuHypervisor;
use webapi_core::hypervisor::{BootMedium, Hypervisor, VmState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qmp_duty_cycle_caps_cpu_and_respects_pause() {
    // this test binary runs alone in its process, so setting the variable affects only it
    std::env::set_var("CVMWEBAPI_CAP_METHOD", "qmp-duty-cycle");
    let Some((_, iso)) = setup() else { return };
    let hv = QemuHypervisor::detect().unwrap();
    assert_eq!(hv.info().cap_method, "qmp-duty-cycle");
    let tmp = tempfile::tempdir().unwrap();
    let spec = spec(tmp.path(), "duty", BootMedium::Iso(iso), "ctx-duty");

    let mut vm = hv.create(&spec).await.expect("create");
    vm.boot().await.expect("boot");
    let pid = handle_pid(&vm.handle());
    let _guard = KillOnDrop(pid);
    let api = vm.api_endpoint().expect("api");
    wait_api(api).await;

    get(api, "/cgi-bin/burn?seconds=15").await.expect("burn");
    vm.set_cpu_cap(25).await.expect("cap 25");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let capped = cpu_percent(pid, Duration::from_secs(4)).await;
    eprintln!("QEMU CPU use at cap 25 % (qmp-duty-cycle): {capped:.1} %");
    assert!(
        capped < 45.0,
        "duty-cycled CPU use {capped:.1} % is not near 25 %"
    );
    assert_eq!(vm.state().await.unwrap(), VmState::Running);

    // a session pause holds even while the duty cycle runs
    vm.pause().await.expect("pause");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(vm.state().await.unwrap(), VmState::Paused);
    assert!(
        get(api, "/cgi-bin/status").await.is_none(),
        "paused guest answered"
    );
    vm.resume().await.expect("resume");

    // save and restore with the duty cycle on: the cap survives, the restored guest runs
    let before = wait_api(api).await;
    vm.save().await.expect("save under duty cycle");
    assert_eq!(vm.state().await.unwrap(), VmState::Saved);
    vm.boot().await.expect("restore under duty cycle");
    let pid = handle_pid(&vm.handle());
    let _guard2 = KillOnDrop(pid);
    assert_eq!(vm.handle().data["cap"], 25);
    let api = vm.api_endpoint().expect("api after restore");
    let after = wait_api(api).await;
    assert_eq!(after.boot_id, before.boot_id, "restore rebooted the guest");
    assert_eq!(vm.state().await.unwrap(), VmState::Running);
    vm.set_cpu_cap(100).await.expect("uncap");
    wait_api(api).await;
    assert_eq!(vm.state().await.unwrap(), VmState::Running);

    vm.destroy().await.expect("destroy");
    assert!(!alive(pid));
    assert!(!spec.dir.exists());
}
