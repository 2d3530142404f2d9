//! The QEMU process: spawned argv-only (never through a shell), in its own session so it survives the
//! daemon (even `kill -9`), with stdin closed and stdout/stderr in a log file; and liveness checks by pid.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::hypervisor::HvError;

/// Spawns `program args` with `cwd` as working directory, detached; returns its pid.
pub fn spawn_detached(
    program: &Path,
    args: &[String],
    cwd: &Path,
    log: &Path,
) -> Result<u32, HvError> {
    let io = |source| HvError::Io {
        action: "start QEMU",
        source,
    };
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(io)?;
    let err = out.try_clone().map_err(io)?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(false);
    #[cfg(unix)]
    unsafe {
        // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(io)?;
    let pid = child.id().ok_or_else(|| HvError::Failed {
        action: "start QEMU",
        detail: "the process exited at once".into(),
    })?;
    // Reap the child when it exits (while we live); a daemon that dies leaves it to init.
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    Ok(pid)
}

/// Is a process with this pid alive (and not a zombie)?
pub fn alive(pid: u32) -> bool {
    #[cfg(target_os = "linux")]
    {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state != "Z" && state != "X"),
            Err(_) => false,
        }
    }
    #[cfg(all(unix, not(target_os = "linux")))]
    {
        // SAFETY: signal 0 only checks for existence.
        unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
    }
}

/// Does `pid` run in the folder `dir` (QEMU's working directory is its VM folder), so it is our QEMU and
/// not a process that reused the pid?
pub fn runs_in(pid: u32, dir: &Path) -> bool {
    #[cfg(target_os = "linux")]
    {
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"));
        match (cwd, dir.canonicalize()) {
            (Ok(cwd), Ok(dir)) => cwd == dir,
            _ => false,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        alive(pid)
    }
}

/// Sends SIGKILL to `pid`.
pub fn kill(pid: u32) {
    #[cfg(unix)]
    // SAFETY: plain kill(2) on a pid we spawned.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

/// Waits until `pid` is gone, up to `timeout`; true if it is.
pub async fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if !alive(pid) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
