//! The panel's commands as the tray serves them for the panel process (`relay`), and through Tauri's IPC
//! (mock runtime: no display), against a real daemon on a temporary data dir, with the real settings
//! store, image cache, consent broker and resource monitor.

use std::sync::Arc;

use serde_json::{json, Value};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{
    get_ipc_response, mock_builder, mock_context, noop_assets, MockRuntime, INVOKE_KEY,
};
use tauri::webview::InvokeRequest;
use tauri::WebviewWindow;
use webapi_core::daemon::adapters::CachedImages;
use webapi_core::media::{CacheOptions, ImageCache};
use webapi_core::settings::{SettingsStore, Startup};
use webapi_core::store::DataDir;

use super::PanelState;

/// A real daemon and the panel window of a mock app over it.
struct Panel {
    _dir: tempfile::TempDir,
    data: DataDir,
    daemon: Arc<webapi_core::daemon::DaemonState>,
    webview: WebviewWindow<MockRuntime>,
    _app: tauri::App<MockRuntime>,
}

impl Panel {
    /// `before` runs on the data dir before the daemon starts (e.g. to write a consent file).
    fn start(before: impl FnOnce(&DataDir)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path()).unwrap();
        before(&data);
        let config = webapi_core::config::DaemonConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            allow_origins: Vec::new(),
            image_mirror: None,
        };
        let consent = Arc::new(webapi_core::consent::ConsentBroker::headless(
            dir.path(),
            &[],
        ));
        let shell =
            crate::start_daemon(&config, Default::default(), consent, None).expect("daemon starts");
        let daemon = shell.daemon.clone();
        let settings = Arc::new(SettingsStore::open(&data));
        let startup = Startup::resolve(&test_args(), &settings.get());
        let images = ImageCache::open(&data, CacheOptions::default()).expect("cache opens");
        let monitor_state = daemon.clone();
        let (monitor, idle) = tauri::async_runtime::block_on(async {
            let idle = webapi_core::settings::start_idle(&monitor_state, &startup).await;
            (
                webapi_core::monitor::ResourceMonitor::spawn(monitor_state),
                idle,
            )
        });
        drop(idle);
        let app = mock_builder()
            .invoke_handler(tauri::generate_handler![
                super::daemon_status,
                super::list_sessions,
                super::session_action,
                super::set_session_policy,
                super::session_samples,
                super::idle_info,
                super::recent_events,
                super::get_settings,
                super::save_settings,
                super::cache_info,
                super::clear_cache,
                super::blocked_sites,
                super::unblock_site,
                super::remembered_sites,
                super::forget_site,
            ])
            .manage(shell)
            .manage(PanelState {
                settings,
                startup,
                verifier: None,
                images: Some(Arc::new(CachedImages::new(images))),
                monitor,
            })
            .build(mock_context(noop_assets()))
            .unwrap();
        let webview = tauri::WebviewWindowBuilder::new(&app, "panel", Default::default())
            .build()
            .unwrap();
        Panel {
            _dir: dir,
            data,
            daemon,
            webview,
            _app: app,
        }
    }

    /// A command as the tray serves it for the panel process: through `relay` (the production path).
    fn call(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        tauri::async_runtime::block_on(super::relay::relay_state(self._app.handle(), cmd, &args))
            .map_err(Value::String)
    }

    /// The same command through Tauri's IPC, as the panel process's window calls it.
    fn ipc(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        get_ipc_response(
            &self.webview,
            InvokeRequest {
                cmd: cmd.into(),
                callback: CallbackFn(0),
                error: CallbackFn(1),
                url: "tauri://localhost".parse().unwrap(),
                body: InvokeBody::Json(args),
                headers: Default::default(),
                invoke_key: INVOKE_KEY.to_string(),
            },
        )
        .map(|r| r.deserialize::<Value>().unwrap())
    }

    fn ok(&self, cmd: &str, args: Value) -> Value {
        self.call(cmd, args)
            .unwrap_or_else(|e| panic!("{cmd} failed: {e}"))
    }

    fn err(&self, cmd: &str, args: Value) -> String {
        match self.call(cmd, args) {
            Ok(v) => panic!("{cmd} succeeded with {v}"),
            Err(Value::String(s)) => s,
            Err(other) => panic!("{cmd}: the error is not a string: {other}"),
        }
    }
}

fn test_args() -> webapi_core::config::ServeArgs {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: webapi_core::config::ServeArgs,
    }
    Cli::try_parse_from(["x"]).unwrap().serve
}

