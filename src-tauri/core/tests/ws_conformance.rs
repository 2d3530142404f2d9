//! Conformance of the WebSocket API with shared/spec/protocol.md §2 and §5, through a real
//! tokio-tungstenite client against a real daemon listening on 127.0.0.1:0 (ports faked, VMs in memory).

mod support;

use serde_json::{json, Value};
use support::*;
use webapi_core::daemon::ports::{ConsentDecision, ImageRequest};
use webapi_core::hypervisor::{BootMedium, VmEvent, VmState};

async fn setup() -> (Fakes, Running) {
    let fakes = Fakes::new();
    let running = start_daemon(fakes.services(), test_limits(), &fakes.data_dir()).await;
    (fakes, running)
}

#[tokio::test]
async fn transcript_a_info_handshake_and_new_session() {
    let (fakes, d) = setup().await;
    // GET /info with the page's Origin.
    let info: Value = reqwest::Client::new()
        .get(format!("http://{}/info", d.addr))
        .header("Origin", ORIGIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["status"], "ok");
    assert_eq!(info["domain"], "test.local");
    assert_eq!(info["version"], "2.0.12");
    let preflight = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("http://{}/info", d.addr))
        .header("Origin", "https://public.example")
        .header("Access-Control-Request-Private-Network", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status().as_u16(), 200);
    assert_eq!(
        preflight.headers()["access-control-allow-private-network"],
        "true"
    );
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");

    let mut c = Client::connect(d.addr).await;
    c.send_text(
        r#"{"type":"action","name":"handshake","id":"a-1","data":{"version":"2.0.12","auth":""}}"#,
    )
    .await;
    assert_eq!(
        c.next_text().await,
        "{\"data\":{\"version\":\"2.0.12\"},\"id\":\"a-1\",\"type\":\"result\"}\n"
    );
    assert_eq!(
        c.next_text().await,
        "{\"data\":[0],\"id\":\"\",\"name\":\"privileged\",\"type\":\"event\"}\n"
    );
    c.send_text(r#"{"type":"action","name":"requestSession","id":"a-2","data":{"vmcp":"http://test.local:8081/vmcp"}}"#)
        .await;
    assert_eq!(
        c.next_text().await,
        "{\"data\":[\"Preparing for session request\"],\"id\":\"a-2\",\"name\":\"started\",\"type\":\"event\"}\n"
    );
    assert_eq!(
        c.next_text().await,
        "{\"data\":[\"Preparing for session request\",0.0],\"id\":\"a-2\",\"name\":\"progress\",\"type\":\"event\"}\n"
    );
    // Progress until the final answer; fractions non-decreasing; lengthyTask 1 then 0 around consent.
    let mut last = 0.0;
    let mut lengthy = vec![];
    let succeed = loop {
        let f = c.next_frame().await;
        assert_eq!(f["id"], "a-2", "only request frames before succeed: {f}");
        match f["name"].as_str().unwrap() {
            "progress" => {
                let v = f["data"][1].as_f64().unwrap();
                assert!(v >= last, "progress went backwards");
                last = v;
            }
            "lengthyTask" => lengthy.push(f["data"][1].as_i64().unwrap()),
            "completed" => assert_eq!(last, 1.0),
            "succeed" => break f,
            other => panic!("unexpected {other}: {f}"),
        }
    };
    assert_eq!(lengthy, vec![1, 0]);
    assert_eq!(succeed["data"][0], "Session open successfully");
    let sid = succeed["data"][1]
        .as_u64()
        .expect("session id is a JSON number");
    assert!(sid > 0 && sid < 1 << 31);
    let sv = c.next_frame().await;
    assert_eq!(sv["name"], "stateVariables");
    assert_eq!(
        sv["id"],
        sid.to_string(),
        "session events carry the id as a string"
    );
    let config = &sv["data"][0];
    assert_eq!(config["apiURL"], "http://127.0.0.1:80");
    assert_eq!(config["cpus"], 2);
    assert_eq!(config["memory"], 256);
    assert_eq!(config["flags"], 49);
    assert_eq!(config["cernvmVersion"], "2.6-9");
    assert_eq!(config["daemonControlled"], 1);
    assert_eq!(config["daemonMaxCap"], 90);
    assert_eq!(sv["data"][1], Value::Null, "no properties yet");
    let sc = c.next_frame().await;
    assert_eq!(
        sc,
        json!({"data":[0],"id":sid.to_string(),"name":"stateChanged","type":"event"})
    );

    let asked = fakes.consent.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].origin, "http://test.local:8080");
    assert_eq!(asked[0].domain, "test.local");
    assert_eq!(asked[0].vm_name, "my-vm");
    assert_eq!(
        (asked[0].cpus, asked[0].memory_mb, asked[0].disk_mb),
        (2, 256, 512)
    );
    assert!(asked[0].idle_control);
}

