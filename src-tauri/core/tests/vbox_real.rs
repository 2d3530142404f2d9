//! Behavioural tests of the VirtualBox backend against a real VBoxManage, through the backend's own
//! runner. VirtualBox cannot run VMs on the build machines, so this runs every operation that needs no
//! running VM (create, configure, attach media, state, caps, orphan clean-up, destroy, probing of
//! external state changes) and checks that the ones that do need one fail with VirtualBox's own error.
//!
//! Manual suite (not in CI; the chroot is ~1.5 GB): `make test-vbox`, i.e. tests/vbox/run-tests.sh, which
//! builds a Debian sid chroot with VirtualBox and sets
//!   CVMWEBAPI_VBOXMANAGE="chroot <dir> env HOME=/root VBoxManage"  (the command, split on spaces)
//!   CVMWEBAPI_VBOX_SHARED=<a folder mounted at the same path inside the chroot>
//! and runs `cargo test -p webapi-core --test vbox_real -- --ignored --test-threads 1`.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use webapi_core::hypervisor::virtualbox::command::{
    self, HVF_FLOPPY_IO, HVF_GRAPHICAL, HVF_HEADFUL, HVF_SYSTEM_64BIT,
};
use webapi_core::hypervisor::virtualbox::parse::{self, MachineInfo};
use webapi_core::hypervisor::virtualbox::vm::HandleData;
use webapi_core::hypervisor::virtualbox::{cleanup_orphans, VirtualBox};
use webapi_core::hypervisor::{BootMedium, HvError, Hypervisor, VmEvent, VmSpec, VmState};

fn prefix() -> Vec<OsString> {
    let cmd = std::env::var("CVMWEBAPI_VBOXMANAGE")
        .expect("CVMWEBAPI_VBOXMANAGE is not set; run tests/vbox/run-tests.sh");
    cmd.split_whitespace().map(OsString::from).collect()
}

fn shared_tempdir() -> tempfile::TempDir {
    let shared = std::env::var("CVMWEBAPI_VBOX_SHARED")
        .expect("CVMWEBAPI_VBOX_SHARED is not set; run tests/vbox/run-tests.sh");
    tempfile::tempdir_in(shared).unwrap()
}

async fn vbox() -> VirtualBox {
    let mut vbox = VirtualBox::with_command(prefix())
        .await
        .expect("VBoxManage works");
    vbox.poll_period = Duration::from_millis(200);
    vbox
}

/// A file VirtualBox accepts as a DVD image (an ISO 9660 signature is all it checks before boot).
fn fake_iso(path: &Path) {
    let mut img = vec![0u8; 400 * 1024];
    img[0x8001..0x8006].copy_from_slice(b"CD001");
    std::fs::write(path, img).unwrap();
}

fn spec(root: &Path, name: &str, medium: BootMedium) -> VmSpec {
    VmSpec {
        name: name.into(),
        dir: root.join("sessions").join(name),
        cpus: 2,
        memory_mb: 192,
        disk_mb: 32,
        medium,
        context: Some("#!/bin/sh\necho contextualised\n".into()),
        api_guest_port: Some(80),
        execution_cap: 0,
        flags: HVF_SYSTEM_64BIT | HVF_HEADFUL | HVF_GRAPHICAL,
    }
}

async fn showvminfo(vbox: &VirtualBox, uuid: &str) -> MachineInfo {
    MachineInfo::parse(
        &vbox
            .runner()
            .check("test", &command::showvminfo(uuid))
            .await
            .unwrap()
            .stdout,
    )
}

async fn listed(vbox: &VirtualBox) -> Vec<String> {
    let out = vbox
        .runner()
        .check("test", &command::list_vms())
        .await
        .unwrap();
    parse::parse_list_vms(&out.stdout)
        .into_iter()
        .map(|v| v.uuid)
        .collect()
}

