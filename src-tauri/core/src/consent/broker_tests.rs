//! Tests of the broker with a scripted prompter (the test plays the user) and a manual clock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::clock::ManualClock;
use super::*;

/// One dialog on screen: what it shows, and where the test's answer goes.
struct Shown {
    dialog: ConsentDialog,
    reply: oneshot::Sender<Result<Answer, PromptError>>,
}

/// A prompter the test drives: every dialog is handed to the test, which answers it.
struct ScriptedPrompter {
    shown: mpsc::UnboundedSender<Shown>,
    open_now: AtomicUsize,
    most_open: AtomicUsize,
    closed: AtomicUsize,
}

struct OpenGuard<'a>(&'a ScriptedPrompter);
impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.open_now.fetch_sub(1, Ordering::SeqCst);
        self.0.closed.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Prompter for ScriptedPrompter {
    async fn prompt(&self, dialog: &ConsentDialog) -> Result<Answer, PromptError> {
        let n = self.open_now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_open.fetch_max(n, Ordering::SeqCst);
        let _guard = OpenGuard(self);
        let (reply, answer) = oneshot::channel();
        let _ = self.shown.send(Shown {
            dialog: dialog.clone(),
            reply,
        });
        answer.await.unwrap_or(Err(PromptError::Dismissed))
    }
}

struct Rig {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    prompter: Arc<ScriptedPrompter>,
    dialogs: mpsc::UnboundedReceiver<Shown>,
    broker: Arc<ConsentBroker>,
}

fn rig_with(options: ConsentOptions) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let (tx, dialogs) = mpsc::unbounded_channel();
    let prompter = Arc::new(ScriptedPrompter {
        shown: tx,
        open_now: AtomicUsize::new(0),
        most_open: AtomicUsize::new(0),
        closed: AtomicUsize::new(0),
    });
    let clock = Arc::new(ManualClock::new());
    let broker = Arc::new(ConsentBroker::with_clock(
        dir.path(),
        prompter.clone(),
        options,
        clock.clone(),
    ));
    Rig {
        dir,
        clock,
        prompter,
        dialogs,
        broker,
    }
}

fn rig() -> Rig {
    rig_with(ConsentOptions::default())
}

fn req(origin: &str) -> ConsentRequest {
    ConsentRequest {
        origin: origin.into(),
        domain: origin.split("://").nth(1).unwrap_or(origin).into(),
        vm_name: "Test VM".into(),
        cpus: 2,
        memory_mb: 1024,
        disk_mb: 2048,
        idle_control: true,
        trusted: true,
    }
}

const A: &str = "https://a.example";
const B: &str = "https://b.example";
const DENY: Answer = Answer {
    allow: false,
    remember: false,
};
const ALLOW: Answer = Answer {
    allow: true,
    remember: false,
};

impl Rig {
    /// Sends a request, plays the user answering `answer`, returns the decision.
    async fn answered(&mut self, origin: &str, answer: Answer) -> Decision {
        let broker = self.broker.clone();
        let r = req(origin);
        let task = tokio::spawn(async move { broker.request(r).await });
        let shown = self.dialogs.recv().await.expect("a dialog is shown");
        assert_eq!(shown.dialog.request.origin, origin);
        shown.reply.send(Ok(answer)).unwrap();
        task.await.unwrap()
    }

    /// Sends a request that must be decided without any dialog.
    async fn undialogued(&mut self, origin: &str) -> Decision {
        let d = self.broker.request(req(origin)).await;
        assert!(self.dialogs.try_recv().is_err(), "no dialog may be shown");
        d
    }
}

#[tokio::test]
async fn two_denials_within_five_seconds_block_the_origin() {
    let mut r = rig();
    assert_eq!(r.answered(A, DENY).await, Decision::Denied);
    r.clock.advance(Duration::from_millis(1500));
    assert_eq!(r.answered(A, DENY).await, Decision::Denied);
    assert_eq!(r.undialogued(A).await, Decision::Blocked);
    assert!(r.broker.is_blocked(A));
    assert_eq!(r.broker.blocked_sites().len(), 1);
    assert_eq!(r.broker.blocked_sites()[0].origin, A);
    // Another origin still gets its dialog.
    assert_eq!(r.answered(B, ALLOW).await, Decision::Allowed);
}

