//! Turns QMP events and the QEMU process's exit into `VmEvent`s. Changes the session caused itself
//! (its own pause/resume/save/power-off, the duty cycle) are not reported: only what the VM did by itself.
//! A QEMU process that ends without announcing a shutdown (killed, crashed, out of memory) is a failure.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use super::process;
use super::qmp::{QmpClient, QmpEvent};
use super::shared::Shared;
use crate::hypervisor::cap::CgroupGroup;
use crate::hypervisor::{VmEvent, VmState};

/// Watches one QEMU process until it exits.
pub fn start(
    qmp: &QmpClient,
    shared: Arc<Shared>,
    pid: u32,
    state_file: PathBuf,
    cgroup: Option<CgroupGroup>,
) -> JoinHandle<()> {
    let mut rx = qmp.subscribe();
    tokio::spawn(async move {
        // The reason of QEMU's `SHUTDOWN` event, once it came.
        let mut shutdown: Option<String> = None;
        loop {
            let ev = match rx.recv().await {
                Ok(ev) => ev,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => QmpEvent::Closed,
            };
            match ev {
                QmpEvent::Event { name, data } => {
                    tracing::debug!(pid, event = %name, data = %data, "qmp event");
                    let external = !shared.duty_active() && !shared.expect_exit();
                    match name.as_str() {
                        "STOP" if external && !shared.user_paused() => {
                            shared.emit(VmEvent::StateChanged(VmState::Paused))
                        }
                        "RESUME" if external && shared.user_paused() => {
                            shared.emit(VmEvent::StateChanged(VmState::Running))
                        }
                        "RESET" if data["guest"].as_bool() == Some(true) => {
                            shared.emit(VmEvent::Rebooted)
                        }
                        "GUEST_PANICKED" => {
                            shared.emit(VmEvent::Failure("the guest kernel panicked".into()))
                        }
                        "SHUTDOWN" => {
                            shutdown = Some(data["reason"].as_str().unwrap_or("").to_string())
                        }
                        _ => {}
                    }
                }
                QmpEvent::Closed => {
                    let gone = process::wait_gone(pid, Duration::from_secs(10)).await;
                    if let Some(g) = &cgroup {
                        let _ = g.remove();
                    }
                    if !shared.expect_exit() {
                        if let Some(message) = exit_failure(gone, shutdown.as_deref()) {
                            tracing::warn!(pid, "{message}");
                            shared.emit(VmEvent::Failure(message.into()));
                        }
                        let state = if state_file.exists() {
                            VmState::Saved
                        } else {
                            VmState::PoweredOff
                        };
                        shared.emit(VmEvent::StateChanged(state));
                    }
                    return;
                }
            }
        }
    })
}

/// Whether an exit nobody asked for is a failure: QEMU gone without a `SHUTDOWN` event (killed, crashed),
/// or shut down after a host error. A guest powering itself off, or QEMU stopped by a signal (the user or
/// the system shutting down), is not.
fn exit_failure(gone: bool, shutdown_reason: Option<&str>) -> Option<&'static str> {
    match shutdown_reason {
        None if gone => Some("the VM's QEMU process ended unexpectedly (killed or crashed)"),
        Some("host-error") => Some("QEMU stopped the VM after a host error"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::exit_failure;

    #[test]
    fn only_an_unannounced_exit_or_a_host_error_is_a_failure() {
        assert!(exit_failure(true, None).is_some_and(|m| m.contains("unexpectedly")));
        assert!(exit_failure(true, Some("host-error")).is_some_and(|m| m.contains("host error")));
        for normal in ["guest-shutdown", "host-signal", "host-qmp-quit", ""] {
            assert_eq!(exit_failure(true, Some(normal)), None, "{normal}");
        }
        // the QMP socket closed but the process is still there: not known to have failed
        assert_eq!(exit_failure(false, None), None);
    }
}
