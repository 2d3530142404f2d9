//! `get` through real WebSocket clients: it reads what the session's earlier `set`, `setProperty` and
//! `start` changed, whether the page waited for their `succeed` or pipelined the `get` right behind them
//! on the same connection, and whether the `get` comes from the connection that changed the value or
//! another one; unknown keys give `""`; a closed session still answers.

mod support;

use serde_json::{json, Value};
use support::*;

async fn setup() -> (Fakes, Running) {
    let fakes = Fakes::new();
    let running = start_daemon(fakes.services(), test_limits(), &fakes.data_dir()).await;
    (fakes, running)
}

async fn opened(d: &Running) -> (Client, u64) {
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    let sid = c.open(VMCP_URL).await;
    (c, sid)
}

async fn get(c: &mut Client, sid: u64, key: &str) -> Value {
    let rid = c.act("get", sid, json!({ "key": key })).await;
    c.event("succeed", &rid).await["data"].clone()
}

/// The position of the frame answering request `rid` among `frames`.
fn position(frames: &[Value], rid: &str) -> usize {
    frames
        .iter()
        .position(|f| f["id"] == rid)
        .unwrap_or_else(|| panic!("no answer to {rid} in {frames:?}"))
}

#[tokio::test]
async fn get_after_the_succeed_of_set_and_set_property_reads_the_new_value() {
    let (_fakes, d) = setup().await;
    let (mut c, sid) = opened(&d).await;
    for cpus in 3..=6 {
        let rid = c
            .act("set", sid, json!({"key": "cpus", "value": cpus}))
            .await;
        assert_eq!(c.event("succeed", &rid).await["data"], json!([1]));
        assert_eq!(get(&mut c, sid, "cpus").await, json!([cpus.to_string()]));
    }
    // A refused value changes nothing.
    let rid = c
        .act("set", sid, json!({"key": "cpus", "value": "lots"}))
        .await;
    c.event("failed", &rid).await;
    assert_eq!(get(&mut c, sid, "cpus").await, json!(["6"]));
    // setProperty of a key the VMCP lets the page override (canOverride: cpus) changes the parameter.
    let rid = c
        .act("setProperty", sid, json!({"key": "cpus", "value": "7"}))
        .await;
    assert_eq!(c.event("succeed", &rid).await["data"], json!([1]));
    assert_eq!(get(&mut c, sid, "cpus").await, json!(["7"]));
    // The idle-control keys too.
    let rid = c
        .act("set", sid, json!({"key": "daemonMaxCap", "value": "55"}))
        .await;
    c.event("succeed", &rid).await;
    assert_eq!(get(&mut c, sid, "daemonMaxCap").await, json!(["55"]));
}

#[tokio::test]
async fn a_get_pipelined_behind_changes_on_the_same_connection_reads_them_in_order() {
    let (_fakes, d) = setup().await;
    let (mut c, sid) = opened(&d).await;
    // Each `set` is followed at once by a `get`, without waiting for any answer.
    let mut requests = Vec::new();
    for round in 0..40u32 {
        let cpus = 1 + round % 8;
        let action = if round % 3 == 0 { "setProperty" } else { "set" };
        let set = c
            .act(
                action,
                sid,
                json!({"key": "cpus", "value": cpus.to_string()}),
            )
            .await;
        let get = c.act("get", sid, json!({"key": "cpus"})).await;
        requests.push((set, get, cpus));
    }
    let mut frames = Vec::new();
    while frames.len() < 2 * requests.len() {
        let f = c.next_frame().await;
        if f["name"] == "succeed" {
            frames.push(f);
        }
    }
    for (set, get, cpus) in &requests {
        let (s, g) = (position(&frames, set), position(&frames, get));
        assert!(
            s < g,
            "the get {get} was answered before the set {set} it followed"
        );
        assert_eq!(
            frames[g]["data"],
            json!([cpus.to_string()]),
            "the get {get} must see cpus = {cpus}"
        );
    }
    // A `start` that overrides a parameter, with a `get` right behind it.
    let start = c.act("start", sid, json!({"cpus": 8})).await;
    let get = c.act("get", sid, json!({"key": "cpus"})).await;
    c.event("succeed", &start).await;
    assert_eq!(c.event("succeed", &get).await["data"], json!(["8"]));
}

