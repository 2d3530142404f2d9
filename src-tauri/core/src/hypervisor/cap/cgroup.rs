//! cgroup v1 (`cpu.cfs_quota_us`) and v2 (`cpu.max`) groups for one VM process each: found from
//! `/proc/self/mounts` and `/proc/self/cgroup`, probed by creating and removing a group, removed on destroy.

use std::fs;
use std::path::{Path, PathBuf};

use super::{quota_us, PERIOD_US};

/// One VM's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupGroup {
    pub dir: PathBuf,
    pub v2: bool,
}

impl CgroupGroup {
    /// Creates (or reuses) the group `name` under `parent`.
    pub fn create(parent: &Path, name: &str, v2: bool) -> std::io::Result<Self> {
        let dir = parent.join(name);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        Ok(Self { dir, v2 })
    }

    /// Moves the process `pid` (all its threads) into the group.
    pub fn add(&self, pid: u32) -> std::io::Result<()> {
        fs::write(self.dir.join("cgroup.procs"), pid.to_string())
    }

    /// Sets the cap: `percent` of each of `cpus` vCPUs.
    pub fn set_cap(&self, percent: u8, cpus: u32) -> std::io::Result<()> {
        let quota = quota_us(percent, cpus);
        if self.v2 {
            let q = quota.map_or("max".to_string(), |q| q.to_string());
            fs::write(self.dir.join("cpu.max"), format!("{q} {PERIOD_US}"))
        } else {
            fs::write(self.dir.join("cpu.cfs_period_us"), PERIOD_US.to_string())?;
            let q = quota.map_or("-1".to_string(), |q| q.to_string());
            fs::write(self.dir.join("cpu.cfs_quota_us"), q)
        }
    }

    /// Removes the group. It must be empty: an exited process may linger a moment until it is reaped,
    /// so "busy" is retried for up to a second. Missing is fine.
    pub fn remove(&self) -> std::io::Result<()> {
        for _ in 0..100 {
            match fs::remove_dir(&self.dir) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::ResourceBusy => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                Err(e) => return Err(e),
            }
        }
        fs::remove_dir(&self.dir)
    }
}

/// Our own cgroup v2 group when its `cpu` controller is available to sub-groups we may create.
pub fn v2_parent() -> Option<PathBuf> {
    let mounts = fs::read_to_string("/proc/self/mounts").ok()?;
    let mount = mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 2 && f[2] == "cgroup2").then(|| PathBuf::from(f[1]))
    })?;
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    let parent = mount.join(rel.trim_start_matches('/'));
    let control = parent.join("cgroup.subtree_control");
    let enabled = |p: &Path| {
        fs::read_to_string(p)
            .map(|s| s.split_whitespace().any(|c| c == "cpu"))
            .unwrap_or(false)
    };
    if !enabled(&control) && fs::write(&control, "+cpu").is_err() {
        return None;
    }
    probe(&parent, "cpu.max").then_some(parent)
}

/// Our own group in the cgroup v1 cpu hierarchy, when we may create sub-groups there.
pub fn v1_parent() -> Option<PathBuf> {
    let mounts = fs::read_to_string("/proc/self/mounts").ok()?;
    let mount = mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 3 && f[2] == "cgroup" && f[3].split(',').any(|o| o == "cpu"))
            .then(|| PathBuf::from(f[1]))
    })?;
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = own.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        ctrls.split(',').any(|c| c == "cpu").then_some(path)
    })?;
    let parent = mount.join(rel.trim_start_matches('/'));
    probe(&parent, "cpu.cfs_quota_us").then_some(parent)
}

/// Can we create a sub-group of `parent` that has the file `knob`?
fn probe(parent: &Path, knob: &str) -> bool {
    let dir = parent.join(format!("cvmwebapi-probe-{}", std::process::id()));
    if fs::create_dir(&dir).is_err() {
        return false;
    }
    let ok = dir.join(knob).exists();
    let _ = fs::remove_dir(&dir);
    ok
}
