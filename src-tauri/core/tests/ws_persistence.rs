//! Sessions survive a daemon restart: records on disk (without the secret), re-attachment to running
//! VMs, dead VMs reported powered off, and the page's re-request ("reheat") without a new prompt.

mod support;

use serde_json::{json, Value};
use support::*;
use webapi_core::hypervisor::VmState;
use webapi_core::protocol::SessionState;
use webapi_core::session::Command;

#[tokio::test]
async fn a_running_session_is_found_again_after_a_restart() {
    let fakes = Fakes::new();
    let d1 = start_daemon(fakes.services(), test_limits(), &fakes.data_dir()).await;
    let mut c = Client::connect(d1.addr).await;
    c.handshake().await;
    let sid = c.open(VMCP_URL).await;
    c.act("start", sid, json!({"parameters": {"who": "me"}}))
        .await;
    assert_eq!(c.state_changed(sid).await, 5);
    let id = c
        .act("setProperty", sid, json!({"key": "k", "value": "v"}))
        .await;
    c.event("succeed", &id).await;
    d1.stop().await;
    drop(c);

    // The record: everything to continue, never the secret.
    let sessions = fakes.data_dir().join("sessions");
    let files: Vec<_> = std::fs::read_dir(&sessions).unwrap().flatten().collect();
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(files[0].path()).unwrap();
    assert!(!text.contains("s3cret"), "the secret is not stored");
    let record: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(record["origin"], "http://test.local:8080");
    assert_eq!(record["vm"]["handle"]["backend"], "fake");
    assert_eq!(record["user_values"]["who"], "me");
    // A corrupt neighbour must not stop the restart.
    std::fs::write(sessions.join("broken.json"), b"{nope").unwrap();

    let d2 = start_daemon(fakes.services(), test_limits(), &fakes.data_dir()).await;
    let mut c = Client::connect(d2.addr).await;
    c.handshake().await;
    let id = c.send("requestSession", json!({"vmcp": VMCP_URL})).await;
    let ok = c.event("succeed", &id).await;
    let sid2 = ok["data"][1].as_u64().unwrap();
    let sv = c.event("stateVariables", &sid2.to_string()).await;
    assert_eq!(sv["data"][1], json!({"k": "v"}));
    let sc = c.event("stateChanged", &sid2.to_string()).await;
    assert_eq!(sc["data"], json!([5]), "still running");
    assert_eq!(fakes.consent.count(), 1, "no new consent prompt");
    assert!(fakes.hv.calls().contains(&"reattach".to_string()));
    // It is fully controllable.
    c.act("pause", sid2, json!({})).await;
    assert_eq!(c.state_changed(sid2).await, 4);
    // In-process callers (tray, idle policy) see it through the registry.
    let sessions = d2.state.registry().sessions();
    assert_eq!(sessions.len(), 1);
    let (tx, rx) = tokio::sync::oneshot::channel();
    sessions[0].send(Command::Inspect(tx)).await.unwrap();
    let snap = rx.await.unwrap();
    assert_eq!(snap.state, SessionState::Paused);
    assert_eq!(snap.subscribers, 1);
    assert!(snap.params.daemon_controlled);
    assert_eq!(snap.origin, "http://test.local:8080");
}

#[tokio::test]
async fn a_vm_that_died_with_the_daemon_comes_back_powered_off() {
    let fakes = Fakes::new();
    let d1 = start_daemon(fakes.services(), test_limits(), &fakes.data_dir()).await;
    let mut c = Client::connect(d1.addr).await;
    c.handshake().await;
    let sid = c.open(VMCP_URL).await;
    c.act("start", sid, json!({})).await;
    assert_eq!(c.state_changed(sid).await, 5);
    d1.stop().await;
    drop(c);
    fakes.hv.only_vm().lock().unwrap().dead = true;

    let d2 = start_daemon(fakes.services(), test_limits(), &fakes.data_dir()).await;
    let mut c = Client::connect(d2.addr).await;
    c.handshake().await;
    let id = c.send("requestSession", json!({"vmcp": VMCP_URL})).await;
    let sid2 = c.event("succeed", &id).await["data"][1].as_u64().unwrap();
    let sc = c.event("stateChanged", &sid2.to_string()).await;
    assert_eq!(sc["data"], json!([2]));
    assert_eq!(
        fakes.hv.only_vm().lock().unwrap().state,
        VmState::PoweredOff
    );
    c.act("start", sid2, json!({})).await;
    assert_eq!(c.state_changed(sid2).await, 5);
}

#[tokio::test]
async fn a_restart_with_a_wrong_secret_is_still_refused() {
    let fakes = Fakes::new();
    fakes.vmcp.add(
        "http://test.local/other",
        vmcp_doc("my-vm", "not-the-secret"),
    );
    let d1 = start_daemon(fakes.services(), test_limits(), &fakes.data_dir()).await;
    let mut c = Client::connect(d1.addr).await;
    c.handshake().await;
    c.open(VMCP_URL).await;
    d1.stop().await;
    drop(c);
    let d2 = start_daemon(fakes.services(), test_limits(), &fakes.data_dir()).await;
    let mut c = Client::connect(d2.addr).await;
    c.handshake().await;
    let id = c
        .send("requestSession", json!({"vmcp": "http://test.local/other"}))
        .await;
    let f = c.event("failed", &id).await;
    assert_eq!(f["data"][1], -20);
}

/// The volunteer's Start (tray menu, control panel) sends `Control::Resume` to a stopped session: the VM
/// runs again and the page's start values stay in the record, where the page's own `start` would replace
/// them.
#[tokio::test]
async fn a_volunteer_start_after_a_stop_keeps_the_pages_start_values() {
    use webapi_core::session::{Control, Outbox, Reply};
    let fakes = Fakes::new();
    let d = start_daemon(fakes.services(), test_limits(), &fakes.data_dir()).await;
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    let sid = c.open(VMCP_URL).await;
    c.act("start", sid, json!({"parameters": {"who": "me"}}))
        .await;
    assert_eq!(c.state_changed(sid).await, 5);
    c.act("stop", sid, json!({})).await;
    assert_eq!(c.state_changed(sid).await, 2, "powered off");

    let handle = d.state.registry().sessions().remove(0);
    let (outbox, mut frames, _) = Outbox::new(16, 0);
    let reply = Reply {
        request_id: "volunteer".into(),
        wire_id: 0,
        outbox,
        in_flight: None,
    };
    handle
        .send(Command::Control {
            action: Control::Resume,
            reply,
        })
        .await
        .unwrap();
    let answer: Value = serde_json::from_str(&frames.recv().await.unwrap()).unwrap();
    assert_eq!(answer["name"], "succeed", "{answer}");
    assert_eq!(c.state_changed(sid).await, 5, "running again");

    let sessions = fakes.data_dir().join("sessions");
    let file = std::fs::read_dir(&sessions)
        .unwrap()
        .flatten()
        .next()
        .unwrap();
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(file.path()).unwrap()).unwrap();
    assert_eq!(record["user_values"]["who"], "me", "{record}");
    d.stop().await;
}
