//! Checks every field of a `VmSpec` before a backend touches the disk or spawns anything.

use std::path::Path;

use super::context::MAX_CONTEXT_BYTES;
use super::{BootMedium, HvError, VmSpec};

/// The smallest guest memory we accept, in MiB.
pub const MIN_MEMORY_MB: u32 = 32;
/// The largest scratch disk we create, in MiB (2 TiB).
pub const MAX_DISK_MB: u32 = 2 * 1024 * 1024;

/// What the host offers, used as upper bounds.
#[derive(Debug, Clone, Copy)]
pub struct HostLimits {
    pub cpus: u32,
    pub memory_mb: u64,
}

impl HostLimits {
    /// Reads the number of logical CPUs and the total memory of this host.
    pub fn detect() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        let mut sys = sysinfo::System::new();
        sys.refresh_memory();
        let memory_mb = (sys.total_memory() / (1024 * 1024)).max(u64::from(MIN_MEMORY_MB));
        Self { cpus, memory_mb }
    }
}

/// Is `name` usable as a file name and hypervisor object name (`[A-Za-z0-9_-]{1,64}`)?
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Validates `spec` against the host's limits.
pub fn validate_spec(spec: &VmSpec, host: HostLimits) -> Result<(), HvError> {
    let bad = |m: String| Err(HvError::InvalidSpec(m));
    if !valid_name(&spec.name) {
        return bad(format!(
            "name {:?} must be 1-64 characters of A-Z, a-z, 0-9, _ and -",
            spec.name
        ));
    }
    check_dir(&spec.dir)?;
    if spec.cpus == 0 || spec.cpus > host.cpus {
        return bad(format!(
            "cpus {} must be between 1 and this host's {} CPUs",
            spec.cpus, host.cpus
        ));
    }
    if spec.memory_mb < MIN_MEMORY_MB || u64::from(spec.memory_mb) > host.memory_mb {
        return bad(format!(
            "memory {} MiB must be between {MIN_MEMORY_MB} and this host's {} MiB",
            spec.memory_mb, host.memory_mb
        ));
    }
    if spec.disk_mb > MAX_DISK_MB {
        return bad(format!(
            "disk {} MiB is larger than {MAX_DISK_MB} MiB",
            spec.disk_mb
        ));
    }
    let medium = match &spec.medium {
        BootMedium::Iso(p) | BootMedium::Disk(p) => p,
    };
    if !medium.is_absolute() {
        return bad(format!(
            "boot medium {} must be an absolute path",
            medium.display()
        ));
    }
    match std::fs::metadata(medium) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return bad(format!("boot medium {} is not a file", medium.display())),
        Err(e) => return bad(format!("boot medium {}: {e}", medium.display())),
    }
    if medium.starts_with(&spec.dir) {
        return bad(format!(
            "boot medium {} must not live in the VM's own folder (destroy deletes it)",
            medium.display()
        ));
    }
    if let Some(ctx) = &spec.context {
        if ctx.len() > MAX_CONTEXT_BYTES {
            return bad(format!(
                "context of {} bytes is larger than {MAX_CONTEXT_BYTES}",
                ctx.len()
            ));
        }
    }
    if spec.api_guest_port == Some(0) {
        return bad("api guest port 0 is not a port".into());
    }
    if !(1..=100).contains(&spec.execution_cap) {
        return bad(format!(
            "execution cap {} must be between 1 and 100",
            spec.execution_cap
        ));
    }
    Ok(())
}

/// The VM folder must be absolute, without `..`, and its path valid UTF-8 without control characters
/// (it ends up in QEMU option strings and unix socket paths).
fn check_dir(dir: &Path) -> Result<(), HvError> {
    let bad = |m: String| Err(HvError::InvalidSpec(m));
    if !dir.is_absolute() {
        return bad(format!("VM folder {} must be absolute", dir.display()));
    }
    if dir
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return bad(format!("VM folder {} must not contain ..", dir.display()));
    }
    match dir.to_str() {
        Some(s) if !s.chars().any(char::is_control) => Ok(()),
        _ => bad(format!(
            "VM folder {} must be UTF-8 without control characters",
            dir.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path, medium: &Path) -> VmSpec {
        VmSpec {
            name: "vm-1".into(),
            dir: dir.join("vm-1"),
            cpus: 1,
            memory_mb: 128,
            disk_mb: 0,
            medium: BootMedium::Iso(medium.to_path_buf()),
            context: None,
            api_guest_port: Some(80),
            execution_cap: 100,
            flags: 0,
        }
    }

    const HOST: HostLimits = HostLimits {
        cpus: 2,
        memory_mb: 4096,
    };

    #[test]
    fn accepts_a_good_spec_and_rejects_each_bad_field() {
        let tmp = tempfile::tempdir().unwrap();
        let iso = tmp.path().join("g.iso");
        std::fs::write(&iso, b"x").unwrap();
        let good = spec(tmp.path(), &iso);
        validate_spec(&good, HOST).unwrap();

        type Mutation = Box<dyn Fn(&mut VmSpec)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("name", Box::new(|s| s.name = "a b".into())),
            ("name", Box::new(|s| s.name = "x".repeat(65))),
            ("name", Box::new(|s| s.name = String::new())),
            ("cpus", Box::new(|s| s.cpus = 0)),
            ("cpus", Box::new(|s| s.cpus = 3)),
            ("memory", Box::new(|s| s.memory_mb = 16)),
            ("memory", Box::new(|s| s.memory_mb = 5000)),
            ("disk", Box::new(|s| s.disk_mb = MAX_DISK_MB + 1)),
            ("absolute", Box::new(|s| s.dir = "rel/dir".into())),
            ("..", Box::new(|s| s.dir = "/tmp/../etc".into())),
            (
                "boot medium",
                Box::new(|s| s.medium = BootMedium::Disk("/nonexistent/x".into())),
            ),
            (
                "boot medium",
                Box::new(|s| s.medium = BootMedium::Disk("relative.img".into())),
            ),
            (
                "context",
                Box::new(|s| s.context = Some("x".repeat(MAX_CONTEXT_BYTES + 1))),
            ),
            ("port", Box::new(|s| s.api_guest_port = Some(0))),
            ("execution cap", Box::new(|s| s.execution_cap = 0)),
            ("execution cap", Box::new(|s| s.execution_cap = 101)),
        ];
        for (word, mutate) in cases {
            let mut s = good.clone();
            mutate(&mut s);
            let err = validate_spec(&s, HOST).unwrap_err().to_string();
            assert!(err.contains(word), "{err:?} should mention {word}");
        }
        let mut inside = good.clone();
        std::fs::create_dir_all(&inside.dir).unwrap();
        let own = inside.dir.join("base.img");
        std::fs::write(&own, b"x").unwrap();
        inside.medium = BootMedium::Disk(own);
        assert!(validate_spec(&inside, HOST).is_err());
    }
}