#[tokio::test]
async fn list_changes_are_announced() {
    let mut r = rig();
    let mut changes = r.broker.subscribe();
    r.answered(A, DENY).await;
    assert!(
        !changes.has_changed().unwrap(),
        "a single denial changes no list"
    );
    r.answered(A, DENY).await;
    assert!(changes.has_changed().unwrap(), "a block is announced");
    changes.mark_unchanged();
    r.broker.unblock(A).unwrap();
    assert!(changes.has_changed().unwrap(), "an unblock is announced");
}

#[tokio::test]
async fn the_five_second_edge() {
    let mut r = rig();
    r.answered(A, DENY).await;
    r.clock.advance(Duration::from_secs(5));
    r.answered(A, DENY).await;
    assert!(r.broker.is_blocked(A), "exactly 5 s apart blocks");

    r.answered(B, DENY).await;
    r.clock.advance(Duration::from_millis(5001));
    r.answered(B, DENY).await;
    assert!(!r.broker.is_blocked(B), "5.001 s apart starts a new streak");
    r.clock.advance(Duration::from_millis(4000));
    r.answered(B, DENY).await;
    assert!(
        r.broker.is_blocked(B),
        "the new streak counts from its own first denial"
    );
}

#[tokio::test]
async fn an_accepted_request_resets_the_counter() {
    let mut r = rig();
    r.answered(A, DENY).await;
    r.answered(A, ALLOW).await;
    r.answered(A, DENY).await;
    assert!(!r.broker.is_blocked(A));
    r.answered(A, DENY).await;
    assert!(r.broker.is_blocked(A));
}

#[tokio::test]
async fn denials_of_different_origins_do_not_add_up() {
    let mut r = rig();
    r.answered(A, DENY).await;
    r.answered(B, DENY).await;
    assert!(!r.broker.is_blocked(A) && !r.broker.is_blocked(B));
}

#[tokio::test]
async fn a_block_survives_a_restart_and_unblock_undoes_it() {
    let mut r = rig();
    r.answered(A, DENY).await;
    r.answered(A, DENY).await;
    // A new broker on the same data dir (the app restarted).
    let (tx, dialogs) = mpsc::unbounded_channel();
    let prompter = Arc::new(ScriptedPrompter {
        shown: tx,
        open_now: AtomicUsize::new(0),
        most_open: AtomicUsize::new(0),
        closed: AtomicUsize::new(0),
    });
    r.broker = Arc::new(ConsentBroker::open(
        r.dir.path(),
        prompter.clone(),
        ConsentOptions::default(),
    ));
    r.prompter = prompter;
    r.dialogs = dialogs;
    assert_eq!(r.undialogued(A).await, Decision::Blocked);
    assert!(r.broker.unblock(A).unwrap());
    assert!(
        !r.broker.unblock(A).unwrap(),
        "second unblock finds nothing"
    );
    assert_eq!(r.answered(A, ALLOW).await, Decision::Allowed);
    // One fresh denial after an unblock does not block again.
    r.answered(A, DENY).await;
    assert!(!r.broker.is_blocked(A));
}

#[tokio::test]
async fn remembered_allow_skips_the_dialog_until_revoked() {
    let mut r = rig();
    let remember = Answer {
        allow: true,
        remember: true,
    };
    assert_eq!(r.answered(A, remember).await, Decision::Allowed);
    assert_eq!(r.undialogued(A).await, Decision::Allowed);
    assert_eq!(r.broker.remembered_sites()[0].origin, A);
    assert!(r.broker.forget(A).unwrap());
    assert_eq!(r.answered(A, DENY).await, Decision::Denied);
}

#[tokio::test]
async fn remembered_deny_blocks() {
    let mut r = rig();
    let remember_deny = Answer {
        allow: false,
        remember: true,
    };
    assert_eq!(r.answered(A, remember_deny).await, Decision::Denied);
    assert_eq!(r.undialogued(A).await, Decision::Blocked);
}

#[tokio::test]
async fn an_unanswered_dialog_times_out_as_a_denial_that_does_not_count() {
    let mut r = rig_with(ConsentOptions {
        timeout: Duration::from_millis(100),
        ..ConsentOptions::default()
    });
    let broker = r.broker.clone();
    let task = tokio::spawn(async move { broker.request(req(A)).await });
    let shown = r.dialogs.recv().await.unwrap();
    // The user never answers.
    assert_eq!(task.await.unwrap(), Decision::Denied);
    assert_eq!(r.prompter.closed.load(Ordering::SeqCst), 1, "dialog closed");
    drop(shown);
    let broker = r.broker.clone();
    let task = tokio::spawn(async move { broker.request(req(A)).await });
    let _second = r.dialogs.recv().await.unwrap();
    assert_eq!(task.await.unwrap(), Decision::Denied);
    assert!(
        !r.broker.is_blocked(A),
        "timeouts are not the user's denials"
    );
}