/// The panel's commands answer from the real daemon's state (mock runtime: no display).
#[test]
fn status_sessions_samples_idle_and_events() {
    let p = Panel::start(|_| {});
    let status = p.ok("daemon_status", json!({}));
    assert_eq!(status["listen"], p.daemon.local_addr().to_string());
    assert_eq!(status["protocol"], webapi_core::PROTOCOL_VERSION);
    assert_eq!(status["data_dir"], p.data.root().display().to_string());

    assert_eq!(p.ok("list_sessions", json!({})), json!([]));
    assert_eq!(p.ok("session_samples", json!({})), json!({}));
    let err = p.err(
        "session_action",
        json!({"name": "nobody", "action": "pause"}),
    );
    assert!(err.contains("nobody"), "{err}");
    let err = p.err(
        "session_action",
        json!({"name": "nobody", "action": "explode"}),
    );
    assert!(err.contains("unknown action"), "{err}");
    let err = p.err(
        "set_session_policy",
        json!({"name": "nobody", "policy": {"controlled": true, "minCap": 10, "maxCap": 90, "flags": 0}}),
    );
    assert!(err.contains("nobody"), "{err}");
    assert!(p
        .call(
            "set_session_policy",
            json!({"name": "x", "policy": {"controlled": 1}})
        )
        .is_err());

    let idle = p.ok("idle_info", json!({}));
    assert!(
        idle["source"].is_string() && idle["source"] != "none",
        "{idle}"
    );
    assert_eq!(idle["idle"], false);
    assert!(idle["summary"]
        .as_str()
        .unwrap()
        .contains("no VM under idle control"));
    assert!(idle.get("snoozedUntilMs").is_some());

    let feed = p.daemon.events();
    feed.publish(webapi_core::events::EventKind::SiteBlocked {
        origin: "https://a.example".into(),
    });
    let second = feed.publish(webapi_core::events::EventKind::SiteUnblocked {
        origin: "https://a.example".into(),
    });
    let all = p.ok("recent_events", json!({"afterSeq": 0}));
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(all[0]["kind"], "site-blocked");
    let newer = p.ok("recent_events", json!({"afterSeq": second.seq - 1}));
    assert_eq!(newer.as_array().unwrap().len(), 1);
    assert_eq!(newer[0]["kind"], "site-unblocked");
    assert_eq!(newer[0]["seq"], second.seq);
}

