//! `GET /js/cvmwebapi.js`: the website client library (ui/sdk/cvmwebapi.min.js), served as the
//! original daemon served its own copy. Loaded from here, the library talks to this daemon.

use axum::{
    http::header,
    response::{IntoResponse, Response},
};

/// The minified client library, compiled into the binary.
pub const CVMWEBAPI_JS: &str = include_str!("../../../../ui/sdk/cvmwebapi.min.js");

pub(super) async fn handle() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        CVMWEBAPI_JS,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_library_is_the_minified_build() {
        assert!(CVMWEBAPI_JS.starts_with("/*!\n * cvmwebapi.js"));
        assert!(CVMWEBAPI_JS.contains("startCVMWebAPI"));
        assert!(
            CVMWEBAPI_JS.len() < 64 * 1024,
            "the minified build stays small"
        );
    }

    #[tokio::test]
    async fn served_as_javascript() {
        let resp = handle().await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        assert_eq!(body, CVMWEBAPI_JS.as_bytes());
    }
}
