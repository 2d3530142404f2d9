//! The VirtualBox backend: drives `VBoxManage` (argv only) behind the [`Hypervisor`]/[`Vm`] traits.
//!
//! Files: `locate` finds the binary, `command` builds argument vectors, `runner` runs them (logging,
//! timeouts, retries on lock errors), `parse` reads their output, `context` builds the
//! contextualisation medium, `vm` is one VM, `probe` watches it for external changes, `orphans` removes
//! VMs we created that no session owns. What was verified against a real VBoxManage is listed in
//! docs/hypervisors.md.

pub mod command;
pub mod context;
pub mod locate;
pub mod orphans;
pub mod parse;
pub mod probe;
pub mod runner;
pub mod vm;

use std::ffi::OsString;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;

use self::command::{
    MediumKind, BOOT_SLOT, CONTEXT_ISO_SLOT, FLOPPY_SLOT, HVF_FLOPPY_IO, HVF_HEADFUL, OWNER_KEY,
    SCRATCH_SLOT,
};
use self::parse::{MachineInfo, Observed, Version, MIN_VERSION};
use self::runner::Runner;
use self::vm::{HandleData, VboxVm};
use crate::hypervisor::{
    BootMedium, HvError, Hypervisor, HypervisorInfo, Vm, VmHandle, VmSpec, VmState,
};

pub use self::orphans::cleanup_orphans;

/// The VirtualBox backend.
#[derive(Debug, Clone)]
pub struct VirtualBox {
    runner: Runner,
    info: HypervisorInfo,
    version: Version,
    driver_missing: bool,
    /// How often each VM's state and log are polled for external changes.
    pub poll_period: Duration,
}

/// Finds VBoxManage (PATH, then the per-OS install folders), checks its version (≥ 6.1) and that its
/// kernel driver is loaded. `auto` backend selection uses VirtualBox when this succeeds.
pub async fn detect() -> Result<VirtualBox, HvError> {
    let Some(path) = locate::find_vboxmanage() else {
        return Err(HvError::Unavailable(
            "VirtualBox is not installed (VBoxManage was not found in PATH or the usual install folders)".into(),
        ));
    };
    let vbox = VirtualBox::with_command(vec![path.into_os_string()]).await?;
    if vbox.driver_missing {
        return Err(HvError::Unavailable(format!(
            "VirtualBox {} is installed, but its kernel driver (vboxdrv) is not loaded, so it cannot run VMs",
            vbox.version
        )));
    }
    Ok(vbox)
}

impl VirtualBox {
    /// Uses `prefix` as the VBoxManage command (the binary, or e.g. `chroot DIR env HOME=/root VBoxManage`)
    /// after checking its version. A missing kernel driver is recorded, not an error: configuration
    /// commands work without it.
    pub async fn with_command(prefix: Vec<OsString>) -> Result<Self, HvError> {
        let runner = Runner::new(prefix)?;
        let out = runner.exec("version", &command::version()).await?;
        let version = parse::parse_version(&out.stdout)
            .filter(|_| out.success())
            .ok_or_else(|| {
                HvError::Unavailable(format!(
                    "VBoxManage --version did not report a version: {}",
                    out.error_summary()
                ))
            })?;
        if version < MIN_VERSION {
            return Err(HvError::Unavailable(format!(
                "VirtualBox {version} is too old; version {MIN_VERSION} or newer is needed (please update VirtualBox)"
            )));
        }
        // The warning is printed on stdout by `--version` and on stderr by the other commands.
        let driver_missing =
            parse::driver_missing(&out.stdout) || parse::driver_missing(&out.stderr);
        let info = HypervisorInfo {
            name: "virtualbox".into(),
            version: version.to_string(),
            accelerator: "vt-x/amd-v".into(),
            cap_method: "native".into(),
        };
        Ok(Self {
            runner,
            info,
            version,
            driver_missing,
            poll_period: Duration::from_secs(2),
        })
    }

    pub fn version(&self) -> Version {
        self.version
    }
    /// True when VBoxManage warned that `/dev/vboxdrv` is missing: VMs cannot start.
    pub fn driver_missing(&self) -> bool {
        self.driver_missing
    }
    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    /// Forgets a shared base disk (`closemedium disk`, the file is kept), e.g. before the media cache
    /// deletes or replaces it; VirtualBox would otherwise keep an inaccessible entry for it. Fails while
    /// a VM still uses it.
    pub async fn forget_base_disk(&self, base: &Path) -> Result<(), HvError> {
        let out = self
            .runner
            .exec("forget base disk", &command::showmediuminfo_disk(base))
            .await?;
        if !out.success() {
            return Ok(()); // not registered
        }
        self.runner
            .check(
                "forget base disk",
                &command::closemedium("disk", base, false),
            )
            .await
            .map(drop)
    }

