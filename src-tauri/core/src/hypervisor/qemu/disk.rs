//! Disk files of a VM, made with `qemu-img` (argv only): a qcow2 overlay over the cached base image, or a
//! blank qcow2 scratch disk for ISO boots.

use std::path::Path;

use tokio::process::Command;

use crate::hypervisor::HvError;

/// Creates `target` as a qcow2 overlay backed by `base` (read-only for QEMU; never written).
pub async fn create_overlay(qemu_img: &Path, base: &Path, target: &Path) -> Result<(), HvError> {
    let format = base_format(qemu_img, base).await?;
    run(
        qemu_img,
        &[
            "create".as_ref(),
            "-q".as_ref(),
            "-f".as_ref(),
            "qcow2".as_ref(),
            "-b".as_ref(),
            base.as_os_str(),
            "-F".as_ref(),
            format.as_ref(),
            target.as_os_str(),
        ],
        "create the overlay disk",
    )
    .await
    .map(drop)
}

/// Creates `target` as an empty qcow2 disk of `size_mb` MiB.
pub async fn create_blank(qemu_img: &Path, target: &Path, size_mb: u32) -> Result<(), HvError> {
    let size = format!("{size_mb}M");
    run(
        qemu_img,
        &[
            "create".as_ref(),
            "-q".as_ref(),
            "-f".as_ref(),
            "qcow2".as_ref(),
            target.as_os_str(),
            size.as_ref(),
        ],
        "create the scratch disk",
    )
    .await
    .map(drop)
}

/// The format qemu-img sees in `base` ("raw", "qcow2", "vmdk", ...).
async fn base_format(qemu_img: &Path, base: &Path) -> Result<String, HvError> {
    let out = run(
        qemu_img,
        &["info".as_ref(), "--output=json".as_ref(), base.as_os_str()],
        "inspect the base image",
    )
    .await?;
    let v: serde_json::Value = serde_json::from_slice(&out).map_err(|e| HvError::Failed {
        action: "inspect the base image",
        detail: e.to_string(),
    })?;
    let format = v["format"].as_str().unwrap_or("raw");
    if !["raw", "qcow2", "vmdk", "vdi", "vhdx", "vpc"].contains(&format) {
        return Err(HvError::InvalidSpec(format!(
            "base image format {format:?} is not supported"
        )));
    }
    Ok(format.to_string())
}

async fn run(
    program: &Path,
    args: &[&std::ffi::OsStr],
    action: &'static str,
) -> Result<Vec<u8>, HvError> {
    let out = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|source| HvError::Io { action, source })?;
    tracing::debug!(?args, status = ?out.status, "qemu-img");
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(HvError::Failed {
            action,
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}