#[tokio::test]
#[ignore = "needs VBoxManage (tests/vbox/run-tests.sh)"]
async fn create_configure_control_and_destroy() {
    let vbox = vbox().await;
    assert!(vbox.version() >= parse::MIN_VERSION);
    let info = vbox.info().clone();
    assert_eq!(info.name, "virtualbox");
    let root = shared_tempdir();
    let iso = root.path().join("ucernvm.iso");
    fake_iso(&iso);
    let spec = spec(root.path(), "lifecycle", BootMedium::Iso(iso.clone()));

    let mut vm = vbox.create(&spec).await.expect("create");
    let data = HandleData::from_handle(&vm.handle()).unwrap();
    let uuid = data.uuid.clone();
    assert!(listed(&vbox).await.contains(&uuid));

    // Everything create configured, as VirtualBox reports it.
    let i = showvminfo(&vbox, &uuid).await;
    assert_eq!(i.name(), Some("cvmwebapi-lifecycle"));
    assert_eq!((i.cpus(), i.memory_mb()), (Some(2), Some(192)));
    assert_eq!(i.execution_cap(), Some(1), "a cap of 0 is raised to 1");
    assert_eq!(i.get("longmode"), Some("on"), "64-bit OS type");
    assert_eq!(i.get("boot1"), Some("dvd"));
    let port = data.api_host_port.expect("a forwarded port");
    let rules = i.forwards();
    assert_eq!(rules.len(), 1);
    assert_eq!(
        (
            rules[0].host_ip.as_str(),
            rules[0].host_port,
            rules[0].guest_port
        ),
        ("127.0.0.1", port, 80)
    );
    assert_eq!(i.get("vrde"), Some("on"));
    assert_eq!(i.get("vrdeaddress"), Some("127.0.0.1"));
    assert_eq!(
        i.get("vrdeports").and_then(|p| p.parse().ok()),
        data.rdp_port
    );
    assert_eq!(i.get("clipboard"), Some("bidirectional"));
    assert_eq!(i.medium("IDE", 0, 0).map(PathBuf::from), Some(iso.clone()));
    let scratch = i
        .medium("SATA", 0, 0)
        .map(PathBuf::from)
        .expect("scratch disk");
    assert!(
        scratch.starts_with(&spec.dir) && scratch.is_file(),
        "scratch disk in the session folder: {scratch:?}"
    );
    let ctx = i
        .medium("SATA", 1, 0)
        .map(PathBuf::from)
        .expect("context ISO");
    assert!(ctx.starts_with(&spec.dir));
    let ctx_bytes = std::fs::read(&ctx).unwrap();
    assert_eq!(&ctx_bytes[0x8001..0x8006], b"CD001");
    let owner = vbox
        .runner()
        .check("test", &command::getextradata(&uuid, command::OWNER_KEY))
        .await
        .unwrap();
    assert_eq!(
        parse::parse_extradata(&owner.stdout).map(PathBuf::from),
        Some(spec.dir.clone())
    );

    // State and caps while powered off.
    assert_eq!(vm.state().await.unwrap(), VmState::PoweredOff);
    assert_eq!(vm.api_endpoint(), None, "no endpoint while powered off");
    vm.set_cpu_cap(70).await.unwrap();
    assert_eq!(showvminfo(&vbox, &uuid).await.execution_cap(), Some(70));
    vm.set_cpu_cap(0).await.unwrap();
    assert_eq!(showvminfo(&vbox, &uuid).await.execution_cap(), Some(1));

    // Operations that need a running VM are refused with the state, before VBoxManage is asked.
    for (what, err) in [
        ("pause", vm.pause().await.unwrap_err()),
        ("resume", vm.resume().await.unwrap_err()),
        ("save", vm.save().await.unwrap_err()),
        ("reset", vm.reset().await.unwrap_err()),
    ] {
        assert!(
            matches!(
                err,
                HvError::InvalidState {
                    state: VmState::PoweredOff,
                    ..
                }
            ),
            "{what}: {err}"
        );
    }
    vm.shutdown(Duration::from_secs(1))
        .await
        .expect("shutting down a stopped VM is a no-op");
    vm.power_off()
        .await
        .expect("powering off a stopped VM is a no-op");

    // startvm --type gui reaches VirtualBox, which has no GUI front end in the chroot (and could not run
    // a VM anyway): its own error comes back.
    let err = vm.boot().await.unwrap_err();
    assert!(
        matches!(&err, HvError::Failed { action: "startvm", detail } if detail.contains("Could not launch the VM process")),
        "{err}"
    );
    assert_eq!(vm.state().await.unwrap(), VmState::PoweredOff);

    // The same name twice is refused clearly.
    let err = vbox
        .create(&spec)
        .await
        .err()
        .expect("duplicate name refused");
    assert!(err.to_string().contains("already exists"), "{err}");

    // Re-attach by handle (a restarted daemon); a handle for another session is refused.
    let mut again = vbox.reattach(&spec, &vm.handle()).await.expect("reattach");
    assert_eq!(again.state().await.unwrap(), VmState::PoweredOff);
    let other = VmSpec {
        name: "someone-else".into(),
        ..spec.clone()
    };
    assert!(vbox.reattach(&other, &vm.handle()).await.is_err());
    let moved = VmSpec {
        dir: root.path().join("another-folder"),
        ..spec.clone()
    };
    let err = vbox
        .reattach(&moved, &vm.handle())
        .await
        .err()
        .expect("owner tag checked");
    assert!(err.to_string().contains("does not belong"), "{err}");
    drop(again);

    vm.destroy().await.expect("destroy");
    assert!(!listed(&vbox).await.contains(&uuid));
    assert!(
        !ctx.exists() && !scratch.exists(),
        "context medium and scratch disk deleted"
    );
    assert!(!data.vm_folder.exists(), "VM folder deleted");
    assert!(iso.exists(), "the boot ISO (shared cache) is never deleted");
}

