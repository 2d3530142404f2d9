//! The control panel's view of real session actors (`daemon::panel`): the sessions table, the user's
//! per-session idle policy (#9: wins over the page's `daemon*` values, survives a restart), the default
//! policy of new sessions (settings), and the resource monitor. The in-memory test hypervisor and a
//! scripted idle source are the only fakes; the page is a real WebSocket client.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use support::*;
use webapi_core::daemon::panel;
use webapi_core::idle::{self, IdleHandle, IdlePolicy, SystemClock};

const AWAY: Duration = Duration::from_secs(3600);
const HERE: Duration = Duration::ZERO;

struct User {
    source: Arc<ScriptedIdle>,
    handle: IdleHandle,
}

impl User {
    fn start(daemon: &Running) -> Self {
        let source = Arc::new(ScriptedIdle(Mutex::new(HERE)));
        let handle = idle::spawn_with(
            &daemon.state,
            source.clone(),
            Arc::new(SystemClock),
            Duration::from_secs(60),
        );
        Self { source, handle }
    }
    fn set(&self, idle_time: Duration) {
        *self.source.0.lock().unwrap() = idle_time;
        self.handle.wake();
    }
}

fn policy(min: u8, max: u8) -> IdlePolicy {
    IdlePolicy::validate(1, min.into(), max.into(), 0).unwrap()
}

async fn only_row(d: &Running) -> panel::SessionRow {
    let rows = panel::session_rows(&d.state).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows.into_iter().next().unwrap()
}

#[tokio::test]
async fn the_users_policy_wins_over_the_page_and_survives_a_restart() {
    let fakes = Fakes::new();
    let d = start_daemon(fakes.services(), test_limits(), &fakes.data_dir()).await;
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    let sid = c.open(VMCP_URL).await; // the page's policy: 10 % in use, 90 % idle
    c.act("start", sid, json!({})).await;
    assert_eq!(c.state_changed(sid).await, 5);
    let user = User::start(&d);
    cap_until(&fakes, 10).await;

    let row = only_row(&d).await;
    assert_eq!(row.name, "my-vm");
    assert_eq!(row.state, "running");
    assert_eq!(row.state_code, 5);
    assert_eq!((row.cpus, row.memory_mb, row.disk_mb), (2, 256, 512));
    assert_eq!(row.origin, ORIGIN);
    assert_eq!(row.idle_policy, policy(10, 90));
    assert_eq!(row.user_policy, None);
    assert_eq!(row.applied_cap, Some(10));
    assert_eq!(row.image, "cernvm 2.6-9 prod");

    // The user's override applies at once, in use and idle.
    panel::set_user_policy(&d.state, "my-vm", Some(policy(30, 60)))
        .await
        .unwrap();
    cap_until(&fakes, 30).await;
    user.set(AWAY);
    cap_until(&fakes, 60).await;
    let row = only_row(&d).await;
    assert_eq!(row.user_policy, Some(policy(30, 60)));
    assert_eq!(row.idle_policy, policy(30, 60));
    let json = serde_json::to_value(&row).unwrap();
    assert_eq!(
        json["userPolicy"],
        json!({"controlled": true, "minCap": 30, "maxCap": 60, "flags": 0})
    );
    assert_eq!(json["heldByHand"], false);

    // The page changes its own values: they are stored, but the user's policy stays in force.
    let id = c
        .act("set", sid, json!({"key": "daemonMinCap", "value": 5}))
        .await;
    c.event("succeed", &id).await;
    user.set(HERE);
    cap_until(&fakes, 30).await;
    let id = c.act("get", sid, json!({"key": "daemonMinCap"})).await;
    assert_eq!(c.event("succeed", &id).await["data"][0], "5");

    // Invalid overrides are refused and change nothing; unknown sessions are named.
    let bad = IdlePolicy {
        controlled: true,
        min_cap: 50,
        max_cap: 20,
        flags: 0,
    };
    let err = panel::set_user_policy(&d.state, "my-vm", Some(bad))
        .await
        .unwrap_err();
    assert!(err.contains("daemonMaxCap"), "{err}");
    let err = panel::set_user_policy(&d.state, "nobody", None)
        .await
        .unwrap_err();
    assert!(err.contains("nobody"), "{err}");
    assert_eq!(only_row(&d).await.user_policy, Some(policy(30, 60)));

    // Persisted with the session: a restarted daemon still applies it.
    d.stop().await;
    drop(c);
    let d2 = start_daemon(fakes.services(), test_limits(), &fakes.data_dir()).await;
    assert_eq!(only_row(&d2).await.user_policy, Some(policy(30, 60)));
    let user2 = User::start(&d2);
    user2.set(AWAY);
    cap_until(&fakes, 60).await;

    // Cleared: the page's current values (5 / 90) apply again.
    panel::set_user_policy(&d2.state, "my-vm", None)
        .await
        .unwrap();
    user2.set(HERE);
    cap_until(&fakes, 5).await;
    let row = only_row(&d2).await;
    assert_eq!(row.user_policy, None);
    assert_eq!(row.idle_policy, policy(5, 90));
}

#[tokio::test]
async fn new_sessions_without_daemon_keys_get_the_default_policy() {
    let fakes = Fakes::new();
    let mut doc = vmcp_doc("plain-vm", "s3cret");
    for key in [
        "daemonControlled",
        "daemonMinCap",
        "daemonMaxCap",
        "daemonFlags",
    ] {
        doc.as_object_mut().unwrap().remove(key);
    }
    fakes.vmcp.add("http://test.local/plain", doc);
    let d = start_daemon(fakes.services(), test_limits(), &fakes.data_dir()).await;
    d.state.set_default_idle_policy(policy(20, 80));
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    c.open("http://test.local/plain").await;
    c.open(VMCP_URL).await;
    let rows = panel::session_rows(&d.state).await;
    let names: Vec<_> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["my-vm", "plain-vm"], "sorted by name");
    assert_eq!(rows[1].idle_policy, policy(20, 80), "the default applies");
    assert_eq!(rows[0].idle_policy, policy(10, 90), "the page's own policy");
    assert_eq!(rows[1].user_policy, None);
}

#[tokio::test]
async fn the_monitor_samples_the_applied_cap_of_each_session() {
    let fakes = Fakes::new();
    let d = start_daemon(fakes.services(), test_limits(), &fakes.data_dir()).await;
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    let sid = c.open(VMCP_URL).await;
    c.act("start", sid, json!({})).await;
    assert_eq!(c.state_changed(sid).await, 5);
    let _user = User::start(&d);
    cap_until(&fakes, 10).await;
    let monitor = webapi_core::monitor::ResourceMonitor::spawn(d.state.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let samples = monitor.samples();
        if let Some(s) = samples.get("my-vm").and_then(|s| s.last()) {
            assert_eq!(s.cap, Some(10), "the cap idle control applied");
            assert_eq!(s.cpu_percent, None, "the test hypervisor has no process");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no sample");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
