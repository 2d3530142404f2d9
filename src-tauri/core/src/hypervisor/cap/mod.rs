//! CPU execution caps for VM processes (VirtualBox's `--cpuexecutioncap`, 1..=100 % per vCPU), by the best
//! mechanism this host offers: a cgroup v2 `cpu.max` in a delegated subtree, a cgroup v1
//! `cpu.cfs_quota_us`, a systemd user scope's `CPUQuota=`, or, as the last resort, a duty cycle that the
//! backend runs itself (QEMU: QMP stop/cont). Caps are never below 1 %.

mod cgroup;
mod systemd;

pub use cgroup::CgroupGroup;
pub use systemd::{scope_prefix, scope_unit_name, set_scope_quota, systemd_user_available};

use std::path::PathBuf;

/// The scheduler period used for cgroup quotas, in microseconds.
pub const PERIOD_US: u64 = 100_000;

/// How this host caps a VM process's CPU use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapMethod {
    /// cgroup v2: sub-groups with `cpu.max` under this (delegated) group.
    CgroupV2 { parent: PathBuf },
    /// cgroup v1: sub-groups with `cpu.cfs_quota_us` under this group of the cpu hierarchy.
    CgroupV1 { parent: PathBuf },
    /// The VM process runs in a transient systemd user scope; caps are `CPUQuota=` on it.
    SystemdScope,
    /// The backend pauses and resumes the VM in a 100 ms period.
    DutyCycle,
}

impl CapMethod {
    /// The name reported in `HypervisorInfo::cap_method`.
    pub fn name(&self) -> &'static str {
        match self {
            CapMethod::CgroupV2 { .. } => "cgroup-v2",
            CapMethod::CgroupV1 { .. } => "cgroup-v1",
            CapMethod::SystemdScope => "systemd-scope",
            CapMethod::DutyCycle => "qmp-duty-cycle",
        }
    }

    /// Probes the mechanisms in order of preference. `CVMWEBAPI_CAP_METHOD` (one of the names) forces one
    /// if it works here, `qmp-duty-cycle` always does.
    pub fn detect() -> CapMethod {
        let forced = std::env::var("CVMWEBAPI_CAP_METHOD").ok();
        let want = |name: &str| forced.as_deref().is_none_or(|f| f == name);
        if want("cgroup-v2") {
            if let Some(parent) = cgroup::v2_parent() {
                return CapMethod::CgroupV2 { parent };
            }
        }
        if want("cgroup-v1") {
            if let Some(parent) = cgroup::v1_parent() {
                return CapMethod::CgroupV1 { parent };
            }
        }
        if want("systemd-scope") && systemd_user_available() {
            return CapMethod::SystemdScope;
        }
        CapMethod::DutyCycle
    }
}

/// Clamps a requested cap to 1..=100.
pub fn clamp_cap(percent: u8) -> u8 {
    percent.clamp(1, 100)
}

/// The CFS quota (µs per `PERIOD_US`) for `percent` of each of `cpus` vCPUs; `None` means unlimited.
pub fn quota_us(percent: u8, cpus: u32) -> Option<u64> {
    let p = clamp_cap(percent);
    (p < 100).then(|| (PERIOD_US * u64::from(p) * u64::from(cpus.max(1)) / 100).max(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_is_per_vcpu_never_zero_and_unlimited_at_100() {
        assert_eq!(quota_us(25, 1), Some(25_000));
        assert_eq!(quota_us(25, 2), Some(50_000));
        assert_eq!(quota_us(0, 1), Some(1_000));
        assert_eq!(quota_us(100, 4), None);
        assert_eq!(clamp_cap(0), 1);
        assert_eq!(clamp_cap(200), 100);
    }
}
