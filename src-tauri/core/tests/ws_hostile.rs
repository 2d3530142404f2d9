//! Hostile input against a real daemon: each gets its documented answer (docs/protocol.md) and the
//! daemon keeps serving other clients.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::*;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

async fn setup_with(limits: webapi_core::daemon::Limits) -> (Fakes, Running) {
    let fakes = Fakes::new();
    let running = start_daemon(fakes.services(), limits, &fakes.data_dir()).await;
    (fakes, running)
}

/// A fresh client can still handshake and open a session.
async fn still_serving(d: &Running) {
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
}

#[tokio::test]
async fn malformed_frames_get_error_frames_and_the_connection_survives() {
    let (_f, d) = setup_with(test_limits()).await;
    let mut c = Client::connect(d.addr).await;
    let deep = format!(
        r#"{{"type":"action","name":"x","id":"a-9","data":{}1{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let cases: Vec<(String, Option<&str>, &str)> = vec![
        (
            "{".into(),
            None,
            "Unable to parse to JSON the incoming request.",
        ),
        (
            "not json at all".into(),
            None,
            "Unable to parse to JSON the incoming request.",
        ),
        (
            "[1,2]".into(),
            None,
            "The incoming request is not a JSON object.",
        ),
        (
            r#"{"name":"x","id":"a-1"}"#.into(),
            None,
            "Missing 'type' parameter in the incoming request.",
        ),
        (
            r#"{"type":"action","id":"a-1"}"#.into(),
            None,
            "Missing 'name' parameter in the incoming request.",
        ),
        (
            r#"{"type":"action","name":"handshake"}"#.into(),
            None,
            "Missing 'id' parameter in the incoming request.",
        ),
        (
            r#"{"type":"action","name":"handshake","id":7}"#.into(),
            None,
            "The 'id' parameter of the incoming request must be a string.",
        ),
        (
            r#"{"type":"action","name":7,"id":"a-2"}"#.into(),
            Some("a-2"),
            "The 'name' parameter of the incoming request must be a string.",
        ),
        (
            r#"{"type":"result","name":"x","id":"a-3"}"#.into(),
            Some("a-3"),
            "Unknown request type.",
        ),
        (
            r#"{"type":"action","name":"handshake","id":"a-4","data":[1]}"#.into(),
            Some("a-4"),
            "The 'data' parameter of the incoming request must be an object.",
        ),
        (
            r#"{"type":"action","name":"launchMissiles","id":"a-5","data":{}}"#.into(),
            Some("a-5"),
            "Unknown action 'launchMissiles'.",
        ),
        (
            r#"{"type":"action","name":"stopService","id":"a-6","data":{}}"#.into(),
            Some("a-6"),
            "Unknown action 'stopService'.",
        ),
        (
            r#"{"type":"action","name":"interactionCallback","id":"a-7","data":{}}"#.into(),
            Some("a-7"),
            "Missing 'result' parameter",
        ),
        (
            r#"{"type":"action","name":"get","id":"a-8","data":{"session_id":"abc"}}"#.into(),
            Some("a-8"),
            "Unable to find a session with id \"abc\"",
        ),
        (deep, None, "Request nested too deeply."),
    ];
    for (text, id, error) in cases {
        c.send_text(&text).await;
        let raw = c.next_text().await;
        let v: Value = serde_json::from_str(&raw)
            .unwrap_or_else(|e| panic!("error frame is valid JSON: {raw}: {e}"));
        assert_eq!(v["type"], "error", "{text}");
        assert_eq!(v["error"], error, "{text}");
        assert_eq!(v.get("id").and_then(Value::as_str), id, "{text}");
        assert!(
            v["code"].is_i64() && v["detail"].is_string(),
            "structured: {raw}"
        );
        assert!(!raw.ends_with('\n'));
    }
    c.ws.send(Message::Binary(vec![1u8, 2, 3].into()))
        .await
        .unwrap();
    let v = c.next_frame().await;
    assert_eq!(v["error"], "Binary frames are not supported.");
    // A stray interactionCallback is ignored; the connection still works.
    c.send("interactionCallback", json!({"result": 1})).await;
    c.handshake().await;
    still_serving(&d).await;
}

