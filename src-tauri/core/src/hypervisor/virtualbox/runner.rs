//! Runs VBoxManage: argv only (never a shell), bounded output, a timeout with kill-on-drop, every call
//! logged with its arguments, exit code and output, and retries with back-off when VirtualBox reports a
//! locked session (BOINC vboxwrapper's lesson, shared/research/anchors.md §1.2).

use std::ffi::OsString;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use crate::hypervisor::HvError;

/// The most bytes kept of one stream of one call; the rest is read and dropped.
pub const MAX_OUTPUT: usize = 1 << 20;
/// How much of each stream goes into the log line.
const LOG_OUTPUT: usize = 4096;

/// What one VBoxManage run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    /// The exit code; `None` when the process was killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl RunOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
    /// The `VBoxManage: error:` lines of stderr (without the prefix), or all of stderr, shortened.
    pub fn error_summary(&self) -> String {
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter_map(|l| l.strip_prefix("VBoxManage: error: "))
            .collect();
        let text = if lines.is_empty() {
            self.stderr
                .lines()
                .filter(|l| !l.contains("vboxdrv"))
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            lines.join(" ")
        };
        let text = text.trim();
        let text = if text.is_empty() {
            "no error message"
        } else {
            text
        };
        let code = self
            .code
            .map_or("killed".to_string(), |c| format!("exit code {c}"));
        format!("{} ({code})", shorten(text, 600))
    }
}

/// How often and how patiently to retry a call that failed because the VM's session was locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, at least 1.
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            base: Duration::from_millis(500),
            max: Duration::from_secs(8),
        }
    }
}

/// The wait before retry number `retry` (0 for the first retry): `base · 2^retry`, at most `max`.
pub fn backoff(retry: u32, base: Duration, max: Duration) -> Duration {
    let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
    base.checked_mul(factor).map_or(max, |d| d.min(max))
}

/// Does stderr say another client holds the VM's lock, or VBoxSVC is unreachable for now? Those
/// clear up on their own; "not currently running" and the like do not and are never retried.
pub fn is_lock_error(stderr: &str) -> bool {
    stderr.contains("is already locked")
        || stderr.contains("session is busy")
        || stderr.contains("CO_E_SERVER_EXEC_FAILURE")
        // Any failure to lock the machine for this call's session (another client holds it or is
        // releasing it), e.g. "Failed to assign the machine to the session (E_ACCESSDENIED)".
        || stderr.contains("Context: \"LockMachine(")
        // A read whose shared session was torn down under it by another client ("The session is not
        // locked", NS_ERROR_ABORT while reading).
        || stderr.contains("Context: \"UnlockMachine(")
        // A read while another client holds the write lock (seen with showvminfo during modifyvm).
        || (stderr.contains("The object is not ready") && stderr.contains("E_ACCESSDENIED"))
}

/// Runs VBoxManage as `prefix + args`. `prefix` is the binary, or e.g. `chroot DIR env HOME=/root VBoxManage`.
#[derive(Debug, Clone)]
pub struct Runner {
    prefix: Arc<Vec<OsString>>,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Log successful runs at debug level only (for periodic polls); failures are always logged at info.
    pub quiet: bool,
    /// When set, calls through clones of this runner never overlap (one VM's operations and its poller:
    /// concurrent VBoxManage sessions on one VM make VirtualBox fail reads at random).
    serial: Option<Arc<tokio::sync::Mutex<()>>>,
}

impl Runner {
    pub fn new(prefix: Vec<OsString>) -> Result<Self, HvError> {
        if prefix.is_empty() {
            return Err(HvError::Unavailable("empty VBoxManage command".into()));
        }
        Ok(Self {
            prefix: Arc::new(prefix),
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            quiet: false,
            serial: None,
        })
    }

    /// A clone whose calls (and those of its own clones) run one at a time.
    pub fn serialised(&self) -> Self {
        Self {
            serial: Some(Arc::new(tokio::sync::Mutex::new(()))),
            ..self.clone()
        }
    }

    pub fn prefix(&self) -> &[OsString] {
        &self.prefix
    }