#[tokio::test]
async fn transcript_b_start_stop_close_with_api_and_user_data() {
    let (fakes, d) = setup().await;
    fakes.hv.set_api(guest_api().await);
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    let sid = c.open(VMCP_URL).await;
    let s = sid.to_string();

    let rid = c
        .act(
            "start",
            sid,
            json!({"parameters": {"who": "volunteer", "cpus": 3}}),
        )
        .await;
    let ok = c.next_frame().await;
    assert_eq!(
        ok,
        json!({"data":["Session will start promptly"],"id":rid,"name":"succeed","type":"event"})
    );
    let sv = c.next_frame().await;
    assert_eq!(
        (sv["name"].as_str(), sv["id"].as_str()),
        (Some("stateVariables"), Some(s.as_str()))
    );
    assert_eq!(c.state_changed(sid).await, 5);
    let api = c.event("apiStateChanged", &s).await;
    let url = api["data"][1].as_str().unwrap().to_string();
    assert_eq!(api["data"][0], 1);
    assert!(url.starts_with("http://127.0.0.1:") && !url.ends_with('/'));

    // The VM got the substituted userData and the canOverride'd cpus; the image was an ISO (no flag 2).
    let vm = fakes.hv.only_vm();
    {
        let data = vm.lock().unwrap();
        assert_eq!(
            data.spec.context.as_deref(),
            Some("greeting=hello\nwho=volunteer\n")
        );
        assert_eq!(data.spec.cpus, 3);
        assert_eq!(data.spec.api_guest_port, Some(8000));
        assert!(matches!(data.spec.medium, BootMedium::Iso(_)));
        assert_eq!(data.state, VmState::Running);
    }
    assert!(matches!(
        fakes.images.requests.lock().unwrap()[0],
        ImageRequest::CernVm { x86_64: true, .. }
    ));

    let rid = c.act("stop", sid, json!({})).await;
    let ok = c.event("succeed", &rid).await;
    assert_eq!(ok["data"][0], "Session will stop promptly");
    assert_eq!(c.state_changed(sid).await, 2);
    let down = c.event("apiStateChanged", &s).await;
    assert_eq!(down["data"], json!([0, url]));

    let rid = c.act("close", sid, json!({})).await;
    assert_eq!(
        c.event("succeed", &rid).await["data"][0],
        "Session will close promptly"
    );
    assert_eq!(c.state_changed(sid).await, 0);
    assert!(vm.lock().unwrap().destroyed);
    let calls = fakes.hv.calls();
    // Every boot gets the session's cap applied to the new VM process.
    assert_eq!(
        calls,
        ["create", "boot", "set_cpu_cap", "shutdown", "destroy"]
    );
}

#[tokio::test]
async fn pause_resume_hibernate_restore_reset_and_refused_routes() {
    let (fakes, d) = setup().await;
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    let sid = c.open(VMCP_URL).await;

    // pause from "missing" is refused at once with -8 (no pointless boot).
    let rid = c.act("pause", sid, json!({})).await;
    let f = c.event("failed", &rid).await;
    assert_eq!(f["data"], json!(["Unable to pause session", -8]));
    c.event("stateVariables", &sid.to_string()).await;

    c.act("start", sid, json!({})).await;
    assert_eq!(c.state_changed(sid).await, 5);
    for (action, want) in [
        ("pause", 4),
        ("resume", 5),
        ("hibernate", 3),
        ("start", 5),
        ("reset", 5),
    ] {
        let rid = c.act(action, sid, json!({})).await;
        let ok = c.event("succeed", &rid).await;
        assert_eq!(ok["data"][0], format!("Session will {action} promptly"));
        assert_eq!(c.state_changed(sid).await, want, "{action}");
    }
    let vm = fakes.hv.only_vm();
    assert_eq!(vm.lock().unwrap().resets, 1, "reset works");
    assert_eq!(
        fakes.hv.calls(),
        // every boot (cold or restore) gets the session's cap applied to the new VM process
        [
            "create",
            "boot",
            "set_cpu_cap",
            "pause",
            "resume",
            "save",
            "boot",
            "set_cpu_cap",
            "reset"
        ]
    );
    // stop from paused is a hard power-off.
    c.act("pause", sid, json!({})).await;
    assert_eq!(c.state_changed(sid).await, 4);
    c.act("stop", sid, json!({})).await;
    assert_eq!(c.state_changed(sid).await, 2);
    assert_eq!(fakes.hv.calls().last().unwrap(), "power_off");
}

