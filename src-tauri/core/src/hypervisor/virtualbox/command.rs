//! Builds VBoxManage argument vectors, one function per operation (shared/spec/vm-lifecycle.md §2.5).
//! Pure: no I/O. Every value that reaches an argument is validated or produced by us; nothing is ever
//! joined into a command string.

use std::path::Path;

use crate::hypervisor::{HvError, VmSpec};

/// Prefix of every VM name we create, so our VMs are recognisable in `list vms`.
pub const NAME_PREFIX: &str = "cvmwebapi-";
/// Extra-data key tagging a VM as ours; its value is the owning session's folder.
pub const OWNER_KEY: &str = "CernVM-WebAPI/Owner";
/// Name of the NAT port-forward rule for the guest API.
pub const API_RULE: &str = "guestapi";
/// Default video memory in MB (the original's default).
pub const DEFAULT_VRAM_MB: u32 = 32;

/// `HVF_SYSTEM_64BIT`: 64-bit guest OS type.
pub const HVF_SYSTEM_64BIT: u32 = 1;
/// `HVF_FLOPPY_IO`: contextualise through a floppy instead of an ISO.
pub const HVF_FLOPPY_IO: u32 = 8;
/// `HVF_HEADFUL`: start with a GUI window instead of headless; VRDE on loopback.
pub const HVF_HEADFUL: u32 = 16;
/// `HVF_GRAPHICAL`: drag and drop host→guest and a bidirectional clipboard.
pub const HVF_GRAPHICAL: u32 = 32;

/// Storage slots (controller, port, device) as in the original (§4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub controller: &'static str,
    pub port: u8,
    pub device: u8,
}
pub const BOOT_SLOT: Slot = Slot {
    controller: "IDE",
    port: 0,
    device: 0,
};
pub const SCRATCH_SLOT: Slot = Slot {
    controller: "SATA",
    port: 0,
    device: 0,
};
pub const CONTEXT_ISO_SLOT: Slot = Slot {
    controller: "SATA",
    port: 1,
    device: 0,
};
pub const FLOPPY_SLOT: Slot = Slot {
    controller: "Floppy",
    port: 0,
    device: 0,
};

/// The medium type of a `storageattach`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediumKind {
    Dvd,
    Hdd,
    /// A shared base disk: VirtualBox attaches a per-VM differencing child automatically.
    HddMultiAttach,
    Floppy,
}

/// Is `name` a valid session name (`[A-Za-z0-9_-]{1,64}`)?
pub fn valid_session_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The VirtualBox VM name for a session name, after validating it.
pub fn vm_name(session_name: &str) -> Result<String, HvError> {
    if !valid_session_name(session_name) {
        return Err(HvError::InvalidSpec(format!(
            "VM name {session_name:?} must be 1-64 characters of A-Z a-z 0-9 _ -"
        )));
    }
    Ok(format!("{NAME_PREFIX}{session_name}"))
}

