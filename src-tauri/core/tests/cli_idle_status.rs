//! `cvmwebapi idle-status` against a private Xvfb (chooses x11 and reads a plausible idle time) and with no
//! display and no session bus (reports the `unknown` source instead of crashing).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn have(name: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{name} is required for this test under CI (scripts/install-deps.sh installs it)");
    }
    found
}

fn idle_status(envs: &[(&str, &str)]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cvmwebapi"))
        .arg("idle-status")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("XDG_SESSION_TYPE")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .envs(envs.iter().copied())
        .output()
        .expect("run cvmwebapi");
    assert!(out.status.success(), "exit {:?}", out.status);
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn reports_unknown_without_a_display() {
    let text = idle_status(&[]);
    assert!(text.starts_with("idle source: unknown\n"), "{text}");
    assert!(text.contains("not used: x11: DISPLAY is not set"), "{text}");
    assert!(text.contains("idle time: unknown"), "{text}");
}

#[test]
fn reports_x11_under_xvfb() {
    if !have("Xvfb") {
        eprintln!("skipping: Xvfb not installed");
        return;
    }
    let mut xvfb = Command::new("Xvfb")
        .args(["-displayfd", "1", "-nolisten", "tcp", "-noreset"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start Xvfb");
    let mut line = String::new();
    BufReader::new(xvfb.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let display = format!(":{}", line.trim());
    let text = idle_status(&[("DISPLAY", &display)]);
    let _ = xvfb.kill();
    let _ = xvfb.wait();
    assert!(text.starts_with("idle source: x11\n"), "{text}");
    let secs: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("idle time: "))
        .and_then(|v| v.strip_suffix(" s"))
        .expect("an idle time line")
        .parse()
        .unwrap();
    assert!((0.0..3600.0).contains(&secs), "{secs}");
}
