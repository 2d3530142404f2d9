//! Serves the commands the control-panel process relays (see `panel_link`): the same command functions
//! the Tauri IPC calls, with their arguments taken from the page's JSON (camelCase keys, as Tauri's IPC
//! names them). The panel process's window holds the panel capability, so Tauri has already checked
//! there that the page may call the command; an unknown name is refused here too.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tauri::{AppHandle, Manager, Runtime};

use super::*;

/// The commands the panel page may call (capabilities/panel.json).
#[cfg(test)]
pub const PANEL_COMMANDS: [&str; 19] = [
    "daemon_status",
    "list_sessions",
    "session_action",
    "set_session_policy",
    "session_samples",
    "idle_info",
    "recent_events",
    "get_settings",
    "save_settings",
    "cache_info",
    "clear_cache",
    "blocked_sites",
    "unblock_site",
    "remembered_sites",
    "forget_site",
    "get_start_at_login",
    "set_start_at_login",
    "open_logs_folder",
    "quit_app",
];

/// Runs panel command `cmd` with `args` (a JSON object); its value or its error message.
pub async fn relay(app: &AppHandle, cmd: &str, args: &Value) -> Result<Value, String> {
    let arg = |key: &str| args.get(key).cloned().unwrap_or(Value::Null);
    match cmd {
        "get_start_at_login" => json(get_start_at_login(app.clone())?),
        "set_start_at_login" => json(set_start_at_login(
            app.clone(),
            parse(cmd, "enabled", arg("enabled"))?,
        )?),
        "open_logs_folder" => {
            open_logs_folder(app.clone());
            Ok(Value::Null)
        }
        "quit_app" => {
            quit_app(app.clone());
            Ok(Value::Null)
        }
        _ => relay_state(app, cmd, args).await,
    }
}

/// The commands that only read or change the daemon's state (all but the desktop ones: Start at login,
/// the logs folder, Quit), for any Tauri runtime.
pub async fn relay_state<R: Runtime>(
    app: &AppHandle<R>,
    cmd: &str,
    args: &Value,
) -> Result<Value, String> {
    let arg = |key: &str| args.get(key).cloned().unwrap_or(Value::Null);
    match cmd {
        "daemon_status" => json(daemon_status(app.state())),
        "list_sessions" => json(list_sessions(app.state()).await?),
        "session_action" => json(
            session_action(
                app.state(),
                parse(cmd, "name", arg("name"))?,
                parse(cmd, "action", arg("action"))?,
            )
            .await?,
        ),
        "set_session_policy" => json(
            set_session_policy(
                app.state(),
                parse(cmd, "name", arg("name"))?,
                parse(cmd, "policy", arg("policy"))?,
            )
            .await?,
        ),
        "session_samples" => json(session_samples(app.state())),
        "idle_info" => json(idle_info(app.state())),
        "recent_events" => json(recent_events(
            app.state(),
            parse(cmd, "afterSeq", arg("afterSeq"))?,
        )),
        "get_settings" => json(get_settings(app.state())),
        "save_settings" => json(save_settings(
            app.state(),
            app.state(),
            parse(cmd, "settings", arg("settings"))?,
        )?),
        "cache_info" => json(cache_info(app.state(), app.state()).await?),
        "clear_cache" => json(clear_cache(app.state(), app.state()).await?),
        "blocked_sites" => json(blocked_sites(app.state())),
        "unblock_site" => json(unblock_site(
            app.state(),
            parse(cmd, "origin", arg("origin"))?,
        )?),
        "remembered_sites" => json(remembered_sites(app.state())),
        "forget_site" => json(forget_site(
            app.state(),
            parse(cmd, "origin", arg("origin"))?,
        )?),
        other => Err(format!(
            "unknown command {:?}",
            other.chars().take(64).collect::<String>()
        )),
    }
}

fn parse<T: DeserializeOwned>(cmd: &str, key: &str, value: Value) -> Result<T, String> {
    serde_json::from_value(value).map_err(|e| format!("{cmd}: argument {key}: {e}"))
}

fn json<T: Serialize>(value: T) -> Result<Value, String> {
    serde_json::to_value(value).map_err(|e| e.to_string())
}
