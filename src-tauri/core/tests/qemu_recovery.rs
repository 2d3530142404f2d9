//! A real QEMU VM (TCG, booted from the test guest ISO with a scratch disk) outlives the `Vm` object that
//! started it (a daemon killed without cleanup), is found again through its handle, and reports the guest
//! powering itself off as a state change, and its QEMU process killed as a failure.

#![cfg(target_os = "linux")]

#[path = "qemu_support/mod.rs"]
mod support;

use std::time::Duration;

use support::*;
use webapi_core::hypervisor::{BootMedium, Hypervisor, VmEvent, VmState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reattach_after_daemon_death_and_guest_poweroff_event() {
    let Some((hv, iso)) = setup() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let spec = spec(tmp.path(), "again", BootMedium::Iso(iso), "ctx-recovery");

    let mut vm = hv.create(&spec).await.expect("create");
    // a session may persist only the handle it got at creation (no pid yet): that must be enough
    let created_handle = vm.handle();
    assert!(created_handle.data["pid"].is_null());
    vm.boot().await.expect("boot");
    let api = vm.api_endpoint().expect("api");
    let first = wait_api(api).await;
    assert_eq!(
        get(api, "/context.txt").await.as_deref(),
        Some("ctx-recovery")
    );
    let handle = vm.handle();
    let pid = handle_pid(&handle);
    let _guard = KillOnDrop(pid);

    // the daemon "dies": the Vm object goes away without any cleanup; QEMU keeps running
    drop(vm);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(alive(pid), "QEMU died with its Vm object");

    let mut vm = hv.reattach(&spec, &created_handle).await.expect("reattach");
    assert_eq!(vm.state().await.unwrap(), VmState::Running);
    assert_eq!(vm.api_endpoint(), Some(api));
    assert_eq!(handle_pid(&vm.handle()), pid);
    assert_eq!(wait_api(api).await.boot_id, first.boot_id);
    vm.pause().await.expect("pause after reattach");
    vm.resume().await.expect("resume after reattach");

    let cgroup = vm.handle().data["cgroup"]["dir"]
        .as_str()
        .map(std::path::PathBuf::from);
    assert_eq!(
        cgroup,
        handle.data["cgroup"]["dir"].as_str().map(Into::into)
    );

    // the guest powers itself off → StateChanged(PoweredOff)
    let mut events = vm.events();
    get(api, "/cgi-bin/poweroff")
        .await
        .expect("poweroff request");
    let ev = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match events.recv().await.unwrap() {
                VmEvent::StateChanged(s) => return s,
                VmEvent::Failure(m) => panic!("a guest power-off reported as a failure: {m}"),
                other => eprintln!("event {other:?}"),
            }
        }
    })
    .await
    .expect("no state event after the guest powered off");
    assert_eq!(ev, VmState::PoweredOff);
    assert_eq!(vm.state().await.unwrap(), VmState::PoweredOff);
    assert!(!alive(pid));
    if let Some(dir) = &cgroup {
        assert!(
            !dir.exists(),
            "cgroup {} left after power-off",
            dir.display()
        );
    }

    // a dead VM re-attaches as powered off
    let vm2 = hv.reattach(&spec, &handle).await.expect("reattach dead");
    drop(vm2);

    // QEMU killed (as by the OOM killer) → Failure, then StateChanged(PoweredOff)
    vm.boot().await.expect("boot again");
    let pid = handle_pid(&vm.handle());
    let _guard = KillOnDrop(pid);
    let mut events = vm.events();
    // SAFETY: kill(2) on a pid this test started; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let seen = tokio::time::timeout(Duration::from_secs(30), async {
        let mut seen = Vec::new();
        loop {
            let ev = events.recv().await.unwrap();
            let done = matches!(ev, VmEvent::StateChanged(_));
            seen.push(ev);
            if done {
                return seen;
            }
        }
    })
    .await
    .expect("no state event after QEMU was killed");
    assert!(
        matches!(&seen[..], [VmEvent::Failure(m), VmEvent::StateChanged(VmState::PoweredOff)] if m.contains("unexpectedly")),
        "events after the kill: {seen:?}"
    );
    assert_eq!(vm.state().await.unwrap(), VmState::PoweredOff);

    vm.destroy().await.expect("destroy");
    assert!(!spec.dir.exists());
}
