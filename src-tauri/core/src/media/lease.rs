//! Leases: a session holds an [`ImageLease`] while it uses an image; a leased image is never evicted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::cache::Shared;

/// Keeps one pin on a cache key; unpins on drop (also when a fetch is cancelled).
pub(crate) struct PinGuard {
    shared: Arc<Shared>,
    key: String,
}

impl PinGuard {
    pub(crate) fn new(shared: Arc<Shared>, key: String) -> Self {
        shared.pin(&key);
        Self { shared, key }
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        self.shared.unpin(&self.key);
    }
}

/// A verified image in the cache, reserved for the holder until dropped.
pub struct ImageLease {
    pub(crate) path: PathBuf,
    pub(crate) key: String,
    pub(crate) url: String,
    pub(crate) resolved_version: Option<String>,
    pub(crate) _pin: PinGuard,
}

impl ImageLease {
    /// The local file to attach to the VM (already gunzipped for `.gz` images).
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The cache key (`sha256-<hex>` or `sha512-<hex>`).
    pub fn key(&self) -> &str {
        &self.key
    }
    /// The URL the image came from.
    pub fn url(&self) -> &str {
        &self.url
    }
    /// For a µCernVM ISO, the concrete version (what `latest` resolved to); the session records it.
    pub fn resolved_version(&self) -> Option<&str> {
        self.resolved_version.as_deref()
    }
}

impl std::fmt::Debug for ImageLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageLease")
            .field("path", &self.path)
            .field("key", &self.key)
            .field("resolved_version", &self.resolved_version)
            .finish()
    }
}
