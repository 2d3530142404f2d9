//! Notices what happens to a VM without the session asking: a background task polls
//! `showvminfo --machinereadable` and reads the new part of `VBox.log`, and raises `VmEvent`s
//! (shared/spec/vm-lifecycle.md §5, with its bugs fixed: only new log lines are read, each failure is
//! reported once, and unknown/transitional states never count as a state).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::broadcast;

use super::command;
use super::parse::{MachineInfo, Observed};
use super::runner::Runner;
use crate::hypervisor::{VmEvent, VmState};

/// The most of `VBox.log` read per poll (the newest part when more was written).
pub const MAX_LOG_CHUNK: u64 = 256 * 1024;

/// What the session's own operations and the poller share: the last state the session knows of, and a
/// counter that is odd while the session is changing the state (the poller stays quiet then).
#[derive(Debug, Default)]
pub struct Shared {
    known: AtomicU8,
    seq: AtomicU64,
}

impl Shared {
    pub fn new(state: VmState) -> Arc<Self> {
        let s = Arc::new(Self::default());
        s.set_known(state);
        s
    }
    pub fn known(&self) -> VmState {
        decode(self.known.load(Ordering::SeqCst))
    }
    pub fn set_known(&self, state: VmState) {
        self.known.store(encode(state), Ordering::SeqCst);
    }
    /// Marks the start of an operation of the session.
    pub fn begin(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
    }
    /// Marks its end.
    pub fn end(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
    }
    fn seq(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }
}

fn encode(s: VmState) -> u8 {
    match s {
        VmState::PoweredOff => 0,
        VmState::Saved => 1,
        VmState::Paused => 2,
        VmState::Running => 3,
    }
}
fn decode(v: u8) -> VmState {
    match v {
        1 => VmState::Saved,
        2 => VmState::Paused,
        3 => VmState::Running,
        _ => VmState::PoweredOff,
    }
}

/// Something the log says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSignal {
    /// `Changing the VM state from 'X' to 'Y'`.
    Transition { from: String, to: String },
    /// The host has no usable VT-x/AMD-V (or no 64-bit support for a 64-bit guest).
    NoVirtualization(String),
}

/// Scans log lines for state transitions and virtualisation failures. Pure.
pub fn scan_log(text: &str) -> Vec<LogSignal> {
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(i) = line.find("Changing the VM state from '") {
            let rest = &line[i + "Changing the VM state from '".len()..];
            let mut parts = rest.split('\'');
            if let (Some(from), Some(" to "), Some(to)) = (parts.next(), parts.next(), parts.next())
            {
                out.push(LogSignal::Transition {
                    from: from.to_string(),
                    to: to.to_string(),
                });
            }
        } else if line.contains("VERR_VMX_NO_VMX")
            || line.contains("VERR_SVM_NO_SVM")
            || line.contains("VERR_VMX_MSR_ALL_VMX_DISABLED")
            || line.contains("VERR_SVM_DISABLED")
            || line.contains("does NOT support HW virtualization")
            || line.contains("host CPU does NOT support 64-bit")
        {
            let text = line.split_once("WARNING! ").map_or(line, |(_, t)| t).trim();
            out.push(LogSignal::NoVirtualization(
                text.chars().take(300).collect(),
            ));
        }
    }
    out
}

/// The events the log signals mean: a reset (`RESETTING`) is a reboot, `GURU_MEDITATION` a failure,
/// missing hardware virtualisation a failure with a hint.
pub fn log_events(signals: &[LogSignal]) -> Vec<VmEvent> {
    let mut out = Vec::new();
    for s in signals {
        let ev = match s {
            LogSignal::Transition { to, .. } if to == "RESETTING" => VmEvent::Rebooted,
            LogSignal::Transition { to, .. } if to == "GURU_MEDITATION" => {
                VmEvent::Failure("the guest is stuck (VirtualBox guru meditation)".into())
            }
            LogSignal::NoVirtualization(t) => VmEvent::Failure(format!(
                "hardware virtualisation (VT-x/AMD-V) is not available; enable it in the BIOS/UEFI: {t}"
            )),
            LogSignal::Transition { .. } => continue,
        };
        if !out.contains(&ev) {
            out.push(ev);
        }
    }
    out
}

/// A VM seen `aborted` that ran or was paused: its VirtualBox process ended without a shutdown
/// (killed or crashed). `aborted` found when the VM was already down is old news, not a failure.
pub fn abort_failure(raw_state: &str, before: VmState) -> Option<&'static str> {
    let was_up = matches!(before, VmState::Running | VmState::Paused);
    (was_up && matches!(raw_state, "aborted" | "aborted-saved"))
        .then_some("the VM's VirtualBox process ended unexpectedly (killed or crashed)")
}

