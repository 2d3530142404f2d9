//! The shared image cache in the data dir: one download per image however many sessions ask, leases
//! that protect images in use, least-recently-used eviction above the size limit, usage and clearing.
//!
//! Layout of `images/`: `<key>.img` (or `<key>.gunzipped.img`) complete, verified images;
//! `<key>.part` + `<key>.part.json` a resumable partial download and its validators; `index.json`.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::checksum::Checksum;
use super::error::MediaError;
use super::gunzip::{gunzip_atomically, sync_dir};
use super::index::{choose_evictions, Entry, Index};
use super::lease::{ImageLease, PinGuard};
use super::progress::{download_update, Progress};
use super::remote_text::fetch_text;
use super::report::DownloadReport;
use super::settings::CacheOptions;
use super::source::{
    is_gzip_url, parse_checksum_file, parse_http_url, parse_latest, validate_flavor,
    validate_version, ImageSource,
};
use super::throttle::Throttle;
use super::transfer::{self, remove_if_exists, TransferJob, TransferLimits, TransferStatus};
use crate::events::EventFeed;
use crate::store::DataDir;

const INDEX_FILE: &str = "index.json";

/// The image cache. Cheap to clone; dropping the last clone aborts downloads in flight (their
/// `.part` files stay and are resumed by the next cache opened on the same folder).
#[derive(Clone)]
pub struct ImageCache {
    inner: Arc<Owner>,
}

/// Owned by the `ImageCache` clones only, so its drop means "no cache handle left".
struct Owner {
    shared: Arc<Shared>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.closed = true;
        for (_, job) in st.inflight.drain() {
            job.abort.abort();
        }
    }
}

pub(crate) struct Shared {
    dir: PathBuf,
    options: CacheOptions,
    client: reqwest::Client,
    state: Mutex<State>,
    /// Where downloads are reported (see [`ImageCache::with_events`]).
    events: Mutex<Option<EventFeed>>,
}

struct State {
    index: Index,
    pins: HashMap<String, usize>,
    inflight: HashMap<String, Inflight>,
    closed: bool,
}

struct Inflight {
    url: String,
    rx: watch::Receiver<TransferStatus>,
    abort: AbortHandle,
}

/// What the control panel shows about the cache.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheUsage {
    /// Bytes of complete images.
    pub used_bytes: u64,
    /// Bytes of partial downloads on disk.
    pub partial_bytes: u64,
    pub limit_bytes: u64,
    pub images: Vec<CachedImage>,
    pub downloads: Vec<DownloadInfo>,
}

/// One complete image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedImage {
    pub key: String,
    pub url: String,
    pub size: u64,
    pub last_used_ms: u64,
    /// True while a session holds a lease on it.
    pub in_use: bool,
    /// The image file (not sent to web views: local paths stay in the app).
    #[serde(skip)]
    pub path: PathBuf,
}

/// One download in progress (for the tray and the control panel).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadInfo {
    pub key: String,
    pub url: String,
    pub received: u64,
    pub total: Option<u64>,
    pub rate: f64,
}

/// What `clear` removed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClearReport {
    pub freed_bytes: u64,
    /// Images kept because a session uses them.
    pub kept_in_use: usize,
}

/// A source resolved to a URL and an expected checksum.
struct Target {
    url: String,
    checksum: Checksum,
    label: String,
    resolved_version: Option<String>,
}

