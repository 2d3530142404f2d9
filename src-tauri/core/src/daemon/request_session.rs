//! `requestSession` (shared/spec/protocol.md §2.5.3, §4.1): VMCP fetch and verification, session lookup
//! by name and secret, consent for new sessions, then `succeed [msg, id]` followed by the session's
//! `stateVariables` and `stateChanged`. Exactly one `failed` or `succeed` per request.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::connection::{truncate, ConnCtx};
use super::ports::{ConsentDecision, ConsentRequest};
use crate::protocol::{flatten_params, ErrorCode, Outgoing, SessionState};
use crate::session::{
    spawn_new, Command, SecretHash, SessionHandle, SessionParams, SessionRecord, Subscriber,
};

/// Longest VMCP URL accepted.
const MAX_URL: usize = 4096;

struct Request {
    ctx: Arc<ConnCtx>,
    id: String,
}

impl Request {
    fn send(&self, name: &'static str, data: Vec<Value>) {
        self.ctx
            .outbox
            .send(Outgoing::event(name, self.id.clone(), data));
    }
    fn progress(&self, message: &str, fraction: f64) {
        self.send("progress", vec![json!(message), json!(fraction)]);
    }
    fn fail(&self, message: &str, code: ErrorCode) {
        tracing::info!(connection = self.ctx.id, request = %self.id, code = code.code(), "requestSession failed: {message}");
        self.send("failed", vec![json!(message), json!(code.code())]);
    }
}

pub(super) async fn run(ctx: Arc<ConnCtx>, id: String, url: String) {
    let req = Request { ctx, id };
    // The JS drops a request without a frame within 10 s: answer at once (§7.1 item 4).
    req.send("started", vec![json!("Preparing for session request")]);
    req.progress("Preparing for session request", 0.0);
    let state = req.ctx.state.clone();
    let services = state.services();
    let missing = services.missing();
    let (Some(vmcp), Some(consent), Some(session_ctx)) = (
        services.vmcp.clone(),
        services.consent.clone(),
        state.session_context(),
    ) else {
        req.fail(
            &format!(
                "This CernVM WebAPI cannot create sessions yet: no {} is configured",
                missing.join(", ")
            ),
            ErrorCode::NotSupported,
        );
        return;
    };
    if url.is_empty() || url.len() > MAX_URL {
        req.fail("Unable to contact the VMCP endpoint", ErrorCode::UsageError);
        return;
    }

    req.progress("Contacting the VMCP endpoint", 0.125);
    let document = match vmcp.fetch_verified(&url, &req.ctx.origin).await {
        Ok(d) => d,
        Err(f) => {
            tracing::info!(url = %truncate(&url, 200), "VMCP refused: {}", f.detail);
            req.fail(&f.message, f.code);
            return;
        }
    };

    req.progress("Validating VMCP data", 0.25);
    let flat = flatten_params(&document);
    for field in ["name", "secret"] {
        if flat.get(field).is_none_or(String::is_empty) {
            req.fail(
                &format!("Missing '{field}' parameter from the VMCP response"),
                ErrorCode::UsageError,
            );
            return;
        }
    }
    let name = flat["name"].clone();
    let secret = flat["secret"].clone();
    let mut params = match SessionParams::from_vmcp(&flat) {
        Ok(p) => p,
        Err(e) => {
            req.fail(
                &format!("Unable to open session: the VMCP has an {e}"),
                ErrorCode::UsageError,
            );
            return;
        }
    };
    if !flat.keys().any(|k| SessionParams::is_idle_key(k)) {
        // The page says nothing about idle control: the user's default policy applies.
        params.set_idle_policy(state.default_idle_policy());
    }

    req.progress("Validating request", 0.375);
    let registry = state.registry();
    let handle: SessionHandle = match registry.by_name(&name) {
        Some(h) if h.secret_matches(&secret) => h,
        Some(_) => {
            req.fail(
                "The password specified is invalid for this session",
                ErrorCode::PasswordDenied,
            );
            return;
        }
        None => {
            let consent_request = ConsentRequest {
                origin: req.ctx.origin.serialized(),
                domain: req.ctx.origin.domain().to_string(),
                vm_name: name.clone(),
                cpus: params.cpus,
                memory_mb: params.memory,
                disk_mb: params.disk,
                idle_control: params.daemon_controlled,
                trusted: true,
            };
            let waiting = "Session is new, asking user for confirmation";
            req.progress(waiting, 0.4);
            req.send("lengthyTask", vec![json!(waiting), json!(1)]);
            let decision = consent.ask(consent_request).await;
            req.send("lengthyTask", vec![json!(waiting), json!(0)]);
            match decision {
                ConsentDecision::Allowed => {}
                ConsentDecision::Denied => {
                    req.fail(
                        "User denied the allocation of new session",
                        ErrorCode::NotAllowed,
                    );
                    return;
                }
                ConsentDecision::Blocked => {
                    req.fail(
                        "Request denied by throttle protection",
                        ErrorCode::NotAllowed,
                    );
                    return;
                }
            }
            req.progress("Open session", 0.5);
            let record = SessionRecord {
                version: SessionRecord::VERSION,
                secret: SecretHash::new(&secret),
                params,
                user_values: BTreeMap::new(),
                properties: BTreeMap::new(),
                origin: req.ctx.origin.serialized(),
                domain: req.ctx.origin.domain().to_string(),
                state: SessionState::Missing,
                vm: None,
                held_by_hand: false,
                user_policy: None,
            };
            // Another request may have created it while the dialog was open.
            if let Some(existing) = registry.by_name(&name) {
                if !existing.secret_matches(&secret) {
                    req.fail(
                        "The password specified is invalid for this session",
                        ErrorCode::PasswordDenied,
                    );
                    return;
                }
                existing
            } else {
                match spawn_new(record, session_ctx) {
                    Ok(h) => match registry.insert(h.clone()) {
                        Ok(()) => h,
                        Err(existing) => existing,
                    },
                    Err(e) => {
                        tracing::error!("cannot store a new session: {e:#}");
                        req.fail("Unable to open session", ErrorCode::NotAllowed);
                        return;
                    }
                }
            }
        }
    };

    let wire_id = registry.bind_wire(&handle, req.ctx.id);
    let done = "Session open successfully";
    req.progress(done, 1.0);
    req.send("completed", vec![json!(done)]);
    req.send("succeed", vec![json!(done), json!(wire_id)]);
    // The actor sends stateVariables then stateChanged to the new subscriber, after the succeed above.
    let subscribe = Command::Subscribe(Subscriber {
        wire_id,
        outbox: req.ctx.outbox.clone(),
    });
    if handle.send(subscribe).await.is_err() {
        tracing::warn!(session = %name, "the session retired while it was being re-opened");
    }
}
