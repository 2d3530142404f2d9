//! Test-only loopback control server (cargo feature `e2e-hooks`, never in release packages): lets
//! tests/gui/consent.sh send consent requests through the real broker and the real dialog, and
//! read or undo blocks, without a website. Listens on 127.0.0.1:$CERNVM_WEBAPI_E2E_PORT.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use tauri::AppHandle;
use webapi_core::consent::{ConsentBroker, ConsentRequest};

/// The environment variable naming the port; without it the hooks stay off.
pub const PORT_ENV: &str = "CERNVM_WEBAPI_E2E_PORT";

#[derive(Clone)]
struct Hooks {
    broker: Arc<ConsentBroker>,
    app: AppHandle,
}

#[derive(Deserialize)]
struct ConsentQuery {
    origin: String,
    #[serde(default = "default_vm")]
    vm: String,
    #[serde(default)]
    trusted: bool,
}

fn default_vm() -> String {
    "Test VM".into()
}

#[derive(Deserialize)]
struct OriginQuery {
    origin: String,
}

/// Starts the control server when the environment asks for it.
pub fn start(app: &AppHandle, broker: Arc<ConsentBroker>) {
    let Some(port) = std::env::var(PORT_ENV)
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
    else {
        return;
    };
    let hooks = Hooks {
        broker,
        app: app.clone(),
    };
    tauri::async_runtime::spawn(async move {
        let router = Router::new()
            .route("/consent", get(consent))
            .route("/blocked", get(blocked))
            .route("/unblock", get(unblock))
            .route("/dialog", get(dialog))
            .route("/quit", get(quit))
            .with_state(hooks);
        match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => {
                tracing::warn!(port, "e2e test hooks listening (test build)");
                let _ = axum::serve(l, router).await;
            }
            Err(e) => tracing::error!(port, "e2e test hooks cannot listen: {e}"),
        }
    });
}

/// Asks the broker (and so, maybe, the user) and answers `Allowed`, `Denied` or `Blocked`.
async fn consent(State(h): State<Hooks>, Query(q): Query<ConsentQuery>) -> String {
    let domain = url::Url::parse(&q.origin)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let decision = h
        .broker
        .request(ConsentRequest {
            origin: q.origin,
            domain,
            vm_name: q.vm,
            cpus: 2,
            memory_mb: 2048,
            disk_mb: 20480,
            idle_control: true,
            trusted: q.trusted,
        })
        .await;
    format!("{decision:?}")
}

async fn blocked(State(h): State<Hooks>) -> String {
    h.broker
        .blocked_sites()
        .into_iter()
        .map(|e| e.origin + "\n")
        .collect()
}

async fn unblock(State(h): State<Hooks>, Query(q): Query<OriginQuery>) -> String {
    match h.broker.unblock(&q.origin) {
        Ok(done) => done.to_string(),
        Err(e) => format!("error: {e:#}"),
    }
}

async fn dialog(State(h): State<Hooks>) -> &'static str {
    if h.broker.dialog_open() {
        "open"
    } else {
        "closed"
    }
}

async fn quit(State(h): State<Hooks>) -> &'static str {
    h.app.exit(0);
    "bye"
}
