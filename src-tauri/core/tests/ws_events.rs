//! The daemon's event feed in real flows: a page drives a session over a real WebSocket (the test
//! hypervisor and VMCP/consent/image fakes of `support`), and the feed reports what happened to it; the
//! idle controller reports the user going and coming, and a page's `set` of a `daemon*` parameter wakes
//! it at once (it polls only once an hour here, so nothing but the wake can make it act).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use support::*;
use webapi_core::events::{EventFeed, EventKind};
use webapi_core::hypervisor::{VmEvent, VmState};
use webapi_core::idle::{self, PollPeriods, SystemClock};
use webapi_core::protocol::SessionState;

/// Waits (up to 10 s) until the kept events satisfy `pred`; returns them.
async fn feed_until(
    feed: &EventFeed,
    what: &str,
    pred: impl Fn(&[EventKind]) -> bool,
) -> Vec<EventKind> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let kinds: Vec<EventKind> = feed.recent().into_iter().map(|e| e.kind).collect();
        if pred(&kinds) {
            return kinds;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; the feed holds {kinds:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn has(kind: EventKind) -> impl Fn(&[EventKind]) -> bool {
    move |kinds| kinds.contains(&kind)
}

#[tokio::test]
async fn a_session_reports_its_life_to_the_feed() {
    let fakes = Fakes::new();
    let d = start_daemon(fakes.services(), test_limits(), &fakes.data_dir()).await;
    let feed = d.state.events().clone();
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    let sid = c.open(VMCP_URL).await;
    let s = sid.to_string();
    let session = || "my-vm".to_string();
    let opened = feed_until(&feed, "SessionOpened", |k| !k.is_empty()).await;
    let EventKind::SessionOpened {
        session: name,
        origin,
        vm,
    } = &opened[0]
    else {
        panic!("the first event opens the session: {opened:?}");
    };
    assert_eq!((name.as_str(), origin.as_str()), ("my-vm", ORIGIN));
    assert!(vm.contains("my-vm"), "{vm}");

    c.act("start", sid, json!({})).await;
    assert_eq!(c.state_changed(sid).await, 5);
    feed_until(
        &feed,
        "the cap of the booted VM",
        has(EventKind::CapApplied {
            session: session(),
            cap: 100,
        }),
    )
    .await;

    // The VM reports a failure of its own.
    {
        let vm = fakes.hv.only_vm();
        let _ = vm
            .lock()
            .unwrap()
            .events
            .send(VmEvent::Failure("the disk went away".into()));
    }
    c.event("failed", &s).await;
    feed_until(
        &feed,
        "VmFailed from the VM",
        has(EventKind::VmFailed {
            session: session(),
            message: "the disk went away".into(),
        }),
    )
    .await;

    // An operation fails for good (three attempts).
    fakes.hv.fail("pause", 3);
    c.act("pause", sid, json!({})).await;
    let failed = c.event("failed", &s).await;
    let message = failed["data"][0].as_str().unwrap().to_string();
    assert!(message.contains("injected failure"), "{message}");
    feed_until(
        &feed,
        "VmFailed from the pause",
        has(EventKind::VmFailed {
            session: session(),
            message,
        }),
    )
    .await;
    assert_eq!(fakes.hv.only_vm().lock().unwrap().state, VmState::Running);

    c.act("close", sid, json!({})).await;
    let kinds = feed_until(
        &feed,
        "SessionClosed",
        has(EventKind::SessionClosed { session: session() }),
    )
    .await;
    // The whole story, in order, once each: the failed pause changed no state, so no state event.
    let story: Vec<&str> = kinds
        .iter()
        .map(|k| match k {
            EventKind::SessionOpened { .. } => "opened",
            EventKind::SessionStateChanged {
                state: SessionState::Running,
                ..
            } => "running",
            EventKind::SessionStateChanged {
                state: SessionState::Missing,
                ..
            } => "missing",
            EventKind::CapApplied { .. } => "cap",
            EventKind::VmFailed { .. } => "failed",
            EventKind::SessionClosed { .. } => "closed",
            other => panic!("unexpected event {other:?}"),
        })
        .collect();
    assert_eq!(
        story,
        ["opened", "running", "cap", "failed", "failed", "missing", "closed"]
    );
}

#[tokio::test]
async fn a_recovered_session_is_reported_opened_again() {
    let fakes = Fakes::new();
    let d = start_daemon(fakes.services(), test_limits(), &fakes.data_dir()).await;
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    let sid = c.open(VMCP_URL).await;
    c.act("start", sid, json!({})).await;
    assert_eq!(c.state_changed(sid).await, 5);
    d.stop().await;

    // A new daemon (new feed) on the same data dir re-attaches to the running VM.
    let d = start_daemon(fakes.services(), test_limits(), &fakes.data_dir()).await;
    let kinds = feed_until(&d.state.events().clone(), "SessionOpened", |k| {
        !k.is_empty()
    })
    .await;
    assert!(
        matches!(&kinds[0], EventKind::SessionOpened { session, origin, .. }
            if session == "my-vm" && origin == ORIGIN),
        "{kinds:?}"
    );
    // The stored state was already Running: no state change to report.
    assert!(
        !kinds
            .iter()
            .any(|k| matches!(k, EventKind::SessionStateChanged { .. })),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn setting_idle_parameters_wakes_the_controller_and_idle_changes_are_reported() {
    let fakes = Fakes::new();
    let url = "http://test.local/uncontrolled";
    let mut doc = vmcp_doc("late-vm", "s3cret");
    doc["daemonControlled"] = json!(0);
    doc["daemonMinCap"] = json!(10);
    doc["daemonMaxCap"] = json!(90);
    doc["executionCap"] = json!(50);
    fakes.vmcp.add(url, doc);
    let d = start_daemon(fakes.services(), test_limits(), &fakes.data_dir()).await;
    let feed = d.state.events().clone();
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    let sid = c.open(url).await;
    c.act("start", sid, json!({})).await;
    assert_eq!(c.state_changed(sid).await, 5);
    cap_until(&fakes, 50).await;

    // The user is away; the controller polls once an hour, so only a wake makes it look again.
    let source = Arc::new(ScriptedIdle(Mutex::new(Duration::from_secs(3600))));
    let hour = Duration::from_secs(3600);
    let handle = idle::spawn_with_poll(
        &d.state,
        source.clone(),
        Arc::new(SystemClock),
        Duration::from_secs(60),
        PollPeriods {
            fast: hour,
            slow: hour,
        },
    );
    let kinds = feed_until(&feed, "IdleChanged (idle)", |k| {
        k.iter()
            .any(|k| matches!(k, EventKind::IdleChanged { idle: true, .. }))
    })
    .await;
    let summary = kinds
        .iter()
        .find_map(|k| match k {
            EventKind::IdleChanged { summary, .. } => Some(summary.clone()),
            _ => None,
        })
        .unwrap();
    // IdleChanged ends the first poll: the controller now sleeps for an hour.
    assert_eq!(summary, "idle · no VM under idle control");

    // The page opts in: the VM gets the idle cap at once.
    let id = c
        .act("set", sid, json!({"key": "daemonControlled", "value": "1"}))
        .await;
    c.event("succeed", &id).await;
    cap_until(&fakes, 90).await;
    // A new maximum applies at once too, and the VM goes straight from the old idle cap to the new
    // one: it does not drop to its executionCap (50) in between.
    let id = c
        .act("set", sid, json!({"key": "daemonMaxCap", "value": "70"}))
        .await;
    c.event("succeed", &id).await;
    cap_until(&fakes, 70).await;
    let caps = |k: &[EventKind]| -> Vec<u8> {
        k.iter()
            .filter_map(|k| match k {
                EventKind::CapApplied { cap, .. } => Some(*cap),
                _ => None,
            })
            .collect()
    };
    // Out of idle control the VM gets its executionCap back; opted in again, the controller (woken by
    // the set, with its hour-long poll) gives it the idle cap at once.
    for value in ["0", "1"] {
        let id = c
            .act(
                "set",
                sid,
                json!({"key": "daemonControlled", "value": value}),
            )
            .await;
        c.event("succeed", &id).await;
    }
    feed_until(
        &feed,
        "the caps in order, no dip to 50 on the new maximum",
        |k| caps(k) == [50, 90, 70, 50, 70],
    )
    .await;

    // The user comes back (the test wakes the controller, as a fresh probe would).
    *source.0.lock().unwrap() = Duration::ZERO;
    handle.wake();
    cap_until(&fakes, 10).await;
    feed_until(
        &feed,
        "IdleChanged (back)",
        has(EventKind::IdleChanged {
            idle: false,
            summary: "in use · 1 VM held back".into(),
        }),
    )
    .await;
}