    async fn define(&self, spec: &VmSpec, name: &str, uuid: &str) -> Result<HandleData, HvError> {
        let r = &self.runner;
        let mut data = HandleData {
            uuid: uuid.to_string(),
            name: name.to_string(),
            flags: spec.flags,
            api_host_port: None,
            rdp_port: None,
            own_files: Vec::new(),
            vm_folder: spec.dir.join(name),
        };
        r.check(
            "tag VM",
            &command::setextradata(uuid, OWNER_KEY, &spec.dir.to_string_lossy()),
        )
        .await?;
        r.check("add IDE controller", &command::storagectl_add(uuid, "IDE"))
            .await?;
        r.check(
            "add SATA controller",
            &command::storagectl_add(uuid, "SATA"),
        )
        .await?;
        if spec.flags & HVF_FLOPPY_IO != 0 {
            r.check(
                "add floppy controller",
                &command::storagectl_add(uuid, "Floppy"),
            )
            .await?;
        }
        if spec.api_guest_port.is_some() {
            data.api_host_port = Some(free_loopback_port()?);
        }
        if spec.flags & HVF_HEADFUL != 0 {
            data.rdp_port = Some(free_loopback_port()?);
        }
        let from_disk = matches!(spec.medium, BootMedium::Disk(_));
        r.check(
            "configure VM",
            &command::modifyvm_configure(uuid, spec, from_disk, data.api_host_port, data.rdp_port),
        )
        .await?;
        match &spec.medium {
            BootMedium::Iso(iso) => {
                r.check(
                    "attach boot ISO",
                    &command::storageattach(uuid, BOOT_SLOT, MediumKind::Dvd, iso),
                )
                .await?;
                if spec.disk_mb > 0 {
                    let scratch = spec.dir.join(format!("{name}-scratch.vdi"));
                    r.check(
                        "create scratch disk",
                        &command::createmedium_disk(&scratch, spec.disk_mb),
                    )
                    .await?;
                    data.own_files.push(scratch.clone());
                    r.check(
                        "attach scratch disk",
                        &command::storageattach(uuid, SCRATCH_SLOT, MediumKind::Hdd, &scratch),
                    )
                    .await?;
                }
            }
            BootMedium::Disk(base) => attach_shared_base(r, uuid, base).await?,
        }
        if let Some(user_data) = &spec.context {
            let (file, bytes, slot, kind) = if spec.flags & HVF_FLOPPY_IO != 0 {
                (
                    spec.dir.join(format!("{name}-context.img")),
                    context::build_floppy(user_data)?,
                    FLOPPY_SLOT,
                    MediumKind::Floppy,
                )
            } else {
                let iso = context::build_context_iso(user_data)?;
                (
                    spec.dir.join(format!("{name}-context.iso")),
                    iso,
                    CONTEXT_ISO_SLOT,
                    MediumKind::Dvd,
                )
            };
            crate::store::write_atomic(&file, &bytes).map_err(|e| HvError::Failed {
                action: "write context medium",
                detail: e.to_string(),
            })?;
            data.own_files.push(file.clone());
            r.check(
                "attach context medium",
                &command::storageattach(uuid, slot, kind, &file),
            )
            .await?;
        }
        Ok(data)
    }
}

/// Serialises the one-time registration of shared base disks within this process.
static BASE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Attaches `base` as the boot disk through a per-VM differencing child. The base is turned into a
/// `multiattach` medium once (VirtualBox accepts that type only for media registered with a machine:
/// attach, detach, `modifymedium --type multiattach`, attach again); later VMs attach it directly.
async fn attach_shared_base(r: &Runner, uuid: &str, base: &Path) -> Result<(), HvError> {
    let _guard = BASE_LOCK.lock().await;
    let info = r
        .exec("read base disk", &command::showmediuminfo_disk(base))
        .await?;
    let shared =
        info.success() && parse::parse_medium_type(&info.stdout).as_deref() == Some("multiattach");
    if !shared {
        r.check(
            "register base disk",
            &command::storageattach(uuid, BOOT_SLOT, MediumKind::Hdd, base),
        )
        .await?;
        r.check(
            "register base disk",
            &command::storagedetach(uuid, BOOT_SLOT),
        )
        .await?;
        r.check("share base disk", &command::modifymedium_multiattach(base))
            .await?;
    }
    r.check(
        "attach boot disk",
        &command::storageattach(uuid, BOOT_SLOT, MediumKind::Hdd, base),
    )
    .await?;
    Ok(())
}

/// A loopback port nothing listens on right now (the OS picks it; BOINC: loopback-only forwards).
fn free_loopback_port() -> Result<u16, HvError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|source| HvError::Io {
        action: "pick a free port",
        source,
    })?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|source| HvError::Io {
            action: "pick a free port",
            source,
        })
}

#[async_trait]
impl Hypervisor for VirtualBox {
    fn info(&self) -> &HypervisorInfo {
        &self.info
    }