#[tokio::test]
async fn one_dialog_at_a_time_and_waiters_are_told() {
    let mut r = rig();
    let waiting = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for origin in [A, B, A] {
        let broker = r.broker.clone();
        let waiting = waiting.clone();
        tasks.push(tokio::spawn(async move {
            broker
                .request_with_progress(req(origin), move |p| {
                    if p == ConsentProgress::Waiting {
                        waiting.fetch_add(1, Ordering::SeqCst);
                    }
                })
                .await
        }));
    }
    let mut order = Vec::new();
    for _ in 0..3 {
        let shown = r.dialogs.recv().await.unwrap();
        assert!(r.broker.dialog_open());
        order.push(shown.dialog.request.origin.clone());
        tokio::task::yield_now().await;
        shown.reply.send(Ok(ALLOW)).unwrap();
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), Decision::Allowed);
    }
    assert_eq!(r.prompter.most_open.load(Ordering::SeqCst), 1);
    assert_eq!(waiting.load(Ordering::SeqCst), 2, "two requests waited");
    assert_eq!(order.len(), 3);
    assert!(!r.broker.dialog_open());
}

#[tokio::test]
async fn origins_take_turns() {
    let mut r = rig();
    let mut tasks = Vec::new();
    // A's first request gets the dialog; then A, A, B wait. B must come before A's later ones.
    for origin in [A, A, A, B] {
        let broker = r.broker.clone();
        tasks.push(tokio::spawn(
            async move { broker.request(req(origin)).await },
        ));
        tokio::task::yield_now().await;
    }
    let first = r.dialogs.recv().await.unwrap();
    // Let every request reach the line before answering.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    first.reply.send(Ok(ALLOW)).unwrap();
    let second = r.dialogs.recv().await.unwrap();
    assert_eq!(second.dialog.request.origin, B);
    second.reply.send(Ok(ALLOW)).unwrap();
    for _ in 0..2 {
        let s = r.dialogs.recv().await.unwrap();
        assert_eq!(s.dialog.request.origin, A);
        s.reply.send(Ok(ALLOW)).unwrap();
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn a_block_decides_the_waiting_requests_of_that_origin() {
    let mut r = rig();
    r.answered(A, DENY).await;
    let first = {
        let broker = r.broker.clone();
        tokio::spawn(async move { broker.request(req(A)).await })
    };
    let shown = r.dialogs.recv().await.unwrap();
    let waiting = {
        let broker = r.broker.clone();
        tokio::spawn(async move { broker.request(req(A)).await })
    };
    tokio::task::yield_now().await;
    shown.reply.send(Ok(DENY)).unwrap(); // the second denial: blocked
    assert_eq!(first.await.unwrap(), Decision::Denied);
    assert_eq!(waiting.await.unwrap(), Decision::Blocked);
    assert!(r.dialogs.try_recv().is_err());
}

#[tokio::test]
async fn a_page_that_goes_away_frees_the_dialog() {
    let mut r = rig();
    let gone = {
        let broker = r.broker.clone();
        tokio::spawn(async move { broker.request(req(A)).await })
    };
    let _shown_a = r.dialogs.recv().await.unwrap();
    let next = {
        let broker = r.broker.clone();
        tokio::spawn(async move { broker.request(req(B)).await })
    };
    gone.abort();
    let shown_b = r.dialogs.recv().await.unwrap();
    assert_eq!(shown_b.dialog.request.origin, B);
    assert_eq!(
        r.prompter.closed.load(Ordering::SeqCst),
        1,
        "A's dialog closed"
    );
    shown_b.reply.send(Ok(ALLOW)).unwrap();
    assert_eq!(next.await.unwrap(), Decision::Allowed);
    assert!(!r.broker.is_blocked(A));
}

#[tokio::test]
async fn too_many_waiting_requests_are_denied_at_once() {
    let mut r = rig_with(ConsentOptions {
        max_waiting_per_origin: 2,
        ..ConsentOptions::default()
    });
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let broker = r.broker.clone();
        tasks.push(tokio::spawn(async move { broker.request(req(A)).await }));
    }
    let shown = r.dialogs.recv().await.unwrap(); // one on screen, one waiting
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let broker = r.broker.clone();
    let extra = tokio::spawn(async move { broker.request(req(A)).await });
    let broker = r.broker.clone();
    let extra2 = tokio::spawn(async move { broker.request(req(A)).await });
    // Two waiting now (one of the extras), the other is over the limit.
    let decided = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::select! { d = extra => d.unwrap(), d = extra2 => d.unwrap() }
    })
    .await
    .expect("the request over the limit is decided at once");
    assert_eq!(decided, Decision::Denied);
    drop(shown);
    drop(tasks);
}

