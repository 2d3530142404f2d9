//! The UI side of consent: the [`Prompter`] trait (the tray app shows a window) and the headless
//! prompter of `cvmwebapi serve`, which can ask nobody.

use std::collections::HashSet;

use async_trait::async_trait;

use super::request::ConsentDialog;

/// The user's answer in a dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub allow: bool,
    /// "Remember my answer for this site" was ticked.
    pub remember: bool,
}

/// Why no answer came from the user. None of these count toward the throttle rule.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("nobody can be asked (headless daemon) and the origin is not pre-approved")]
    NoUser,
    #[error("the dialog could not be shown: {0}")]
    Ui(String),
    #[error("the dialog was closed without an answer")]
    Dismissed,
}

/// Shows one consent dialog and waits for the answer. The broker never calls it twice at once.
///
/// Dropping the returned future (the page went away, or the broker's timeout fired) must close the
/// dialog.
#[async_trait]
pub trait Prompter: Send + Sync + 'static {
    async fn prompt(&self, dialog: &ConsentDialog) -> Result<Answer, PromptError>;
}

/// The headless daemon's prompter: allows the exact origins given with `--allow-origin` and refuses
/// everything else, because nobody is there to be asked.
#[derive(Debug, Default, Clone)]
pub struct HeadlessPrompter {
    allowed: HashSet<String>,
}

impl HeadlessPrompter {
    /// `allowed` are serialized origins (`scheme://host[:port]`), compared exactly.
    pub fn new(allowed: impl IntoIterator<Item = String>) -> Self {
        Self {
            allowed: allowed.into_iter().collect(),
        }
    }
}

#[async_trait]
impl Prompter for HeadlessPrompter {
    async fn prompt(&self, dialog: &ConsentDialog) -> Result<Answer, PromptError> {
        let origin = &dialog.request.origin;
        if self.allowed.contains(origin) {
            tracing::info!(%origin, vm = %dialog.vm_name_display, "new session pre-approved by --allow-origin");
            Ok(Answer {
                allow: true,
                remember: false,
            })
        } else {
            tracing::warn!(%origin, vm = %dialog.vm_name_display,
                "new session refused: headless daemon, origin not in --allow-origin");
            Err(PromptError::NoUser)
        }
    }
}
