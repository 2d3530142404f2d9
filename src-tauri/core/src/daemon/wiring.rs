//! Builds the real services behind the daemon's ports from the command-line options: the trust
//! verifier, the consent broker, the image cache and the hypervisor. Used by `cvmwebapi serve` and the
//! tray app alike, so both run the same daemon.

use std::sync::Arc;

use super::adapters::{BrokerConsent, CachedImages, TrustedVmcp};
use super::Services;
use crate::config::{DaemonConfig, ServeArgs};
use crate::consent::ConsentBroker;
use crate::events::EventFeed;
use crate::hypervisor::{self, HypervisorInfo};
use crate::media::ImageCache;
use crate::settings::{SettingsStore, Startup};
use crate::store::DataDir;
use crate::trust::{TrustConfig, Verifier};

/// The real services, plus handles the UI needs (trust list, image cache, hypervisor facts).
pub struct RealServices {
    pub services: Services,
    pub verifier: Arc<Verifier>,
    pub images: Arc<CachedImages>,
    /// The hypervisor in use, or why none is: the daemon still serves (and says so to pages) without one.
    pub hypervisor: Result<HypervisorInfo, String>,
    /// The user's settings (control panel).
    pub settings: Arc<SettingsStore>,
    /// Flags and settings combined: pass to `settings::start_idle` once the daemon is bound.
    pub startup: Startup,
}

/// Why the services could not be built (bad options or an unusable data dir: the daemon must not start).
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error("{0}")]
    Trust(String),
    #[error("image cache: {0}")]
    Images(String),
}

/// Builds every service. A missing hypervisor is not fatal: it is logged, and `requestSession` answers
/// with a clear error until one is installed.
///
/// `events` becomes the daemon's feed (`Services.events`) and the image cache reports to it. Create it
/// before the consent broker and give the broker the same one (`ConsentBroker::with_events`), so the
/// whole daemon shares one feed.
pub async fn build(
    args: &ServeArgs,
    config: &DaemonConfig,
    consent: Arc<ConsentBroker>,
    events: EventFeed,
) -> Result<RealServices, WiringError> {
    let data_dir =
        DataDir::open(&config.data_dir).map_err(|e| WiringError::Images(format!("{e:#}")))?;
    let settings = Arc::new(SettingsStore::open(&data_dir));
    let startup = Startup::resolve(args, &settings.get());
    let trust_config =
        TrustConfig::from_serve_args(args).map_err(|e| WiringError::Trust(e.to_string()))?;
    trust_config
        .check_keystore_files()
        .map_err(|e| WiringError::Trust(e.to_string()))?;
    let verifier = Arc::new(
        Verifier::new(trust_config, &data_dir).map_err(|e| WiringError::Trust(e.to_string()))?,
    );
    verifier.spawn_refresh_task();
    let cache = ImageCache::open_configured(&data_dir, config.image_mirror.as_ref())
        .map_err(|e| WiringError::Images(e.to_string()))?
        .with_events(events.clone());
    let images = Arc::new(CachedImages::new(cache));

    let (backend, hypervisor) = match hypervisor::choose(startup.hypervisor).await {
        Ok(hv) => {
            let info = hv.info().clone();
            tracing::info!(name = %info.name, version = %info.version, accelerator = %info.accelerator,
                cap_method = %info.cap_method, "hypervisor ready");
            (Some(hv), Ok(info))
        }
        Err(e) => {
            tracing::warn!(
                "no usable hypervisor: {e}; new sessions will be refused until one is installed"
            );
            (None, Err(e.to_string()))
        }
    };
    let services = Services {
        vmcp: Some(Arc::new(TrustedVmcp(verifier.clone()))),
        consent: Some(Arc::new(BrokerConsent(consent))),
        images: Some(images.clone()),
        hypervisor: backend,
        events,
    };
    Ok(RealServices {
        services,
        verifier,
        images,
        hypervisor,
        settings,
        startup,
    })
}
