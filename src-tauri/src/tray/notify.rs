//! Desktop notifications (freedesktop, through notify-rust): what happened is worked out by pure functions
//! (diffing what the tray saw before and now, or reading the daemon's event feed), and a pure rate limiter
//! with an injected clock keeps them from spamming: at most one per kind every 30 s, at most 5 a minute in
//! all. A click on a notification opens the control panel where the notification server supports
//! actions (the freedesktop "default" action).

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use webapi_core::events::EventKind;
use webapi_core::media::human_bytes;
use webapi_core::protocol::SessionState;

use super::model::SessionView;

/// The kinds of notification.
///
/// "VM failed" and "image downloaded" come from the daemon's event feed ([`from_event`]); the others from
/// diffing what the tray saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    ConsentWaiting,
    SessionStarted,
    SiteBlocked,
    VmFailed,
    ImageDownloaded,
    /// The desktop shows no tray icons, so the control panel was opened instead (once per start).
    NoTrayIcon,
}

#[cfg(test)]
const KINDS: [Kind; 6] = [
    Kind::ConsentWaiting,
    Kind::SessionStarted,
    Kind::SiteBlocked,
    Kind::VmFailed,
    Kind::ImageDownloaded,
    Kind::NoTrayIcon,
];

/// Longest failure message shown in a notification (the log has all of it).
const MAX_MESSAGE_CHARS: usize = 200;

/// One notification to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub kind: Kind,
    pub summary: String,
    pub body: String,
}

impl Note {
    pub fn consent_waiting(origin: &str) -> Self {
        Self {
            kind: Kind::ConsentWaiting,
            summary: "A website asks to run a virtual machine".into(),
            body: format!("{origin} waits for your answer in the CernVM WebAPI dialog."),
        }
    }

    pub fn session_started(s: &SessionView) -> Self {
        Self {
            kind: Kind::SessionStarted,
            summary: "Virtual machine started".into(),
            body: format!("{} started “{}”.", s.origin, display_vm(s)),
        }
    }

    pub fn no_tray_icon() -> Self {
        Self {
            kind: Kind::NoTrayIcon,
            summary: "CernVM WebAPI runs without a tray icon".into(),
            body: "Your desktop shows no tray icons, so the control panel is open instead. Closing it \
                   keeps CernVM WebAPI running; start CernVM WebAPI again to reopen it."
                .into(),
        }
    }

    pub fn site_blocked(origin: &str) -> Self {
        Self {
            kind: Kind::SiteBlocked,
            summary: "Website blocked".into(),
            body: format!(
                "{origin} can no longer ask to run virtual machines. Unblock it from the tray menu (Blocked sites…)."
            ),
        }
    }
}

impl Note {
    pub fn vm_failed(session: &str, message: &str) -> Self {
        let mut shown: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
        if shown.len() < message.len() {
            shown.push('…');
        }
        Self {
            kind: Kind::VmFailed,
            summary: "Virtual machine failed".into(),
            body: format!("“{session}”: {shown}"),
        }
    }

    /// `image` is the download URL; the notification names its file.
    pub fn image_downloaded(image: &str, bytes: u64) -> Self {
        Self {
            kind: Kind::ImageDownloaded,
            summary: "VM image downloaded".into(),
            body: format!(
                "“{}” ({}) is verified and ready.",
                file_name(image),
                human_bytes(bytes)
            ),
        }
    }
}

/// The notification an event of the daemon's feed deserves, if any.
pub fn from_event(kind: &EventKind) -> Option<Note> {
    match kind {
        EventKind::VmFailed { session, message } => Some(Note::vm_failed(session, message)),
        EventKind::ImageDownloaded { image, bytes } => Some(Note::image_downloaded(image, *bytes)),
        _ => None,
    }
}

/// The last path segment of a URL (without query), or the whole text when it has none.
fn file_name(url: &str) -> &str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    match path.rsplit('/').next() {
        Some(name) if !name.is_empty() => name,
        _ => url,
    }
}

fn display_vm(s: &SessionView) -> &str {
    if s.vm.is_empty() {
        &s.name
    } else {
        &s.vm
    }
}

/// Sessions whose VM has just booted: running now, and before not there or without a VM up (missing or
/// powered off). Resuming a paused or hibernated VM (which idle control does often) is not news.
pub fn started(before: &[SessionView], now: &[SessionView]) -> Vec<Note> {
    now.iter()
        .filter(|s| s.state == SessionState::Running)
        .filter(|s| {
            before.iter().find(|b| b.name == s.name).is_none_or(|b| {
                matches!(
                    b.state,
                    SessionState::Missing | SessionState::Available | SessionState::PowerOff
                )
            })
        })
        .map(Note::session_started)
        .collect()
}