#[tokio::test]
async fn a_huge_frame_closes_that_connection_with_1009_only() {
    let (_f, d) = setup_with(test_limits()).await;
    let mut other = Client::connect(d.addr).await;
    other.handshake().await;
    let mut c = Client::connect(d.addr).await;
    let huge = format!(
        r#"{{"type":"action","name":"handshake","id":"a-1","data":{{"x":"{}"}}}}"#,
        "x".repeat(300 * 1024)
    );
    let _ = c.ws.send(Message::Text(huge.into())).await;
    let mut code = None;
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(5), c.ws.next()).await {
        match msg {
            Ok(Message::Close(Some(frame))) => {
                code = Some(u16::from(frame.code));
                break;
            }
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    assert_eq!(code, Some(1009), "closed with 'message too big'");
    // Just under the limit is fine.
    let mut c = Client::connect(d.addr).await;
    let big = format!(
        r#"{{"type":"action","name":"handshake","id":"a-1","data":{{"x":"{}"}}}}"#,
        "x".repeat(200 * 1024)
    );
    c.send_text(&big).await;
    assert_eq!(c.next_frame().await["type"], "result");
    other.send("handshake", json!({})).await;
    assert_eq!(other.next_frame().await["type"], "result");
}

#[tokio::test]
async fn request_floods_are_bounded_per_connection() {
    let limits = webapi_core::daemon::Limits {
        max_pending_per_connection: 4,
        ..test_limits()
    };
    let (fakes, d) = setup_with(limits).await;
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    fakes.consent.hold(true);
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(c.send("requestSession", json!({"vmcp": VMCP_URL})).await);
    }
    let mut refused = 0;
    for id in &ids[4..] {
        let e = c.error(Some(id)).await;
        assert_eq!(e["error"], "Too many pending requests.");
        refused += 1;
    }
    assert_eq!(refused, 16);
    // While four wait for consent, another client is served.
    still_serving(&d).await;
    fakes.consent.hold(false);
    let mut sid = 0;
    for id in &ids[..4] {
        let done = c
            .expect("final", |v| {
                v["id"] == id.as_str() && (v["name"] == "succeed" || v["name"] == "failed")
            })
            .await;
        assert_eq!(done["name"], "succeed", "{done}");
        sid = done["data"][1].as_u64().unwrap();
    }
    // A flood of 500 gets: every one is answered (succeed or a bounded-queue error), none lost.
    let mut gets = Vec::new();
    for _ in 0..500 {
        gets.push(c.act("get", sid, json!({"key": "cpus"})).await);
    }
    let mut answered = 0;
    for id in &gets {
        let i = id.clone();
        let v = c
            .expect("answer", move |v| {
                v["id"] == i.as_str() && (v["name"] == "succeed" || v["type"] == "error")
            })
            .await;
        if v["type"] == "error" {
            assert_eq!(v["error"], "Too many pending requests.");
        }
        answered += 1;
    }
    assert_eq!(answered, 500);
}

#[tokio::test]
async fn half_open_sockets_are_dropped_and_healthy_ones_kept() {
    let limits = webapi_core::daemon::Limits {
        ping_after: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(600),
        ..test_limits()
    };
    let (_f, d) = setup_with(limits).await;
    // A client that never reads never answers pings: it looks dead.
    let silent = connect_raw(d.addr, "/", &[("origin", ORIGIN)])
        .await
        .unwrap();
    // A healthy client keeps reading (and so answers pings).
    let mut healthy = Client::connect(d.addr).await;
    assert_eq!(d.state.connection_count(), 2);
    let reader = tokio::spawn(async move {
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(1500) {
            if let Ok(Some(Err(e))) =
                tokio::time::timeout(Duration::from_millis(50), healthy.ws.next()).await
            {
                panic!("healthy client lost its connection: {e}");
            }
        }
        healthy
    });
    let mut healthy = reader.await.unwrap();
    assert_eq!(d.state.connection_count(), 1, "the silent one was dropped");
    healthy.handshake().await;
    drop(silent);
}

