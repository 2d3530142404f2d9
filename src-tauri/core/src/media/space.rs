//! Free disk space of the folder images are written to.

use std::io;
use std::path::Path;

/// Bytes available to this user on the file system holding `dir`.
#[cfg(unix)]
pub fn available_bytes(dir: &Path) -> io::Result<u64> {
    let st = rustix::fs::statvfs(dir).map_err(io::Error::from)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Bytes available on the disk whose mount point is the longest prefix of `dir`.
#[cfg(not(unix))]
pub fn available_bytes(dir: &Path) -> io::Result<u64> {
    let dir = std::fs::canonicalize(dir)?;
    let disks = sysinfo::Disks::new_with_refreshed_list();
    disks
        .list()
        .iter()
        .filter(|d| dir.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .map(|d| d.available_space())
        .ok_or_else(|| io::Error::other(format!("no disk found for {}", dir.display())))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reports_space_of_a_real_folder() {
        let dir = tempfile::tempdir().unwrap();
        assert!(super::available_bytes(dir.path()).unwrap() > 0);
        assert!(super::available_bytes(&dir.path().join("missing")).is_err());
    }
}
