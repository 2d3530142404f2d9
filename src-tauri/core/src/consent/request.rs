//! What a consent request carries, what the dialog shows, and the broker's decision.

use serde::Serialize;

use super::origin::OriginView;

/// Longest VM name shown in a dialog; longer names are cut (with "…").
pub const MAX_VM_NAME_CHARS: usize = 120;
/// Longest serialized origin the broker accepts; longer ones are denied at once.
pub const MAX_ORIGIN_BYTES: usize = 1024;

/// A website asks to create a new VM session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentRequest {
    /// Serialized origin of the page, `scheme://host[:port]` (see [`super::serialize_origin`]).
    /// Blocks and remembered decisions are keyed by it.
    pub origin: String,
    /// The calling domain as the keystore knows it (shared/spec/protocol.md §1.4).
    pub domain: String,
    pub vm_name: String,
    pub cpus: u32,
    pub memory_mb: u64,
    pub disk_mb: u64,
    /// The site asks the app to raise/lower the VM's CPU cap as the user goes idle (`daemonControlled`).
    pub idle_control: bool,
    /// The domain is in the trusted keystore and its VMCP signature verified.
    pub trusted: bool,
}

/// What the prompter shows: the request plus the origin taken apart for display.
#[derive(Debug, Clone, Serialize)]
pub struct ConsentDialog {
    pub request: ConsentRequest,
    pub origin: OriginView,
    /// The VM name, cut to [`MAX_VM_NAME_CHARS`] and stripped of control characters.
    pub vm_name_display: String,
}

impl ConsentDialog {
    pub fn new(request: ConsentRequest) -> Self {
        let origin = OriginView::parse(&request.origin);
        let vm_name_display = display_name(&request.vm_name);
        Self {
            request,
            origin,
            vm_name_display,
        }
    }
}

fn display_name(name: &str) -> String {
    let clean: String = name.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim();
    if clean.chars().count() > MAX_VM_NAME_CHARS {
        let mut cut: String = clean.chars().take(MAX_VM_NAME_CHARS - 1).collect();
        cut.push('…');
        cut
    } else if clean.is_empty() {
        "(unnamed)".to_string()
    } else {
        clean.to_string()
    }
}

/// The broker's answer to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Decision {
    /// The user allowed it (now, or earlier with "remember my answer"), or the headless daemon was
    /// told to (`--allow-origin`).
    Allowed,
    /// The user denied it, did not answer in time, or nobody could be asked.
    Denied,
    /// The origin is blocked (throttle rule or a remembered "deny"); no dialog was shown.
    Blocked,
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Decision::Allowed
    }

    /// The `failed` event's payload the daemon sends for a refusal: `(message, code)`;
    /// `None` for [`Decision::Allowed`]. Texts and code as in the original daemon.
    pub fn failure(self) -> Option<(&'static str, i32)> {
        match self {
            Decision::Allowed => None,
            Decision::Denied => Some(("User denied the allocation of new session", -10)),
            Decision::Blocked => Some(("Request denied by throttle protection", -10)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_payloads_match_the_original() {
        assert_eq!(Decision::Allowed.failure(), None);
        assert_eq!(
            Decision::Blocked.failure(),
            Some(("Request denied by throttle protection", -10))
        );
        assert_eq!(Decision::Denied.failure().unwrap().1, -10);
    }

    #[test]
    fn vm_names_are_cleaned_and_cut() {
        assert_eq!(display_name("  a\u{7}b\n "), "ab");
        assert_eq!(display_name(""), "(unnamed)");
        let long = "x".repeat(500);
        let shown = display_name(&long);
        assert_eq!(shown.chars().count(), MAX_VM_NAME_CHARS);
        assert!(shown.ends_with('…'));
    }
}
