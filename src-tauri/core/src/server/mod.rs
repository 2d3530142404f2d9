//! The listener: plain HTTP (`/info`, `/js/cvmwebapi.js`) and the WebSocket upgrade on any path,
//! behind the Host gate.

mod gate;
mod info;
mod sdk;
mod ws;

pub use gate::host_is_allowed;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::any,
    Router,
};

use crate::daemon::DaemonState;

/// Builds the HTTP router for a daemon listening on `local_addr`.
pub fn router(state: Arc<DaemonState>) -> Router {
    Router::new()
        .route("/info", any(info::handle))
        .route("/info/", any(info::handle))
        .route("/js/cvmwebapi.js", axum::routing::get(sdk::handle))
        .fallback(upgrade_or_not_found)
        .layer(middleware::from_fn_with_state(state.clone(), host_gate))
        .with_state(state)
}

/// Refuses every request whose Host header is not this daemon's loopback address (DNS rebinding).
async fn host_gate(State(state): State<Arc<DaemonState>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok());
    if !host_is_allowed(host, state.local_addr().port()) {
        tracing::warn!(host = ?host, "refused a request with a foreign Host header");
        return (
            StatusCode::FORBIDDEN,
            "Forbidden: this service answers only to its loopback address\n",
        )
            .into_response();
    }
    next.run(req).await
}

/// Every path upgrades to a WebSocket (the JS connects to `/`); other requests get the original's 404.
async fn upgrade_or_not_found(State(state): State<Arc<DaemonState>>, req: Request) -> Response {
    match ws::upgrade(state, req).await {
        Ok(response) => response,
        Err(_) => not_found().await,
    }
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<html><head><title>CernVM WebAPI :: Error</title></head><body><h1>CernVM WebAPI Error 404</h1>File not found</body></html>",
    )
        .into_response()
}

/// The address a daemon is reachable at, for the benefit of log lines and tests.
pub fn describe(addr: SocketAddr) -> String {
    format!("http://{addr}")
}
