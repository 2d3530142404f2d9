//! Session-scoped actions (§2.5.4): the frame's `session_id` must be a session id this connection
//! obtained (ownership check, §7.2 item 22); the action goes to the session's actor, which replies.
//! `get` is answered here from the session's published view, unless this connection still has commands
//! queued to that session: then it queues behind them, so pipelined requests keep their order.

use std::sync::Arc;

use serde_json::{json, Value};

use super::connection::{truncate, ConnCtx};
use crate::protocol::{Action, ErrorCode, Outgoing};
use crate::session::{Command, Control, Reply, SessionHandle};

/// Resolves a session action to its session and command, answering errors itself. `None` when done.
pub(super) fn prepare(ctx: &ConnCtx, action: Action) -> Option<(SessionHandle, Command, String)> {
    let raw = action.params.raw().get("session_id");
    let wire_id = raw.and_then(parse_session_id);
    let Some((wire_id, handle)) =
        wire_id.and_then(|w| ctx.state.registry().wire(w, ctx.id).map(|h| (w, h)))
    else {
        let shown = raw
            .map(|v| truncate(&v.to_string(), 32).to_string())
            .unwrap_or_default();
        ctx.error(
            Some(&action.id),
            ErrorCode::NotFound,
            &format!("Unable to find a session with id {shown}"),
            "session ids are valid only on the connection that requested the session",
        );
        return None;
    };
    let p = &action.params;
    let string = |key: &str| p.get(key).unwrap_or_default().to_string();
    if action.name == "get" && !ctx.in_flight.is_busy(wire_id) {
        // Nothing of this connection is queued to the session: answer from its published view.
        if let Some(value) = handle.get(p.get("key").unwrap_or_default()) {
            if handle.is_alive() {
                ctx.outbox
                    .send(Outgoing::event("succeed", action.id, vec![json!(value)]));
            } else {
                released(ctx, &action.id);
            }
            return None;
        }
    }
    let reply = Reply {
        request_id: action.id.clone(),
        wire_id,
        outbox: ctx.outbox.clone(),
        in_flight: Some(ctx.in_flight.track(wire_id)),
    };
    let command = match action.name.as_str() {
        "start" => {
            let mut values = p.flat().clone();
            values.remove("session_id");
            Command::Control {
                action: Control::Start(values),
                reply,
            }
        }
        "stop" => control(Control::Stop, reply),
        "pause" => control(Control::Pause, reply),
        "resume" => control(Control::Resume, reply),
        "hibernate" => control(Control::Hibernate, reply),
        "reset" => control(Control::Reset, reply),
        "close" => control(Control::Close, reply),
        "sync" => Command::Sync { reply },
        "get" => Command::Get {
            key: string("key"),
            reply,
        },
        "set" => Command::Set {
            key: string("key"),
            value: string("value"),
            reply,
        },
        "setProperty" => Command::SetProperty {
            key: string("key"),
            value: string("value"),
            reply,
        },
        other => {
            ctx.error(
                Some(&action.id),
                ErrorCode::NotSupported,
                &format!("Unknown session action '{}'.", truncate(other, 64)),
                "session actions: start stop pause resume hibernate reset close sync get set setProperty",
            );
            return None;
        }
    };
    Some((handle, command, action.id))
}

/// Delivers a prepared command, waiting for room in the session's mailbox.
pub(super) async fn deliver(
    ctx: Arc<ConnCtx>,
    handle: SessionHandle,
    command: Command,
    id: String,
) {
    let idle_params = changes_idle_params(&command);
    if handle.send(command).await.is_err() {
        released(&ctx, &id);
        return;
    }
    if idle_params {
        wake_idle(&ctx);
    }
}

/// Whether `command` sets a session's idle parameters (`daemonControlled`, `daemonMinCap`, ...).
pub(super) fn changes_idle_params(command: &Command) -> bool {
    matches!(command,
        Command::Set { key, .. } | Command::SetProperty { key, .. } if key.starts_with("daemon"))
}

/// Wakes the idle controller, so it acts on new idle parameters at once rather than at its next poll.
/// Call it once the command is in the session's mailbox: the controller's `Inspect` then queues behind
/// it and sees the new value.
pub(super) fn wake_idle(ctx: &ConnCtx) {
    if let Some(idle) = ctx.state.registry().idle() {
        idle.wake();
    }
}

/// The answer when the session's actor has retired.
pub(super) fn released(ctx: &ConnCtx, id: &str) {
    ctx.error(
        Some(id),
        ErrorCode::InvalidState,
        "The session is being released",
        "the session was closed; request it again",
    );
}

fn control(action: Control, reply: Reply) -> Command {
    Command::Control { action, reply }
}

/// A session id as the JS sends it: a number, or a numeric string.
fn parse_session_id(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}
