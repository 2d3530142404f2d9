//! Turns QMP events and the QEMU process's exit into `VmEvent`s. Changes the session caused itself
//! (its own pause/resume/save/power-off, the duty cycle) are not reported: only what the VM did by itself.

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
                        _ => {}
                    }
                }
                QmpEvent::Closed => {
                    process::wait_gone(pid, Duration::from_secs(10)).await;
                    if let Some(g) = &cgroup {
                        let _ = g.remove();
                    }
                    if !shared.expect_exit() {
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
