//! The control panel's view of the daemon, as plain serializable data: session rows, the user's idle
//! policy override, image cache usage and clearing, consent lists. The Tauri shell only forwards these.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::future::join_all;
use serde::Serialize;
use tokio::sync::oneshot;

use super::adapters::CachedImages;
use super::DaemonState;
use crate::consent::ConsentBroker;
use crate::idle::IdlePolicy;
use crate::session::{Command, SessionHandle, SessionRecord, SessionSnapshot};

/// How long one session may take to answer the panel.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// One row of the sessions table.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRow {
    pub name: String,
    pub origin: String,
    /// The VM's name at the hypervisor.
    pub vm: String,
    /// `stateName` as pages see it ("running", "paused", ...).
    pub state: &'static str,
    pub state_code: i32,
    pub cpus: u32,
    pub memory_mb: u32,
    pub disk_mb: u32,
    /// The page's `executionCap`.
    pub cap: u8,
    /// The cap applied to the running VM now (idle control may differ from `cap`).
    pub applied_cap: Option<u8>,
    /// The policy in force (the user's override if set, else the page's).
    pub idle_policy: IdlePolicy,
    pub user_policy: Option<IdlePolicy>,
    pub image: String,
    pub api_url: Option<String>,
    pub busy: bool,
    pub held_by_hand: bool,
}

impl SessionRow {
    pub fn new(name: &str, s: &SessionSnapshot) -> Self {
        Self {
            name: name.to_string(),
            origin: s.origin.clone(),
            vm: SessionRecord::vm_name(name),
            state: s.state.js_name(),
            state_code: s.state.code(),
            cpus: s.params.cpus,
            memory_mb: s.params.memory,
            disk_mb: s.params.disk,
            cap: s.params.execution_cap,
            applied_cap: s.applied_cap,
            idle_policy: s.effective_policy(),
            user_policy: s.user_policy,
            image: s.image.clone(),
            api_url: s.api_url.clone(),
            busy: s.busy,
            held_by_hand: s.held_by_hand,
        }
    }
}

/// Asks one session for its snapshot; `None` when it is gone or does not answer in time.
pub async fn inspect(handle: &SessionHandle) -> Option<SessionSnapshot> {
    handle.inspect(ANSWER_TIMEOUT).await
}

/// Snapshots of every live session, by name; `complete` is false when one did not answer.
async fn snapshots(state: &DaemonState) -> (Vec<(String, SessionSnapshot)>, bool) {
    let handles = state.registry().sessions();
    let asked = handles.len();
    let answers = join_all(
        handles
            .iter()
            .map(|h| async move { inspect(h).await.map(|s| (h.name().to_string(), s)) }),
    )
    .await;
    let got: Vec<_> = answers.into_iter().flatten().collect();
    let complete = got.len() == asked;
    (got, complete)
}

/// The sessions table, sorted by name.
pub async fn session_rows(state: &DaemonState) -> Vec<SessionRow> {
    let (mut all, _) = snapshots(state).await;
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all.iter()
        .map(|(name, s)| SessionRow::new(name, s))
        .collect()
}

/// Sets (or with `None` clears) the user's idle policy of session `name`, then wakes the idle controller.
pub async fn set_user_policy(
    state: &DaemonState,
    name: &str,
    policy: Option<IdlePolicy>,
) -> Result<(), String> {
    let handle = state
        .registry()
        .by_name(name)
        .ok_or_else(|| format!("no session called {name:?}"))?;
    let (answer, answered) = oneshot::channel();
    handle
        .send(Command::SetUserPolicy { policy, answer })
        .await
        .map_err(|_| format!("the session {name:?} is closing"))?;
    tokio::time::timeout(ANSWER_TIMEOUT, answered)
        .await
        .map_err(|_| format!("the session {name:?} did not answer in time"))?
        .map_err(|_| format!("the session {name:?} is closing"))??;
    if let Some(idle) = state.registry().idle() {
        idle.wake();
    }
    Ok(())
}

/// One image in the cache, for the panel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheImage {
    /// The cache key (derived from the image's checksum).
    pub name: String,
    pub url: String,
    pub bytes: u64,
    /// A session's VM uses it: "clear cache" keeps it.
    pub in_use: bool,
}

/// The image cache's usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheInfo {
    /// Complete images plus partial downloads on disk.
    pub bytes: u64,
    pub limit_bytes: u64,
    pub images: Vec<CacheImage>,
}

/// What "clear cache" freed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cleared {
    pub freed_bytes: u64,
}

/// The image files the sessions' VMs were created from. Sessions also hold the cache's lease on them
/// (`session::ImageHold`) while their VM exists; this set is a second guard for "clear cache".
async fn images_in_use(state: &DaemonState) -> HashSet<PathBuf> {
    let (all, _complete) = snapshots(state).await;
    all.into_iter().filter_map(|(_, s)| s.image_path).collect()
}

/// The cache's usage; an image counts as in use when a session's VM was created from it (or a
/// session is still being set up with it).
pub async fn cache_info(state: &DaemonState, images: &CachedImages) -> CacheInfo {
    let in_use = images_in_use(state).await;
    let usage = images.cache().usage();
    CacheInfo {
        bytes: usage.used_bytes + usage.partial_bytes,
        limit_bytes: usage.limit_bytes,
        images: usage
            .images
            .into_iter()
            .map(|i| CacheImage {
                in_use: i.in_use || in_use.contains(&i.path),
                name: i.key,
                url: i.url,
                bytes: i.size,
            })
            .collect(),
    }
}

/// Removes the images no session uses (and partial downloads not in progress).
pub async fn clear_cache(state: &DaemonState, images: &CachedImages) -> Result<Cleared, String> {
    let in_use = images_in_use(state).await;
    let report = images
        .cache()
        .clear_keeping(|path| in_use.contains(path))
        .map_err(|e| format!("cannot clear the image cache: {e}"))?;
    tracing::info!(
        freed = report.freed_bytes,
        kept = report.kept_in_use,
        "image cache cleared by the user"
    );
    Ok(Cleared {
        freed_bytes: report.freed_bytes,
    })
}

/// A blocked site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockedSite {
    pub origin: String,
    /// When it was blocked, milliseconds since the Unix epoch.
    pub since_ms: u64,
}

/// A remembered consent answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RememberedSite {
    pub origin: String,
    pub allowed: bool,
}

pub fn blocked_sites(consent: &ConsentBroker) -> Vec<BlockedSite> {
    consent
        .blocked_sites()
        .into_iter()
        .map(|s| BlockedSite {
            origin: s.origin,
            since_ms: s.since.saturating_mul(1000),
        })
        .collect()
}

/// Remembered answers (only "allow" is ever remembered; a refusal is remembered as a block).
pub fn remembered_sites(consent: &ConsentBroker) -> Vec<RememberedSite> {
    consent
        .remembered_sites()
        .into_iter()
        .map(|s| RememberedSite {
            origin: s.origin,
            allowed: true,
        })
        .collect()
}

/// Unblocks `origin`; an error when it was not blocked or the change cannot be saved.
pub fn unblock_site(consent: &ConsentBroker, origin: &str) -> Result<(), String> {
    match consent.unblock(origin) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!("{origin} is not blocked")),
        Err(e) => Err(format!("cannot unblock {origin}: {e:#}")),
    }
}

/// Forgets the remembered answer for `origin`.
pub fn forget_site(consent: &ConsentBroker, origin: &str) -> Result<(), String> {
    match consent.forget(origin) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!("no answer is remembered for {origin}")),
        Err(e) => Err(format!("cannot forget {origin}: {e:#}")),
    }
}
