//! The consent dialog: a small always-on-top webview window (`ui/app/consent/`) per request, created
//! when the broker asks and destroyed once answered. Implements the core's `Prompter`.
//!
//! The page in the window gets the request through an initialization script and can call exactly
//! one command, [`consent_answer`] (capability `capabilities/consent.json`). "Allow" is refused
//! here too when it comes sooner than [`ALLOW_DELAY`] after the window opened.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;
use tauri::{
    AppHandle, Manager, State, WebviewUrl, WebviewWindow, WebviewWindowBuilder, WindowEvent,
};
use tokio::sync::oneshot;
use webapi_core::consent::{Answer, ConsentDialog, PromptError, Prompter};

/// Window labels are `consent-<n>`; the capability matches `consent-*`.
pub const LABEL_PREFIX: &str = "consent-";
/// The window title (tests find the window by it).
pub const TITLE: &str = "CernVM WebAPI: allow a new virtual machine?";
/// "Allow" stays disabled this long after the dialog appears (and after it regains focus).
pub const ALLOW_DELAY: Duration = Duration::from_millis(1500);

/// The tray app's prompter. Create it before the app, [`DialogPrompter::attach`] it in `setup`.
#[derive(Default)]
pub struct DialogPrompter {
    app: OnceLock<AppHandle>,
    pending: Mutex<HashMap<String, Pending>>,
    counter: AtomicU64,
}

struct Pending {
    reply: oneshot::Sender<Answer>,
    opened: Instant,
    /// The website asking (for the tray's notification and icon).
    origin: String,
}

/// What the dialog page reads from `window.__CONSENT__`.
#[derive(Serialize)]
struct DialogView<'a> {
    #[serde(flatten)]
    dialog: &'a ConsentDialog,
    allow_delay_ms: u64,
}

impl DialogPrompter {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Gives the prompter the app to open windows in. Until then every prompt fails (denied).
    pub fn attach(&self, app: AppHandle) {
        let _ = self.app.set(app);
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The dialogs waiting for an answer now, as (window label, asking origin).
    pub fn waiting_dialogs(&self) -> std::collections::BTreeSet<(String, String)> {
        self.pending()
            .iter()
            .map(|(label, p)| (label.clone(), p.origin.clone()))
            .collect()
    }

    /// Delivers the answer given in window `label`.
    fn answer(&self, label: &str, answer: Answer) -> Result<(), String> {
        let mut pending = self.pending();
        let Some(p) = pending.get(label) else {
            return Err("this dialog is no longer waiting for an answer".into());
        };
        if answer.allow && p.opened.elapsed() < ALLOW_DELAY {
            tracing::warn!(
                label,
                "Allow came too soon after the dialog opened; ignored"
            );
            return Err("too soon: Allow is not enabled yet".into());
        }
        let p = pending.remove(label).expect("checked above");
        let _ = p.reply.send(answer);
        Ok(())
    }
}

/// Closes the window and forgets the pending answer when the prompt ends in any way.
struct OpenDialog<'a> {
    prompter: &'a DialogPrompter,
    label: String,
    window: Option<WebviewWindow>,
}

impl Drop for OpenDialog<'_> {
    fn drop(&mut self) {
        self.prompter.pending().remove(&self.label);
        if let Some(w) = self.window.take() {
            if let Err(e) = w.destroy() {
                tracing::warn!(label = %self.label, "cannot close the consent dialog: {e}");
            }
        }
    }
}

#[async_trait]
impl Prompter for DialogPrompter {
    async fn prompt(&self, dialog: &ConsentDialog) -> Result<Answer, PromptError> {
        let app = self
            .app
            .get()
            .ok_or_else(|| PromptError::Ui("the user interface is not ready".into()))?;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let label = format!("{LABEL_PREFIX}{n}");
        let (reply, answer) = oneshot::channel();
        self.pending().insert(
            label.clone(),
            Pending {
                reply,
                opened: Instant::now(),
                origin: dialog.request.origin.to_string(),
            },
        );
        let mut open = OpenDialog {
            prompter: self,
            label: label.clone(),
            window: None,
        };
        let view = DialogView {
            dialog,
            allow_delay_ms: ALLOW_DELAY.as_millis() as u64,
        };
        let data = serde_json::to_string(&view).map_err(|e| PromptError::Ui(e.to_string()))?;
        let window =
            WebviewWindowBuilder::new(app, &label, WebviewUrl::App("consent/index.html".into()))
                .title(TITLE)
                .inner_size(500.0, 580.0)
                .resizable(false)
                .maximizable(false)
                .minimizable(false)
                .always_on_top(true)
                .focused(true)
                .center()
                // Shown only once the close handler below is in place, so no close goes unanswered.
                .visible(false)
                .initialization_script(format!("window.__CONSENT__ = {data};"))
                // Only the app's own page; never navigate anywhere else.
                .on_navigation(|url| {
                    url.scheme() == "tauri"
                        || (url.scheme() == "http" && url.host_str() == Some("tauri.localhost"))
                })
                .build()
                .map_err(|e| PromptError::Ui(e.to_string()))?;
        // Closing the window with its title-bar button answers "Deny"; so does a window that goes away
        // unanswered any other way (destroyed by the window manager).
        let prompter_app = app.clone();
        let closing = label.clone();
        window.on_window_event(move |event| {
            if let WindowEvent::CloseRequested { .. } | WindowEvent::Destroyed = event {
                if let Some(p) = prompter_app.try_state::<Arc<DialogPrompter>>() {
                    if let Some(pending) = p.pending().remove(&closing) {
                        let _ = pending.reply.send(Answer {
                            allow: false,
                            remember: false,
                        });
                    }
                }
            }
        });
        open.window = Some(window.clone());
        window
            .show()
            .map_err(|e| PromptError::Ui(format!("cannot show the consent dialog: {e}")))?;
        let _ = window.set_focus();
        tracing::info!(%label, origin = %dialog.request.origin, "consent dialog shown");
        let result = answer.await.map_err(|_| PromptError::Dismissed);
        drop(open);
        result
    }
}

