//! Controller tests with an injected clock, a scripted idle source and a test-only session target that
//! behaves like a session actor (actions change the session's state).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::clock::ManualClock;
use super::controller::{Controller, IdleHandle, FAST_POLL, RETRY_AFTER, SLOW_POLL};
use super::params::{IdlePolicy, DF_AUTOSTART, DF_SUSPEND};
use super::policy::{IdleAction, Presence, SessionView};
use super::source::{IdleError, IdleSource};
use super::status::Doing;
use super::target::{ControlledSession, IdleTarget, TargetError};
use crate::hypervisor::VmState;

/// An idle source whose answer the test sets.
#[derive(Default)]
struct ScriptedSource(Mutex<Option<Duration>>);

impl ScriptedSource {
    fn set(&self, idle: Option<Duration>) {
        *self.0.lock().unwrap() = idle;
    }
}

#[async_trait]
impl IdleSource for ScriptedSource {
    fn name(&self) -> &'static str {
        "scripted"
    }
    async fn idle_time(&self) -> Result<Duration, IdleError> {
        self.0
            .lock()
            .unwrap()
            .ok_or_else(|| IdleError::failed("scripted", "no reading"))
    }
}

/// Sessions whose state follows the actions applied (unless `refuse` is set).
#[derive(Default)]
struct FakeSessions {
    sessions: Mutex<Vec<ControlledSession>>,
    applied: Mutex<Vec<(String, IdleAction)>>,
    refuse: Mutex<bool>,
}

impl FakeSessions {
    fn add(&self, id: &str, policy: IdlePolicy, state: VmState, cap: Option<u8>) {
        self.sessions.lock().unwrap().push(ControlledSession {
            id: id.into(),
            policy,
            view: SessionView {
                state: Some(state),
                cap,
                held_by_hand: false,
            },
        });
    }
    fn edit(&self, id: &str, f: impl FnOnce(&mut SessionView)) {
        let mut all = self.sessions.lock().unwrap();
        f(&mut all.iter_mut().find(|s| s.id == id).unwrap().view);
    }
    fn view(&self, id: &str) -> SessionView {
        self.sessions
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.id == id)
            .unwrap()
            .view
    }
    fn take_applied(&self) -> Vec<(String, IdleAction)> {
        std::mem::take(&mut *self.applied.lock().unwrap())
    }
}

#[async_trait]
impl IdleTarget for FakeSessions {
    async fn controlled_sessions(&self) -> Vec<ControlledSession> {
        self.sessions.lock().unwrap().clone()
    }
    async fn apply(&self, id: &str, action: IdleAction) -> Result<(), TargetError> {
        self.applied.lock().unwrap().push((id.into(), action));
        if *self.refuse.lock().unwrap() {
            return Err(TargetError("VM is locked".into()));
        }
        self.edit(id, |v| match action {
            IdleAction::SetCap(c) => v.cap = Some(c),
            IdleAction::Pause => v.state = Some(VmState::Paused),
            IdleAction::Save => v.state = Some(VmState::Saved),
            IdleAction::Resume | IdleAction::Restore => v.state = Some(VmState::Running),
            IdleAction::Start { cap } => {
                v.state = Some(VmState::Running);
                v.cap = cap.or(v.cap);
            }
        });
        Ok(())
    }
}

struct Rig {
    ctl: Controller,
    handle: IdleHandle,
    clock: Arc<ManualClock>,
    source: Arc<ScriptedSource>,
    target: Arc<FakeSessions>,
}

const T: Duration = Duration::from_secs(60);

fn rig() -> Rig {
    let clock = Arc::new(ManualClock::new());
    let source = Arc::new(ScriptedSource::default());
    let target = Arc::new(FakeSessions::default());
    let (ctl, handle) = Controller::new(source.clone(), target.clone(), clock.clone(), T);
    Rig {
        ctl,
        handle,
        clock,
        source,
        target,
    }
}

fn policy(min: u8, max: u8, flags: u32) -> IdlePolicy {
    IdlePolicy::validate(1, min.into(), max.into(), flags.into()).unwrap()
}

/// Advances the clock and the source's idle time together, as if nobody touched the computer.
fn pass(r: &Rig, by: Duration, idle_now: Duration) {
    r.clock.advance(by);
    r.source.set(Some(idle_now));
}