#[tokio::test]
async fn get_set_set_property_and_sync() {
    let (fakes, d) = setup().await;
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    let sid = c.open(VMCP_URL).await;
    let s = sid.to_string();
    for (key, want) in [
        ("apiURL", "http://127.0.0.1:80/"),
        ("rdpURL", "127.0.0.1:@"),
        ("cpus", "2"),
        ("memory", "256"),
        ("disk", "512"),
        ("executionCap", "100"),
        ("flags", "49"),
        ("cernvmVersion", "2.6-9"),
        ("cernvmFlavor", "prod"),
        ("ip", ""),
        ("daemonMinCap", "10"),
        ("nonsense", ""),
    ] {
        let rid = c.act("get", sid, json!({ "key": key })).await;
        let f = c.event("succeed", &rid).await;
        assert_eq!(f["data"], json!([want]), "get {key}");
    }
    c.act("start", sid, json!({})).await;
    assert_eq!(c.state_changed(sid).await, 5);

    // executionCap as a JS number is applied live; an invalid value is refused and nothing changes.
    let rid = c
        .act("set", sid, json!({"key": "executionCap", "value": 25}))
        .await;
    assert_eq!(c.event("succeed", &rid).await["data"], json!([1]));
    let rid = c.act("get", sid, json!({"key": "executionCap"})).await;
    assert_eq!(c.event("succeed", &rid).await["data"], json!(["25"]));
    assert_eq!(fakes.hv.only_vm().lock().unwrap().cap, 25);
    let rid = c
        .act("set", sid, json!({"key": "cpus", "value": "lots"}))
        .await;
    let f = c.event("failed", &rid).await;
    assert_eq!(f["data"][1], -99);
    let rid = c
        .act("set", sid, json!({"key": "diskURL", "value": "http://x/y"}))
        .await;
    assert_eq!(
        c.event("succeed", &rid).await["data"],
        json!([1]),
        "ignored keys are acknowledged"
    );
    let rid = c
        .act("set", sid, json!({"key": "daemonMaxCap", "value": "75"}))
        .await;
    assert_eq!(c.event("succeed", &rid).await["data"], json!([1]));

    let rid = c
        .act("setProperty", sid, json!({"key": "color", "value": "blue"}))
        .await;
    assert_eq!(c.event("succeed", &rid).await["data"], json!([1]));
    let rid = c.act("sync", sid, json!({})).await;
    let sv = c.event("stateVariables", &s).await;
    assert_eq!(sv["data"][1], json!({"color": "blue"}));
    assert_eq!(sv["data"][0]["executionCap"], 25);
    assert_eq!(sv["data"][0]["cpus"], 2);
    assert_eq!(sv["data"][0]["daemonMaxCap"], 75);
    // sync sends no succeed.
    let rid2 = c.act("get", sid, json!({"key": "cpus"})).await;
    let next = c.event("succeed", &rid2).await;
    assert_eq!(next["data"], json!(["2"]));
    assert!(c.backlog.iter().all(|f| f["id"] != rid.as_str()));
}

