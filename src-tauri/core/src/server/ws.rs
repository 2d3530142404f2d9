//! The WebSocket endpoint: upgrade on any path (the JS connects to `/`), the token check for clients
//! without an `Origin`, the connection limit, then one task per connection that reads frames, writes
//! the connection's outbox, pings idle peers and drops dead or too slow ones.

use std::sync::Arc;
use std::time::Instant;

use axum::{
    extract::{
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
        FromRequestParts, Request,
    },
    http::{header, request::Parts, StatusCode},
    response::{IntoResponse, Response},
};

use crate::daemon::token::{token_matches, TOKEN_HEADER, TOKEN_QUERY};
use crate::daemon::{Connection, ConnectionSlot, DaemonState};
use crate::protocol::CallerOrigin;
use crate::session::Outbox;

/// Close code for "message too big" (RFC 6455).
const CLOSE_TOO_BIG: u16 = 1009;
/// Close code for "policy violation" (too slow, idle).
const CLOSE_POLICY: u16 = 1008;

/// Whether the request asks for a WebSocket upgrade.
pub(super) fn is_upgrade(parts: &Parts) -> bool {
    parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Handles an upgrade request on any path. Returns the request back when it is not one.
pub(super) async fn upgrade(state: Arc<DaemonState>, req: Request) -> Result<Response, Request> {
    let (mut parts, body) = req.into_parts();
    if !is_upgrade(&parts) {
        return Err(Request::from_parts(parts, body));
    }
    let origin = CallerOrigin::parse(
        parts
            .headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok()),
    );
    if origin == CallerOrigin::Absent && !presents_token(&parts, state.token()) {
        tracing::warn!("refused a WebSocket without Origin and without the local token");
        return Ok((
            StatusCode::UNAUTHORIZED,
            "Unauthorized: clients without an Origin header must present the token from the data dir's api-token file\n",
        )
            .into_response());
    }
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(ws) => ws,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    let Some(slot) = state.try_open_connection() else {
        tracing::warn!(
            max = state.limits().max_connections,
            "refused a WebSocket: too many connections"
        );
        return Ok((StatusCode::SERVICE_UNAVAILABLE, "Too many connections\n").into_response());
    };
    let max = state.limits().max_message_bytes;
    // Small initial buffers: tungstenite's 128 KiB defaults would cost that much per idle connection;
    // buffers still grow up to the message limit when a big message comes.
    Ok(ws
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| serve(socket, state, origin, slot)))
}

fn presents_token(parts: &Parts, token: &str) -> bool {
    if let Some(h) = parts
        .headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        if token_matches(token, h.trim()) {
            return true;
        }
    }
    parts.uri.query().is_some_and(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .any(|(k, v)| k == TOKEN_QUERY && token_matches(token, &v))
    })
}

/// Why a connection ended, for the log and the close frame.
enum End {
    Peer,
    TooBig(String),
    Dead,
    TooSlow,
}

async fn serve(
    mut socket: WebSocket,
    state: Arc<DaemonState>,
    origin: CallerOrigin,
    slot: ConnectionSlot,
) {
    let limits = state.limits().clone();
    let id = slot.id();
    let (outbox, mut outgoing, overflow) = Outbox::new(limits.outbox_frames, id);
    tracing::debug!(connection = id, origin = %origin.serialized(), "WebSocket opened");
    let connection = Connection::new(state.clone(), id, origin, outbox);
    let mut last_seen = Instant::now();
    let mut pinged = false;
    let mut ticker = tokio::time::interval(
        (limits.ping_after.min(limits.idle_timeout) / 2).max(std::time::Duration::from_millis(10)),
    );
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(message)) => {
                    last_seen = Instant::now();
                    pinged = false;
                    match message {
                        Message::Text(text) => connection.handle_text(text.as_str()),
                        Message::Binary(_) => connection.handle_binary(),
                        Message::Ping(_) | Message::Pong(_) => {}
                        Message::Close(_) => break End::Peer,
                    }
                }
                Some(Err(e)) => break End::TooBig(e.to_string()),
                None => break End::Peer,
            },
            Some(text) = outgoing.recv() => {
                let sent = tokio::time::timeout(limits.idle_timeout, socket.send(Message::Text(text.into()))).await;
                if !matches!(sent, Ok(Ok(()))) {
                    break End::Dead;
                }
            }
            _ = ticker.tick() => {
                let silent = last_seen.elapsed();
                if silent >= limits.idle_timeout {
                    break End::Dead;
                }
                if silent >= limits.ping_after && !pinged {
                    pinged = true;
                    let ping = tokio::time::timeout(limits.idle_timeout, socket.send(Message::Ping(Default::default()))).await;
                    if !matches!(ping, Ok(Ok(()))) {
                        break End::Dead;
                    }
                }
            }
            _ = overflow.notified() => break End::TooSlow,
        }
    };
    drop(connection);
    let close = |code: u16, reason: &str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    match end {
        End::Peer => {
            tracing::debug!(connection = id, "WebSocket closed by the peer");
            // Flush the close reply tungstenite queued for the peer's close frame.
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(1),
                futures_util::SinkExt::flush(&mut socket),
            )
            .await;
        }
        End::TooBig(e) => {
            tracing::info!(
                connection = id,
                "closing a WebSocket after a bad frame: {e}"
            );
            let reason = format!(
                "message too big or malformed (limit {} bytes)",
                limits.max_message_bytes
            );
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(1),
                socket.send(close(CLOSE_TOO_BIG, &reason)),
            )
            .await;
        }
        End::Dead => tracing::info!(
            connection = id,
            "dropped a dead WebSocket (no answer to ping)"
        ),
        End::TooSlow => {
            tracing::warn!(
                connection = id,
                "dropped a WebSocket that does not read its messages"
            );
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(1),
                socket.send(close(CLOSE_POLICY, "client too slow: outgoing queue full")),
            )
            .await;
        }
    }
    drop(slot);
}