/// Origins blocked now that were not blocked before.
pub fn newly_blocked(before: &BTreeSet<String>, now: &BTreeSet<String>) -> Vec<Note> {
    now.difference(before)
        .map(|o| Note::site_blocked(o))
        .collect()
}

/// Consent dialogs opened since the last look: (dialog label, origin) present now but not before.
pub fn new_consent_dialogs(
    before: &BTreeSet<(String, String)>,
    now: &BTreeSet<(String, String)>,
) -> Vec<Note> {
    now.difference(before)
        .map(|(_, origin)| Note::consent_waiting(origin))
        .collect()
}

/// How often notifications may come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// At most one notification of a kind in this window.
    pub per_kind: Duration,
    /// At most `burst` notifications in all within `window`.
    pub burst: usize,
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_kind: Duration::from_secs(30),
            burst: 5,
            window: Duration::from_secs(60),
        }
    }
}

/// The rate limiter's memory: when each kind last went out, and the recent sends. Pure: the caller gives
/// the time.
#[derive(Debug, Default)]
pub struct RateLimiter {
    limits: Limits,
    last_of_kind: Vec<(Kind, Instant)>,
    recent: VecDeque<Instant>,
}

impl RateLimiter {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Whether a notification of `kind` may go out at `now`; records it when it may.
    pub fn allow(&mut self, kind: Kind, now: Instant) -> bool {
        while let Some(&t) = self.recent.front() {
            if now.saturating_duration_since(t) >= self.limits.window {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        if self.recent.len() >= self.limits.burst {
            return false;
        }
        if let Some((_, last)) = self.last_of_kind.iter().find(|(k, _)| *k == kind) {
            if now.saturating_duration_since(*last) < self.limits.per_kind {
                return false;
            }
        }
        self.last_of_kind.retain(|(k, _)| *k != kind);
        self.last_of_kind.push((kind, now));
        self.recent.push_back(now);
        true
    }
}

/// What a click on a notification does (the tray opens the control panel).
pub type OnClick = Arc<dyn Fn() + Send + Sync>;

/// The freedesktop action id of a click on the notification's body.
const DEFAULT_ACTION: &str = "default";

/// Shows notifications through the desktop's notification server, rate-limited.
pub struct Notifier {
    limiter: Mutex<RateLimiter>,
    on_click: OnClick,
}

impl Notifier {
    pub fn new(limits: Limits, on_click: OnClick) -> Self {
        Self {
            limiter: Mutex::new(RateLimiter::new(limits)),
            on_click,
        }
    }

    /// Shows `note` unless the rate limit holds it back (then it is only logged). Never blocks the caller
    /// on D-Bus: the notification is sent from a blocking-pool thread.
    pub fn show(&self, note: Note) {
        let allowed = self
            .limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allow(note.kind, Instant::now());
        if !allowed {
            tracing::info!(kind = ?note.kind, summary = %note.summary, "notification held back by the rate limit");
            return;
        }
        let on_click = self.on_click.clone();
        // The thread waits until the notification is clicked or closed (the rate limit bounds how many wait).
        tauri::async_runtime::spawn_blocking(move || {
            let shown = notify_rust::Notification::new()
                .appname("CernVM WebAPI")
                .summary(&note.summary)
                .body(&note.body)
                .icon("cernvm-webapi")
                .action(DEFAULT_ACTION, "Open the control panel")
                .show();
            match shown {
                Ok(handle) => {
                    tracing::info!(kind = ?note.kind, summary = %note.summary, "notification shown");
                    handle.wait_for_action(|action| {
                        if action == DEFAULT_ACTION {
                            tracing::info!(kind = ?note.kind, "notification clicked: opening the control panel");
                            on_click();
                        }
                    });
                }
                Err(e) => tracing::warn!(kind = ?note.kind, "cannot show a notification: {e}"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(name: &str, state: SessionState) -> SessionView {
        SessionView {
            name: name.into(),
            origin: "https://example.org".into(),
            vm: "Worker".into(),
            state,
            cap: 100,
        }
    }

    #[test]
    fn one_per_kind_per_30_seconds() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(Limits::default());
        assert!(r.allow(Kind::SessionStarted, t0));
        assert!(!r.allow(Kind::SessionStarted, t0 + Duration::from_secs(29)));
        assert!(r.allow(Kind::SiteBlocked, t0 + Duration::from_secs(1)));
        assert!(r.allow(Kind::SessionStarted, t0 + Duration::from_secs(30)));
    }

    #[test]
    fn at_most_five_a_minute() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(Limits {
            per_kind: Duration::ZERO,
            ..Limits::default()
        });
        for i in 0..5 {
            assert!(r.allow(KINDS[i % KINDS.len()], t0 + Duration::from_secs(i as u64)));
        }
        assert!(!r.allow(Kind::SiteBlocked, t0 + Duration::from_secs(10)));
        assert!(!r.allow(Kind::SiteBlocked, t0 + Duration::from_secs(59)));
        // The first one leaves the window at t0+60.
        assert!(r.allow(Kind::SiteBlocked, t0 + Duration::from_secs(60)));
        assert!(!r.allow(Kind::SessionStarted, t0 + Duration::from_secs(60)));
    }

    #[test]
    fn a_held_back_notification_does_not_count() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(Limits {
            burst: 2,
            ..Limits::default()
        });
        assert!(r.allow(Kind::ConsentWaiting, t0));
        for s in 1..30 {
            assert!(!r.allow(Kind::ConsentWaiting, t0 + Duration::from_secs(s)));
        }
        // The 29 held back did not fill the burst of 2: one more fits, then no more this minute.
        assert!(r.allow(Kind::SessionStarted, t0 + Duration::from_secs(30)));
        assert!(!r.allow(Kind::SiteBlocked, t0 + Duration::from_secs(31)));
    }

    #[test]
    fn started_fires_when_a_vm_boots_not_when_it_resumes() {
        let before = [
            view("a", SessionState::Saved),
            view("b", SessionState::Running),
            view("e", SessionState::PowerOff),
            view("f", SessionState::Paused),
        ];
        let now = [
            view("a", SessionState::Running),
            view("b", SessionState::Running),
            view("c", SessionState::Running),
            view("d", SessionState::Paused),
            view("e", SessionState::Running),
            view("f", SessionState::Running),
        ];
        let notes = started(&before, &now);
        assert_eq!(notes.len(), 2, "c (new) and e (booted): {notes:?}");
        assert!(notes.iter().all(|n| n.kind == Kind::SessionStarted));
        assert_eq!(notes[0].body, "https://example.org started “Worker”.");
        assert!(started(&now, &now).is_empty());
    }

    #[test]
    fn feed_events_give_vm_failed_and_image_downloaded_notes_only() {
        let failed = from_event(&EventKind::VmFailed {
            session: "Worker".into(),
            message: "Boot failed: qemu exited".into(),
        })
        .unwrap();
        assert_eq!(failed.kind, Kind::VmFailed);
        assert_eq!(failed.body, "“Worker”: Boot failed: qemu exited");
        let long = from_event(&EventKind::VmFailed {
            session: "w".into(),
            message: "x".repeat(5000),
        })
        .unwrap();
        assert!(long.body.chars().count() < 220 && long.body.ends_with('…'));

        let image = from_event(&EventKind::ImageDownloaded {
            image: "https://cvm.example/images/ucernvm-prod.iso?x=1".into(),
            bytes: 20 * 1024 * 1024,
        })
        .unwrap();
        assert_eq!(image.kind, Kind::ImageDownloaded);
        assert!(
            image.body.starts_with("“ucernvm-prod.iso” (20"),
            "{}",
            image.body
        );
        assert_eq!(file_name("https://h/"), "https://h/");

        for quiet in [
            EventKind::SessionClosed {
                session: "w".into(),
            },
            EventKind::ImageStarted {
                image: "u".into(),
                total: None,
            },
            EventKind::IdleChanged {
                idle: true,
                summary: "idle".into(),
            },
        ] {
            assert!(from_event(&quiet).is_none(), "{quiet:?}");
        }
    }

    #[test]
    fn failures_are_rate_limited_like_the_others() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(Limits::default());
        assert!(r.allow(Kind::VmFailed, t0));
        assert!(!r.allow(Kind::VmFailed, t0 + Duration::from_secs(5)));
        assert!(r.allow(Kind::ImageDownloaded, t0 + Duration::from_secs(5)));
        assert!(r.allow(Kind::VmFailed, t0 + Duration::from_secs(30)));
    }

    #[test]
    fn blocked_and_consent_diffs_name_the_new_ones() {
        let before: BTreeSet<String> = ["https://a".to_string()].into();
        let now: BTreeSet<String> = ["https://a".to_string(), "https://b".to_string()].into();
        let notes = newly_blocked(&before, &now);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].body.starts_with("https://b can no longer"));
        assert!(newly_blocked(&now, &before).is_empty());

        let d0: BTreeSet<(String, String)> = BTreeSet::new();
        let d1: BTreeSet<(String, String)> = [("consent-0".into(), "https://c".into())].into();
        let notes = new_consent_dialogs(&d0, &d1);
        assert_eq!(notes, vec![Note::consent_waiting("https://c")]);
        assert!(new_consent_dialogs(&d1, &d1).is_empty());
    }
}
