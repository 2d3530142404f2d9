//! Gives memory back (Linux). The control panel runs in a process of its own (`panel`), but the consent
//! dialogs are windows of this process: closing one destroys its webview and WebKit's web process goes
//! with it, but WebKitGTK keeps its network process as long as the web context lives, and Tauri keeps the
//! context for the app's whole life on Linux (tauri#14626) — about 60 MB; and glibc keeps the webview's
//! freed heap. So when no window is left (checked again after a short delay), this ends the app's own
//! `WebKitNetworkProcess` children (WebKit starts a new one when a window opens again) and asks glibc to
//! return free heap pages (`malloc_trim`). Then, as once after startup and after the panel process ended,
//! it unmaps the program's and libraries' code pages that are no longer in use (`webapi_core::footprint`).

use std::time::Duration;

use tauri::{AppHandle, Manager};

/// How long after the last window closed the release waits (a window opened meanwhile cancels it).
const DELAY: Duration = Duration::from_secs(2);

/// The process name (`/proc/PID/comm`, cut to 15 bytes by the kernel) of WebKit's network process.
const NETWORK_PROCESS_COMM: &str = "WebKitNetworkPr";

/// The process name of WebKit's web (renderer) process, one per live webview.
const WEB_PROCESS_COMM: &str = "WebKitWebProces";

/// How long after start the start-up code pages are released (when no window is open by then).
const STARTUP_SETTLE: Duration = Duration::from_secs(10);

/// Called once the app is set up: releases start-up code pages after a while if no window is open.
pub fn app_started(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(STARTUP_SETTLE).await;
        if app.webview_windows().is_empty() {
            trim_heap();
            release_code_pages("start-up done");
        }
    });
}

/// Unmaps code pages no longer in use and logs how much.
pub(crate) fn release_code_pages(why: &str) {
    match webapi_core::footprint::release_code_pages() {
        Ok(released) => tracing::info!(
            mappings = released.mappings,
            resident_kb = released.kb,
            "{why}: unused code pages released"
        ),
        Err(e) => tracing::warn!("{why}: cannot release code pages: {e}"),
    }
}

/// Called when a window was destroyed: releases memory once no window is left.
pub fn window_destroyed(app: &AppHandle) {
    if !app.webview_windows().is_empty() {
        return;
    }
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(DELAY).await;
        // Checked and ended on the main thread, where webviews are created: no window can come into being
        // while this runs. A webview being set up but not yet listed as a window already has its web
        // process, so a live web process also keeps the network process.
        let (done, ended) = tokio::sync::oneshot::channel();
        let main = app.clone();
        let dispatched = app.run_on_main_thread(move || {
            let idle = main.webview_windows().is_empty() && !has_web_processes();
            let _ = done.send(idle.then(end_network_processes));
        });
        if dispatched.is_err() {
            return;
        }
        let Ok(Some(ended)) = ended.await else {
            return;
        };
        trim_heap();
        tracing::info!(
            network_processes = ended,
            "no window open: WebKit's network process ended, free heap returned"
        );
        release_code_pages("no window open");
    });
}

/// Sends SIGTERM to this process's WebKit network process children; returns how many.
#[cfg(target_os = "linux")]
fn end_network_processes() -> usize {
    let me = std::process::id();
    let mut ended = 0;
    for pid in children_named(me, NETWORK_PROCESS_COMM) {
        // SAFETY: kill(2) with a pid read from /proc whose parent is this process (it cannot be reused
        // by another process while it is our unreaped child).
        if unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) } == 0 {
            ended += 1;
        }
    }
    ended
}

#[cfg(not(target_os = "linux"))]
fn end_network_processes() -> usize {
    0
}

/// Whether this process has a WebKit web process child (a webview lives or is being set up).
#[cfg(target_os = "linux")]
fn has_web_processes() -> bool {
    !children_named(std::process::id(), WEB_PROCESS_COMM).is_empty()
}

#[cfg(not(target_os = "linux"))]
fn has_web_processes() -> bool {
    false
}

/// The pids of the children of `parent` whose `comm` is `comm`.
#[cfg(target_os = "linux")]
fn children_named(parent: u32, comm: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| parse_stat(&stat) == Some((comm, parent)))
        })
        .collect()
}

/// The command name and parent pid from a `/proc/PID/stat` line: `pid (comm) state ppid …` (the name may
/// hold spaces and parentheses, so it ends at the last `)`); `None` for a process that has exited.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_stat(stat: &str) -> Option<(&str, u32)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?;
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let state = rest.next()?;
    let ppid = rest.next()?.parse().ok()?;
    // A process that has exited (zombie, or being reaped) no longer counts.
    if matches!(state, "Z" | "X" | "x") {
        return None;
    }
    Some((name, ppid))
}

/// Returns free heap pages to the system (glibc keeps them otherwise).
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_name_and_parent() {
        assert_eq!(
            parse_stat("4242 (WebKitNetworkPr) S 4200 4200 4200 0 -1 4194560"),
            Some(("WebKitNetworkPr", 4200))
        );
        assert_eq!(parse_stat("7 (a (b) c) R 1 7 7 0"), Some(("a (b) c", 1)));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(
            parse_stat("9 (WebKitWebProces) Z 4200 9 9 0"),
            None,
            "exited"
        );
        assert_eq!(parse_stat("1 (x) S notanumber"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn children_are_found_by_name_and_parent() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep runs");
        // the child's comm is "sleep" once it has exec'd
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut found = Vec::new();
        while found.is_empty() && std::time::Instant::now() < deadline {
            found = children_named(std::process::id(), "sleep");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(found, vec![child.id()]);
        assert!(children_named(std::process::id(), NETWORK_PROCESS_COMM).is_empty());
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
