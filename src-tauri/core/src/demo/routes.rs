//! The demo site's HTTP routes: the page's files, `/vmcp` (the demo VMCP signed for the request's
//! `cvm_salt`) and `/guest.iso`. Anything else is a 404; only GET and HEAD are served.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::Value;

use crate::trust::tools;
use crate::trust::SigningKey;

use super::assets;
use super::setup::GuestImage;

/// What the handlers share.
pub struct SiteState {
    pub key: SigningKey,
    pub vmcp: Value,
    pub image: GuestImage,
}

pub fn router(state: Arc<SiteState>) -> Router {
    Router::new()
        .route("/vmcp", get(vmcp))
        .route("/guest.iso", get(image))
        .fallback(get(asset))
        .with_state(state)
}

/// The daemon appends `cvm_salt` (and `cvm_hostid`) to the VMCP URL.
#[derive(Deserialize)]
struct VmcpQuery {
    cvm_salt: Option<String>,
}

async fn vmcp(
    State(site): State<Arc<SiteState>>,
    query: Result<Query<VmcpQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(salt) = query.ok().and_then(|Query(q)| q.cvm_salt) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "this VMCP endpoint answers the CernVM WebAPI app, which adds ?cvm_salt=…",
        );
    };
    let doc = match serde_json::to_vec(&site.vmcp) {
        Ok(d) => d,
        Err(e) => return plain(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    match tools::sign_vmcp(&doc, &salt, &site.key, false) {
        Ok(signed) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            signed.json,
        )
            .into_response(),
        Err(e) => plain(StatusCode::BAD_REQUEST, e.detail()),
    }
}

async fn image(State(site): State<Arc<SiteState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/octet-stream")],
        site.image.bytes.clone(),
    )
        .into_response()
}

async fn asset(uri: Uri) -> Response {
    match assets::find(uri.path()) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            a.body,
        )
            .into_response(),
        None => plain(StatusCode::NOT_FOUND, "not found"),
    }
}

fn plain(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{text}\n"),
    )
        .into_response()
}