/// Is `id` a VirtualBox UUID (`8-4-4-4-12` hex digits)? Used before a UUID reaches an argument.
pub fn valid_uuid(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Checks the numeric parts of a spec against what VirtualBox accepts.
pub fn validate_spec(spec: &VmSpec) -> Result<(), HvError> {
    vm_name(&spec.name)?;
    let bad = |what: String| Err(HvError::InvalidSpec(what));
    if !(1..=64).contains(&spec.cpus) {
        return bad(format!("cpus must be 1..=64, got {}", spec.cpus));
    }
    if !(4..=1024 * 1024).contains(&spec.memory_mb) {
        return bad(format!(
            "memory must be 4..=1048576 MB, got {}",
            spec.memory_mb
        ));
    }
    if spec.disk_mb > 2 * 1024 * 1024 {
        return bad(format!(
            "disk must be at most 2 TB, got {} MB",
            spec.disk_mb
        ));
    }
    if spec.execution_cap > 100 {
        return bad(format!(
            "execution cap must be 1..=100, got {}",
            spec.execution_cap
        ));
    }
    let medium = match &spec.medium {
        crate::hypervisor::BootMedium::Iso(p) | crate::hypervisor::BootMedium::Disk(p) => p,
    };
    // Absolute paths only: a relative one could start with '-' and read as an option.
    if !spec.dir.is_absolute() || !medium.is_absolute() {
        return bad(format!(
            "the VM folder and boot medium must be absolute paths ({}, {})",
            spec.dir.display(),
            medium.display()
        ));
    }
    if spec.api_guest_port == Some(0) {
        return bad("the guest API port must not be 0".into());
    }
    Ok(())
}

/// A CPU cap VirtualBox accepts: never below 1 (0 turns into 1; BOINC: "VirtualBox freaks out"), at most 100.
pub fn clamp_cap(percent: u8) -> u8 {
    percent.clamp(1, 100)
}

fn s(v: &str) -> String {
    v.to_string()
}
fn p(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

pub fn version() -> Vec<String> {
    vec![s("--version")]
}

pub fn list_vms() -> Vec<String> {
    vec![s("list"), s("vms")]
}

pub fn createvm(name: &str, flags: u32, base_folder: &Path) -> Vec<String> {
    let ostype = if flags & HVF_SYSTEM_64BIT != 0 {
        "Linux26_64"
    } else {
        "Linux26"
    };
    vec![
        s("createvm"),
        s("--name"),
        s(name),
        s("--ostype"),
        s(ostype),
        s("--basefolder"),
        p(base_folder),
        s("--register"),
    ]
}

pub fn storagectl_add(vm: &str, controller: &str) -> Vec<String> {
    let kind = controller.to_ascii_lowercase();
    let mut argv = vec![
        s("storagectl"),
        s(vm),
        s("--name"),
        s(controller),
        s("--add"),
        kind,
    ];
    if controller == "SATA" {
        argv.extend([s("--portcount"), s("3")]);
    }
    argv
}

/// The settings of a fresh VM (one `modifyvm`, §2.5/201), with the NAT forward of the guest API to
/// `127.0.0.1:api_host_port` and, for headful sessions, VRDE on `127.0.0.1:rdp_port`.
pub fn modifyvm_configure(
    vm: &str,
    spec: &VmSpec,
    boot_from_disk: bool,
    api_host_port: Option<u16>,
    rdp_port: Option<u16>,
) -> Vec<String> {
    let mut a = vec![s("modifyvm"), s(vm)];
    a.extend([s("--cpus"), spec.cpus.to_string()]);
    a.extend([s("--memory"), spec.memory_mb.to_string()]);
    a.extend([s("--vram"), DEFAULT_VRAM_MB.to_string()]);
    a.extend([
        s("--cpuexecutioncap"),
        clamp_cap(spec.execution_cap).to_string(),
    ]);
    a.extend([s("--acpi"), s("on"), s("--ioapic"), s("on")]);
    a.extend([
        s("--boot1"),
        s(if boot_from_disk { "disk" } else { "dvd" }),
        s("--boot2"),
        s("none"),
    ]);
    a.extend([s("--nic1"), s("nat"), s("--natdnshostresolver1"), s("on")]);
    if let (Some(host), Some(guest)) = (api_host_port, spec.api_guest_port) {
        a.extend([s("--natpf1"), nat_rule(API_RULE, host, guest)]);
    }
    if let Some(port) = rdp_port {
        a.extend([
            s("--vrde"),
            s("on"),
            s("--vrdeaddress"),
            s("127.0.0.1"),
            s("--vrdeport"),
            port.to_string(),
        ]);
    } else {
        a.extend([s("--vrde"), s("off")]);
    }
    if spec.flags & HVF_GRAPHICAL != 0 {
        a.extend([
            s("--draganddrop"),
            s("hosttoguest"),
            s("--clipboard-mode"),
            s("bidirectional"),
        ]);
    }
    a
}

/// A loopback-only TCP forward: `name,tcp,127.0.0.1,<host>,,<guest>`.
pub fn nat_rule(name: &str, host_port: u16, guest_port: u16) -> String {
    format!("{name},tcp,127.0.0.1,{host_port},,{guest_port}")
}

pub fn setextradata(vm: &str, key: &str, value: &str) -> Vec<String> {
    vec![s("setextradata"), s(vm), s(key), s(value)]
}

pub fn getextradata(vm: &str, key: &str) -> Vec<String> {
    vec![s("getextradata"), s(vm), s(key)]
}

pub fn createmedium_disk(file: &Path, size_mb: u32) -> Vec<String> {
    vec![
        s("createmedium"),
        s("disk"),
        s("--filename"),
        p(file),
        s("--size"),
        size_mb.to_string(),
        s("--format"),
        s("VDI"),
    ]
}

pub fn storageattach(vm: &str, slot: Slot, kind: MediumKind, medium: &Path) -> Vec<String> {
    let ty = match kind {
        MediumKind::Dvd => "dvddrive",
        MediumKind::Hdd | MediumKind::HddMultiAttach => "hdd",
        MediumKind::Floppy => "fdd",
    };
    let mut a = slot_args(vm, slot);
    a.extend([s("--type"), s(ty)]);
    if kind == MediumKind::HddMultiAttach {
        a.extend([s("--mtype"), s("multiattach")]);
    }
    a.extend([s("--medium"), p(medium)]);
    a
}

pub fn storagedetach(vm: &str, slot: Slot) -> Vec<String> {
    let mut a = slot_args(vm, slot);
    a.extend([s("--medium"), s("none")]);
    a
}

fn slot_args(vm: &str, slot: Slot) -> Vec<String> {
    vec![
        s("storageattach"),
        s(vm),
        s("--storagectl"),
        s(slot.controller),
        s("--port"),
        slot.port.to_string(),
        s("--device"),
        slot.device.to_string(),
    ]
}

pub fn showvminfo(vm: &str) -> Vec<String> {
    vec![s("showvminfo"), s(vm), s("--machinereadable")]
}

pub fn startvm(vm: &str, flags: u32) -> Vec<String> {
    let ty = if flags & HVF_HEADFUL != 0 {
        "gui"
    } else {
        "headless"
    };
    vec![s("startvm"), s(vm), s("--type"), s(ty)]
}

/// `controlvm <vm> <action>` for pause, resume, savestate, reset, acpipowerbutton, poweroff.
pub fn controlvm(vm: &str, action: &str) -> Vec<String> {
    vec![s("controlvm"), s(vm), s(action)]
}

pub fn controlvm_cap(vm: &str, percent: u8) -> Vec<String> {
    vec![
        s("controlvm"),
        s(vm),
        s("cpuexecutioncap"),
        clamp_cap(percent).to_string(),
    ]
}

pub fn modifyvm_cap(vm: &str, percent: u8) -> Vec<String> {
    vec![
        s("modifyvm"),
        s(vm),
        s("--cpuexecutioncap"),
        clamp_cap(percent).to_string(),
    ]
}

pub fn discardstate(vm: &str) -> Vec<String> {
    vec![s("discardstate"), s(vm)]
}

pub fn unregistervm_delete(vm: &str) -> Vec<String> {
    vec![s("unregistervm"), s(vm), s("--delete")]
}

pub fn closemedium(kind: &str, file: &Path, delete: bool) -> Vec<String> {
    let mut a = vec![s("closemedium"), s(kind), p(file)];
    if delete {
        a.push(s("--delete"));
    }
    a
}

pub fn showmediuminfo_disk(file: &Path) -> Vec<String> {
    vec![s("showmediuminfo"), s("disk"), p(file)]
}

pub fn modifymedium_multiattach(file: &Path) -> Vec<String> {
    vec![
        s("modifymedium"),
        s("disk"),
        p(file),
        s("--type"),
        s("multiattach"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn spec() -> VmSpec {
        VmSpec {
            name: "s1".into(),
            dir: PathBuf::from("/d"),
            cpus: 1,
            memory_mb: 512,
            disk_mb: 0,
            medium: crate::hypervisor::BootMedium::Iso(PathBuf::from("/i.iso")),
            context: None,
            api_guest_port: None,
            execution_cap: 100,
            flags: 0,
        }
    }

    #[test]
    fn names_are_validated_before_reaching_an_argument() {
        assert_eq!(vm_name("My_VM-1").unwrap(), "cvmwebapi-My_VM-1");
        for bad in [
            "",
            "My first VM",
            "a;b",
            "../x",
            "é",
            &"x".repeat(65),
            "--help",
        ] {
            if bad == "--help" {
                // Only [A-Za-z0-9_-]: a leading dash is allowed by the charset but is prefixed anyway.
                assert_eq!(vm_name(bad).unwrap(), "cvmwebapi---help");
                continue;
            }
            assert!(vm_name(bad).is_err(), "{bad:?}");
        }
        assert!(valid_uuid("d0e676ca-0fc6-4d89-bdba-51ee9988e8c2"));
        assert!(!valid_uuid("d0e676ca-0fc6-4d89-bdba-51ee9988e8c"));
        assert!(!valid_uuid("--delete"));
    }

    #[test]
    fn spec_bounds() {
        assert!(validate_spec(&spec()).is_ok());
        for bad in [
            VmSpec { cpus: 0, ..spec() },
            VmSpec { cpus: 65, ..spec() },
            VmSpec {
                memory_mb: 2,
                ..spec()
            },
            VmSpec {
                execution_cap: 101,
                ..spec()
            },
            VmSpec {
                api_guest_port: Some(0),
                ..spec()
            },
            VmSpec {
                disk_mb: u32::MAX,
                ..spec()
            },
            VmSpec {
                name: "a b".into(),
                ..spec()
            },
            VmSpec {
                dir: PathBuf::from("-rf"),
                ..spec()
            },
            VmSpec {
                medium: crate::hypervisor::BootMedium::Disk(PathBuf::from("--x")),
                ..spec()
            },
        ] {
            assert!(
                matches!(validate_spec(&bad), Err(HvError::InvalidSpec(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn headless_32_bit_vm_without_forward() {
        assert!(createvm("cvmwebapi-s1", 0, Path::new("/d")).contains(&"Linux26".to_string()));
        let a = modifyvm_configure("u", &spec(), true, None, None);
        let text = a.join(" ");
        assert!(text.contains("--boot1 disk"));
        assert!(text.contains("--vrde off"));
        assert!(!text.contains("--natpf1"));
        assert!(!text.contains("--clipboard-mode"));
        assert_eq!(startvm("u", 0).last().unwrap(), "headless");
        assert_eq!(startvm("u", HVF_HEADFUL).last().unwrap(), "gui");
    }

    #[test]
    fn caps_never_below_one() {
        assert_eq!(clamp_cap(0), 1);
        assert_eq!(clamp_cap(1), 1);
        assert_eq!(clamp_cap(250), 100);
        assert_eq!(
            controlvm_cap("u", 0),
            ["controlvm", "u", "cpuexecutioncap", "1"]
        );
    }

    #[test]
    fn forwards_are_loopback_only() {
        assert_eq!(
            nat_rule("guestapi", 18200, 80),
            "guestapi,tcp,127.0.0.1,18200,,80"
        );
        let s = VmSpec {
            api_guest_port: Some(8080),
            ..spec()
        };
        let a = modifyvm_configure("u", &s, false, Some(40000), Some(40001));
        let text = a.join(" ");
        assert!(text.contains("--natpf1 guestapi,tcp,127.0.0.1,40000,,8080"));
        assert!(text.contains("--vrdeaddress 127.0.0.1 --vrdeport 40001"));
    }
}