/// Reads what was appended to a log since `offset` (at most [`MAX_LOG_CHUNK`]); a shorter file than
/// `offset` means a new log (VirtualBox rotates `VBox.log` at each start), read from its start.
pub async fn read_new(path: &Path, offset: u64) -> std::io::Result<(String, u64)> {
    let mut f = tokio::fs::File::open(path).await?;
    let len = f.metadata().await?.len();
    let from = if len < offset { 0 } else { offset };
    let from = from.max(len.saturating_sub(MAX_LOG_CHUNK));
    f.seek(std::io::SeekFrom::Start(from)).await?;
    let mut buf = Vec::with_capacity((len - from) as usize);
    (&mut f).take(len - from).read_to_end(&mut buf).await?;
    Ok((String::from_utf8_lossy(&buf).into_owned(), len))
}

/// Polls the VM every `period` until the returned task is aborted.
pub fn spawn(
    runner: Runner,
    uuid: String,
    shared: Arc<Shared>,
    events: broadcast::Sender<VmEvent>,
    period: Duration,
) -> tokio::task::JoinHandle<()> {
    let mut runner = runner;
    runner.quiet = true;
    tokio::spawn(async move {
        let mut log: Option<(PathBuf, u64)> = None;
        let mut stuck_reported = false;
        loop {
            tokio::time::sleep(period).await;
            let seq = shared.seq();
            if seq % 2 == 1 {
                continue; // the session is acting on the VM right now
            }
            let Ok(out) = runner.exec("poll state", &command::showvminfo(&uuid)).await else {
                continue;
            };
            if !out.success() {
                continue; // a transient failure is not "VM gone" (the original's bug §10.1/10)
            }
            let info = MachineInfo::parse(&out.stdout);
            if shared.seq() != seq {
                continue; // the session acted meanwhile; look again next time
            }
            match info.observed() {
                Some(Observed::Stable(state)) => {
                    stuck_reported = false;
                    let before = shared.known();
                    if state != before {
                        shared.set_known(state);
                        if let Some(message) =
                            info.raw_state().and_then(|r| abort_failure(r, before))
                        {
                            let _ = events.send(VmEvent::Failure(message.into()));
                        }
                        let _ = events.send(VmEvent::StateChanged(state));
                    }
                }
                Some(Observed::Stuck) if !stuck_reported => {
                    stuck_reported = true;
                    let _ = events.send(VmEvent::Failure(
                        "the guest is stuck (VirtualBox guru meditation)".into(),
                    ));
                }
                _ => {}
            }
            if let Some(folder) = info.log_folder() {
                let path = Path::new(folder).join("VBox.log");
                let offset = match &log {
                    Some((p, o)) if *p == path => *o,
                    // First sight of this log: start at its end (history is not news).
                    _ => tokio::fs::metadata(&path)
                        .await
                        .map(|m| m.len())
                        .unwrap_or(0),
                };
                if let Ok((text, end)) = read_new(&path, offset).await {
                    for ev in log_events(&scan_log(&text)) {
                        if matches!(ev, VmEvent::Failure(_)) && stuck_reported {
                            continue;
                        }
                        let _ = events.send(ev);
                    }
                    log = Some((path, end));
                } else {
                    log = Some((path, 0));
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_resets_and_virtualisation_failures() {
        let log = "00:00:01.1 Changing the VM state from 'CREATED' to 'POWERING_ON'\n\
                   00:00:02.0 Changing the VM state from 'RUNNING' to 'RESETTING'\n\
                   00:00:02.1 Changing the VM state from 'RESETTING' to 'RUNNING'\n\
                   00:00:02.2 WARNING! The host CPU does NOT support HW virtualization.\n\
                   00:00:03.0 Changing the VM state from 'RUNNING' to 'GURU_MEDITATION'\n";
        let signals = scan_log(log);
        assert_eq!(signals.len(), 5);
        let ev = log_events(&signals);
        assert_eq!(ev[0], VmEvent::Rebooted);
        assert!(matches!(&ev[1], VmEvent::Failure(t) if t.contains("VT-x")));
        assert!(matches!(&ev[2], VmEvent::Failure(t) if t.contains("guru")));
        assert_eq!(ev.len(), 3);
    }

    #[tokio::test]
    async fn reads_only_new_log_lines_and_restarts_on_a_new_log() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("VBox.log");
        std::fs::write(&p, "old line\n").unwrap();
        let (_, off) = read_new(&p, 0).await.unwrap();
        std::fs::write(&p, "old line\nnew line\n").unwrap();
        let (text, off2) = read_new(&p, off).await.unwrap();
        assert_eq!(text, "new line\n");
        std::fs::write(&p, "x\n").unwrap();
        let (text, _) = read_new(&p, off2).await.unwrap();
        assert_eq!(text, "x\n", "a shorter file is a new log");
    }

    #[test]
    fn an_abort_of_a_running_vm_is_a_failure_once() {
        assert!(abort_failure("aborted", VmState::Running).is_some());
        assert!(abort_failure("aborted-saved", VmState::Paused).is_some());
        assert_eq!(abort_failure("aborted", VmState::PoweredOff), None);
        assert_eq!(abort_failure("poweroff", VmState::Running), None);
        assert_eq!(abort_failure("saved", VmState::Running), None);
    }

    #[test]
    fn shared_state_round_trips() {
        let s = Shared::new(VmState::Paused);
        assert_eq!(s.known(), VmState::Paused);
        s.set_known(VmState::Saved);
        assert_eq!(s.known(), VmState::Saved);
    }
}