/// The dialog's one command: the user's answer.
#[tauri::command]
pub fn consent_answer(
    window: WebviewWindow,
    prompter: State<'_, Arc<DialogPrompter>>,
    allow: bool,
    remember: bool,
) -> Result<(), String> {
    let label = window.label();
    if !label.starts_with(LABEL_PREFIX) {
        return Err("only a consent dialog can answer".into());
    }
    prompter.answer(label, Answer { allow, remember })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(
        prompter: &DialogPrompter,
        label: &str,
        opened: Instant,
    ) -> oneshot::Receiver<Answer> {
        let (reply, rx) = oneshot::channel();
        prompter.pending().insert(
            label.into(),
            Pending {
                reply,
                opened,
                origin: "https://example.org".into(),
            },
        );
        rx
    }

    #[test]
    fn allow_before_the_delay_is_refused_and_the_dialog_keeps_waiting() {
        let p = DialogPrompter::default();
        let mut rx = waiting(&p, "consent-0", Instant::now());
        assert_eq!(
            p.waiting_dialogs().into_iter().collect::<Vec<_>>(),
            [("consent-0".to_string(), "https://example.org".to_string())]
        );
        let allow = Answer {
            allow: true,
            remember: false,
        };
        assert!(p.answer("consent-0", allow).is_err());
        assert!(rx.try_recv().is_err(), "no answer delivered");
        // Deny is always accepted.
        let deny = Answer {
            allow: false,
            remember: false,
        };
        p.answer("consent-0", deny).unwrap();
        assert_eq!(rx.try_recv().unwrap(), deny);
        assert!(
            p.waiting_dialogs().is_empty(),
            "an answered dialog no longer waits"
        );
    }

    #[test]
    fn allow_after_the_delay_is_delivered_once() {
        let p = DialogPrompter::default();
        let opened = Instant::now() - ALLOW_DELAY - Duration::from_millis(1);
        let mut rx = waiting(&p, "consent-1", opened);
        let allow = Answer {
            allow: true,
            remember: true,
        };
        p.answer("consent-1", allow).unwrap();
        assert_eq!(rx.try_recv().unwrap(), allow);
        assert!(
            p.answer("consent-1", allow).is_err(),
            "a second answer finds nothing"
        );
    }

    /// The consent views tests/browser/fixtures/consent-views.json holds for the dialog's accessibility
    /// test (a trusted https site; an untrusted http site with a long name): exactly what the dialog
    /// receives for these requests. `UPDATE_FIXTURES=1` rewrites the file after a deliberate change.
    #[test]
    fn the_browser_tests_consent_fixture_is_the_real_view() {
        let request = |origin: &str, vm_name: &str, trusted: bool| {
            ConsentDialog::new(webapi_core::consent::ConsentRequest {
                origin: origin.into(),
                domain: origin
                    .split("://")
                    .nth(1)
                    .unwrap()
                    .split(':')
                    .next()
                    .unwrap()
                    .into(),
                vm_name: vm_name.into(),
                cpus: 2,
                memory_mb: 2048,
                disk_mb: 20480,
                idle_control: trusted,
                trusted,
            })
        };
        let dialogs = [
            request("https://lhcathome.cern.ch", "ATLAS worker", true),
            request(
                "http://volunteer.example.org:8080",
                &"A rather long virtual machine name ".repeat(5),
                false,
            ),
        ];
        let views: Vec<_> = dialogs
            .iter()
            .map(|dialog| DialogView {
                dialog,
                allow_delay_ms: ALLOW_DELAY.as_millis() as u64,
            })
            .collect();
        let generated = serde_json::to_string_pretty(&views).unwrap() + "\n";
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/browser/fixtures/consent-views.json"
        );
        if std::env::var_os("UPDATE_FIXTURES").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "tests/browser/fixtures/consent-views.json is not what the dialog receives; \
             rerun with UPDATE_FIXTURES=1 and commit the file. Now:\n{generated}"
        );
    }
}