#[tokio::test]
async fn cap_follows_idle_and_back() {
    let mut r = rig();
    r.target
        .add("a", policy(10, 90, 0), VmState::Running, Some(100));
    r.source.set(Some(Duration::from_secs(5)));
    assert_eq!(r.ctl.tick().await, FAST_POLL);
    assert_eq!(
        r.target.take_applied(),
        vec![("a".into(), IdleAction::SetCap(10))]
    );
    assert_eq!(r.handle.status().borrow().doing, Doing::HoldingBack);

    // One millisecond short of the threshold: nothing happens.
    pass(&r, Duration::from_secs(55), T - Duration::from_millis(1));
    r.ctl.tick().await;
    assert!(r.target.take_applied().is_empty());
    assert_eq!(r.handle.status().borrow().presence, Presence::Active);

    // At the threshold: idle, cap = max.
    pass(&r, Duration::from_millis(1), T);
    r.ctl.tick().await;
    assert_eq!(
        r.target.take_applied(),
        vec![("a".into(), IdleAction::SetCap(90))]
    );
    let st = r.handle.status().borrow().clone();
    assert_eq!((st.presence, st.doing), (Presence::Idle, Doing::Lending));
    assert_eq!(st.protocol_properties()["isSystemIdle"], true);

    // Still idle: nothing more.
    pass(&r, FAST_POLL, T + FAST_POLL);
    r.ctl.tick().await;
    assert!(r.target.take_applied().is_empty());

    // Input: back to min on the next poll.
    pass(&r, FAST_POLL, Duration::from_millis(200));
    r.ctl.tick().await;
    assert_eq!(
        r.target.take_applied(),
        vec![("a".into(), IdleAction::SetCap(10))]
    );
    assert_eq!(r.target.view("a").cap, Some(10));
}

#[tokio::test]
async fn pause_and_suspend_rows_with_autostart() {
    let mut r = rig();
    r.target
        .add("pause", policy(0, 0, 0), VmState::Running, None);
    r.target
        .add("suspend", policy(0, 0, DF_SUSPEND), VmState::Running, None);
    r.target.add(
        "auto",
        policy(0, 0, DF_AUTOSTART),
        VmState::PoweredOff,
        None,
    );
    r.source.set(Some(Duration::ZERO));
    r.ctl.tick().await;
    assert_eq!(
        r.target.take_applied(),
        vec![
            ("pause".into(), IdleAction::Pause),
            ("suspend".into(), IdleAction::Save)
        ]
    );
    pass(&r, T, T);
    r.ctl.tick().await;
    assert_eq!(
        r.target.take_applied(),
        vec![
            ("pause".into(), IdleAction::Resume),
            ("suspend".into(), IdleAction::Restore),
            ("auto".into(), IdleAction::Start { cap: None })
        ]
    );
    pass(&r, FAST_POLL, Duration::ZERO);
    r.ctl.tick().await;
    assert_eq!(
        r.target.take_applied(),
        vec![
            ("pause".into(), IdleAction::Pause),
            ("suspend".into(), IdleAction::Save),
            ("auto".into(), IdleAction::Pause)
        ]
    );
}

#[tokio::test]
async fn vm_paused_by_hand_is_not_resumed() {
    let mut r = rig();
    r.target
        .add("a", policy(0, 0, DF_AUTOSTART), VmState::Running, None);
    r.source.set(Some(T));
    r.ctl.tick().await;
    assert!(r.target.take_applied().is_empty(), "idle and running: fine");
    // The user pauses it by hand, then stays away for an hour.
    r.target.edit("a", |v| {
        v.state = Some(VmState::Paused);
        v.held_by_hand = true;
    });
    for i in 1..=10 {
        pass(
            &r,
            Duration::from_secs(360),
            T + Duration::from_secs(360 * i),
        );
        r.ctl.tick().await;
    }
    assert!(r.target.take_applied().is_empty());
    // Stopped by hand: not started by DF_AUTOSTART either.
    r.target.edit("a", |v| v.state = Some(VmState::PoweredOff));
    r.ctl.tick().await;
    assert!(r.target.take_applied().is_empty());
    // The user starts it again by hand: the policy applies once more.
    r.target.edit("a", |v| {
        v.state = Some(VmState::Running);
        v.held_by_hand = false;
    });
    pass(&r, FAST_POLL, Duration::ZERO);
    r.ctl.tick().await;
    assert_eq!(
        r.target.take_applied(),
        vec![("a".into(), IdleAction::Pause)]
    );
}

#[tokio::test]
async fn snooze_holds_back_until_deadline_then_lends() {
    let mut r = rig();
    r.target
        .add("a", policy(5, 100, 0), VmState::Running, Some(5));
    r.source.set(Some(Duration::from_secs(600)));
    r.handle.snooze_for(Duration::from_secs(3600));
    r.ctl.tick().await;
    assert!(r.target.take_applied().is_empty(), "snoozed: stays at min");
    let st = r.handle.status().borrow().clone();
    assert_eq!(st.doing, Doing::Snoozed);
    assert!(st.snoozed_until.is_some());
    assert!(st.summary().contains("snoozed"), "{}", st.summary());

    pass(&r, Duration::from_secs(3599), Duration::from_secs(4199));
    r.ctl.tick().await;
    assert!(r.target.take_applied().is_empty());
    pass(&r, Duration::from_secs(1), Duration::from_secs(4200));
    r.ctl.tick().await;
    assert_eq!(
        r.target.take_applied(),
        vec![("a".into(), IdleAction::SetCap(100))]
    );
    assert_eq!(r.handle.status().borrow().snoozed_until, None);

    // Snoozing while idle takes the CPU back at once; cancelling gives it again.
    r.handle.snooze_for(Duration::from_secs(3600));
    r.ctl.tick().await;
    assert_eq!(
        r.target.take_applied(),
        vec![("a".into(), IdleAction::SetCap(5))]
    );
    r.handle.cancel_snooze();
    r.ctl.tick().await;
    assert_eq!(
        r.target.take_applied(),
        vec![("a".into(), IdleAction::SetCap(100))]
    );
}

