//! The QEMU backend: `qemu-system-x86_64` from PATH, driven over QMP (our own small client), one folder per
//! VM holding its overlay or scratch disk, context media, QMP socket, logs and saved state.
//! See docs/hypervisors.md.

mod accel;
mod args;
mod disk;
mod duty;
mod monitor;
mod process;
pub mod qmp;
mod shared;
mod usernet;
mod vm;

pub use accel::{cpu_has_hw_virt, detect_accelerator, ACCEL_ENV};
pub use args::{qemu_args, ArgsEnv, FW_CFG_CONTEXT};
pub use vm::QemuVm;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use super::cap::CapMethod;
use super::validate::{validate_spec, HostLimits};
use super::{HvError, Hypervisor, HypervisorInfo, Vm, VmHandle, VmSpec};

/// The QEMU binary we look for on PATH.
pub const QEMU_BINARY: &str = "qemu-system-x86_64";

/// What every VM of this backend shares: binaries, version, accelerator, cap method, host limits.
#[derive(Debug)]
pub struct QemuEnv {
    pub qemu: PathBuf,
    pub qemu_img: PathBuf,
    /// (major, minor) of QEMU, e.g. (10, 0).
    pub version: (u32, u32),
    pub accel: String,
    pub cap: CapMethod,
    pub host: HostLimits,
}

/// The QEMU hypervisor.
pub struct QemuHypervisor {
    info: HypervisorInfo,
    env: Arc<QemuEnv>,
}

impl QemuHypervisor {
    /// Finds QEMU and qemu-img on PATH, reads the version and picks accelerator and cap method.
    pub fn detect() -> Result<Self, HvError> {
        let qemu = find_on_path(QEMU_BINARY)
            .ok_or_else(|| HvError::Unavailable(format!("{QEMU_BINARY} is not on PATH")))?;
        let qemu_img = find_on_path("qemu-img")
            .ok_or_else(|| HvError::Unavailable("qemu-img is not on PATH".into()))?;
        let out = std::process::Command::new(&qemu)
            .arg("--version")
            .output()
            .map_err(|e| HvError::Unavailable(format!("cannot run {}: {e}", qemu.display())))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let version_text = parse_version(&text).ok_or_else(|| {
            HvError::Unavailable(format!("cannot read the QEMU version from {text:?}"))
        })?;
        let mut parts = version_text
            .split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        let accel = detect_accelerator();
        let cap = CapMethod::detect();
        let info = HypervisorInfo {
            name: "qemu".into(),
            version: version_text,
            accelerator: accel.clone(),
            cap_method: cap.name().into(),
        };
        tracing::info!(?info, "QEMU backend ready");
        Ok(Self {
            info,
            env: Arc::new(QemuEnv {
                qemu,
                qemu_img,
                version,
                accel,
                cap,
                host: HostLimits::detect(),
            }),
        })
    }

    /// Like `Hypervisor::create`, returning the concrete type (which also offers raw QMP access).
    pub async fn create_qemu(&self, spec: &VmSpec) -> Result<QemuVm, HvError> {
        validate_spec(spec, self.env.host)?;
        check_socket_path(spec)?;
        QemuVm::create(self.env.clone(), spec.clone()).await
    }

    /// The shared environment (binaries, accelerator, cap method).
    pub fn env(&self) -> &Arc<QemuEnv> {
        &self.env
    }
}

#[async_trait]
impl Hypervisor for QemuHypervisor {
    fn info(&self) -> &HypervisorInfo {
        &self.info
    }

    async fn create(&self, spec: &VmSpec) -> Result<Box<dyn Vm>, HvError> {
        validate_spec(spec, self.env.host)?;
        Ok(Box::new(
            QemuVm::create(self.env.clone(), spec.clone()).await?,
        ))
    }

    async fn reattach(&self, spec: &VmSpec, handle: &VmHandle) -> Result<Box<dyn Vm>, HvError> {
        validate_spec(spec, self.env.host)?;
        check_socket_path(spec)?;
        if handle.backend != "qemu" {
            return Err(HvError::InvalidSpec(format!(
                "handle of backend {:?} given to qemu",
                handle.backend
            )));
        }
        Ok(Box::new(
            QemuVm::reattach(self.env.clone(), spec.clone(), handle).await?,
        ))
    }
}

/// The QMP socket's path must fit a unix socket address (108 bytes with the terminating NUL).
fn check_socket_path(spec: &VmSpec) -> Result<(), HvError> {
    let len = spec.dir.join(args::QMP_SOCKET).as_os_str().len();
    if len > 107 {
        return Err(HvError::InvalidSpec(format!(
            "VM folder {} is too long for its QMP socket ({len} > 107 bytes)",
            spec.dir.display()
        )));
    }
    Ok(())
}

/// "QEMU emulator version 10.0.2 (Debian ...)" → "10.0.2".
fn parse_version(text: &str) -> Option<String> {
    let rest = text.split("version ").nth(1)?;
    let v: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (!v.is_empty()).then_some(v)
}

/// The first executable `name` in PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_folders_are_refused_for_the_socket() {
        let mut spec = VmSpec {
            name: "a".into(),
            dir: "/short/a".into(),
            cpus: 1,
            memory_mb: 64,
            disk_mb: 0,
            medium: crate::hypervisor::BootMedium::Iso("/x.iso".into()),
            context: None,
            api_guest_port: None,
            execution_cap: 100,
            flags: 0,
        };
        check_socket_path(&spec).unwrap();
        spec.dir = format!("/{}", "d".repeat(100)).into();
        assert!(check_socket_path(&spec).is_err());
    }

    #[test]
    fn version_is_read_from_the_banner() {
        assert_eq!(
            parse_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2)\nCopyright"),
            Some("10.0.2".into())
        );
        assert_eq!(parse_version("nothing"), None);
    }
}
