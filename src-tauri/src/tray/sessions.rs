//! The tray's side of the session registry: snapshots of every live session, and control actions sent to
//! a session's actor the way a WebSocket connection would (an in-process reply queue, no wire id).

use std::time::Duration;

use serde_json::Value;
use webapi_core::daemon::DaemonState;
use webapi_core::session::{Command, Control, Outbox, Reply, SessionHandle};

use super::model::SessionView;

/// How long one snapshot may take before the session is left out of this round.
const INSPECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The wire id the tray's replies carry. Real wire ids are never 0.
const TRAY_WIRE_ID: u32 = 0;
/// The connection id of the tray's reply queues (real connections count from 1).
const TRAY_CONNECTION: u64 = 0;

/// A snapshot of every live session (those that do not answer in time are left out).
pub async fn snapshot(daemon: &DaemonState) -> Vec<SessionView> {
    let mut views = Vec::new();
    for handle in daemon.registry().sessions() {
        if let Some(view) = inspect(&handle).await {
            views.push(view);
        }
    }
    views
}

async fn inspect(handle: &SessionHandle) -> Option<SessionView> {
    let snap = handle.inspect(INSPECT_TIMEOUT).await?;
    Some(SessionView {
        name: handle.name().to_string(),
        origin: snap.origin,
        vm: snap.params.name,
        state: snap.state,
        cap: snap.params.execution_cap,
    })
}

/// How a control action ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed(String),
    /// No answer within the time allowed (the session goes on with it).
    TimedOut,
    /// The session is gone.
    Gone,
}

/// Sends `action` to the session called `name` and waits up to `wait` for its answer.
pub async fn control(daemon: &DaemonState, name: &str, action: Control, wait: Duration) -> Outcome {
    let Some(handle) = daemon.registry().by_name(name) else {
        return Outcome::Gone;
    };
    control_handle(&handle, action, wait).await
}

/// Sends `action` to `handle` and waits up to `wait` for its `succeed` or `failed` answer.
pub async fn control_handle(handle: &SessionHandle, action: Control, wait: Duration) -> Outcome {
    let (outbox, mut frames, _overflow) = Outbox::new(16, TRAY_CONNECTION);
    let reply = Reply {
        request_id: format!("tray-{}", handle.name()),
        wire_id: TRAY_WIRE_ID,
        outbox,
        in_flight: None,
    };
    tracing::info!(session = handle.name(), ?action, "tray asks a session");
    if handle
        .send(Command::Control { action, reply })
        .await
        .is_err()
    {
        return Outcome::Gone;
    }
    let answer = async {
        while let Some(frame) = frames.recv().await {
            if let Some(outcome) = outcome_of(&frame) {
                return outcome;
            }
        }
        Outcome::Gone
    };
    tokio::time::timeout(wait, answer)
        .await
        .unwrap_or(Outcome::TimedOut)
}

/// Waits until the session called `name` is no longer in `from` (or is gone); false after `wait`.
pub async fn wait_until_left(
    daemon: &DaemonState,
    name: &str,
    from: webapi_core::protocol::SessionState,
    wait: Duration,
) -> bool {
    let poll = async {
        loop {
            let Some(handle) = daemon.registry().by_name(name) else {
                return;
            };
            match inspect(&handle).await {
                Some(view) if view.state == from => {
                    tokio::time::sleep(Duration::from_millis(250)).await
                }
                _ => return,
            }
        }
    };
    tokio::time::timeout(wait, poll).await.is_ok()
}

/// The final answer in a reply frame, if the frame is one (`succeed` or `failed`; progress is skipped).
pub fn outcome_of(frame: &str) -> Option<Outcome> {
    let v: Value = serde_json::from_str(frame).ok()?;
    match v.get("name")?.as_str()? {
        "succeed" => Some(Outcome::Done),
        "failed" => Some(Outcome::Failed(
            v.get("data")
                .and_then(|d| d.get(0))
                .and_then(Value::as_str)
                .unwrap_or("failed")
                .to_string(),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_frames_are_read_for_their_outcome() {
        assert_eq!(
            outcome_of(r#"{"data":[1],"id":"tray-a","name":"succeed","type":"event"}"#),
            Some(Outcome::Done)
        );
        assert_eq!(
            outcome_of(
                r#"{"data":["No VM to pause",-7],"id":"tray-a","name":"failed","type":"event"}"#
            ),
            Some(Outcome::Failed("No VM to pause".into()))
        );
        assert_eq!(
            outcome_of(r#"{"data":["Saving",0.5],"id":"tray-a","name":"progress","type":"event"}"#),
            None
        );
        assert_eq!(outcome_of("not json"), None);
    }

    /// Against the real daemon: no sessions → an empty snapshot; an unknown name → `Gone` at once.
    #[test]
    fn the_registry_of_a_real_daemon_is_read_and_addressed_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let config = webapi_core::config::DaemonConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            allow_origins: Vec::new(),
            image_mirror: None,
        };
        // The daemon itself, without the shell's logging (a process has one global subscriber, and the
        // commands test starts the whole shell).
        let bound = tauri::async_runtime::block_on(webapi_core::daemon::Daemon::bind(&config))
            .expect("daemon binds");
        let daemon = bound.state();
        tauri::async_runtime::block_on(async {
            assert!(snapshot(&daemon).await.is_empty());
            assert_eq!(
                control(&daemon, "nobody", Control::Pause, Duration::from_secs(5)).await,
                Outcome::Gone
            );
            assert!(
                wait_until_left(
                    &daemon,
                    "nobody",
                    webapi_core::protocol::SessionState::Running,
                    Duration::from_secs(5)
                )
                .await
            );
        });
    }
}