#[tokio::test]
#[ignore = "needs VBoxManage (tests/vbox/run-tests.sh)"]
async fn shared_base_disk_gets_a_differencing_child_per_vm() {
    let vbox = vbox().await;
    let root = shared_tempdir();
    let base = root.path().join("base.vdi");
    vbox.runner()
        .check("test", &command::createmedium_disk(&base, 16))
        .await
        .unwrap();
    // Unregister it, keeping the file: now it is like a downloaded image VirtualBox has never seen.
    vbox.runner()
        .check("test", &command::closemedium("disk", &base, false))
        .await
        .unwrap();
    let mut vms = Vec::new();
    for name in ["disk-a", "disk-b"] {
        let mut s = spec(root.path(), name, BootMedium::Disk(base.clone()));
        s.flags = HVF_FLOPPY_IO; // also exercises the FloppyIO context medium and headless, no VRDE
        let vm = vbox.create(&s).await.expect("create on a shared base");
        let uuid = HandleData::from_handle(&vm.handle()).unwrap().uuid;
        let i = showvminfo(&vbox, &uuid).await;
        let child = PathBuf::from(i.medium("IDE", 0, 0).expect("boot disk"));
        assert_ne!(child, base, "a per-VM differencing child, not the base");
        assert!(child.starts_with(&s.dir), "{child:?}");
        assert_eq!(i.get("boot1"), Some("disk"));
        assert_eq!(i.get("vrde"), Some("off"));
        let floppy = i
            .medium("Floppy", 0, 0)
            .map(PathBuf::from)
            .expect("FloppyIO medium");
        assert_eq!(std::fs::metadata(&floppy).unwrap().len(), 28_672);
        vms.push(vm);
    }
    // Headless start: the VM process starts and dies without vboxdrv; VirtualBox's error comes back.
    let err = vms[0].boot().await.unwrap_err();
    assert!(
        matches!(&err, HvError::Failed { action: "startvm", detail } if detail.contains("terminated unexpectedly")),
        "{err}"
    );
    assert_eq!(vms[0].state().await.unwrap(), VmState::PoweredOff);
    let medium = vbox
        .runner()
        .check("test", &command::showmediuminfo_disk(&base))
        .await
        .unwrap();
    assert_eq!(
        parse::parse_medium_type(&medium.stdout).as_deref(),
        Some("multiattach")
    );
    for vm in vms {
        vm.destroy().await.unwrap();
    }
    assert!(base.is_file(), "destroying the VMs keeps the shared base");
    vbox.forget_base_disk(&base).await.expect("forget the base");
    let hdds = vbox
        .runner()
        .check("test", &["list".into(), "hdds".into()])
        .await
        .unwrap();
    assert!(
        !hdds.stdout.contains(&*base.to_string_lossy()),
        "{}",
        hdds.stdout
    );
    assert!(base.is_file(), "forgetting keeps the file");
    vbox.forget_base_disk(&base)
        .await
        .expect("forgetting twice is fine");
}

#[tokio::test]
#[ignore = "needs VBoxManage (tests/vbox/run-tests.sh)"]
async fn external_state_changes_become_events() {
    let vbox = vbox().await;
    let root = shared_tempdir();
    let iso = root.path().join("boot.iso");
    fake_iso(&iso);
    let vm = vbox
        .create(&spec(root.path(), "watched", BootMedium::Iso(iso)))
        .await
        .unwrap();
    let uuid = HandleData::from_handle(&vm.handle()).unwrap().uuid;
    let mut events = vm.events();
    // Someone else gives the VM a saved state (VBoxManage adoptstate), then discards it.
    let sav = root.path().join("state.sav");
    std::fs::write(&sav, vec![0u8; 4096]).unwrap();
    vbox.runner()
        .check(
            "test",
            &[
                "adoptstate".into(),
                uuid.clone(),
                sav.to_string_lossy().into_owned(),
            ],
        )
        .await
        .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(20), events.recv())
        .await
        .expect("an event")
        .unwrap();
    assert_eq!(ev, VmEvent::StateChanged(VmState::Saved));
    vbox.runner()
        .check("test", &command::discardstate(&uuid))
        .await
        .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(20), events.recv())
        .await
        .expect("an event")
        .unwrap();
    assert_eq!(ev, VmEvent::StateChanged(VmState::PoweredOff));
    vm.destroy().await.unwrap();
}

