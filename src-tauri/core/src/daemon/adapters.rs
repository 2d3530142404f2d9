//! Adapters from the daemon's ports to the real implementations: `trust::Verifier` (VMCP), the
//! `consent::ConsentBroker` (the user's decision) and `media::ImageCache` (boot images).

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::ports::{
    ConsentDecision, ConsentGate, ConsentRequest, ImageFailure, ImageHold, ImageRequest,
    ImageSource, LocalImage, ProgressFn, VmcpFailure, VmcpSource,
};
use crate::consent::{self, ConsentBroker};
use crate::media::{self, ImageCache, Progress};
use crate::protocol::CallerOrigin;
use crate::protocol::ErrorCode;
use crate::trust::Verifier;

/// VMCP fetch and verification through the trust layer.
pub struct TrustedVmcp(pub Arc<Verifier>);

#[async_trait]
impl VmcpSource for TrustedVmcp {
    async fn fetch_verified(
        &self,
        url: &str,
        origin: &CallerOrigin,
    ) -> Result<Map<String, Value>, VmcpFailure> {
        self.0
            .fetch_verified(url, origin.domain())
            .await
            .map_err(|e| VmcpFailure {
                message: e.message().to_string(),
                code: ErrorCode::from_code(e.code()).unwrap_or(ErrorCode::NotValidated),
                detail: e.detail().to_string(),
            })
    }
}

/// The user's decision through the consent broker (a dialog in the tray app, `--allow-origin` headless).
pub struct BrokerConsent(pub Arc<ConsentBroker>);

#[async_trait]
impl ConsentGate for BrokerConsent {
    async fn ask(&self, request: ConsentRequest) -> ConsentDecision {
        let request = consent::ConsentRequest {
            origin: request.origin,
            domain: request.domain,
            vm_name: request.vm_name,
            cpus: request.cpus,
            memory_mb: u64::from(request.memory_mb),
            disk_mb: u64::from(request.disk_mb),
            idle_control: request.idle_control,
            trusted: request.trusted,
        };
        match self.0.request(request).await {
            consent::Decision::Allowed => ConsentDecision::Allowed,
            consent::Decision::Denied => ConsentDecision::Denied,
            consent::Decision::Blocked => ConsentDecision::Blocked,
        }
    }
}

/// Boot images from the shared, verified image cache.
///
/// The port hands the session a path plus an [`ImageHold`] wrapping the cache's lease: the session
/// keeps it while its VM exists, so an image is evictable once no live session's VM uses it (see
/// docs/images.md).
pub struct CachedImages {
    cache: ImageCache,
}

impl CachedImages {
    pub fn new(cache: ImageCache) -> Self {
        Self { cache }
    }

    /// The cache itself, for the control panel (usage, clear).
    pub fn cache(&self) -> &ImageCache {
        &self.cache
    }
}

#[async_trait]
impl ImageSource for CachedImages {
    async fn fetch(
        &self,
        request: &ImageRequest,
        progress: ProgressFn,
    ) -> Result<LocalImage, ImageFailure> {
        let source = match request {
            ImageRequest::Disk { url, sha256 } => media::ImageSource::Disk {
                url: url.clone(),
                checksum: sha256.clone(),
            },
            ImageRequest::CernVm {
                version,
                flavor,
                x86_64,
            } => media::ImageSource::CernVm {
                version: version.clone(),
                flavor: flavor.clone(),
                arch: if *x86_64 {
                    media::Arch::X86_64
                } else {
                    media::Arch::I386
                },
            },
        };
        let on_progress = move |p: Progress| match p {
            Progress::Started(msg) => progress(0.0, &msg),
            Progress::Progress(msg, fraction) => progress(fraction, &msg),
            Progress::Completed(msg) => progress(1.0, &msg),
        };
        let lease = self
            .cache
            .fetch(source, on_progress)
            .await
            .map_err(|e| ImageFailure {
                message: e.to_string(),
                code: ErrorCode::from_code(e.code()).unwrap_or(ErrorCode::IoError),
                detail: e.detail(),
            })?;
        Ok(LocalImage {
            path: lease.path().to_path_buf(),
            resolved_version: lease.resolved_version().map(str::to_string),
            hold: ImageHold::new(lease),
        })
    }

    fn hold(&self, path: &Path) -> ImageHold {
        match self.cache.lease_cached(path) {
            Some(lease) => ImageHold::new(lease),
            None => {
                tracing::warn!(path = %path.display(), "the image of a recovered VM is not in the cache");
                ImageHold::default()
            }
        }
    }
}
