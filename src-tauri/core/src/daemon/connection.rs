//! One WebSocket connection as the daemon sees it: parses each text message, answers connection-level
//! actions at once and runs every other action as its own task (calls overlap), bounded by a per-
//! connection limit. Dropping it aborts its tasks and releases its session ids (the VMs keep running).

use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::DaemonState;
use crate::protocol::CallerOrigin;
use crate::protocol::{parse_action, Action, ErrorCode, Outgoing};
use crate::session::{Command, InFlight, Outbox};

/// What the tasks of one connection share.
pub(super) struct ConnCtx {
    pub id: u64,
    pub origin: CallerOrigin,
    pub outbox: Outbox,
    pub state: Arc<DaemonState>,
    /// The sessions this connection has commands queued to (their `get`s queue behind them).
    pub in_flight: Arc<InFlight>,
}

impl ConnCtx {
    pub fn error(&self, id: Option<&str>, code: ErrorCode, error: &str, detail: &str) {
        self.outbox.send(Outgoing::error(id, code, error, detail));
    }
}

/// The daemon side of one connection.
pub struct Connection {
    ctx: Arc<ConnCtx>,
    pending: Arc<Semaphore>,
    tasks: Mutex<JoinSet<()>>,
}

impl Connection {
    /// A connection with id `id` from `origin`, answering through `outbox`.
    pub fn new(state: Arc<DaemonState>, id: u64, origin: CallerOrigin, outbox: Outbox) -> Self {
        let pending = Arc::new(Semaphore::new(state.limits().max_pending_per_connection));
        Self {
            ctx: Arc::new(ConnCtx {
                id,
                origin,
                outbox,
                state,
                in_flight: Arc::default(),
            }),
            pending,
            tasks: Mutex::new(JoinSet::new()),
        }
    }

    /// Handles one text message.
    pub fn handle_text(&self, text: &str) {
        match parse_action(text, &self.ctx.state.limits().frame_limits()) {
            Ok(action) => self.dispatch(action),
            Err(e) => {
                tracing::debug!(connection = self.ctx.id, "refused a frame: {e}");
                self.ctx
                    .error(e.id(), e.code(), &e.to_string(), &e.detail());
            }
        }
    }

    /// Handles a binary message: not part of the protocol.
    pub fn handle_binary(&self) {
        self.ctx.error(
            None,
            ErrorCode::UsageError,
            "Binary frames are not supported.",
            "send each request as one JSON text frame",
        );
    }

    fn dispatch(&self, action: Action) {
        let ctx = &self.ctx;
        match action.name.as_str() {
            "handshake" => {
                ctx.outbox.send(Outgoing::Result {
                    id: action.id,
                    data: json!({ "version": crate::PROTOCOL_VERSION }),
                });
                // No auth keys are ever issued (§2.10): never privileged.
                ctx.outbox
                    .send(Outgoing::event("privileged", "", vec![json!(0)]));
            }
            "interactionCallback" => {
                if !action.params.has_raw("result") {
                    ctx.error(
                        Some(&action.id),
                        ErrorCode::UsageError,
                        "Missing 'result' parameter",
                        "interactionCallback needs an integer 'result'",
                    );
                }
                // The daemon never sends `interact` prompts (consent is our own dialog), so a callback
                // has nothing to complete: it is ignored, as §7.2 item 28 recommends.
            }
            // Protocol extension: the old API's daemon-level idle properties (docs/protocol.md).
            "getIdleStatus" => {
                let props = match ctx.state.registry().idle_status() {
                    Some(status) => status.protocol_properties(),
                    None => json!({"isSystemIdle": false, "idleTime": 0}),
                };
                ctx.outbox
                    .send(Outgoing::event("succeed", action.id.clone(), vec![props]));
            }
            "requestSession" => match action.params.get("vmcp") {
                Some(url) => {
                    let url = url.to_string();
                    self.spawn(&action.id, move |ctx, id| {
                        super::request_session::run(ctx, id, url)
                    });
                }
                None => ctx.error(
                    Some(&action.id),
                    ErrorCode::UsageError,
                    "Missing 'vmcp' parameter",
                    "requestSession needs the VMCP URL as the string 'vmcp'",
                ),
            },
            _ if action.params.has_raw("session_id") => {
                // Fast path: hand the command to the session's mailbox without a task of its own;
                // only a full mailbox needs a task that waits.
                let Some((handle, command, id)) = super::session_action::prepare(ctx, action)
                else {
                    return;
                };
                let idle_params = super::session_action::changes_idle_params(&command);
                match handle.try_send(command) {
                    Ok(()) if idle_params => super::session_action::wake_idle(ctx),
                    Ok(()) => {}
                    Err(TrySendError::Full(command)) => self.spawn(&id.clone(), move |ctx, id| {
                        super::session_action::deliver(ctx, handle, command, id)
                    }),
                    Err(TrySendError::Closed(_)) => super::session_action::released(ctx, &id),
                }
            }
            other => ctx.error(
                Some(&action.id),
                ErrorCode::NotSupported,
                &format!("Unknown action '{}'.", truncate(other, 64)),
                "see docs/protocol.md for the actions this daemon understands",
            ),
        }
    }

    /// Runs an action as its own task if the connection has a free slot, else answers with an error.
    fn spawn<F, Fut>(&self, request_id: &str, make: F)
    where
        F: FnOnce(Arc<ConnCtx>, String) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let Ok(permit) = self.pending.clone().try_acquire_owned() else {
            self.ctx.error(
                Some(request_id),
                ErrorCode::StillWorking,
                "Too many pending requests.",
                &format!(
                    "at most {} actions of one connection may run at once",
                    self.ctx.state.limits().max_pending_per_connection
                ),
            );
            return;
        };
        let fut = make(self.ctx.clone(), request_id.to_string());
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            fut.await;
            drop(permit);
        });
    }

    /// The connection's id.
    pub fn id(&self) -> u64 {
        self.ctx.id
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Dropping the JoinSet aborts running actions (a pending consent ends silently, §5.7).
        let released = self.ctx.state.registry().release_connection(self.ctx.id);
        if released.is_empty() {
            return;
        }
        tracing::debug!(
            connection = self.ctx.id,
            count = released.len(),
            "releasing the connection's sessions"
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                for (wire_id, handle) in released {
                    let _ = handle.send(Command::Unsubscribe { wire_id }).await;
                }
            });
        }
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub(super) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
