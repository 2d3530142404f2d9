//! The daemon-wide event feed: what happened to sessions, images, consent and idle control, for the
//! tray, the control panel and desktop notifications. Live listeners subscribe to a broadcast channel;
//! late ones (the panel's event log) read a bounded ring of recent events. Cheap to clone; publishing
//! never blocks and never fails (a listener that falls behind loses the oldest events, not the daemon).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::protocol::SessionState;

/// How many events the ring keeps for late readers.
pub const RECENT_CAPACITY: usize = 500;
/// How many events a live listener may lag behind before it loses the oldest.
const CHANNEL_CAPACITY: usize = 256;

/// One thing that happened, stamped with a sequence number and the wall-clock time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DaemonEvent {
    /// Increases by one per event for the daemon's life (starts at 1).
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened. Serialized with a `kind` tag in kebab-case (`{"kind":"vm-failed", ...}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum EventKind {
    /// A website's session was created (after consent) or recovered at start.
    SessionOpened {
        session: String,
        origin: String,
        vm: String,
    },
    /// A session's VM reached a new state.
    SessionStateChanged {
        session: String,
        state: SessionState,
    },
    /// A new CPU execution cap was applied to a running VM.
    CapApplied { session: String, cap: u8 },
    /// A session's VM failed (an operation failed or the hypervisor reported a failure).
    VmFailed { session: String, message: String },
    /// A session was closed: its VM and files are gone.
    SessionClosed { session: String },
    /// An image download began (`total` when the server said how big it is).
    ImageStarted { image: String, total: Option<u64> },
    /// Download progress; transient: not kept in the recent-events ring.
    ImageProgress {
        image: String,
        bytes: u64,
        total: Option<u64>,
        bytes_per_second: u64,
    },
    /// An image was downloaded and verified.
    ImageDownloaded { image: String, bytes: u64 },
    /// An image download failed; the cache holds nothing of it.
    ImageFailed { image: String, message: String },
    /// A consent dialog is waiting for the user.
    ConsentWaiting { origin: String },
    /// The user (or a remembered answer, or the timeout) answered a consent request.
    ConsentAnswered { origin: String, allowed: bool },
    /// A site was blocked by the reject-twice rule.
    SiteBlocked { origin: String },
    /// A site was unblocked by the user.
    SiteUnblocked { origin: String },
    /// The user went idle or came back (`idle`), with what the idle controller does now.
    IdleChanged { idle: bool, summary: String },
}

impl EventKind {
    /// Transient events (progress) go to live listeners only.
    pub fn is_transient(&self) -> bool {
        matches!(self, EventKind::ImageProgress { .. })
    }
}

/// The feed. Clone it into every component that publishes or listens.
#[derive(Clone)]
pub struct EventFeed {
    inner: Arc<Inner>,
}

struct Inner {
    tx: broadcast::Sender<DaemonEvent>,
    recent: Mutex<VecDeque<DaemonEvent>>,
    next_seq: AtomicU64,
}

impl Default for EventFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for EventFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventFeed")
            .field(
                "published",
                &(self.inner.next_seq.load(Ordering::Relaxed) - 1),
            )
            .finish()
    }
}

impl EventFeed {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
        Self {
            inner: Arc::new(Inner {
                tx,
                recent: Mutex::new(VecDeque::with_capacity(RECENT_CAPACITY)),
                next_seq: AtomicU64::new(1),
            }),
        }
    }

    /// Publishes an event now.
    pub fn publish(&self, kind: EventKind) -> DaemonEvent {
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        self.publish_at(kind, at_ms)
    }

    /// Publishes an event stamped `at_ms` (tests use a fixed time).
    pub fn publish_at(&self, kind: EventKind, at_ms: u64) -> DaemonEvent {
        // The ring's lock also orders sequence numbers with the ring's order.
        let mut recent = self.inner.recent.lock().unwrap_or_else(|e| e.into_inner());
        let event = DaemonEvent {
            seq: self.inner.next_seq.fetch_add(1, Ordering::Relaxed),
            at_ms,
            kind,
        };
        if !event.kind.is_transient() {
            if recent.len() == RECENT_CAPACITY {
                recent.pop_front();
            }
            recent.push_back(event.clone());
        }
        let _ = self.inner.tx.send(event.clone()); // no listener is fine
        event
    }

    /// A live stream of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DaemonEvent> {
        self.inner.tx.subscribe()
    }

    /// The kept (non-transient) events with a sequence number above `after_seq`, oldest first.
    pub fn recent_since(&self, after_seq: u64) -> Vec<DaemonEvent> {
        let recent = self.inner.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent
            .iter()
            .filter(|e| e.seq > after_seq)
            .cloned()
            .collect()
    }

    /// Every kept event, oldest first.
    pub fn recent(&self) -> Vec<DaemonEvent> {
        self.recent_since(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(n: usize) -> EventKind {
        EventKind::SessionClosed {
            session: format!("s{n}"),
        }
    }

    #[test]
    fn events_are_numbered_kept_and_serialized_with_a_kind_tag() {
        let feed = EventFeed::new();
        let first = feed.publish_at(closed(1), 1_000);
        let second = feed.publish_at(
            EventKind::SessionStateChanged {
                session: "s1".into(),
                state: SessionState::Running,
            },
            2_000,
        );
        assert_eq!((first.seq, second.seq), (1, 2));
        assert_eq!(feed.recent(), vec![first, second.clone()]);
        assert_eq!(feed.recent_since(1), vec![second.clone()]);
        let json = serde_json::to_value(&second).unwrap();
        assert_eq!(json["kind"], "session-state-changed");
        assert_eq!(json["state"], "Running");
        assert_eq!(json["at_ms"], 2_000);
    }

    #[test]
    fn progress_reaches_listeners_but_not_the_ring() {
        let feed = EventFeed::new();
        let mut rx = feed.subscribe();
        feed.publish(EventKind::ImageProgress {
            image: "img".into(),
            bytes: 10,
            total: Some(100),
            bytes_per_second: 5,
        });
        assert!(feed.recent().is_empty());
        assert!(matches!(
            rx.try_recv().unwrap().kind,
            EventKind::ImageProgress { bytes: 10, .. }
        ));
    }

    #[test]
    fn the_ring_keeps_only_the_newest() {
        let feed = EventFeed::new();
        for n in 0..RECENT_CAPACITY + 5 {
            feed.publish(closed(n));
        }
        let recent = feed.recent();
        assert_eq!(recent.len(), RECENT_CAPACITY);
        assert_eq!(recent[0].seq, 6);
        assert_eq!(recent.last().unwrap().seq, (RECENT_CAPACITY + 5) as u64);
    }

    #[test]
    fn clones_share_one_feed() {
        let feed = EventFeed::new();
        let other = feed.clone();
        other.publish(closed(1));
        assert_eq!(feed.recent().len(), 1);
    }
}
