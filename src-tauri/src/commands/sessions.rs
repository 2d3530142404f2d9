//! Session commands: the sessions table, control actions, the user's idle policy override, CPU samples.

use std::collections::BTreeMap;
use std::time::Duration;

use tauri::State;
use webapi_core::daemon::panel::{self, SessionRow};
use webapi_core::idle::IdlePolicy;
use webapi_core::monitor::Sample;
use webapi_core::session::Control;

use super::PanelState;
use crate::tray::sessions::{control, Outcome};
use crate::ShellState;

/// How long `session_action` waits for the session's answer before saying "pending".
const ACTION_WAIT: Duration = Duration::from_secs(60);

#[tauri::command]
pub async fn list_sessions(state: State<'_, ShellState>) -> Result<Vec<SessionRow>, String> {
    Ok(panel::session_rows(&state.daemon).await)
}

/// Sends a control action (start, pause, resume, stop, hibernate, reset, close) to a session. Answers
/// "done", or "pending" when the session is still at it after a minute; errors say why it failed.
#[tauri::command]
pub async fn session_action(
    state: State<'_, ShellState>,
    name: String,
    action: String,
) -> Result<&'static str, String> {
    let control_action = parse_action(&action)?;
    tracing::info!(session = %name, %action, "control panel asks a session");
    match control(&state.daemon, &name, control_action, ACTION_WAIT).await {
        Outcome::Done => Ok("done"),
        Outcome::TimedOut => Ok("pending"),
        Outcome::Failed(why) => Err(why),
        Outcome::Gone => Err(format!("no session called {name:?}")),
    }
}

fn parse_action(action: &str) -> Result<Control, String> {
    Ok(match action {
        // The volunteer's Start keeps the website's start values: `resume` drives the VM to running from
        // any state without replacing them (shared/spec/protocol.md §2.5), where `start` would.
        "start" => Control::Resume,
        "pause" => Control::Pause,
        "resume" => Control::Resume,
        "stop" => Control::Stop,
        "hibernate" => Control::Hibernate,
        "reset" => Control::Reset,
        "close" => Control::Close,
        other => {
            return Err(format!(
                "unknown action {:?}; use start, pause, resume, stop, hibernate, reset or close",
                other.chars().take(32).collect::<String>()
            ))
        }
    })
}

/// Sets the user's idle policy of a session (`null` clears it: the page's policy applies again).
#[tauri::command]
pub async fn set_session_policy(
    state: State<'_, ShellState>,
    name: String,
    policy: Option<IdlePolicy>,
) -> Result<(), String> {
    panel::set_user_policy(&state.daemon, &name, policy).await
}

/// The CPU cap and host CPU use of each session's VM over the last minutes.
#[tauri::command]
pub fn session_samples(panel: State<'_, PanelState>) -> BTreeMap<String, Vec<Sample>> {
    panel.monitor.samples()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_parsed_strictly() {
        assert_eq!(parse_action("pause"), Ok(Control::Pause));
        assert_eq!(
            parse_action("start"),
            Ok(Control::Resume),
            "keeps the start values"
        );
        let err = parse_action("format-disk").unwrap_err();
        assert!(err.contains("unknown action"), "{err}");
    }
}