#[test]
fn settings_are_validated_saved_and_applied() {
    let p = Panel::start(|_| {});
    let settings = p.ok("get_settings", json!({}));
    assert_eq!(settings["idleThresholdSecs"], 60);
    assert_eq!(settings["hypervisor"], "auto");
    assert_eq!(settings["imageMirror"], Value::Null);
    assert_eq!(
        settings["defaultIdlePolicy"],
        json!({"controlled": false, "minCap": 0, "maxCap": 0, "flags": 0})
    );

    let mut wanted = settings.clone();
    wanted["idleThresholdSecs"] = json!(120);
    wanted["hypervisor"] = json!("qemu");
    wanted["defaultIdlePolicy"] = json!({"controlled": true, "minCap": 0, "maxCap": 0, "flags": 1});
    let saved = p.ok("save_settings", json!({ "settings": wanted }));
    assert_eq!(saved["restartNeeded"], json!(["hypervisor"]));
    assert_eq!(saved["settings"]["idleThresholdSecs"], 120);
    // Applied live: the idle threshold and the default policy of new sessions.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while p
        .daemon
        .registry()
        .idle_status()
        .unwrap()
        .threshold
        .as_secs()
        != 120
    {
        assert!(
            std::time::Instant::now() < deadline,
            "threshold not applied"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(p.daemon.default_idle_policy().controlled);
    // Stored: a new store on the same data dir reads them back.
    let reread = SettingsStore::open(&p.data).get();
    assert_eq!(reread.idle_threshold_secs, 120);

    // Refused: a clear error, nothing changes.
    let mut bad = saved["settings"].clone();
    bad["imageMirror"] = json!("ftp://mirror.example");
    bad["idleThresholdSecs"] = json!(30);
    let err = p.err("save_settings", json!({ "settings": bad }));
    assert!(err.contains("image mirror"), "{err}");
    assert_eq!(p.ok("get_settings", json!({}))["idleThresholdSecs"], 120);
    let mut unknown = saved["settings"].clone();
    unknown["surprise"] = json!(1);
    assert!(p
        .call("save_settings", json!({ "settings": unknown }))
        .is_err());
}

#[test]
fn cache_and_consent_lists() {
    let p = Panel::start(|data| {
        std::fs::write(
            data.root().join("consent.json"),
            r#"{"version":1,"blocked":[{"origin":"https://bad.example","since":1700000000}],"allowed":[{"origin":"https://good.example","since":1700000001}]}"#,
        )
        .unwrap();
    });
    let cache = p.ok("cache_info", json!({}));
    assert_eq!(cache["bytes"], 0);
    assert_eq!(cache["images"], json!([]));
    assert_eq!(
        cache["limitBytes"],
        json!(webapi_core::media::DEFAULT_CACHE_LIMIT)
    );
    assert_eq!(p.ok("clear_cache", json!({})), json!({"freedBytes": 0}));

    assert_eq!(
        p.ok("blocked_sites", json!({})),
        json!([{"origin": "https://bad.example", "sinceMs": 1_700_000_000_000u64}])
    );
    assert_eq!(
        p.ok("remembered_sites", json!({})),
        json!([{"origin": "https://good.example", "allowed": true}])
    );
    p.ok("unblock_site", json!({"origin": "https://bad.example"}));
    assert_eq!(p.ok("blocked_sites", json!({})), json!([]));
    let err = p.err("unblock_site", json!({"origin": "https://bad.example"}));
    assert!(err.contains("not blocked"), "{err}");
    p.ok("forget_site", json!({"origin": "https://good.example"}));
    assert_eq!(p.ok("remembered_sites", json!({})), json!([]));
    let err = p.err("forget_site", json!({"origin": "https://good.example"}));
    assert!(err.contains("no answer is remembered"), "{err}");
    // Persisted: the file no longer lists them.
    let text = std::fs::read_to_string(p.data.root().join("consent.json")).unwrap();
    assert!(
        !text.contains("bad.example") && !text.contains("good.example"),
        "{text}"
    );
}

/// Every command the panel capability grants is served by the relay, with the arguments named as the
/// page sends them; the relay and Tauri's IPC give the same answers.
#[test]
fn the_relay_serves_every_panel_command_like_the_ipc() {
    let capability: Value =
        serde_json::from_str(include_str!("../../capabilities/panel.json")).unwrap();
    let granted: Vec<String> = capability["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str()?.strip_prefix("allow-"))
        .map(|p| p.replace('-', "_"))
        .collect();
    let mut listed: Vec<String> = super::relay::PANEL_COMMANDS
        .iter()
        .map(|c| c.to_string())
        .collect();
    listed.sort();
    let mut granted_sorted = granted.clone();
    granted_sorted.sort();
    assert_eq!(
        listed, granted_sorted,
        "PANEL_COMMANDS = the capability's commands"
    );

    let p = Panel::start(|_| {});
    let desktop = [
        "get_start_at_login",
        "set_start_at_login",
        "open_logs_folder",
        "quit_app",
    ];
    for cmd in super::relay::PANEL_COMMANDS
        .iter()
        .filter(|c| !desktop.contains(c))
    {
        // Missing arguments are refused with the argument's name; never "unknown command".
        if let Err(Value::String(e)) = p.call(cmd, json!({})) {
            assert!(!e.starts_with("unknown command"), "{cmd}: {e}");
        }
    }
    assert_eq!(
        p.call("no_such_command", json!({})),
        Err(Value::String("unknown command \"no_such_command\"".into()))
    );
    let e = p.err("session_action", json!({"name": 5, "action": "pause"}));
    assert!(e.starts_with("session_action: argument name:"), "{e}");
    for cmd in [
        "daemon_status",
        "list_sessions",
        "get_settings",
        "blocked_sites",
        "remembered_sites",
        "cache_info",
    ] {
        assert_eq!(p.call(cmd, json!({})), p.ipc(cmd, json!({})), "{cmd}");
    }
    assert_eq!(
        p.call("unblock_site", json!({"origin": "https://x.example"})),
        p.ipc("unblock_site", json!({"origin": "https://x.example"}))
    );
    assert_eq!(
        p.call("recent_events", json!({"afterSeq": 1_000_000})),
        p.ipc("recent_events", json!({"afterSeq": 1_000_000}))
    );
}

/// The differences in shape between a real answer and the fixture's: object keys, and the JSON type of
/// each value (a `null` on either side matches anything: optional fields). Arrays compare their first
/// elements.
fn shape_differences(real: &Value, fixture: &Value, path: &str) -> Vec<String> {
    match (real, fixture) {
        (Value::Null, _) | (_, Value::Null) => Vec::new(),
        (Value::Object(r), Value::Object(f)) => {
            let mut out = Vec::new();
            for key in r.keys().filter(|k| !f.contains_key(*k)) {
                out.push(format!("{path}.{key}: missing in the fixture"));
            }
            for key in f.keys().filter(|k| !r.contains_key(*k)) {
                out.push(format!("{path}.{key}: not in the real answer"));
            }
            for (key, value) in r.iter().filter(|(k, _)| f.contains_key(*k)) {
                out.extend(shape_differences(value, &f[key], &format!("{path}.{key}")));
            }
            out
        }
        (Value::Array(r), Value::Array(f)) => match (r.first(), f.first()) {
            (Some(r), Some(f)) => shape_differences(r, f, &format!("{path}[0]")),
            _ => Vec::new(),
        },
        (Value::Number(_), Value::Number(_))
        | (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_)) => Vec::new(),
        (r, f) => vec![format!("{path}: {r} here, {f} in the fixture")],
    }
}

/// tests/browser/fixtures/panel-answers.json (what the panel's accessibility test runs on) has the shape
/// of the real commands' answers: a renamed or added field fails here, not silently in the browser test.
#[test]
fn the_browser_tests_panel_fixture_has_the_real_answers_shape() {
    use webapi_core::daemon::panel::SessionRow;
    use webapi_core::idle::IdlePolicy;
    use webapi_core::monitor::Sample;

    let fixture: Value = serde_json::from_str(include_str!(
        "../../../tests/browser/fixtures/panel-answers.json"
    ))
    .unwrap();
    let p = Panel::start(|data| {
        std::fs::write(
            data.root().join("consent.json"),
            r#"{"version":1,"blocked":[{"origin":"https://bad.example","since":1700000000}],"allowed":[{"origin":"https://good.example","since":1700000001}]}"#,
        )
        .unwrap();
    });
    p.daemon
        .events()
        .publish(webapi_core::events::EventKind::SiteBlocked {
            origin: "https://a.example".into(),
        });
    let mut real = serde_json::Map::new();
    for cmd in [
        "daemon_status",
        "idle_info",
        "get_settings",
        "cache_info",
        "blocked_sites",
        "remembered_sites",
    ] {
        real.insert(cmd.into(), p.ok(cmd, json!({})));
    }
    let event = p.ok("recent_events", json!({"afterSeq": 0}))[0].clone();
    // A session row and a sample as `list_sessions` / `session_samples` serialise them (this daemon
    // has no session, so they are built here from the real types).
    let policy = IdlePolicy {
        controlled: true,
        min_cap: 50,
        max_cap: 90,
        flags: 0,
    };
    let row = SessionRow {
        name: "n".into(),
        origin: "https://o".into(),
        vm: "v".into(),
        state: "running",
        state_code: 5,
        cpus: 1,
        memory_mb: 1,
        disk_mb: 1,
        cap: 1,
        applied_cap: Some(1),
        idle_policy: policy,
        user_policy: Some(policy),
        image: "i".into(),
        api_url: Some("u".into()),
        busy: false,
        held_by_hand: false,
    };
    real.insert("list_sessions".into(), json!([row]));
    let sample = Sample {
        at_ms: 1,
        cap: Some(1),
        cpu_percent: Some(1.0),
    };

    let mut differences = Vec::new();
    for (cmd, answer) in &real {
        let shown = fixture
            .get(cmd)
            .unwrap_or_else(|| panic!("the fixture has no answer for {cmd}"));
        differences.extend(shape_differences(answer, shown, cmd));
    }
    // The fixture's event of the same kind.
    let same_kind = fixture["recent_events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == event["kind"])
        .expect("the fixture has a site-blocked event");
    differences.extend(shape_differences(
        &event,
        same_kind,
        "recent_events[site-blocked]",
    ));
    // Per-session samples: compare the fixture's first session's list.
    let fixture_samples = fixture["session_samples"].as_object().unwrap();
    let first = fixture_samples.values().next().unwrap();
    differences.extend(shape_differences(
        &json!([sample]),
        first,
        "session_samples.*",
    ));
    assert!(differences.is_empty(), "{differences:#?}");
    assert!(
        shape_differences(&json!({"a": 1}), &json!({"a": "x", "b": 2}), "t").len() == 2,
        "the comparison itself finds a type change and an extra key"
    );
}
