//! The QEMU command line of a VM, built as an argv vector. QEMU runs with the VM folder as its working
//! directory, so every file of its own is a plain relative name; only the boot medium is absolute (with
//! commas doubled, QEMU's option-value escape). Restoring a saved state needs the very same device
//! arguments plus `-incoming defer`.

use std::path::Path;

use crate::hypervisor::{BootMedium, VmSpec};

/// File names inside the VM folder.
pub const QMP_SOCKET: &str = "qmp.sock";
pub const SERIAL_LOG: &str = "serial.log";
pub const QEMU_LOG: &str = "qemu.log";
pub const DISK: &str = "disk.qcow2";
pub const CONTEXT_ISO: &str = "context.iso";
pub const CONTEXT_TXT: &str = "context.txt";
pub const STATE: &str = "state.bin";
pub const STATE_PART: &str = "state.bin.part";
/// The fw_cfg name under which the guest finds the context (`/sys/firmware/qemu_fw_cfg/by_name/...`).
pub const FW_CFG_CONTEXT: &str = "opt/cernvm/context";

/// `HVF_HEADFUL` (shared/spec/protocol.md §6.2): show the VM's screen in a window.
pub const HVF_HEADFUL: u32 = 16;

/// Everything about the host that shapes the command line.
#[derive(Debug, Clone)]
pub struct ArgsEnv<'a> {
    pub accel: &'a str,
    /// Whether the VM folder holds `disk.qcow2` (overlay, or scratch disk for ISO boots).
    pub has_disk: bool,
}

/// Builds the argv (without the program) for `spec`.
pub fn qemu_args(spec: &VmSpec, env: &ArgsEnv<'_>, incoming: bool) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    push(&[
        "-name",
        &format!("guest={},process=cvm-{}", spec.name, spec.name),
    ]);
    push(&["-machine", "pc", "-accel", env.accel]);
    if env.accel == "kvm" || env.accel == "hvf" {
        push(&["-cpu", "host"]);
    }
    push(&[
        "-m",
        &spec.memory_mb.to_string(),
        "-smp",
        &spec.cpus.to_string(),
    ]);
    push(&["-nodefaults", "-no-user-config"]);
    if spec.flags & HVF_HEADFUL != 0 {
        push(&["-device", "VGA", "-display", "default"]);
    } else {
        push(&["-display", "none"]);
    }
    push(&["-serial", &format!("file:{SERIAL_LOG}")]);
    push(&["-qmp", &format!("unix:{QMP_SOCKET},server=on,wait=off")]);
    if spec.context.is_some() {
        push(&[
            "-fw_cfg",
            &format!("name={FW_CFG_CONTEXT},file={CONTEXT_TXT}"),
        ]);
    }
    match &spec.medium {
        BootMedium::Iso(iso) => {
            push(&[
                "-drive",
                &format!(
                    "id=boot,if=none,media=cdrom,readonly=on,file={}",
                    opt_path(iso)
                ),
                "-device",
                "ide-cd,drive=boot,bus=ide.0,bootindex=0",
            ]);
            if env.has_disk {
                push(&[
                    "-drive",
                    &format!("id=scratch,if=none,format=qcow2,file={DISK}"),
                    "-device",
                    "virtio-blk-pci,drive=scratch",
                ]);
            }
        }
        BootMedium::Disk(_) => push(&[
            "-drive",
            &format!("id=boot,if=none,format=qcow2,file={DISK}"),
            "-device",
            "virtio-blk-pci,drive=boot,bootindex=0",
        ]),
    }
    if spec.context.is_some() {
        push(&[
            "-drive",
            &format!("id=context,if=none,format=raw,readonly=on,file={CONTEXT_ISO}"),
            "-device",
            "virtio-blk-pci,drive=context",
        ]);
    }
    let mut netdev = "user,id=n0".to_string();
    if let Some(port) = spec.api_guest_port {
        netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:0-:{port}"));
    }
    push(&[
        "-netdev",
        &netdev,
        "-device",
        "virtio-net-pci,netdev=n0,romfile=",
    ]);
    push(&["-device", "pvpanic"]);
    if incoming {
        push(&["-incoming", "defer"]);
    }
    a
}

/// A path as a QEMU option value: commas doubled.
fn opt_path(p: &Path) -> String {
    p.to_string_lossy().replace(',', ",,")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(medium: BootMedium) -> VmSpec {
        VmSpec {
            name: "s1".into(),
            dir: "/d/s1".into(),
            cpus: 2,
            memory_mb: 256,
            disk_mb: 100,
            medium,
            context: Some("x".into()),
            api_guest_port: Some(80),
            execution_cap: 50,
            flags: 0,
        }
    }

    #[test]
    fn iso_boot_has_cd_scratch_context_fwcfg_and_port0_forward() {
        let env = ArgsEnv {
            accel: "tcg",
            has_disk: true,
        };
        let a = qemu_args(&spec(BootMedium::Iso("/img/a,b.iso".into())), &env, false);
        let line = a.join(" ");
        assert!(line.contains("file=/img/a,,b.iso"));
        assert!(line.contains("ide-cd,drive=boot,bus=ide.0,bootindex=0"));
        assert!(line.contains("id=scratch,if=none,format=qcow2,file=disk.qcow2"));
        assert!(line.contains("name=opt/cernvm/context,file=context.txt"));
        assert!(line.contains("hostfwd=tcp:127.0.0.1:0-:80"));
        assert!(line.contains("-accel tcg -m 256 -smp 2") || line.contains("-m 256 -smp 2"));
        assert!(!line.contains("-cpu host"));
        assert!(!line.contains("-incoming"));
        assert!(line.contains("-display none") && !line.contains("VGA"));
        let mut headful = spec(BootMedium::Iso("/i.iso".into()));
        headful.flags = HVF_HEADFUL;
        let line = qemu_args(&headful, &env, false).join(" ");
        assert!(line.contains("-device VGA -display default"));
    }

    #[test]
    fn restore_adds_only_incoming_defer() {
        let env = ArgsEnv {
            accel: "kvm",
            has_disk: true,
        };
        let s = spec(BootMedium::Disk("/img/base.img".into()));
        let cold = qemu_args(&s, &env, false);
        let warm = qemu_args(&s, &env, true);
        assert_eq!(&warm[..cold.len()], &cold[..]);
        assert_eq!(&warm[cold.len()..], ["-incoming", "defer"]);
        assert!(cold.join(" ").contains("-cpu host"));
    }
}