    async fn create(&self, spec: &VmSpec) -> Result<Box<dyn Vm>, HvError> {
        command::validate_spec(spec)?;
        let name = command::vm_name(&spec.name)?;
        let medium = match &spec.medium {
            BootMedium::Iso(p) | BootMedium::Disk(p) => p,
        };
        if !medium.is_file() {
            return Err(HvError::InvalidSpec(format!(
                "boot medium {} does not exist",
                medium.display()
            )));
        }
        std::fs::create_dir_all(&spec.dir).map_err(|source| HvError::Io {
            action: "create VM folder",
            source,
        })?;
        let out = self
            .runner
            .exec("createvm", &command::createvm(&name, spec.flags, &spec.dir))
            .await?;
        if !out.success() {
            let detail = if out.stderr.contains("already exists") {
                format!(
                    "a VirtualBox VM named {name} already exists ({})",
                    out.error_summary()
                )
            } else {
                out.error_summary()
            };
            return Err(HvError::Failed {
                action: "createvm",
                detail,
            });
        }
        let uuid = parse::parse_created_uuid(&out.stdout)
            .filter(|u| command::valid_uuid(u))
            .ok_or_else(|| HvError::Failed {
                action: "createvm",
                detail: format!("no UUID in output: {}", out.stdout.trim()),
            })?;
        match self.define(spec, &name, &uuid).await {
            Ok(data) => Ok(Box::new(VboxVm::new(
                self.runner.serialised(),
                data,
                VmState::PoweredOff,
                self.poll_period,
            ))),
            Err(e) => {
                // Roll back: a half-configured VM is of no use and would only become an orphan.
                if let Err(undo) = self
                    .runner
                    .check("unregistervm", &command::unregistervm_delete(&uuid))
                    .await
                {
                    tracing::warn!(target: "vboxmanage", %uuid, error = %undo, "could not remove a half-created VM");
                }
                for f in [
                    spec.dir.join(format!("{name}-context.iso")),
                    spec.dir.join(format!("{name}-context.img")),
                    spec.dir.join(format!("{name}-scratch.vdi")),
                ] {
                    let _ = std::fs::remove_file(f);
                }
                Err(e)
            }
        }
    }

    async fn reattach(&self, spec: &VmSpec, handle: &VmHandle) -> Result<Box<dyn Vm>, HvError> {
        let data = HandleData::from_handle(handle)?;
        let expected = command::vm_name(&spec.name)?;
        let out = self
            .runner
            .check("showvminfo", &command::showvminfo(&data.uuid))
            .await?;
        let info = MachineInfo::parse(&out.stdout);
        if info.name() != Some(expected.as_str()) || data.name != expected {
            return Err(HvError::InvalidSpec(format!(
                "VirtualBox VM {} is named {:?}, not {expected:?}",
                data.uuid,
                info.name()
            )));
        }
        if owner_of(&self.runner, &data.uuid).await?.as_deref() != Some(spec.dir.as_path()) {
            return Err(HvError::InvalidSpec(format!(
                "VirtualBox VM {} does not belong to the session folder {}",
                data.uuid,
                spec.dir.display()
            )));
        }
        let state = match info.observed() {
            Some(Observed::Stable(s)) => s,
            _ => VmState::Running,
        };
        Ok(Box::new(VboxVm::new(
            self.runner.serialised(),
            data,
            state,
            self.poll_period,
        )))
    }
}

/// The VirtualBox UUID in a handle of this backend (for the `owned` set of [`cleanup_orphans`]).
pub fn handle_uuid(handle: &VmHandle) -> Option<String> {
    HandleData::from_handle(handle).ok().map(|d| d.uuid)
}

/// Where our VMs' folders are: the owner tag's value (a session folder) or `None` for VMs not ours.
pub async fn owner_of(runner: &Runner, vm: &str) -> Result<Option<PathBuf>, HvError> {
    let out = runner
        .check("read VM tag", &command::getextradata(vm, OWNER_KEY))
        .await?;
    Ok(parse::parse_extradata(&out.stdout)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for VBoxManage (test-only): a shell snippet that prints `stdout` for `--version`.
    fn fake(script: &str) -> Vec<OsString> {
        vec!["sh".into(), "-c".into(), script.into(), "VBoxManage".into()]
    }

    #[tokio::test]
    async fn too_old_versions_get_a_clear_message() {
        let err = VirtualBox::with_command(fake("echo 6.0.24r139119"))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, HvError::Unavailable(_)));
        assert!(
            text.contains("6.0.24 is too old") && text.contains("6.1.0 or newer"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn the_real_version_output_with_the_driver_warning() {
        // Replays the recorded output of VBoxManage 7.2.22 in the chroot (warning on stdout).
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/vbox/version.stdout"
        );
        let vbox = VirtualBox::with_command(fake(&format!("cat '{fixture}'")))
            .await
            .unwrap();
        assert_eq!(vbox.info().version, "7.2.22");
        assert_eq!(vbox.info().name, "virtualbox");
        assert!(vbox.driver_missing());
    }

    #[tokio::test]
    async fn no_version_is_unavailable() {
        let err = VirtualBox::with_command(fake("echo oops >&2; exit 1"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, HvError::Unavailable(t) if t.contains("oops")),
            "{err}"
        );
    }

    #[test]
    fn free_ports_are_loopback_and_nonzero() {
        let p = free_loopback_port().unwrap();
        assert_ne!(p, 0);
        std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, p)).expect("still free");
    }
}
