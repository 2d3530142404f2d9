//! Picking the backend: `--hypervisor auto|qemu|virtualbox`. `auto` prefers VirtualBox when it is installed
//! and working (the original's hypervisor, and what volunteers usually have), QEMU otherwise.

use std::sync::Arc;

use super::{HvError, Hypervisor, HypervisorChoice};
use crate::store::DataDir;

/// Returns the backend for `choice`, or why none is available (QEMU only; see [`choose`]).
pub fn select(
    choice: HypervisorChoice,
    data_dir: &DataDir,
) -> Result<Arc<dyn Hypervisor>, HvError> {
    match choice {
        HypervisorChoice::Qemu => qemu_backend(),
        HypervisorChoice::Virtualbox => virtualbox_backend(data_dir).unwrap_or_else(|| {
            Err(HvError::Unavailable(
                "the VirtualBox backend is not built into this version".into(),
            ))
        }),
        HypervisorChoice::Auto => {
            let vbox = match virtualbox_backend(data_dir) {
                Some(Ok(vbox)) => return Ok(vbox),
                Some(Err(e)) => Some(e),
                None => None,
            };
            qemu_backend().map_err(|qemu_err| match vbox {
                Some(vbox_err) => HvError::Unavailable(format!(
                    "no hypervisor works here: VirtualBox: {vbox_err}; QEMU: {qemu_err}"
                )),
                None => qemu_err,
            })
        }
    }
}

/// The QEMU backend (unix only: it talks QMP over a unix socket).
fn qemu_backend() -> Result<Arc<dyn Hypervisor>, HvError> {
    #[cfg(unix)]
    {
        Ok(Arc::new(super::qemu::QemuHypervisor::detect()?))
    }
    #[cfg(not(unix))]
    {
        Err(HvError::Unavailable(
            "the QEMU backend needs unix sockets (not available on this OS yet)".into(),
        ))
    }
}

/// The synchronous form of [`choose`] for callers without a runtime: it sees only QEMU, since detecting
/// VirtualBox runs `VBoxManage` asynchronously.
pub fn virtualbox_backend(_data_dir: &DataDir) -> Option<Result<Arc<dyn Hypervisor>, HvError>> {
    None
}

/// Returns the backend for `choice`: `auto` takes VirtualBox when `VBoxManage` works (version and
/// kernel driver checked), QEMU otherwise; an explicit choice takes only that backend.
pub async fn choose(choice: HypervisorChoice) -> Result<Arc<dyn Hypervisor>, HvError> {
    let vbox = match choice {
        HypervisorChoice::Qemu => return qemu_backend(),
        HypervisorChoice::Virtualbox | HypervisorChoice::Auto => super::virtualbox::detect().await,
    };
    match (choice, vbox) {
        (_, Ok(vbox)) => Ok(Arc::new(vbox)),
        (HypervisorChoice::Virtualbox, Err(e)) => Err(e),
        (_, Err(vbox_err)) => {
            tracing::info!("VirtualBox not usable ({vbox_err}); trying QEMU");
            qemu_backend().map_err(|qemu_err| {
                HvError::Unavailable(format!(
                    "no hypervisor works here: VirtualBox: {vbox_err}; QEMU: {qemu_err}"
                ))
            })
        }
    }
}
