//! The idle controller: a task that polls the idle source (2 Hz while a session is controlled, every 5 s
//! otherwise), tracks idle/active transitions, applies the policy's actions to the sessions and publishes
//! its status. Settings (threshold, snooze) arrive through an [`IdleHandle`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{watch, Notify};

use super::clock::Clock;
use super::policy::{decide, presence, IdleAction, Presence};
use super::source::IdleSource;
use super::status::{Doing, IdleStatus, LastAction};
use super::target::IdleTarget;
use crate::events::{EventFeed, EventKind};

/// Poll period while at least one session is controlled (coming back acts within about this long).
pub const FAST_POLL: Duration = Duration::from_millis(500);
/// Poll period while no session is controlled.
pub const SLOW_POLL: Duration = Duration::from_secs(5);
/// How long one `IdleTarget::apply` call may take.
pub const APPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// The same action is not asked of the same session again sooner than this (unless presence changed).
pub const RETRY_AFTER: Duration = Duration::from_secs(10);
/// Longest accepted idle threshold and snooze (one day and one week).
pub const MAX_THRESHOLD: Duration = Duration::from_secs(24 * 3600);
pub const MAX_SNOOZE: Duration = Duration::from_secs(7 * 24 * 3600);

/// How often the controller polls: `fast` while a session is controlled, `slow` otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPeriods {
    pub fast: Duration,
    pub slow: Duration,
}

impl Default for PollPeriods {
    fn default() -> Self {
        Self {
            fast: FAST_POLL,
            slow: SLOW_POLL,
        }
    }
}

/// The controller's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Settings {
    threshold: Duration,
    snoozed_until: Option<Instant>,
}

/// Controls a running controller and reads its status. Cheap to clone.
#[derive(Clone)]
pub struct IdleHandle {
    settings: Arc<watch::Sender<Settings>>,
    status: watch::Receiver<IdleStatus>,
    wake: Arc<Notify>,
    clock: Arc<dyn Clock>,
}

impl IdleHandle {
    /// The current status; `.changed().await` on it to follow changes (at most about once a second).
    pub fn status(&self) -> watch::Receiver<IdleStatus> {
        self.status.clone()
    }

    /// Suspends idle control for `duration` (capped at a week): the user counts as active until then.
    pub fn snooze_for(&self, duration: Duration) {
        let until = self.clock.now() + duration.min(MAX_SNOOZE);
        self.settings.send_modify(|s| s.snoozed_until = Some(until));
        tracing::info!(minutes = duration.as_secs() / 60, "idle control snoozed");
    }

    /// Ends a snooze now.
    pub fn cancel_snooze(&self) {
        self.settings.send_modify(|s| s.snoozed_until = None);
        tracing::info!("idle control snooze cancelled");
    }

    /// Changes the idle threshold (capped at a day).
    pub fn set_threshold(&self, threshold: Duration) {
        self.settings
            .send_modify(|s| s.threshold = threshold.min(MAX_THRESHOLD));
    }

    /// Makes the controller poll now, e.g. after a session's idle parameters changed (the daemon calls
    /// it when a page `set`s a `daemon*` parameter).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// The controller task's state. Create with [`Controller::new`], then `tokio::spawn(controller.run())`.
pub struct Controller {
    source: Arc<dyn IdleSource>,
    target: Arc<dyn IdleTarget>,
    clock: Arc<dyn Clock>,
    settings: watch::Receiver<Settings>,
    status: watch::Sender<IdleStatus>,
    wake: Arc<Notify>,
    presence: Presence,
    poll: PollPeriods,
    /// Where `IdleChanged` goes (none until [`Controller::with_events`]).
    events: Option<EventFeed>,
    /// Per session: the last action asked and when, so a failing action is retried only every RETRY_AFTER.
    asked: HashMap<String, (IdleAction, Instant)>,
}

impl Controller {
    pub fn new(
        source: Arc<dyn IdleSource>,
        target: Arc<dyn IdleTarget>,
        clock: Arc<dyn Clock>,
        threshold: Duration,
    ) -> (Self, IdleHandle) {
        let threshold = threshold.min(MAX_THRESHOLD);
        let (settings_tx, settings_rx) = watch::channel(Settings {
            threshold,
            snoozed_until: None,
        });
        let (status_tx, status_rx) = watch::channel(IdleStatus::initial(source.name(), threshold));
        let wake = Arc::new(Notify::new());
        let handle = IdleHandle {
            settings: Arc::new(settings_tx),
            status: status_rx,
            wake: Arc::clone(&wake),
            clock: Arc::clone(&clock),
        };
        let controller = Self {
            source,
            target,
            clock,
            settings: settings_rx,
            status: status_tx,
            wake,
            presence: Presence::Active,
            poll: PollPeriods::default(),
            events: None,
            asked: HashMap::new(),
        };
        (controller, handle)
    }

    /// Publishes `IdleChanged` to `events` whenever the user goes idle or comes back.
    pub fn with_events(mut self, events: EventFeed) -> Self {
        self.events = Some(events);
        self
    }