#[tokio::test]
async fn failing_action_is_retried_only_after_a_while() {
    let mut r = rig();
    r.target.add("a", policy(0, 0, 0), VmState::Running, None);
    *r.target.refuse.lock().unwrap() = true;
    r.source.set(Some(Duration::ZERO));
    r.ctl.tick().await;
    assert_eq!(r.target.take_applied().len(), 1);
    let last = r.handle.status().borrow().last_action.clone().unwrap();
    assert_eq!(last.error.as_deref(), Some("VM is locked"));
    for _ in 0..5 {
        pass(&r, FAST_POLL, Duration::ZERO);
        r.ctl.tick().await;
    }
    assert!(r.target.take_applied().is_empty(), "no retry storm");
    pass(&r, RETRY_AFTER, Duration::ZERO);
    r.ctl.tick().await;
    assert_eq!(
        r.target.take_applied(),
        vec![("a".into(), IdleAction::Pause)]
    );
}

#[tokio::test]
async fn source_failure_counts_as_active_and_is_reported() {
    let mut r = rig();
    r.target
        .add("a", policy(10, 90, 0), VmState::Running, Some(90));
    r.source.set(None);
    r.ctl.tick().await;
    assert_eq!(
        r.target.take_applied(),
        vec![("a".into(), IdleAction::SetCap(10))]
    );
    let st = r.handle.status().borrow().clone();
    assert_eq!(st.presence, Presence::Active);
    assert!(st.source_error.unwrap().contains("no reading"));
    assert_eq!(st.idle_time, None);
    r.source.set(Some(T));
    r.ctl.tick().await;
    assert_eq!(r.handle.status().borrow().source_error, None);
}

#[tokio::test]
async fn backs_off_when_nothing_is_controlled() {
    let mut r = rig();
    r.source.set(Some(T * 2));
    assert_eq!(r.ctl.tick().await, SLOW_POLL);
    let st = r.handle.status().borrow().clone();
    assert_eq!((st.doing, st.controlled), (Doing::Watching, 0));
    assert_eq!(st.presence, Presence::Idle, "status still follows the user");
    // A session whose control is switched off is ignored even if the target lists it.
    r.target.add(
        "off",
        IdlePolicy::validate(0, 10, 90, 0).unwrap(),
        VmState::Running,
        None,
    );
    assert_eq!(r.ctl.tick().await, SLOW_POLL);
    assert!(r.target.take_applied().is_empty());
}

#[tokio::test]
async fn threshold_change_applies_on_next_poll() {
    let mut r = rig();
    r.target
        .add("a", policy(10, 90, 0), VmState::Running, Some(10));
    r.source.set(Some(Duration::from_secs(20)));
    r.ctl.tick().await;
    assert!(r.target.take_applied().is_empty());
    r.handle.set_threshold(Duration::from_secs(20));
    r.ctl.tick().await;
    assert_eq!(
        r.target.take_applied(),
        vec![("a".into(), IdleAction::SetCap(90))]
    );
}

#[tokio::test]
async fn run_loop_reacts_to_wake_and_snooze() {
    let r = rig();
    r.target
        .add("a", policy(10, 90, 0), VmState::Running, Some(10));
    r.source.set(Some(T));
    let target = r.target.clone();
    let handle = r.handle.clone();
    let mut status = handle.status();
    let task = tokio::spawn(r.ctl.run());
    // The first poll runs at once and lends the CPU.
    tokio::time::timeout(Duration::from_secs(10), async {
        while status.borrow_and_update().doing != Doing::Lending {
            status.changed().await.unwrap();
        }
    })
    .await
    .expect("controller published the idle state");
    assert_eq!(target.view("a").cap, Some(90));
    // Snoozing wakes the loop without waiting for the next poll.
    handle.snooze_for(Duration::from_secs(60));
    tokio::time::timeout(Duration::from_secs(10), async {
        while status.borrow_and_update().doing != Doing::Snoozed {
            status.changed().await.unwrap();
        }
    })
    .await
    .expect("controller published the snooze");
    assert_eq!(target.view("a").cap, Some(10));
    task.abort();
}