#[tokio::test]
async fn another_connection_reads_a_change_once_its_succeed_was_sent() {
    let (_fakes, d) = setup().await;
    let (mut a, sid_a) = opened(&d).await;
    // The same session requested by a second connection (its own session id, no new prompt).
    let (mut b, sid_b) = opened(&d).await;
    assert_ne!(sid_a, sid_b);
    for cpus in [4, 1, 5] {
        let rid = a
            .act("set", sid_a, json!({"key": "cpus", "value": cpus}))
            .await;
        a.event("succeed", &rid).await;
        assert_eq!(get(&mut b, sid_b, "cpus").await, json!([cpus.to_string()]));
    }
    let rid = b
        .act("setProperty", sid_b, json!({"key": "cpus", "value": "6"}))
        .await;
    b.event("succeed", &rid).await;
    assert_eq!(get(&mut a, sid_a, "cpus").await, json!(["6"]));
}

#[tokio::test]
async fn unknown_and_missing_keys_give_an_empty_string() {
    let (_fakes, d) = setup().await;
    let (mut c, sid) = opened(&d).await;
    for key in ["nonsense", "", "name", "secret", "userData", "extraKey"] {
        assert_eq!(get(&mut c, sid, key).await, json!([""]), "get {key:?}");
    }
    let rid = c.act("get", sid, json!({})).await;
    assert_eq!(c.event("succeed", &rid).await["data"], json!([""]));
    // A number as the key is read as its text, like every parameter (§2.1): still unknown.
    let rid = c.act("get", sid, json!({"key": 12})).await;
    assert_eq!(c.event("succeed", &rid).await["data"], json!([""]));
    // Still a known key afterwards.
    assert_eq!(get(&mut c, sid, "memory").await, json!(["256"]));
}

#[tokio::test]
async fn get_shows_the_forwarded_api_port_announced_with_running() {
    let (fakes, d) = setup().await;
    let api = guest_api().await;
    fakes.hv.set_api(api);
    let (mut c, sid) = opened(&d).await;
    assert_eq!(
        get(&mut c, sid, "apiURL").await,
        json!(["http://127.0.0.1:80/"])
    );
    c.act("start", sid, json!({})).await;
    assert_eq!(c.state_changed(sid).await, 5);
    assert_eq!(
        get(&mut c, sid, "apiURL").await,
        json!([format!("http://127.0.0.1:{}/", api.port())])
    );
}

#[tokio::test]
async fn a_closed_session_still_answers_get_and_a_foreign_id_does_not() {
    let (_fakes, d) = setup().await;
    let (mut c, sid) = opened(&d).await;
    let rid = c
        .act("set", sid, json!({"key": "memory", "value": 300}))
        .await;
    c.event("succeed", &rid).await;
    c.act("close", sid, json!({})).await;
    assert_eq!(c.state_changed(sid).await, 0);
    // The session id stays valid on its connection until it goes away; its values are kept.
    assert_eq!(get(&mut c, sid, "memory").await, json!(["300"]));
    // Pipelined behind another action on the closed session.
    c.act("sync", sid, json!({})).await;
    let rid = c.act("get", sid, json!({"key": "memory"})).await;
    assert_eq!(c.event("succeed", &rid).await["data"], json!(["300"]));
    // Another connection cannot read it with this id.
    let mut other = Client::connect(d.addr).await;
    other.handshake().await;
    let rid = other.act("get", sid, json!({"key": "memory"})).await;
    assert_eq!(other.error(Some(&rid)).await["code"], -9);
}