    /// Polls at `poll` instead of [`FAST_POLL`] / [`SLOW_POLL`].
    pub fn with_poll(mut self, poll: PollPeriods) -> Self {
        self.poll = poll;
        self
    }

    /// Polls until the task is aborted.
    pub async fn run(mut self) {
        tracing::info!(source = self.source.name(), "idle controller started");
        let mut settings_open = true;
        loop {
            let next = self.tick().await;
            tokio::select! {
                _ = tokio::time::sleep(next) => {}
                // Something changed (a session's idle parameters, the source): ask again at once,
                // even what was asked less than RETRY_AFTER ago (the session reset its idle cap).
                _ = self.wake.notified() => self.asked.clear(),
                changed = self.settings.changed(), if settings_open => settings_open = changed.is_ok(),
            }
        }
    }

    /// One poll: read the sessions and the idle time, decide, act, publish. Returns the time to the next poll.
    pub async fn tick(&mut self) -> Duration {
        let now = self.clock.now();
        let settings = *self.settings.borrow_and_update();
        let sessions: Vec<_> = self
            .target
            .controlled_sessions()
            .await
            .into_iter()
            .filter(|s| s.policy.controlled)
            .collect();
        let (idle_time, source_error) = match self.source.idle_time().await {
            Ok(t) => (Some(t), None),
            Err(e) => (None, Some(e.to_string())),
        };
        self.log_source_error(&source_error);
        let snoozed = settings.snoozed_until.filter(|u| now < *u);
        let presence = presence(idle_time, settings.threshold, snoozed, now);
        let transition = presence != self.presence;
        if transition {
            self.on_transition(presence, idle_time);
        }
        self.asked
            .retain(|id, _| sessions.iter().any(|s| &s.id == id));

        let mut last_action = None;
        for session in &sessions {
            let Some(action) = decide(&session.policy, &session.view, presence) else {
                self.asked.remove(&session.id);
                continue;
            };
            if let Some((asked, at)) = self.asked.get(&session.id) {
                if *asked == action && now.duration_since(*at) < RETRY_AFTER {
                    continue;
                }
            }
            self.asked.insert(session.id.clone(), (action, now));
            last_action = Some(self.apply(&session.id, action).await);
        }

        let doing = if sessions.is_empty() {
            Doing::Watching
        } else if snoozed.is_some() {
            Doing::Snoozed
        } else if presence == Presence::Idle {
            Doing::Lending
        } else {
            Doing::HoldingBack
        };
        let snoozed_until = snoozed.map(|u| SystemTime::now() + u.duration_since(now));
        let whole_secs = idle_time.map(|t| Duration::from_secs(t.as_secs()));
        self.status.send_if_modified(|st| {
            let next = IdleStatus {
                source: st.source,
                presence,
                idle_time: whole_secs,
                threshold: settings.threshold,
                // Keep the published deadline stable across polls (it is recomputed from the monotonic one).
                snoozed_until: match (st.snoozed_until, snoozed_until) {
                    (Some(old), Some(new)) if abs_diff(old, new) < Duration::from_secs(2) => {
                        Some(old)
                    }
                    (_, new) => new,
                },
                controlled: sessions.len(),
                doing,
                last_action: last_action.or_else(|| st.last_action.clone()),
                source_error,
            };
            let changed = *st != next;
            *st = next;
            changed
        });
        if transition {
            if let Some(events) = &self.events {
                let summary = self.status.borrow().summary();
                events.publish(EventKind::IdleChanged {
                    idle: presence == Presence::Idle,
                    summary,
                });
            }
        }
        if sessions.is_empty() {
            self.poll.slow
        } else {
            self.poll.fast
        }
    }

    fn on_transition(&mut self, presence: Presence, idle_time: Option<Duration>) {
        match presence {
            Presence::Idle => tracing::info!(
                idle_secs = idle_time.map_or(0, |t| t.as_secs()),
                "user went idle"
            ),
            Presence::Active => tracing::info!("user is active"),
        }
        self.presence = presence;
        // A new transition may need the same action again at once (e.g. a retry that was pending).
        self.asked.clear();
    }

    async fn apply(&self, id: &str, action: IdleAction) -> LastAction {
        let result = tokio::time::timeout(APPLY_TIMEOUT, self.target.apply(id, action)).await;
        let error = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("no answer within {APPLY_TIMEOUT:?}")),
        };
        match &error {
            None => tracing::info!(session = id, ?action, "idle control action"),
            Some(e) => {
                tracing::warn!(session = id, ?action, error = %e, "idle control action failed")
            }
        }
        LastAction {
            session: id.to_string(),
            action,
            error,
        }
    }

    /// Logs a source error when it starts or changes, not on every poll.
    fn log_source_error(&self, error: &Option<String>) {
        let before = &self.status.borrow().source_error;
        match (before, error) {
            (old, Some(new)) if old.as_ref() != Some(new) => {
                tracing::warn!(source = self.source.name(), error = %new, "idle probe failed; counting the user as active")
            }
            (Some(_), None) => {
                tracing::info!(source = self.source.name(), "idle probe works again")
            }
            _ => {}
        }
    }
}

fn abs_diff(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b)
        .or_else(|_| b.duration_since(a))
        .unwrap_or_default()
}