impl ImageCache {
    /// Opens (creating) the cache in `data_dir.images()`; removes leftovers of interrupted unpacking
    /// and images not in the index; keeps resumable `.part` files.
    pub fn open(data_dir: &DataDir, options: CacheOptions) -> Result<Self, MediaError> {
        let dir = data_dir.images();
        fs::create_dir_all(&dir).map_err(|e| MediaError::io(&dir, e))?;
        let index_path = dir.join(INDEX_FILE);
        let index = Index::load(&index_path, &dir);
        sweep(&dir, &index)?;
        index.save(&index_path)?;
        let client = reqwest::Client::builder()
            .no_gzip()
            .redirect(no_downgrade_redirects())
            .connect_timeout(options.connect_timeout)
            .user_agent(concat!("cernvm-webapi/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| MediaError::io(&dir, format!("cannot build the HTTP client: {e}")))?;
        let shared = Arc::new(Shared {
            dir,
            options,
            client,
            state: Mutex::new(State {
                index,
                pins: HashMap::new(),
                inflight: HashMap::new(),
                closed: false,
            }),
            events: Mutex::new(None),
        });
        Ok(Self {
            inner: Arc::new(Owner { shared }),
        })
    }

    /// Opens the cache as the daemon does: `settings.json`'s `images` object, then the validated
    /// `--image-mirror` (`DaemonConfig::image_mirror`, which wins), then the defaults.
    pub fn open_configured(
        data_dir: &DataDir,
        cli_mirror: Option<&super::source::Mirror>,
    ) -> Result<Self, MediaError> {
        let settings = super::settings::MediaSettings::load(&data_dir.settings_file())?;
        Self::open(data_dir, CacheOptions::resolve(cli_mirror, &settings)?)
    }

    /// Reports every real download to `events` (the daemon's feed): `ImageStarted`, throttled
    /// `ImageProgress`, then `ImageDownloaded` or `ImageFailed`; once per download, not per waiting
    /// session, and nothing for images served from the cache.
    pub fn with_events(self, events: EventFeed) -> Self {
        *self
            .inner
            .shared
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(events);
        self
    }

    /// The folder holding the images.
    pub fn dir(&self) -> &Path {
        &self.inner.shared.dir
    }

    /// Provides the image: from the cache, by joining a download in flight, or by downloading it.
    /// `progress` receives `Started`, throttled `Progress` (bytes and rate) and `Completed`.
    pub async fn fetch<F>(&self, source: ImageSource, progress: F) -> Result<ImageLease, MediaError>
    where
        F: Fn(Progress) + Send + Sync,
    {
        let shared = &self.inner.shared;
        progress(Progress::Started(match &source {
            ImageSource::Disk { .. } => "Preparing disk image".to_string(),
            ImageSource::CernVm { .. } => "Preparing CernVM image".to_string(),
        }));
        let target = match shared.resolve(&source).await? {
            Ok(target) => target,
            Err(lease) => {
                finish(&progress, "Image found in cache");
                return Ok(lease);
            }
        };
        let key = target.checksum.key();
        let pin = PinGuard::new(shared.clone(), key.clone());
        let rx = {
            let mut st = shared.lock();
            if st.closed {
                return Err(MediaError::Shutdown);
            }
            if let Some(path) = shared.touch(&mut st, &key) {
                drop(st);
                finish(&progress, "Image found in cache");
                return Ok(lease(path, key, target, pin));
            }
            match st.inflight.get(&key) {
                Some(job) => job.rx.clone(),
                None => shared.start(&mut st, &key, &target),
            }
        };
        let path = wait(
            rx,
            &target.label,
            shared.options.progress_interval,
            &progress,
        )
        .await?;
        {
            let mut st = shared.lock();
            shared.touch(&mut st, &key);
        }
        finish(&progress, "Image ready");
        Ok(lease(path, key, target, pin))
    }

    /// A lease on a complete image already in the cache, found by its local path (as an earlier
    /// [`ImageCache::fetch`] returned it); `None` when the cache has no such image. A session whose VM
    /// is found again after a restart takes its image's lease back this way, without any download.
    pub fn lease_cached(&self, path: &Path) -> Option<ImageLease> {
        let shared = &self.inner.shared;
        let file = path
            .strip_prefix(&shared.dir)
            .ok()?
            .to_str()
            .filter(|f| !f.contains(std::path::MAIN_SEPARATOR))?;
        let (key, url) = {
            let st = shared.lock();
            let (key, entry) = st.index.entries.iter().find(|(_, e)| e.file == file)?;
            (key.clone(), entry.url.clone())
        };
        let pin = PinGuard::new(shared.clone(), key.clone());
        // Still there once pinned (an eviction may have run between the look-up and the pin).
        let present = shared.lock().index.entries.contains_key(&key) && path.is_file();
        present.then(|| ImageLease {
            path: path.to_path_buf(),
            key,
            url,
            resolved_version: None,
            _pin: pin,
        })
    }

    /// Sizes for the control panel.
    pub fn usage(&self) -> CacheUsage {
        let shared = &self.inner.shared;
        let partial_bytes = list_dir(&shared.dir)
            .into_iter()
            .filter(|(name, _)| name.ends_with(".part"))
            .map(|(_, size)| size)
            .sum();
        let st = shared.lock();
        CacheUsage {
            used_bytes: st.index.total_bytes(),
            partial_bytes,
            limit_bytes: shared.options.max_bytes,
            images: st
                .index
                .entries
                .iter()
                .map(|(key, e)| CachedImage {
                    key: key.clone(),
                    url: e.url.clone(),
                    size: e.size,
                    last_used_ms: e.last_used_ms,
                    in_use: st.pins.get(key).is_some_and(|n| *n > 0),
                    path: shared.dir.join(&e.file),
                })
                .collect(),
            downloads: st
                .inflight
                .iter()
                .map(|(key, job)| {
                    let s = job.rx.borrow();
                    DownloadInfo {
                        key: key.clone(),
                        url: job.url.clone(),
                        received: s.received,
                        total: s.total,
                        rate: s.rate,
                    }
                })
                .collect(),
        }
    }

    /// Removes every image no session uses and every partial download not in progress.
    pub fn clear(&self) -> Result<ClearReport, MediaError> {
        self.clear_keeping(|_| false)
    }

    /// [`ImageCache::clear`], also keeping the images whose file `keep` names (e.g. those the VMs of
    /// recovered sessions were created from, which hold no lease).
    pub fn clear_keeping(&self, keep: impl Fn(&Path) -> bool) -> Result<ClearReport, MediaError> {
        let shared = &self.inner.shared;
        let mut st = shared.lock();
        let pinned = pinned_keys(&st);
        let victims: Vec<String> = st
            .index
            .entries
            .iter()
            .filter(|(k, e)| !pinned.contains(*k) && !keep(&shared.dir.join(&e.file)))
            .map(|(k, _)| k.clone())
            .collect();
        let mut freed = shared.remove_entries(&mut st, &victims)?;
        for (name, size) in list_dir(&shared.dir) {
            let Some(key) = name
                .strip_suffix(".part")
                .or_else(|| name.strip_suffix(".part.json"))
            else {
                continue;
            };
            if !st.inflight.contains_key(key) {
                remove_if_exists(&shared.dir.join(&name))?;
                freed += size;
            }
        }
        Ok(ClearReport {
            freed_bytes: freed,
            kept_in_use: st.index.entries.len(),
        })
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn pin(&self, key: &str) {
        *self.lock().pins.entry(key.to_string()).or_default() += 1;
    }

    pub(crate) fn unpin(&self, key: &str) {
        let mut st = self.lock();
        if let Some(n) = st.pins.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                st.pins.remove(key);
            }
        }
    }

    /// Marks a complete image as used now; its path, or `None` when it is not in the cache.
    fn touch(&self, st: &mut State, key: &str) -> Option<PathBuf> {
        let entry = st.index.entries.get_mut(key)?;
        let path = self.dir.join(&entry.file);
        if !path.is_file() {
            st.index.entries.remove(key);
            return None;
        }
        entry.last_used_ms = now_ms();
        if let Err(e) = st.index.save(&self.dir.join(INDEX_FILE)) {
            tracing::warn!("cannot save the image cache index: {e}");
        }
        Some(path)
    }

    /// Turns a source into a URL and checksum; a concrete µCernVM version already cached is
    /// returned as a lease at once (`Err(lease)`), without asking the network.
    async fn resolve(
        self: &Arc<Self>,
        source: &ImageSource,
    ) -> Result<Result<Target, ImageLease>, MediaError> {
        match source {
            ImageSource::Disk { url, checksum } => {
                let parsed = parse_http_url(url)?;
                Ok(Ok(Target {
                    url: parsed.to_string(),
                    checksum: Checksum::parse(checksum)?,
                    label: "Downloading disk image".into(),
                    resolved_version: None,
                }))
            }
            ImageSource::CernVm {
                version,
                flavor,
                arch,
            } => {
                validate_version(version)?;
                validate_flavor(flavor)?;
                let opts = &self.options;
                let version = if version == "latest" {
                    let url = opts.mirror.latest_url();
                    let body =
                        fetch_text(&self.client, &url, opts.retry, opts.read_timeout).await?;
                    parse_latest(&url, &body)?
                } else {
                    version.clone()
                };
                let url = opts.mirror.iso_url(&version, flavor, *arch);
                let cached = {
                    let st = self.lock();
                    st.index.by_url(&url).map(|(k, _)| k.clone())
                };
                if let Some(key) = cached {
                    let pin = PinGuard::new(self.clone(), key.clone());
                    let mut st = self.lock();
                    if let Some(path) = self.touch(&mut st, &key) {
                        return Ok(Err(ImageLease {
                            path,
                            key,
                            url,
                            resolved_version: Some(version),
                            _pin: pin,
                        }));
                    }
                }
                let sum_url = format!("{url}.sha256");
                let body =
                    fetch_text(&self.client, &sum_url, opts.retry, opts.read_timeout).await?;
                Ok(Ok(Target {
                    checksum: parse_checksum_file(&sum_url, &body)?,
                    label: format!("Downloading CernVM {version} ({flavor})"),
                    url,
                    resolved_version: Some(version),
                }))
            }
        }
    }

    /// Starts the download task for `key`; returns the channel its waiters watch.
    fn start(
        self: &Arc<Self>,
        st: &mut State,
        key: &str,
        target: &Target,
    ) -> watch::Receiver<TransferStatus> {
        let (tx, rx) = watch::channel(TransferStatus::default());
        let shared = self.clone();
        let (key_owned, url, checksum) =
            (key.to_string(), target.url.clone(), target.checksum.clone());
        let events = self
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let task = tokio::spawn(async move {
            let outcome = match events {
                None => shared.download(&key_owned, &url, &checksum, &tx).await,
                Some(feed) => {
                    let mut report = DownloadReport::new(feed, &url);
                    let outcome = tokio::select! {
                        biased;
                        outcome = shared.download(&key_owned, &url, &checksum, &tx) => outcome,
                        () = report.follow(tx.subscribe()) => unreachable!("follow never ends"),
                    };
                    report.finish(&tx.borrow(), &outcome);
                    outcome
                }
            };
            if let Err(e) = &outcome {
                tracing::warn!(url, code = e.code(), "image download failed: {e}");
            }
            let mut st = shared.lock();
            st.inflight.remove(&key_owned);
            tx.send_modify(|s| s.outcome = Some(outcome));
        });
        st.inflight.insert(
            key.to_string(),
            Inflight {
                url: target.url.clone(),
                rx: rx.clone(),
                abort: task.abort_handle(),
            },
        );
        rx
    }

    /// Downloads, verifies and installs one image; cleans up after errors that cannot be resumed.
    async fn download(
        self: &Arc<Self>,
        key: &str,
        url: &str,
        checksum: &Checksum,
        tx: &watch::Sender<TransferStatus>,
    ) -> Result<PathBuf, MediaError> {
        let job = TransferJob {
            url,
            checksum,
            part: self.dir.join(format!("{key}.part")),
            meta: self.dir.join(format!("{key}.part.json")),
        };
        let limits = TransferLimits {
            retry: self.options.retry,
            read_timeout: self.options.read_timeout,
        };
        let ensure_space = |needed: u64| self.ensure_space(needed);
        let result = match transfer::run(&self.client, &job, limits, tx, &ensure_space).await {
            Ok(()) => self.install(key, url, &job).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            let resumable = matches!(
                e,
                MediaError::Download { .. } | MediaError::HttpStatus { .. }
            );
            if !resumable {
                let _ = remove_if_exists(&job.part);
                let _ = remove_if_exists(&job.meta);
            }
        }
        result
    }

    /// Moves a verified `.part` into place (gunzipping `.gz` images), records it, enforces the limit.
    async fn install(
        &self,
        key: &str,
        url: &str,
        job: &TransferJob<'_>,
    ) -> Result<PathBuf, MediaError> {
        let gz = parse_http_url(url)
            .map(|u| is_gzip_url(&u))
            .unwrap_or(false);
        let file = if gz {
            format!("{key}.gunzipped.img")
        } else {
            format!("{key}.img")
        };
        let dest = self.dir.join(&file);
        let size = if gz {
            let (src, tmp, dest) = (
                job.part.clone(),
                self.dir.join(format!("{key}.unpacking")),
                dest.clone(),
            );
            let size = tokio::task::spawn_blocking(move || gunzip_atomically(&src, &tmp, &dest))
                .await
                .map_err(|e| MediaError::io(&job.part, e))??;
            remove_if_exists(&job.part)?;
            size
        } else {
            fs::rename(&job.part, &dest).map_err(|e| MediaError::io(&dest, e))?;
            fs::metadata(&dest)
                .map_err(|e| MediaError::io(&dest, e))?
                .len()
        };
        remove_if_exists(&job.meta)?;
        sync_dir(&self.dir)?;
        let mut st = self.lock();
        st.index.entries.insert(
            key.to_string(),
            Entry {
                file,
                size,
                url: url.to_string(),
                last_used_ms: now_ms(),
                gunzipped: gz,
            },
        );
        let mut pinned = pinned_keys(&st);
        pinned.insert(key.to_string());
        let victims = choose_evictions(&st.index, &pinned, self.options.max_bytes, 0);
        self.remove_entries(&mut st, &victims)?;
        Ok(dest)
    }

    /// Makes sure `needed` bytes are free, evicting unused images if that helps.
    fn ensure_space(&self, needed: u64) -> Result<(), MediaError> {
        let available =
            super::space::available_bytes(&self.dir).map_err(|e| MediaError::io(&self.dir, e))?;
        if available >= needed {
            return Ok(());
        }
        let short = needed - available;
        {
            let mut st = self.lock();
            let pinned = pinned_keys(&st);
            let limit = st.index.total_bytes().saturating_sub(short);
            let victims = choose_evictions(&st.index, &pinned, limit, 0);
            if !victims.is_empty() {
                tracing::info!(count = victims.len(), "evicting unused images to make room");
                self.remove_entries(&mut st, &victims)?;
            }
        }
        let available =
            super::space::available_bytes(&self.dir).map_err(|e| MediaError::io(&self.dir, e))?;
        if available >= needed {
            Ok(())
        } else {
            Err(MediaError::NoSpace {
                dir: self.dir.clone(),
                needed,
                available,
            })
        }
    }

    /// Deletes the files of `keys` and drops them from the index; returns the bytes freed.
    fn remove_entries(&self, st: &mut State, keys: &[String]) -> Result<u64, MediaError> {
        let mut freed = 0;
        for key in keys {
            if let Some(entry) = st.index.entries.remove(key) {
                remove_if_exists(&self.dir.join(&entry.file))?;
                freed += entry.size;
                tracing::info!(key, bytes = entry.size, "removed image from the cache");
            }
        }
        if !keys.is_empty() {
            st.index.save(&self.dir.join(INDEX_FILE))?;
        }
        Ok(freed)
    }
}

/// Forwards throttled progress until the download ends; its outcome.
async fn wait<F: Fn(Progress)>(
    mut rx: watch::Receiver<TransferStatus>,
    label: &str,
    interval: std::time::Duration,
    progress: &F,
) -> Result<PathBuf, MediaError> {
    let mut throttle = Throttle::new(interval);
    loop {
        let status = rx.borrow_and_update().clone();
        if let Some(outcome) = status.outcome {
            return outcome;
        }
        if status.received > 0 && throttle.admit(Instant::now(), false) {
            let (msg, fraction) =
                download_update(label, status.received, status.total, status.rate);
            progress(Progress::Progress(msg, fraction));
        }
        if rx.changed().await.is_err() {
            return Err(MediaError::Shutdown);
        }
    }
}

fn finish<F: Fn(Progress)>(progress: &F, msg: &str) {
    progress(Progress::Progress(msg.to_string(), 1.0));
    progress(Progress::Completed(msg.to_string()));
}

fn lease(path: PathBuf, key: String, target: Target, pin: PinGuard) -> ImageLease {
    ImageLease {
        path,
        key,
        url: target.url,
        resolved_version: target.resolved_version,
        _pin: pin,
    }
}

fn pinned_keys(st: &State) -> HashSet<String> {
    st.pins.keys().cloned().collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Follows up to 10 redirects, but never from `https` to `http`.
fn no_downgrade_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let downgrade = attempt.url().scheme() == "http"
            && attempt.previous().iter().any(|u| u.scheme() == "https");
        if downgrade {
            attempt.error("refusing a redirect from https to http")
        } else if attempt.previous().len() > 10 {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    })
}

/// File names and sizes in the images folder.
fn list_dir(dir: &Path) -> Vec<(String, u64)> {
    let Ok(read) = fs::read_dir(dir) else {
        return Vec::new();
    };
    read.flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let meta = e.metadata().ok()?;
            meta.is_file().then_some((name, meta.len()))
        })
        .collect()
}

/// Removes what a crash can leave behind except resumable partial downloads.
fn sweep(dir: &Path, index: &Index) -> Result<(), MediaError> {
    let known: HashSet<&str> = index.entries.values().map(|e| e.file.as_str()).collect();
    let names: HashSet<String> = list_dir(dir).into_iter().map(|(n, _)| n).collect();
    for name in &names {
        let orphan_part = name
            .strip_suffix(".part")
            .is_some_and(|k| !names.contains(&format!("{k}.part.json")));
        let stale = name.ends_with(".unpacking")
            || (name.ends_with(".img") && !known.contains(name.as_str()))
            || orphan_part
            || (name.starts_with('.') && name.ends_with(".tmp"));
        if stale {
            tracing::info!(file = name, "removing leftover from the image cache");
            remove_if_exists(&dir.join(name))?;
        }
    }
    Ok(())
}