#[tokio::test]
async fn a_dialog_error_denies_without_counting() {
    let mut r = rig();
    for _ in 0..3 {
        let broker = r.broker.clone();
        let task = tokio::spawn(async move { broker.request(req(A)).await });
        let shown = r.dialogs.recv().await.unwrap();
        shown.reply.send(Err(PromptError::Dismissed)).unwrap();
        assert_eq!(task.await.unwrap(), Decision::Denied);
    }
    assert!(!r.broker.is_blocked(A));
}

#[tokio::test]
async fn oversized_origin_is_denied_without_a_dialog() {
    let mut r = rig();
    let long = format!("https://{}.example", "a".repeat(2000));
    assert_eq!(r.undialogued(&long).await, Decision::Denied);
    assert_eq!(r.undialogued("").await, Decision::Denied);
}

#[tokio::test]
async fn headless_allows_listed_origins_and_refuses_the_rest_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let broker = ConsentBroker::open(
        dir.path(),
        Arc::new(HeadlessPrompter::new([A.to_string()])),
        ConsentOptions::default(),
    );
    assert_eq!(broker.request(req(A)).await, Decision::Allowed);
    assert_eq!(broker.request(req(A)).await, Decision::Allowed);
    for _ in 0..3 {
        assert_eq!(broker.request(req(B)).await, Decision::Denied);
    }
    assert!(!broker.is_blocked(B), "nobody denied anything");
    assert_eq!(
        broker.request(req("https://a.example:8443")).await,
        Decision::Denied,
        "exact origins only"
    );
}

#[tokio::test]
async fn dialogs_answers_blocks_and_unblocks_reach_the_event_feed() {
    use crate::events::{EventFeed, EventKind};
    let mut r = rig();
    let feed = EventFeed::new();
    r.broker = Arc::new(
        ConsentBroker::with_clock(
            r.dir.path(),
            r.prompter.clone(),
            ConsentOptions::default(),
            r.clock.clone(),
        )
        .with_events(feed.clone()),
    );
    let kinds = |feed: &EventFeed| -> Vec<EventKind> {
        feed.recent().into_iter().map(|e| e.kind).collect()
    };
    let waiting = EventKind::ConsentWaiting { origin: A.into() };
    let answer = |allowed| EventKind::ConsentAnswered {
        origin: A.into(),
        allowed,
    };

    assert_eq!(r.answered(A, ALLOW).await, Decision::Allowed);
    assert_eq!(kinds(&feed), vec![waiting.clone(), answer(true)]);

    // Two rejections 1.5 s apart on the injected clock: the rule blocks the site, once.
    assert_eq!(r.answered(A, DENY).await, Decision::Denied);
    r.clock.advance(Duration::from_millis(1500));
    assert_eq!(r.answered(A, DENY).await, Decision::Denied);
    let blocked = EventKind::SiteBlocked { origin: A.into() };
    assert_eq!(
        kinds(&feed)[2..],
        [
            waiting.clone(),
            answer(false),
            waiting.clone(),
            answer(false),
            blocked.clone()
        ]
    );
    // A blocked site's refusals need no dialog and are not reported one by one.
    assert_eq!(r.broker.request(req(A)).await, Decision::Blocked);
    assert_eq!(kinds(&feed).len(), 7);

    assert!(r.broker.unblock(A).unwrap());
    assert!(
        !r.broker.unblock(A).unwrap(),
        "unblocking twice reports once"
    );
    assert_eq!(
        kinds(&feed).last(),
        Some(&EventKind::SiteUnblocked { origin: A.into() })
    );
    assert_eq!(kinds(&feed).len(), 8);

    // Two rejections 6 s apart do not block: no SiteBlocked.
    assert_eq!(r.answered(B, DENY).await, Decision::Denied);
    r.clock.advance(Duration::from_secs(6));
    assert_eq!(r.answered(B, DENY).await, Decision::Denied);
    assert!(!kinds(&feed)
        .iter()
        .any(|k| matches!(k, EventKind::SiteBlocked { origin } if origin == B)));
}