#[tokio::test]
async fn request_session_failures_carry_the_spec_codes() {
    let (fakes, d) = setup().await;
    fakes.vmcp.add(
        "http://test.local/bad-name",
        json!({"name": "My first VM", "secret": "x", "signature": "s"}),
    );
    fakes.vmcp.add(
        "http://test.local/no-secret",
        json!({"name": "vm2", "signature": "s"}),
    );
    fakes.vmcp.add(
        "http://test.local/big",
        json!({"name": "vm3", "secret": "x", "signature": "s", "cpus": 1000}),
    );
    fakes.vmcp.add(
        "http://test.local/other-secret",
        vmcp_doc("my-vm", "different"),
    );
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;

    async fn fail(c: &mut Client, url: &str) -> Value {
        let id = c.send("requestSession", json!({ "vmcp": url })).await;
        let f = c
            .expect("final", |v| {
                v["id"] == id.as_str() && (v["name"] == "failed" || v["name"] == "succeed")
            })
            .await;
        assert_eq!(f["name"], "failed", "{f}");
        f["data"].clone()
    }
    assert_eq!(fail(&mut c, "http://test.local/missing").await[1], -6);
    assert_eq!(fail(&mut c, "http://test.local/bad-name").await[1], -99);
    assert_eq!(
        fail(&mut c, "http://test.local/no-secret").await,
        json!(["Missing 'secret' parameter from the VMCP response", -99])
    );
    assert_eq!(fail(&mut c, "http://test.local/big").await[1], -99);
    assert_eq!(
        fakes.consent.count(),
        0,
        "invalid VMCPs are refused before the prompt"
    );

    fakes.consent.then(ConsentDecision::Denied);
    assert_eq!(
        fail(&mut c, VMCP_URL).await,
        json!(["User denied the allocation of new session", -10])
    );
    fakes.consent.then(ConsentDecision::Blocked);
    assert_eq!(
        fail(&mut c, VMCP_URL).await,
        json!(["Request denied by throttle protection", -10])
    );

    // Now create it, then a VMCP with the same name and another secret gets -20.
    c.open(VMCP_URL).await;
    assert_eq!(
        fail(&mut c, "http://test.local/other-secret").await,
        json!(["The password specified is invalid for this session", -20])
    );

    // A foreign (untrusted) origin gets -13 from the trust port.
    let mut foreign = Client::connect_from(d.addr, "https://evil.example").await;
    foreign.handshake().await;
    assert_eq!(
        fail(&mut foreign, VMCP_URL).await,
        json!(["The domain is not trusted", -13])
    );

    // Missing vmcp: an error frame with the request id.
    let id = c.send("requestSession", json!({})).await;
    let e = c.error(Some(&id)).await;
    assert_eq!(e["error"], "Missing 'vmcp' parameter");
}

#[tokio::test]
async fn sessions_are_owned_by_their_connection() {
    let (_fakes, d) = setup().await;
    let mut a = Client::connect(d.addr).await;
    a.handshake().await;
    let sid = a.open(VMCP_URL).await;
    let mut b = Client::connect(d.addr).await;
    b.handshake().await;
    for action in ["get", "start", "close", "setProperty"] {
        let id = b.act(action, sid, json!({"key": "cpus"})).await;
        let e = b.error(Some(&id)).await;
        assert!(
            e["error"]
                .as_str()
                .unwrap()
                .starts_with("Unable to find a session"),
            "{e}"
        );
        assert_eq!(e["code"], -9);
    }
    let id = b.act("get", 12345, json!({"key": "cpus"})).await;
    b.error(Some(&id)).await;
    // The owner still works, and an unknown session action gets an error frame.
    let id = a.act("get", sid, json!({"key": "cpus"})).await;
    assert_eq!(a.event("succeed", &id).await["data"], json!(["2"]));
    let id = a.act("frobnicate", sid, json!({})).await;
    assert_eq!(a.error(Some(&id)).await["code"], -11);
}

#[tokio::test]
async fn reheat_after_a_dropped_socket_needs_no_new_consent() {
    let (fakes, d) = setup().await;
    let mut a = Client::connect(d.addr).await;
    a.handshake().await;
    let sid = a.open(VMCP_URL).await;
    a.act("start", sid, json!({})).await;
    assert_eq!(a.state_changed(sid).await, 5);
    drop(a);

    let mut b = Client::connect(d.addr).await;
    b.handshake().await;
    let id = b.send("requestSession", json!({ "vmcp": VMCP_URL })).await;
    let ok = b.event("succeed", &id).await;
    let sid2 = ok["data"][1].as_u64().unwrap();
    assert_ne!(sid, sid2, "a new session id");
    b.event("stateVariables", &sid2.to_string()).await;
    let sc = b.event("stateChanged", &sid2.to_string()).await;
    assert_eq!(sc["data"], json!([5]), "the VM kept running");
    assert_eq!(fakes.consent.count(), 1, "no second prompt");
    assert!(b.backlog.iter().all(|f| f["name"] != "lengthyTask"));
    // The old id is dead; the new one works.
    let id = b.act("get", sid, json!({"key": "cpus"})).await;
    b.error(Some(&id)).await;
    b.act("sync", sid2, json!({})).await;
    b.event("stateVariables", &sid2.to_string()).await;
}

