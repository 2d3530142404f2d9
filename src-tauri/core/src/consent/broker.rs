//! The consent broker: decides each new-session request, showing at most one dialog at a time.
//!
//! A request is decided at once when its origin is blocked (→ [`Decision::Blocked`]) or has a
//! remembered "allow" (→ [`Decision::Allowed`]). Otherwise it waits its turn for the dialog slot
//! (fair between origins), the [`Prompter`] shows the dialog, and the answer feeds the throttle
//! rule ([`super::rule`]). A timeout, a dismissed dialog or an unavailable UI deny the request
//! without counting toward the rule. Dropping the future returned by [`ConsentBroker::request`]
//! (the page went away) leaves the line or closes the dialog.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{watch, Notify};

use super::clock::{Clock, SystemClock};
use super::decisions::{SiteDecisions, SiteEntry};
use super::prompter::{Answer, Prompter};
use super::queue::FairQueue;
use super::request::{ConsentDialog, ConsentRequest, Decision, MAX_ORIGIN_BYTES};
use super::rule::{self, DenialStreak};
use crate::events::{EventFeed, EventKind};

/// How long a dialog waits for the user before it counts as a rejection.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Tunables of the broker.
#[derive(Debug, Clone)]
pub struct ConsentOptions {
    /// A dialog unanswered this long denies the request.
    pub timeout: Duration,
    /// Requests of one origin that may wait for the dialog slot; more are denied at once.
    pub max_waiting_per_origin: usize,
    /// Requests of all origins that may wait; more are denied at once.
    pub max_waiting: usize,
}

impl Default for ConsentOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            max_waiting_per_origin: 4,
            max_waiting: 64,
        }
    }
}

/// Where a request stands, for the page's "waiting" overlay (`lengthyTask`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentProgress {
    /// Another dialog is open; this request waits behind it.
    Waiting,
    /// This request's dialog is on screen.
    Shown,
}

/// The consent broker. Share it as `Arc<ConsentBroker>`.
pub struct ConsentBroker {
    prompter: Arc<dyn Prompter>,
    clock: Arc<dyn Clock>,
    options: ConsentOptions,
    state: Mutex<State>,
    turn: Notify,
    /// Bumped whenever the blocked or remembered lists change (for menus that show them).
    changed: watch::Sender<u64>,
    /// Where dialogs, answers, blocks and unblocks are reported (see [`ConsentBroker::with_events`]).
    events: EventFeed,
}

struct State {
    decisions: SiteDecisions,
    streaks: HashMap<String, DenialStreak>,
    queue: FairQueue,
    next_ticket: u64,
    /// The ticket whose dialog is on screen.
    showing: Option<u64>,
    last_origin: Option<String>,
}

