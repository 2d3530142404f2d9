//! Backend selection: `qemu` and `auto` give the QEMU backend on a host without VirtualBox, with the
//! accelerator rule applied; `virtualbox` is unavailable until that backend is built in.
#![cfg(target_os = "linux")]

#[path = "qemu_support/mod.rs"]
mod support;

use webapi_core::hypervisor::qemu::cpu_has_hw_virt;
use webapi_core::hypervisor::{select, HvError, HypervisorChoice};
use webapi_core::store::DataDir;

#[test]
fn select_picks_qemu_and_reports_accelerator_and_cap_method() {
    if support::setup_tools_only().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = DataDir::open(tmp.path()).unwrap();
    for choice in [HypervisorChoice::Qemu, HypervisorChoice::Auto] {
        let hv = select(choice, &data).expect("qemu backend");
        let info = hv.info();
        assert_eq!(info.name, "qemu");
        assert!(info.version.starts_with(|c: char| c.is_ascii_digit()));
        let kvm_usable = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok()
            && cpu_has_hw_virt(&std::fs::read_to_string("/proc/cpuinfo").unwrap());
        if std::env::var_os("CVMWEBAPI_QEMU_ACCEL").is_none() {
            assert_eq!(info.accelerator, if kvm_usable { "kvm" } else { "tcg" });
        }
        assert!(
            ["cgroup-v2", "cgroup-v1", "systemd-scope", "qmp-duty-cycle"]
                .contains(&info.cap_method.as_str()),
            "{info:?}"
        );
    }
    assert!(matches!(
        select(HypervisorChoice::Virtualbox, &data),
        Err(HvError::Unavailable(_))
    ));
}
