//! Tauri commands: the IPC surface of the webviews. IPC only; the logic stays in `webapi-core`.

use serde::Serialize;
use tauri::State;

use crate::ShellState;

/// What the control panel's header shows.
#[derive(Debug, Serialize)]
pub struct DaemonStatus {
    pub version: &'static str,
    pub protocol: &'static str,
    pub listen: String,
    pub data_dir: String,
}

#[tauri::command]
pub fn daemon_status(state: State<'_, ShellState>) -> DaemonStatus {
    DaemonStatus {
        version: webapi_core::VERSION,
        protocol: webapi_core::PROTOCOL_VERSION,
        listen: state.daemon.local_addr().to_string(),
        data_dir: state.daemon.data_dir().root().display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use tauri::ipc::{CallbackFn, InvokeBody};
    use tauri::test::{get_ipc_response, mock_builder, mock_context, noop_assets, INVOKE_KEY};
    use tauri::webview::InvokeRequest;

    /// The panel's command answers from the real daemon's state, through Tauri's IPC (mock runtime: no display).
    #[test]
    fn daemon_status_reports_the_running_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let config = webapi_core::config::DaemonConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            allow_origins: Vec::new(),
            image_mirror: None,
        };
        let consent = std::sync::Arc::new(webapi_core::consent::ConsentBroker::headless(
            dir.path(),
            &[],
        ));
        let shell =
            crate::start_daemon(&config, Default::default(), consent, None).expect("daemon starts");
        let addr = shell.daemon.local_addr();
        let app = mock_builder()
            .invoke_handler(tauri::generate_handler![super::daemon_status])
            .manage(shell)
            .build(mock_context(noop_assets()))
            .unwrap();
        let webview = tauri::WebviewWindowBuilder::new(&app, "panel", Default::default())
            .build()
            .unwrap();
        let response = get_ipc_response(
            &webview,
            InvokeRequest {
                cmd: "daemon_status".into(),
                callback: CallbackFn(0),
                error: CallbackFn(1),
                url: "tauri://localhost".parse().unwrap(),
                body: InvokeBody::default(),
                headers: Default::default(),
                invoke_key: INVOKE_KEY.to_string(),
            },
        )
        .expect("command answers");
        let status: serde_json::Value = response.deserialize().unwrap();
        assert_eq!(status["listen"], addr.to_string());
        assert_eq!(status["protocol"], webapi_core::PROTOCOL_VERSION);
        assert_eq!(status["data_dir"], dir.path().display().to_string());
    }
}
