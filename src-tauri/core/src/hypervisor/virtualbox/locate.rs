//! Finds the VBoxManage binary: the directories of `PATH` first, then where the VirtualBox installers
//! put it on each OS (shared/spec/vm-lifecycle.md §7.1). Pure candidate list plus one existence check.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The file name of the binary on `os` (`std::env::consts::OS` values).
pub fn binary_name(os: &str) -> &'static str {
    if os == "windows" {
        "VBoxManage.exe"
    } else {
        "VBoxManage"
    }
}

/// Install folders of VirtualBox on `os`, in the order they are tried after `PATH`.
/// `program_files` are the values of `ProgramFiles`/`ProgramW6432`/`ProgramFiles(x86)` on Windows.
pub fn install_dirs(os: &str, program_files: &[PathBuf]) -> Vec<PathBuf> {
    match os {
        "windows" => program_files
            .iter()
            .map(|p| p.join("Oracle").join("VirtualBox"))
            .chain([
                PathBuf::from(r"C:\Program Files\Oracle\VirtualBox"),
                PathBuf::from(r"C:\Program Files (x86)\Oracle\VirtualBox"),
            ])
            .collect(),
        "macos" => vec![
            PathBuf::from("/Applications/VirtualBox.app/Contents/MacOS"),
            PathBuf::from("/Applications/Utilities/VirtualBox.app/Contents/MacOS"),
        ],
        _ => [
            "/usr/bin",
            "/usr/local/bin",
            "/opt/VirtualBox",
            "/opt/VirtualBox/bin",
            "/bin",
            "/usr/lib/virtualbox",
        ]
        .iter()
        .map(PathBuf::from)
        .collect(),
    }
}

/// Every path where the binary may be, in order: `PATH` entries, then the install folders.
pub fn candidates(os: &str, path_var: Option<&OsStr>, program_files: &[PathBuf]) -> Vec<PathBuf> {
    let name = binary_name(os);
    let from_path = path_var
        .map(|p| {
            std::env::split_paths(p)
                .filter(|d| d.is_absolute())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut out: Vec<PathBuf> = Vec::new();
    for dir in from_path.into_iter().chain(install_dirs(os, program_files)) {
        let candidate = dir.join(name);
        if !out.contains(&candidate) {
            out.push(candidate);
        }
    }
    out
}

/// The first candidate that is an existing file, for this machine's OS and environment.
pub fn find_vboxmanage() -> Option<PathBuf> {
    let program_files: Vec<PathBuf> = ["ProgramW6432", "ProgramFiles", "ProgramFiles(x86)"]
        .iter()
        .filter_map(|v| std::env::var_os(v).map(PathBuf::from))
        .collect();
    let path = std::env::var_os("PATH");
    // The VirtualBox installer for Windows records its folder in these variables.
    let installer_dirs = ["VBOX_MSI_INSTALL_PATH", "VBOX_INSTALL_PATH"]
        .iter()
        .filter_map(|v| std::env::var_os(v).map(PathBuf::from))
        .filter(|d| d.is_absolute())
        .map(|d| d.join(binary_name(std::env::consts::OS)));
    candidates(std::env::consts::OS, path.as_deref(), &program_files)
        .into_iter()
        .chain(installer_dirs)
        .find(|p| is_file(p))
}

fn is_file(p: &Path) -> bool {
    p.metadata().map(|m| m.is_file()).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_comes_first_then_install_dirs_without_duplicates() {
        let path = std::env::join_paths(["/opt/x/bin", "relative", "/usr/bin"]).unwrap();
        let c = candidates("linux", Some(&path), &[]);
        assert_eq!(c[0], PathBuf::from("/opt/x/bin/VBoxManage"));
        assert_eq!(c[1], PathBuf::from("/usr/bin/VBoxManage"));
        assert!(
            !c.iter().any(|p| p.starts_with("relative")),
            "relative PATH entries are ignored"
        );
        assert_eq!(
            c.iter()
                .filter(|p| p.as_path() == Path::new("/usr/bin/VBoxManage"))
                .count(),
            1
        );
        assert!(c.contains(&PathBuf::from("/opt/VirtualBox/VBoxManage")));
    }

    #[test]
    fn per_os_locations() {
        let mac = candidates("macos", None, &[]);
        assert_eq!(
            mac[0],
            PathBuf::from("/Applications/VirtualBox.app/Contents/MacOS/VBoxManage")
        );
        let win = candidates("windows", None, &[PathBuf::from(r"D:\Apps")]);
        assert!(win[0].ends_with("VBoxManage.exe"));
        assert!(win[0].starts_with(r"D:\Apps"));
    }

    #[test]
    fn finds_an_existing_binary_in_path() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join(binary_name(std::env::consts::OS));
        std::fs::write(&bin, b"").unwrap();
        let path = std::env::join_paths([dir.path()]).unwrap();
        let found = candidates(std::env::consts::OS, Some(&path), &[])
            .into_iter()
            .find(|p| is_file(p));
        assert_eq!(found, Some(bin));
    }
}
