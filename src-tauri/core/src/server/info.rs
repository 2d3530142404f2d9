//! `GET /info`: the liveness probe the JavaScript library calls before it opens the WebSocket.

use std::sync::Arc;

use axum::{
    extract::State,
    http::{header, HeaderMap, Uri},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

use crate::daemon::DaemonState;
use crate::protocol::CallerOrigin;

pub(super) async fn handle(
    State(_state): State<Arc<DaemonState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let origin = CallerOrigin::parse(headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()));
    let body = json!({
        "status": "ok",
        "request": uri.path(),
        "domain": origin.domain(),
        "version": crate::PROTOCOL_VERSION,
        "daemon": crate::VERSION,
    });
    let mut response = ([(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], Json(body)).into_response();
    // Chrome's Private Network Access preflight from public pages (shared/spec/protocol.md §7.1 item 5).
    if headers.contains_key("access-control-request-private-network") {
        response.headers_mut().insert(
            "access-control-allow-private-network",
            header::HeaderValue::from_static("true"),
        );
    }
    response
}