#[tokio::test]
async fn the_gate_refuses_foreign_hosts_and_anonymous_clients() {
    let limits = webapi_core::daemon::Limits {
        max_connections: 3,
        ..test_limits()
    };
    let (_f, d) = setup_with(limits).await;
    let addr = d.addr;
    let status = |r: Result<Ws, WsError>| match r {
        Ok(_) => 101,
        Err(WsError::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("unexpected {e}"),
    };
    let foreign = format!("evil.example:{}", addr.port());
    assert_eq!(
        status(connect_raw(addr, "/", &[("origin", ORIGIN), ("host", &foreign)]).await),
        403
    );
    let info = reqwest::Client::new()
        .get(format!("http://{addr}/info"))
        .header("Host", foreign.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(info.status().as_u16(), 403);
    // No Origin: the token is required.
    assert_eq!(status(connect_raw(addr, "/", &[]).await), 401);
    assert_eq!(status(connect_raw(addr, "/?token=wrong", &[]).await), 401);
    let token = std::fs::read_to_string(d.state.data_dir().root().join("api-token")).unwrap();
    let mut by_query = Client::from_ws(
        connect_raw(addr, &format!("/?token={token}"), &[])
            .await
            .unwrap(),
    );
    by_query.handshake().await;
    let by_header = connect_raw(addr, "/any/path", &[("x-cvmwebapi-token", &token)]).await;
    assert_eq!(status(by_header), 101);
    // Any path upgrades; a plain GET / is the original's 404.
    let plain = reqwest::get(format!("http://{addr}/")).await.unwrap();
    assert_eq!(plain.status().as_u16(), 404);
    // The connection limit (3): one query client, one header client (dropped above) and two more.
    let _a = Client::connect(addr).await;
    let _b = Client::connect(addr).await;
    let mut refused = false;
    for _ in 0..50 {
        match connect_raw(addr, "/", &[("origin", ORIGIN)]).await {
            Err(WsError::Http(r)) if r.status().as_u16() == 503 => {
                refused = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    assert!(refused, "a fourth connection gets 503");
    drop(_a);
    for _ in 0..100 {
        if d.state.connection_count() < 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    still_serving(&d).await;
}

#[tokio::test]
async fn without_ports_request_session_fails_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let d = start_daemon(Default::default(), test_limits(), tmp.path()).await;
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    let id = c.send("requestSession", json!({"vmcp": VMCP_URL})).await;
    c.event("started", &id).await;
    let f = c.event("failed", &id).await;
    assert_eq!(f["data"][1], -11);
    let msg = f["data"][0].as_str().unwrap();
    assert!(
        msg.contains("hypervisor") && msg.contains("consent"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped() {
    let limits = webapi_core::daemon::Limits {
        outbox_frames: 64,
        idle_timeout: Duration::from_secs(1),
        ..test_limits()
    };
    let (_f, d) = setup_with(limits).await;
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    let sid = c.open(VMCP_URL).await;
    let id = c
        .act(
            "setProperty",
            sid,
            json!({"key": "big", "value": "x".repeat(60_000)}),
        )
        .await;
    c.event("succeed", &id).await;
    // Each sync answers with ~60 KB; never read them.
    for _ in 0..400 {
        if c.ws
            .send(Message::Text(
                json!({"type":"action","name":"sync","id":"s","data":{"session_id": sid}})
                    .to_string()
                    .into(),
            ))
            .await
            .is_err()
        {
            break;
        }
    }
    let mut dropped = false;
    for _ in 0..250 {
        if d.state.connection_count() == 0 {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(dropped, "the non-reading client was dropped");
    still_serving(&d).await;
}

#[tokio::test]
async fn a_client_close_is_echoed_and_frees_the_slot() {
    let (_f, d) = setup_with(test_limits()).await;
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    c.ws.close(None).await.unwrap();
    let mut echoed = false;
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(5), c.ws.next()).await {
        match msg {
            Ok(Message::Close(_)) => {
                echoed = true;
                break;
            }
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    assert!(echoed, "the close frame is answered");
    for _ in 0..100 {
        if d.state.connection_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(d.state.connection_count(), 0);
}