#[tokio::test]
#[ignore = "needs VBoxManage (tests/vbox/run-tests.sh)"]
async fn a_cap_set_while_saved_waits_for_the_next_boot() {
    let vbox = vbox().await;
    let root = shared_tempdir();
    let iso = root.path().join("boot.iso");
    fake_iso(&iso);
    let mut vm = vbox
        .create(&spec(root.path(), "saved-cap", BootMedium::Iso(iso)))
        .await
        .unwrap();
    let uuid = HandleData::from_handle(&vm.handle()).unwrap().uuid;
    let sav = root.path().join("state.sav");
    std::fs::write(&sav, vec![0u8; 4096]).unwrap();
    vbox.runner()
        .check(
            "test",
            &[
                "adoptstate".into(),
                uuid.clone(),
                sav.to_string_lossy().into_owned(),
            ],
        )
        .await
        .unwrap();
    assert_eq!(vm.state().await.unwrap(), VmState::Saved);
    vm.set_cpu_cap(40).await.expect("accepted while saved");
    assert_eq!(
        showvminfo(&vbox, &uuid).await.execution_cap(),
        Some(1),
        "not applied to the saved VM"
    );
    assert!(matches!(
        vm.pause().await,
        Err(HvError::InvalidState {
            state: VmState::Saved,
            ..
        })
    ));
    vm.power_off()
        .await
        .expect("a saved VM powers off by discarding its state");
    assert_eq!(vm.state().await.unwrap(), VmState::PoweredOff);
    vm.destroy().await.unwrap();
}

#[tokio::test]
#[ignore = "needs VBoxManage (tests/vbox/run-tests.sh)"]
async fn lock_errors_are_retried_until_they_clear() {
    let vbox = vbox().await;
    let root = shared_tempdir();
    let iso = root.path().join("boot.iso");
    fake_iso(&iso);
    let vm = vbox
        .create(&spec(root.path(), "contended", BootMedium::Iso(iso)))
        .await
        .unwrap();
    let uuid = HandleData::from_handle(&vm.handle()).unwrap().uuid;
    // Twelve concurrent modifyvm on one VM: without retries some fail with "already locked"
    // (recorded in tests/fixtures/vbox/lock-error.stderr); through the runner all succeed.
    let mut runner = vbox.runner().clone();
    runner.retry.attempts = 10;
    runner.retry.base = Duration::from_millis(50);
    let tasks: Vec<_> = (0..12u8)
        .map(|i| {
            let r = runner.clone();
            let argv = command::modifyvm_cap(&uuid, 10 + i);
            tokio::spawn(async move { r.check("test", &argv).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().expect("retried until the lock cleared");
    }
    vm.destroy().await.unwrap();
}

#[tokio::test]
#[ignore = "needs VBoxManage (tests/vbox/run-tests.sh)"]
async fn orphans_are_removed_and_owned_vms_kept() {
    let vbox = vbox().await;
    let root = shared_tempdir();
    let iso = root.path().join("boot.iso");
    fake_iso(&iso);
    let kept = vbox
        .create(&spec(root.path(), "owned", BootMedium::Iso(iso.clone())))
        .await
        .unwrap();
    let kept_uuid = HandleData::from_handle(&kept.handle()).unwrap().uuid;
    let lost = vbox
        .create(&spec(root.path(), "orphan", BootMedium::Iso(iso.clone())))
        .await
        .unwrap();
    let lost_uuid = HandleData::from_handle(&lost.handle()).unwrap().uuid;
    drop(lost); // the session is gone, the VM is not
    let elsewhere = shared_tempdir();
    let foreign = vbox
        .create(&spec(
            elsewhere.path(),
            "other-install",
            BootMedium::Iso(iso),
        ))
        .await
        .unwrap();
    let foreign_uuid = HandleData::from_handle(&foreign.handle()).unwrap().uuid;

    // A crash right after createvm leaves a VM without our tag, in a session folder of ours.
    let untagged_dir = root.path().join("sessions").join("crashed");
    let created = vbox
        .runner()
        .check(
            "test",
            &command::createvm("cvmwebapi-crashed", 0, &untagged_dir),
        )
        .await
        .unwrap();
    let untagged_uuid = parse::parse_created_uuid(&created.stdout).unwrap();

    let owned: HashSet<String> = [kept_uuid.clone()].into();
    let removed = cleanup_orphans(&vbox, root.path(), &owned).await.unwrap();
    let mut removed: Vec<String> = removed.iter().map(|v| v.uuid.clone()).collect();
    removed.sort();
    let mut expected = vec![lost_uuid.clone(), untagged_uuid.clone()];
    expected.sort();
    assert_eq!(removed, expected);
    let now = listed(&vbox).await;
    assert!(!now.contains(&lost_uuid) && !now.contains(&untagged_uuid));
    assert!(now.contains(&kept_uuid), "owned VM kept");
    assert!(
        now.contains(&foreign_uuid),
        "a VM tagged for another data dir is not ours to remove"
    );
    kept.destroy().await.unwrap();
    foreign.destroy().await.unwrap();
}
