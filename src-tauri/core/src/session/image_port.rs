//! The port through which a session gets its boot image (implemented by `media`, faked in tests).

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use crate::protocol::ErrorCode;

/// Which image a session boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRequest {
    /// A bootable disk image (`diskURL` with its lowercase hex SHA-256 `diskChecksum`).
    Disk { url: String, sha256: String },
    /// A µCernVM ISO by version ("latest" allowed), flavour and architecture.
    CernVm {
        version: String,
        flavor: String,
        x86_64: bool,
    },
}

/// Progress of a download: (fraction 0.0..=1.0, message).
pub type ProgressFn = Arc<dyn Fn(f64, &str) + Send + Sync>;

/// Why an image could not be provided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({detail})")]
pub struct ImageFailure {
    pub message: String,
    /// Usually -6 (I/O) or -12 (checksum mismatch).
    pub code: ErrorCode,
    pub detail: String,
}

/// A verified local copy of a boot image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalImage {
    pub path: PathBuf,
    /// For `CernVm { version: "latest" }`: the concrete version it resolved to (the session records it).
    pub resolved_version: Option<String>,
}

/// Provides a verified local copy of a session's boot image.
#[async_trait]
pub trait ImageSource: Send + Sync + 'static {
    async fn fetch(
        &self,
        request: &ImageRequest,
        progress: ProgressFn,
    ) -> Result<LocalImage, ImageFailure>;
}
