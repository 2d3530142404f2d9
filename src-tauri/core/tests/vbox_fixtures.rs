//! The VirtualBox command builder and parsers against real VBoxManage 7.2.22 output, recorded by
//! tests/vbox/record-fixtures.sh into tests/fixtures/vbox/ (see its VERSION file). The INDEX file holds
//! the exact argv each fixture was produced with, so these tests also prove that the builder emits
//! argument vectors the real VBoxManage accepted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use webapi_core::hypervisor::virtualbox::command::{self, MediumKind, Slot};
use webapi_core::hypervisor::virtualbox::parse::{self, MachineInfo, NatRule, Observed, Version};
use webapi_core::hypervisor::virtualbox::runner::{is_lock_error, RunOutput};
use webapi_core::hypervisor::{BootMedium, VmSpec, VmState};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vbox")
}
fn read(name: &str) -> String {
    std::fs::read_to_string(dir().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}
fn out(name: &str) -> RunOutput {
    let code = index()
        .get(name)
        .map(|(rc, _)| *rc)
        .unwrap_or_else(|| panic!("{name} not in INDEX"));
    let stdout = std::fs::read_to_string(dir().join(format!("{name}.stdout"))).unwrap_or_default();
    RunOutput {
        code: Some(code),
        stdout,
        stderr: read(&format!("{name}.stderr")),
    }
}
/// name → (exit code, argv as recorded, joined by spaces)
fn index() -> HashMap<String, (i32, String)> {
    read("INDEX")
        .lines()
        .map(|l| {
            let mut it = l.splitn(3, ' ');
            let name = it.next().unwrap().to_string();
            let rc = it.next().unwrap().parse().unwrap();
            (name, (rc, it.next().unwrap_or("").to_string()))
        })
        .collect()
}
fn recorded_argv(name: &str) -> String {
    index()[name].1.clone()
}
fn built(args: Vec<String>) -> String {
    std::iter::once("-q".to_string())
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ")
}
fn uuid() -> String {
    parse::parse_created_uuid(&out("createvm").stdout).expect("createvm prints a UUID")
}
/// The folder the recording used (the createvm `--basefolder`).
fn work() -> PathBuf {
    let argv = recorded_argv("createvm");
    let words: Vec<&str> = argv.split(' ').collect();
    let i = words.iter().position(|w| *w == "--basefolder").unwrap();
    PathBuf::from(words[i + 1])
}

#[test]
fn version_and_driver_warning() {
    let v = out("version");
    assert_eq!(
        parse::parse_version(&v.stdout),
        Some(Version {
            major: 7,
            minor: 2,
            build: 22
        })
    );
    assert!(parse::parse_version(&v.stdout).unwrap() >= parse::MIN_VERSION);
    assert!(parse::driver_missing(&v.stdout) || parse::driver_missing(&v.stderr));
    assert!(read("VERSION").contains(v.stdout.lines().last().unwrap()));
}

#[test]
fn createvm_uuid_and_the_builder_argv() {
    let id = uuid();
    assert!(command::valid_uuid(&id), "{id}");
    assert_eq!(
        built(command::createvm(
            "cvmwebapi-fixture",
            command::HVF_SYSTEM_64BIT,
            &work()
        )),
        recorded_argv("createvm")
    );
    assert_eq!(
        MachineInfo::parse(&out("showvminfo-created").stdout).uuid(),
        Some(id.as_str())
    );
    let exists = out("createvm-exists");
    assert!(!exists.success() && exists.stderr.contains("already exists"));
}

#[test]
fn configuration_commands_match_what_vboxmanage_accepted() {
    let id = uuid();
    let w = work();
    for name in [
        "storagectl-ide",
        "storagectl-sata",
        "modifyvm",
        "storageattach-iso",
        "createmedium",
        "storageattach-scratch",
        "setextradata",
        "getextradata",
        "showvminfo-poweroff",
        "unregistervm",
        "list-vms",
    ] {
        assert_eq!(index()[name].0, 0, "{name} succeeded when recorded");
    }
    assert_eq!(
        built(command::storagectl_add(&id, "IDE")),
        recorded_argv("storagectl-ide")
    );
    assert_eq!(
        built(command::storagectl_add(&id, "SATA")),
        recorded_argv("storagectl-sata")
    );
    let spec = VmSpec {
        name: "fixture".into(),
        dir: w.clone(),
        cpus: 2,
        memory_mb: 256,
        disk_mb: 64,
        medium: BootMedium::Iso(w.join("boot.iso")),
        context: None,
        api_guest_port: Some(80),
        execution_cap: 50,
        flags: command::HVF_HEADFUL | command::HVF_GRAPHICAL,
    };
    assert_eq!(
        built(command::modifyvm_configure(
            &id,
            &spec,
            false,
            Some(18200),
            Some(18300)
        )),
        recorded_argv("modifyvm")
    );
    assert_eq!(
        built(command::storageattach(
            &id,
            command::BOOT_SLOT,
            MediumKind::Dvd,
            &w.join("boot.iso")
        )),
        recorded_argv("storageattach-iso")
    );
    assert_eq!(
        built(command::createmedium_disk(&w.join("scratch.vdi"), 64)),
        recorded_argv("createmedium")
    );
    assert_eq!(
        built(command::storageattach(
            &id,
            command::SCRATCH_SLOT,
            MediumKind::Hdd,
            &w.join("scratch.vdi")
        )),
        recorded_argv("storageattach-scratch")
    );
    let owner = w.join("sessions/fixture");
    assert_eq!(
        built(command::setextradata(
            &id,
            command::OWNER_KEY,
            &owner.to_string_lossy()
        )),
        recorded_argv("setextradata")
    );
    assert_eq!(
        built(command::getextradata(&id, command::OWNER_KEY)),
        recorded_argv("getextradata")
    );
    assert_eq!(
        built(command::showvminfo(&id)),
        recorded_argv("showvminfo-poweroff")
    );
    assert_eq!(
        built(command::modifyvm_cap(&id, 30)),
        recorded_argv("modifyvm-cap")
    );
    assert_eq!(
        built(command::controlvm(&id, "pause")),
        recorded_argv("controlvm-not-running")
    );
    assert_eq!(
        built(command::controlvm_cap(&id, 30)),
        recorded_argv("controlvm-cap-not-running")
    );
    assert_eq!(built(command::startvm(&id, 0)), recorded_argv("startvm"));
    assert_eq!(
        built(command::discardstate(&id)),
        recorded_argv("discardstate")
    );
    assert_eq!(
        built(command::unregistervm_delete(&id)),
        recorded_argv("unregistervm")
    );
    assert_eq!(built(command::list_vms()), recorded_argv("list-vms"));
    assert_eq!(
        built(command::showmediuminfo_disk(&w.join("base.vdi"))),
        recorded_argv("showmediuminfo-base-normal")
    );
}

#[test]
fn showvminfo_of_a_configured_vm() {
    let info = MachineInfo::parse(&out("showvminfo-poweroff").stdout);
    let w = work();
    assert_eq!(info.name(), Some("cvmwebapi-fixture"));
    assert_eq!(info.observed(), Some(Observed::Stable(VmState::PoweredOff)));
    assert_eq!(
        (info.cpus(), info.memory_mb(), info.execution_cap()),
        (Some(2), Some(256), Some(50))
    );
    assert_eq!(
        info.get("ostype"),
        Some("Linux 2.6 / 3.x / 4.x / 5.x (64-bit)")
    );
    assert_eq!(info.get("longmode"), Some("on"));
    assert_eq!(info.get("vram"), Some("32"));
    assert_eq!(info.get("nic1"), Some("nat"));
    assert_eq!(
        info.forwards(),
        vec![NatRule {
            name: "guestapi".into(),
            protocol: "tcp".into(),
            host_ip: "127.0.0.1".into(),
            host_port: 18200,
            guest_ip: String::new(),
            guest_port: 80
        }]
    );
    assert_eq!(
        (
            info.get("vrde"),
            info.get("vrdeaddress"),
            info.get("vrdeports")
        ),
        (Some("on"), Some("127.0.0.1"), Some("18300"))
    );
    assert_eq!(info.get("clipboard"), Some("bidirectional"));
    assert_eq!(info.get("draganddrop"), Some("hosttoguest"));
    let Slot {
        controller,
        port,
        device,
    } = command::BOOT_SLOT;
    assert_eq!(
        info.medium(controller, port, device).map(PathBuf::from),
        Some(w.join("boot.iso"))
    );
    assert_eq!(
        info.medium("SATA", 0, 0).map(PathBuf::from),
        Some(w.join("scratch.vdi"))
    );
    assert_eq!(
        info.medium("SATA", 1, 0),
        None,
        "an empty slot reads as none"
    );
    assert!(info
        .log_folder()
        .unwrap()
        .ends_with("cvmwebapi-fixture/Logs"));
    assert!(info
        .config_file()
        .unwrap()
        .ends_with("cvmwebapi-fixture.vbox"));
}

#[test]
fn states_from_real_showvminfo() {
    let state = |n: &str| MachineInfo::parse(&out(n).stdout).observed();
    assert_eq!(
        state("showvminfo-created"),
        Some(Observed::Stable(VmState::PoweredOff))
    );
    assert_eq!(
        state("showvminfo-saved"),
        Some(Observed::Stable(VmState::Saved))
    );
    assert_eq!(
        state("showvminfo-after-failed-start"),
        Some(Observed::Stable(VmState::PoweredOff))
    );
    assert_eq!(
        MachineInfo::parse(&out("showvminfo-poweroff").stdout).execution_cap(),
        Some(50)
    );
    assert_eq!(
        MachineInfo::parse(&out("showvminfo-saved").stdout).execution_cap(),
        Some(30)
    );
    assert!(!out("showvminfo-missing").success());
}

#[test]
fn list_vms_and_extradata() {
    let vms = parse::parse_list_vms(&out("list-vms").stdout);
    assert!(
        vms.iter()
            .any(|v| v.name == "cvmwebapi-fixture" && v.uuid == uuid()),
        "{vms:?}"
    );
    assert!(!parse::parse_list_vms(&out("list-vms-empty").stdout)
        .iter()
        .any(|v| v.uuid == uuid()));
    assert_eq!(
        parse::parse_extradata(&out("getextradata").stdout).map(PathBuf::from),
        Some(work().join("sessions/fixture"))
    );
    assert_eq!(
        parse::parse_extradata(&out("getextradata-unset").stdout),
        None
    );
    assert_eq!(
        parse::parse_medium_type(&out("showmediuminfo-base-normal").stdout).as_deref(),
        Some("normal (base)")
    );
}

#[test]
fn errors_are_summarised_and_only_lock_errors_retried() {
    let not_running = out("controlvm-not-running");
    assert!(!not_running.success());
    assert!(
        not_running
            .error_summary()
            .contains("is not currently running"),
        "{}",
        not_running.error_summary()
    );
    assert!(!is_lock_error(&not_running.stderr));
    let lock = read("lock-error.stderr");
    assert!(is_lock_error(&lock), "{lock}");
    let not_ready = read("not-ready-error.stderr");
    assert!(
        is_lock_error(&not_ready),
        "a read racing a write is retried too: {not_ready}"
    );
    for name in [
        "startvm",
        "modifyvm-cap-saved",
        "storageattach-multiattach-direct",
        "createvm-exists",
        "modifyvm-bad-cap",
        "showvminfo-missing",
    ] {
        let o = out(name);
        assert!(!o.success(), "{name} failed when recorded");
        assert!(!is_lock_error(&o.stderr), "{name} is not a lock error");
        assert!(
            !o.error_summary().contains("vboxdrv"),
            "{name}: the driver warning is not the error"
        );
    }
    assert!(out("startvm")
        .error_summary()
        .contains("terminated unexpectedly during startup"));
    // VirtualBox refuses a cap of 0; the builder never emits one.
    assert!(out("modifyvm-bad-cap")
        .error_summary()
        .contains("must be in range [1, 100]"));
    assert!(command::modifyvm_cap("x", 0).contains(&"1".to_string()));
    // A saved VM refuses modifyvm: the backend keeps the cap for the next boot instead.
    assert!(out("modifyvm-cap-saved")
        .error_summary()
        .contains("state is Saved"));
    // A medium created outside a VM cannot become multi-attach directly (hence the registration dance).
    assert!(out("storageattach-multiattach-direct")
        .error_summary()
        .contains("MultiAttach"));
}