impl std::fmt::Debug for ConsentBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsentBroker")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl ConsentBroker {
    /// A broker whose blocks and remembered decisions live in `data_dir` (`consent.json`).
    pub fn open(data_dir: &Path, prompter: Arc<dyn Prompter>, options: ConsentOptions) -> Self {
        Self::with_clock(data_dir, prompter, options, Arc::new(SystemClock))
    }

    /// The headless daemon's broker: pre-approves `allow_origins` (from `--allow-origin`), refuses
    /// every other new session because nobody can be asked.
    pub fn headless(data_dir: &Path, allow_origins: &[String]) -> Self {
        Self::open(
            data_dir,
            Arc::new(super::prompter::HeadlessPrompter::new(
                allow_origins.iter().cloned(),
            )),
            ConsentOptions::default(),
        )
    }

    /// As [`ConsentBroker::open`], with the clock the throttle rule reads.
    pub fn with_clock(
        data_dir: &Path,
        prompter: Arc<dyn Prompter>,
        options: ConsentOptions,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            prompter,
            clock,
            options,
            state: Mutex::new(State {
                decisions: SiteDecisions::load(data_dir),
                streaks: HashMap::new(),
                queue: FairQueue::default(),
                next_ticket: 0,
                showing: None,
                last_origin: None,
            }),
            turn: Notify::new(),
            changed: watch::Sender::new(0),
            events: EventFeed::new(),
        }
    }

    /// Reports to `events` (the daemon's feed): `ConsentWaiting` when a dialog opens, `ConsentAnswered`
    /// for each decided request (also by a remembered answer or the timeout), `SiteBlocked` and
    /// `SiteUnblocked`. Without it the broker reports to a feed nobody reads.
    pub fn with_events(mut self, events: EventFeed) -> Self {
        self.events = events;
        self
    }

    fn answered(&self, origin: &str, decision: Decision) {
        self.events.publish(EventKind::ConsentAnswered {
            origin: origin.to_string(),
            allowed: decision == Decision::Allowed,
        });
    }

    /// A receiver that sees a change whenever a site is blocked, unblocked, remembered or forgotten.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn lists_changed(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Decides a new-session request; may show a dialog and wait for the user.
    pub async fn request(&self, req: ConsentRequest) -> Decision {
        self.request_with_progress(req, |_| {}).await
    }

    /// As [`ConsentBroker::request`], calling `progress` when the request starts waiting behind
    /// another dialog and when its own dialog is shown (the daemon sends `lengthyTask` then).
    pub async fn request_with_progress(
        &self,
        req: ConsentRequest,
        mut progress: impl FnMut(ConsentProgress) + Send,
    ) -> Decision {
        let origin = req.origin.clone();
        if origin.is_empty() || origin.len() > MAX_ORIGIN_BYTES {
            tracing::warn!(
                len = origin.len(),
                "consent refused: empty or oversized origin"
            );
            return Decision::Denied;
        }
        let ticket = {
            let mut st = self.lock();
            if let Some(d) = settled(&st, &origin) {
                drop(st);
                log_settled(&origin, d);
                self.settled_answer(&origin, d);
                return d;
            }
            if st.queue.count(&origin) >= self.options.max_waiting_per_origin
                || st.queue.len() >= self.options.max_waiting
            {
                tracing::warn!(%origin, "consent refused: too many requests waiting for a dialog");
                return Decision::Denied;
            }
            st.next_ticket += 1;
            let t = st.next_ticket;
            st.queue.push(t, &origin);
            t
        };
        let mut slot = Slot {
            broker: self,
            ticket,
            holds_dialog: false,
        };

        // Wait for the dialog slot; a block or remembered answer arriving meanwhile decides at once.
        let mut told_waiting = false;
        loop {
            let notified = self.turn.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.lock();
                if let Some(d) = settled(&st, &origin) {
                    drop(st);
                    log_settled(&origin, d);
                    self.settled_answer(&origin, d);
                    return d;
                }
                if st.showing.is_none() && st.queue.next(st.last_origin.as_deref()) == Some(ticket)
                {
                    st.queue.remove(ticket);
                    st.showing = Some(ticket);
                    st.last_origin = Some(origin.clone());
                    slot.holds_dialog = true;
                    break;
                }
            }
            if !told_waiting {
                told_waiting = true;
                progress(ConsentProgress::Waiting);
            }
            notified.await;
        }

        let dialog = ConsentDialog::new(req);
        tracing::info!(%origin, vm = %dialog.vm_name_display, trusted = dialog.request.trusted,
            "asking the user to allow a new session");
        progress(ConsentProgress::Shown);
        self.events.publish(EventKind::ConsentWaiting {
            origin: origin.clone(),
        });
        let answer =
            tokio::time::timeout(self.options.timeout, self.prompter.prompt(&dialog)).await;
        let (decision, blocked) = match answer {
            Ok(Ok(answer)) => self.apply_answer(&origin, answer),
            Ok(Err(why)) => {
                tracing::info!(%origin, "new session denied: {why}");
                (Decision::Denied, false)
            }
            Err(_) => {
                tracing::info!(%origin, timeout = ?self.options.timeout,
                    "new session denied: the dialog was not answered in time");
                (Decision::Denied, false)
            }
        };
        drop(slot);
        self.answered(&origin, decision);
        if blocked {
            self.events.publish(EventKind::SiteBlocked {
                origin: origin.clone(),
            });
        }
        decision
    }

    /// A remembered "allow" answers like the user would; a blocked origin's refusals are not reported
    /// one by one (`SiteBlocked` said it once).
    fn settled_answer(&self, origin: &str, decision: Decision) {
        if decision == Decision::Allowed {
            self.answered(origin, decision);
        }
    }

    /// Feeds the user's answer to the rule and the remembered decisions; whether it blocked the origin.
    fn apply_answer(&self, origin: &str, answer: Answer) -> (Decision, bool) {
        let now = self.clock.now();
        let mut st = self.lock();
        if answer.allow {
            st.streaks.remove(origin); // rule::after_accept(): the streak starts over
            if answer.remember {
                if let Err(e) = st.decisions.remember(origin) {
                    tracing::error!(%origin, "cannot save the remembered answer: {e:#}");
                }
            }
            tracing::info!(%origin, remember = answer.remember, "the user allowed a new session");
            drop(st);
            if answer.remember {
                self.lists_changed();
            }
            return (Decision::Allowed, false);
        }
        let history = st.streaks.get(origin).copied().unwrap_or_default();
        let outcome = rule::after_denial(history, now);
        let block = outcome.block || answer.remember;
        if block {
            st.streaks.remove(origin);
            if let Err(e) = st.decisions.block(origin) {
                tracing::error!(%origin, "cannot save the block (it holds until restart): {e:#}");
            }
            tracing::warn!(%origin, remembered = answer.remember,
                "origin blocked: no more dialogs, its requests are refused (unblock in the tray or control panel)");
        } else {
            let window = rule::THROTTLE_WINDOW;
            st.streaks.retain(|_, s| s.is_live(now, window));
            st.streaks.insert(origin.to_string(), outcome.streak);
            tracing::info!(%origin, "the user denied a new session");
        }
        drop(st);
        if block {
            self.lists_changed();
        }
        (Decision::Denied, block)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state holds no invariant a panic could half-apply; keep serving after one.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether requests from `origin` are refused without a dialog.
    pub fn is_blocked(&self, origin: &str) -> bool {
        self.lock().decisions.is_blocked(origin)
    }

    /// The blocked origins (tray "Blocked sites…", control panel).
    pub fn blocked_sites(&self) -> Vec<SiteEntry> {
        self.lock().decisions.blocked()
    }

    /// Unblocks `origin`; `Ok(false)` when it was not blocked.
    pub fn unblock(&self, origin: &str) -> anyhow::Result<bool> {
        let mut st = self.lock();
        st.streaks.remove(origin);
        let done = st.decisions.unblock(origin)?;
        drop(st);
        if done {
            tracing::info!(%origin, "origin unblocked by the user");
            self.lists_changed();
            self.events.publish(EventKind::SiteUnblocked {
                origin: origin.to_string(),
            });
        }
        Ok(done)
    }

    /// Origins whose "allow" was remembered.
    pub fn remembered_sites(&self) -> Vec<SiteEntry> {
        self.lock().decisions.remembered()
    }

    /// Forgets a remembered "allow"; `Ok(false)` when there was none.
    pub fn forget(&self, origin: &str) -> anyhow::Result<bool> {
        let done = self.lock().decisions.forget(origin)?;
        if done {
            tracing::info!(%origin, "remembered answer revoked by the user");
            self.lists_changed();
        }
        Ok(done)
    }

    /// Whether a dialog is on screen now.
    pub fn dialog_open(&self) -> bool {
        self.lock().showing.is_some()
    }
}

/// A decision that needs no dialog.
fn settled(st: &State, origin: &str) -> Option<Decision> {
    if st.decisions.is_blocked(origin) {
        Some(Decision::Blocked)
    } else if st.decisions.is_remembered(origin) {
        Some(Decision::Allowed)
    } else {
        None
    }
}

fn log_settled(origin: &str, d: Decision) {
    match d {
        Decision::Blocked => {
            tracing::info!(%origin, "new session refused without a dialog: origin is blocked")
        }
        _ => tracing::info!(%origin, "new session allowed: the user's answer was remembered"),
    }
}

/// A request's place in line or on screen; leaving (also by being dropped) frees it and wakes the line.
struct Slot<'a> {
    broker: &'a ConsentBroker,
    ticket: u64,
    holds_dialog: bool,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        {
            let mut st = self.broker.lock();
            st.queue.remove(self.ticket);
            if self.holds_dialog && st.showing == Some(self.ticket) {
                st.showing = None;
            }
        }
        self.broker.turn.notify_waiters();
    }
}