    /// Runs once more after each lock error, up to the retry policy; returns the last output whatever
    /// its exit code. Errors only when the process cannot run or times out.
    pub async fn exec(&self, action: &'static str, args: &[String]) -> Result<RunOutput, HvError> {
        let _turn = match &self.serial {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        let attempts = self.retry.attempts.max(1);
        let mut attempt = 0;
        loop {
            let out = self.exec_once(action, args).await?;
            attempt += 1;
            if out.success() || attempt >= attempts || !is_lock_error(&out.stderr) {
                return Ok(out);
            }
            let wait = backoff(attempt - 1, self.retry.base, self.retry.max);
            tracing::warn!(target: "vboxmanage", action, attempt, ?wait, "VM is locked by another client, retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// Like [`exec`](Self::exec), but a non-zero exit is an error carrying VBoxManage's message.
    pub async fn check(&self, action: &'static str, args: &[String]) -> Result<RunOutput, HvError> {
        let out = self.exec(action, args).await?;
        if out.success() {
            Ok(out)
        } else {
            Err(HvError::Failed {
                action,
                detail: out.error_summary(),
            })
        }
    }

    async fn exec_once(&self, action: &'static str, args: &[String]) -> Result<RunOutput, HvError> {
        let mut cmd = Command::new(&self.prefix[0]);
        cmd.args(&self.prefix[1..]);
        if args.first().is_none_or(|a| a != "--version") {
            cmd.arg("-q"); // no logo; `--version` keeps its classic form for old versions
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let started = std::time::Instant::now();
        let mut child = cmd.spawn().map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                HvError::Unavailable(format!("VBoxManage not found ({:?})", self.prefix[0]))
            } else {
                HvError::Io { action, source }
            }
        })?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let run = async {
            let (out, err) = tokio::join!(read_bounded(stdout), read_bounded(stderr));
            let status = child.wait().await;
            (out, err, status)
        };
        let (stdout, stderr, status) = match tokio::time::timeout(self.timeout, run).await {
            Ok(r) => r,
            Err(_) => {
                tracing::error!(target: "vboxmanage", action, argv = ?args, timeout = ?self.timeout, "VBoxManage timed out and was killed");
                return Err(HvError::Timeout {
                    action,
                    after: self.timeout,
                });
            }
        };
        let status = status.map_err(|source| HvError::Io { action, source })?;
        let out = RunOutput {
            code: status.code(),
            stdout,
            stderr,
        };
        let ms = started.elapsed().as_millis() as u64;
        let (so, se) = (
            shorten(out.stdout.trim_end(), LOG_OUTPUT),
            shorten(out.stderr.trim_end(), LOG_OUTPUT),
        );
        if self.quiet && out.success() {
            tracing::debug!(target: "vboxmanage", action, argv = ?args, code = ?out.code, ms, stdout = so, stderr = se, "VBoxManage");
        } else {
            tracing::info!(target: "vboxmanage", action, argv = ?args, code = ?out.code, ms, stdout = so, stderr = se, "VBoxManage");
        }
        Ok(out)
    }
}

/// Reads at most [`MAX_OUTPUT`] bytes and drains the rest so the child never blocks on a full pipe.
async fn read_bounded(stream: impl AsyncRead + Unpin) -> String {
    let mut kept = Vec::new();
    let mut limited = stream.take(MAX_OUTPUT as u64);
    let _ = limited.read_to_end(&mut kept).await;
    let _ = tokio::io::copy(&mut limited.into_inner(), &mut tokio::io::sink()).await;
    String::from_utf8_lossy(&kept).into_owned()
}

fn shorten(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        let (b, m) = (Duration::from_millis(500), Duration::from_secs(8));
        let waits: Vec<u64> = (0..7)
            .map(|r| backoff(r, b, m).as_millis() as u64)
            .collect();
        assert_eq!(waits, vec![500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(backoff(u32::MAX, b, m), m);
    }

    #[test]
    fn only_lock_errors_are_retried() {
        let locked = "VBoxManage: error: The machine 'x' is already locked for a session (or being unlocked)\n\
                      VBoxManage: error: Details: code VBOX_E_INVALID_OBJECT_STATE (0x80bb0007), component MachineWrap, interface IMachine\n";
        assert!(is_lock_error(locked));
        assert!(!is_lock_error(
            "VBoxManage: error: Machine 'x' is not currently running\n"
        ));
        // Both seen from showvminfo right after a VM operation in the behavioural suite (VirtualBox 7.2.22).
        let assign = "VBoxManage: error: Failed to assign the machine to the session (E_ACCESSDENIED)\n\
                      VBoxManage: error: Details: code VBOX_E_VM_ERROR (0x80bb0003), component MachineWrap, interface IMachine, callee nsISupports\n\
                      VBoxManage: error: Context: \"LockMachine(a->session, LockType_Shared)\" at line 3328 of file VBoxManageInfo.cpp\n";
        assert!(is_lock_error(assign));
        let unlocked = "VBoxManage: error: The machine 'x' was unlocked unexpectedly while attempting to share its session\n\
                        VBoxManage: error: Details: code VBOX_E_INVALID_SESSION_STATE (0x80bb000b), component MachineWrap, interface IMachine, callee nsISupports\n\
                        VBoxManage: error: Context: \"LockMachine(a->session, LockType_Shared)\" at line 3328 of file VBoxManageInfo.cpp\n";
        assert!(is_lock_error(unlocked));
        let torn = "VBoxManage: error: Code NS_ERROR_ABORT (0x80004004) - Operation aborted (extended info not available)\n\
                    VBoxManage: error: Context: \"GetMaxPortCount(&cMaxPorts)\" at line 1624 of file VBoxManageInfo.cpp\n\
                    VBoxManage: error: The session is not locked (session state: Unlocked)\n\
                    VBoxManage: error: Details: code NS_ERROR_UNEXPECTED (0x8000ffff), component SessionWrap, interface ISession, callee nsISupports\n\
                    VBoxManage: error: Context: \"UnlockMachine()\" at line 3336 of file VBoxManageInfo.cpp\n";
        assert!(is_lock_error(torn));
    }

    #[test]
    fn error_summary_keeps_vboxmanage_errors_and_drops_the_driver_warning() {
        let out = RunOutput {
            code: Some(1),
            stdout: String::new(),
            stderr: "WARNING: The character device /dev/vboxdrv does not exist.\nVBoxManage: error: Machine 'x' is not currently running\n".into(),
        };
        assert_eq!(
            out.error_summary(),
            "Machine 'x' is not currently running (exit code 1)"
        );
    }

    #[tokio::test]
    async fn runs_argv_without_a_shell_and_retries_lock_errors() {
        // A stand-in VBoxManage written in sh, a test-only fake for the runner itself: it prints a lock
        // error twice, then succeeds; its arguments arrive intact (no shell splitting of "a b;c").
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("count");
        let script = dir.path().join("fake.sh");
        std::fs::write(
            &script,
            format!(
                "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}\n\
                 if [ $n -lt 3 ]; then echo \"VBoxManage: error: The machine 'x' is already locked for a session\" >&2; exit 1; fi\n\
                 printf '%s|' \"$@\"\n",
                c = count.display()
            ),
        )
        .unwrap();
        let mut runner = Runner::new(vec!["sh".into(), script.into()]).unwrap();
        runner.retry = RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(1),
            max: Duration::from_millis(2),
        };
        let out = runner
            .check("test", &["modifyvm".into(), "a b;c".into()])
            .await
            .unwrap();
        assert_eq!(out.stdout, "-q|modifyvm|a b;c|");
        assert_eq!(std::fs::read_to_string(&count).unwrap().trim(), "3");
    }

    #[tokio::test]
    async fn a_missing_binary_is_unavailable() {
        let runner = Runner::new(vec!["/nonexistent/VBoxManage".into()]).unwrap();
        let err = runner
            .exec("version", &["--version".into()])
            .await
            .unwrap_err();
        assert!(matches!(err, HvError::Unavailable(_)), "{err}");
    }

    /// A `MakeWriter` collecting log output in memory.
    #[derive(Clone, Default)]
    struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn every_call_is_logged_with_argv_exit_code_and_output() {
        let buf = Buf::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(buf.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let runner = Runner::new(vec![
            "sh".into(),
            "-c".into(),
            "echo out-text; echo err-text >&2; exit 3".into(),
            "VBoxManage".into(),
        ])
        .unwrap();
        let err = runner
            .check("pause", &["controlvm".into(), "vm".into(), "pause".into()])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("err-text (exit code 3)"), "{err}");
        let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        for needle in [
            "action=\"pause\"",
            "[\"controlvm\", \"vm\", \"pause\"]",
            "code=Some(3)",
            "out-text",
            "err-text",
        ] {
            assert!(log.contains(needle), "{needle} missing in {log}");
        }
    }
}
