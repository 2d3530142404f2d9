//! Caps through a transient systemd user scope: the VM process is started under
//! `systemd-run --user --scope --unit=<unit> -p CPUQuota=N%` and later changed with
//! `systemctl --user set-property --runtime <unit>.scope CPUQuota=N%`. Needs a running user manager
//! with the cpu controller delegated (stock on systemd desktops since systemd 252).

use std::path::PathBuf;
use std::process::Stdio;

use crate::hypervisor::HvError;

/// Is a systemd user manager reachable and `systemd-run` installed?
pub fn systemd_user_available() -> bool {
    let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") else {
        return false;
    };
    PathBuf::from(runtime).join("systemd/private").exists()
        && std::process::Command::new("systemd-run")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// The scope unit name of a VM (`name` is already `[A-Za-z0-9_-]`).
pub fn scope_unit_name(name: &str) -> String {
    format!("cvmwebapi-{name}")
}

/// The `systemd-run` argv prefix that starts a program in the VM's scope with a cap.
pub fn scope_prefix(name: &str, percent: u8, cpus: u32) -> Vec<String> {
    vec![
        "--user".into(),
        "--scope".into(),
        "--quiet".into(),
        "--collect".into(),
        format!("--unit={}", scope_unit_name(name)),
        "-p".into(),
        format!("CPUQuota={}%", quota_percent(percent, cpus)),
        "--".into(),
    ]
}

/// Changes the cap of a running VM's scope.
pub async fn set_scope_quota(name: &str, percent: u8, cpus: u32) -> Result<(), HvError> {
    let out = tokio::process::Command::new("systemctl")
        .args([
            "--user",
            "set-property",
            "--runtime",
            &format!("{}.scope", scope_unit_name(name)),
            &format!("CPUQuota={}%", quota_percent(percent, cpus)),
        ])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|source| HvError::Io {
            action: "set the CPU cap",
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(HvError::Failed {
            action: "set the CPU cap",
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

fn quota_percent(percent: u8, cpus: u32) -> u32 {
    u32::from(super::clamp_cap(percent)) * cpus.max(1)
}
