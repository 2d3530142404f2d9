//! Boot images for VMs: verified (SHA-256/SHA-512 while streaming), resumable downloads into a shared
//! cache in the data dir, with leases, LRU eviction, a free-space check and throttled progress.
//!
//! The session calls [`ImageCache::fetch`] with an [`ImageSource`] and holds the returned
//! [`ImageLease`] while the VM uses the image. User-facing behaviour: docs/images.md.

mod backoff;
mod cache;
mod checksum;
mod error;
mod gunzip;
mod index;
mod lease;
mod progress;
mod remote_text;
mod report;
mod settings;
mod source;
mod space;
mod throttle;
mod transfer;
mod validators;

pub use backoff::RetryPolicy;
pub use cache::{CacheUsage, CachedImage, ClearReport, DownloadInfo, ImageCache};
pub use checksum::{Algorithm, Checksum};
pub use error::{MediaError, HVE_IO_ERROR, HVE_NOT_VALIDATED, HVE_USAGE_ERROR};
pub use lease::ImageLease;
pub use progress::{download_update, human_bytes, Progress};
pub use report::FEED_PROGRESS_INTERVAL;
pub use settings::{CacheOptions, MediaSettings, DEFAULT_CACHE_LIMIT};
pub use source::{Arch, ImageSource, Mirror, CERNVM_TEMPLATE, DEFAULT_MIRROR};
pub use throttle::Throttle;
