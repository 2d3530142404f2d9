//! Real desktop parts for Linux unit tests: a private Xvfb, a private D-Bus session bus, and the check for
//! the external tools they need (missing: a failure under `CI=true`, a skip otherwise).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Finds an external tool; missing is a failure under CI and a skip (None) otherwise.
pub(crate) fn tool(name: &str) -> Option<()> {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some(());
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{name} is required for this test under CI (scripts/install-deps.sh installs it)");
    }
    eprintln!("skipping: {name} not installed");
    None
}

/// A private Xvfb on a free display number (chosen by Xvfb itself through -displayfd).
pub(crate) struct Xvfb {
    pub(crate) child: Child,
    pub(crate) display: String,
    /// The server's stderr, with `-audit 4` connection records ("client N connected ... pid=P").
    log: tempfile::NamedTempFile,
}

impl Xvfb {
    pub(crate) fn start(number: Option<u32>) -> Self {
        let mut cmd = Command::new("Xvfb");
        match number {
            Some(n) => cmd.arg(format!(":{n}")),
            None => cmd.args(["-displayfd", "1"]),
        };
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = cmd
            .args([
                "-nolisten",
                "tcp",
                "-noreset",
                "-audit",
                "4",
                "-screen",
                "0",
                "640x480x24",
            ])
            .stdout(Stdio::piped())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("start Xvfb");
        let display = match number {
            Some(n) => format!(":{n}"),
            None => {
                let mut line = String::new();
                BufReader::new(child.stdout.take().unwrap())
                    .read_line(&mut line)
                    .expect("read display number from Xvfb");
                format!(":{}", line.trim())
            }
        };
        assert!(display.len() > 1, "Xvfb reported no display number");
        Self {
            child,
            display,
            log,
        }
    }

    /// How many X connections this test process has opened to the server so far.
    pub(crate) fn connections_from_this_process(&self) -> usize {
        let pid = format!("pid={} ", std::process::id());
        std::fs::read_to_string(self.log.path())
            .unwrap()
            .lines()
            .filter(|l| l.contains("connected from") && l.contains(&pid))
            .count()
    }

    pub(crate) fn number(&self) -> u32 {
        self.display[1..].parse().unwrap()
    }

    /// A display number far above the ones `-displayfd` hands out (it takes the lowest free), for a test
    /// that restarts its server on the same number.
    pub(crate) fn unused_high_number() -> u32 {
        let start = 1000 + std::process::id() % 3000;
        (start..start + 1000)
            .find(|n| {
                !std::path::Path::new(&format!("/tmp/.X{n}-lock")).exists()
                    && !std::path::Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
            })
            .expect("a free X display number")
    }

    pub(crate) fn xdotool(&self, args: &[&str]) {
        let status = Command::new("xdotool")
            .args(args)
            .env("DISPLAY", &self.display)
            .status()
            .expect("run xdotool");
        assert!(status.success(), "xdotool {args:?} failed");
    }

    pub(crate) fn stop(&mut self) {
        // SIGTERM lets Xvfb remove its lock file so the display number can be reused.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private D-Bus session bus, stopped on drop.
pub(crate) struct PrivateBus {
    child: Child,
    pub(crate) address: String,
}

impl PrivateBus {
    /// Starts `dbus-daemon --session`; `None` (a skip) when it is not installed and `CI` is unset.
    pub(crate) fn start() -> Option<Self> {
        tool("dbus-daemon")?;
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let mut address = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        Some(Self {
            child,
            address: address.trim().to_string(),
        })
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