#[tokio::test]
async fn step_failures_are_retried_then_reported_once_with_the_real_state() {
    let (fakes, d) = setup().await;
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    let sid = c.open(VMCP_URL).await;
    let s = sid.to_string();
    fakes.hv.fail("boot", 1);
    c.act("start", sid, json!({})).await;
    assert_eq!(
        c.state_changed(sid).await,
        5,
        "one transient failure is retried"
    );
    assert!(c.backlog.iter().all(|f| f["name"] != "failed"));

    c.act("stop", sid, json!({})).await;
    assert_eq!(c.state_changed(sid).await, 2);
    fakes.hv.fail("boot", 3);
    c.act("start", sid, json!({})).await;
    let f = c.event("failed", &s).await;
    assert_eq!(f["data"][1], -3);
    assert_eq!(
        c.state_changed(sid).await,
        2,
        "the real state after the failure"
    );
    let boots = fakes.hv.calls().iter().filter(|c| *c == "boot").count();
    assert_eq!(boots, 2 + 3, "bounded retries: three attempts");
    assert!(
        !fakes.hv.only_vm().lock().unwrap().destroyed,
        "never destroyed on failure"
    );
    // It still works afterwards.
    c.act("start", sid, json!({})).await;
    assert_eq!(c.state_changed(sid).await, 5);
    assert_eq!(
        c.backlog.iter().filter(|f| f["name"] == "failed").count(),
        0
    );
}

#[tokio::test]
async fn external_state_changes_are_reported() {
    let (fakes, d) = setup().await;
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    let sid = c.open(VMCP_URL).await;
    c.act("start", sid, json!({})).await;
    assert_eq!(c.state_changed(sid).await, 5);
    let vm = fakes.hv.only_vm();
    {
        let mut data = vm.lock().unwrap();
        data.state = VmState::PoweredOff;
        let _ = data.events.send(VmEvent::StateChanged(VmState::PoweredOff));
    }
    assert_eq!(
        c.state_changed(sid).await,
        2,
        "the guest powered itself off"
    );
}

#[tokio::test]
async fn a_slow_request_session_does_not_block_other_actions() {
    let (fakes, d) = setup().await;
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    let sid = c.open(VMCP_URL).await;
    fakes
        .vmcp
        .add("http://test.local/second", vmcp_doc("second-vm", "pw"));
    fakes.consent.hold(true);
    let slow = c
        .send(
            "requestSession",
            json!({"vmcp": "http://test.local/second"}),
        )
        .await;
    c.event("lengthyTask", &slow).await;
    let id = c.act("get", sid, json!({"key": "memory"})).await;
    assert_eq!(c.event("succeed", &id).await["data"], json!(["256"]));
    fakes.consent.hold(false);
    c.event("succeed", &slow).await;
}

#[tokio::test]
async fn closed_and_released_sessions_are_forgotten() {
    let (fakes, d) = setup().await;
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    let sid = c.open(VMCP_URL).await;
    c.act("close", sid, json!({})).await;
    assert_eq!(c.state_changed(sid).await, 0);
    drop(c);
    let sessions = fakes.data_dir().join("sessions");
    for _ in 0..100 {
        if std::fs::read_dir(&sessions).unwrap().count() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        std::fs::read_dir(&sessions).unwrap().count(),
        0,
        "record deleted"
    );
    // Requesting it again is a new session: a new prompt.
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    c.open(VMCP_URL).await;
    assert_eq!(fakes.consent.count(), 2);
}

#[tokio::test]
async fn latest_is_recorded_as_the_version_the_image_resolved_to() {
    let (_fakes, d) = setup().await;
    let mut c = Client::connect(d.addr).await;
    c.handshake().await;
    let sid = c.open(VMCP_URL).await;
    let rid = c
        .act(
            "set",
            sid,
            json!({"key": "cernvmVersion", "value": "latest"}),
        )
        .await;
    c.event("succeed", &rid).await;
    c.act("start", sid, json!({})).await;
    assert_eq!(c.state_changed(sid).await, 5);
    let rid = c.act("get", sid, json!({"key": "cernvmVersion"})).await;
    assert_eq!(
        c.event("succeed", &rid).await["data"],
        json!([support::RESOLVED_LATEST])
    );
}
