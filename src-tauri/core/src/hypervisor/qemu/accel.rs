//! Which accelerator QEMU gets: KVM only when `/dev/kvm` opens read-write AND the CPU flags show VT-x/AMD-V
//! (a nested "PVM" /dev/kvm without them runs ~100x slower than TCG, shared/research/feasibility-qemu.md
//! §1), HVF on macOS, WHPX on Windows, TCG otherwise. `CVMWEBAPI_QEMU_ACCEL` overrides the choice.

/// The environment variable that forces an accelerator (`kvm`, `tcg`, `hvf`, `whpx`).
pub const ACCEL_ENV: &str = "CVMWEBAPI_QEMU_ACCEL";

/// Picks the accelerator for this host.
pub fn detect_accelerator() -> String {
    if let Ok(forced) = std::env::var(ACCEL_ENV) {
        if ["kvm", "tcg", "hvf", "whpx"].contains(&forced.as_str()) {
            return forced;
        }
        tracing::warn!("ignoring {ACCEL_ENV}={forced:?}: not one of kvm, tcg, hvf, whpx");
    }
    native_accelerator().unwrap_or("tcg").to_string()
}

#[cfg(target_os = "linux")]
fn native_accelerator() -> Option<&'static str> {
    let kvm_opens = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    (kvm_opens && cpu_has_hw_virt(&cpuinfo)).then_some("kvm")
}

#[cfg(target_os = "macos")]
fn native_accelerator() -> Option<&'static str> {
    Some("hvf")
}

#[cfg(windows)]
fn native_accelerator() -> Option<&'static str> {
    Some("whpx")
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
fn native_accelerator() -> Option<&'static str> {
    None
}

/// Does a `/proc/cpuinfo` text list the `vmx` (Intel VT-x) or `svm` (AMD-V) flag?
pub fn cpu_has_hw_virt(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .flat_map(|l| l.split_whitespace())
        .any(|f| f == "vmx" || f == "svm")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_matched_as_whole_words() {
        assert!(cpu_has_hw_virt("flags\t\t: fpu vme vmx sse\n"));
        assert!(cpu_has_hw_virt("flags : svm\n"));
        assert!(!cpu_has_hw_virt(
            "flags : fpu vmxx hypervisor\nmodel name : svm\n"
        ));
    }
}
