//! The port through which a session gets its boot image (implemented by `media`, faked in tests).

use std::any::Any;
use std::path::{Path, PathBuf};
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
    /// Keeps the image from eviction; the session keeps it while its VM exists.
    pub hold: ImageHold,
}

/// Keeps an image from being evicted from the cache while held; dropping the last clone releases it.
/// Empty for sources without a cache.
#[derive(Clone, Default)]
pub struct ImageHold(Option<Arc<dyn Any + Send + Sync>>);

impl ImageHold {
    /// A hold that lasts as long as `guard` lives (the cache's lease).
    pub fn new(guard: impl Any + Send + Sync) -> Self {
        Self(Some(Arc::new(guard)))
    }

    /// True when this holds an image (false for the empty hold).
    pub fn is_held(&self) -> bool {
        self.0.is_some()
    }
}

impl std::fmt::Debug for ImageHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_held() {
            "ImageHold(held)"
        } else {
            "ImageHold(none)"
        })
    }
}

impl PartialEq for ImageHold {
    /// Two holds are equal when both are empty or both are clones of the same hold.
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for ImageHold {}

/// Provides a verified local copy of a session's boot image.
#[async_trait]
pub trait ImageSource: Send + Sync + 'static {
    async fn fetch(
        &self,
        request: &ImageRequest,
        progress: ProgressFn,
    ) -> Result<LocalImage, ImageFailure>;

    /// Takes the hold again on an image fetched earlier (by its local path), for a session whose VM
    /// was found again after a restart. Empty when the source does not know the image (any more).
    fn hold(&self, path: &Path) -> ImageHold {
        let _ = path;
        ImageHold::default()
    }
}
