//! The steps of `requestSession` and of starting a VM that other modules implement, as traits (ports).
//! The daemon only sees these; `trust`, `consent` and `media` provide the real implementations and the
//! tests provide fakes. Each failure carries the wire code the page receives in `failed [msg, code]`.

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::protocol::CallerOrigin;
use crate::protocol::ErrorCode;

/// Why a VMCP could not be obtained or trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({detail})")]
pub struct VmcpFailure {
    /// The text sent to the page, e.g. "The domain is not trusted".
    pub message: String,
    /// One of -12 (not validated), -13 (not trusted), -6 (I/O), -5 (not JSON), -99 (usage).
    pub code: ErrorCode,
    /// For the log: what exactly went wrong.
    pub detail: String,
}

/// Fetches a VMCP URL on behalf of a caller and verifies it against the domain keystore.
#[async_trait]
pub trait VmcpSource: Send + Sync + 'static {
    /// Appends `cvm_salt`/`cvm_hostid`, fetches `url`, checks the caller's `domain` is trusted and the
    /// signature is valid, and returns the verified top-level object of the document.
    async fn fetch_verified(
        &self,
        url: &str,
        origin: &CallerOrigin,
    ) -> Result<Map<String, Value>, VmcpFailure>;
}

/// What the consent dialog shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRequest {
    /// The origin, serialised (`CallerOrigin::serialized()`): the unit decisions are keyed by.
    pub origin: String,
    /// The domain (the origin's host).
    pub domain: String,
    pub vm_name: String,
    pub cpus: u32,
    pub memory_mb: u32,
    pub disk_mb: u32,
    /// The session asks for idle control (`daemonControlled = 1`).
    pub idle_control: bool,
    /// The domain is in the trusted keystore.
    pub trusted: bool,
}

/// The user's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentDecision {
    Allowed,
    /// The user said no (or the dialog timed out).
    Denied,
    /// The origin is blocked by the throttle rule: no dialog was shown (code -10).
    Blocked,
}

/// Asks the user whether a website may create a new session.
#[async_trait]
pub trait ConsentGate: Send + Sync + 'static {
    async fn ask(&self, request: ConsentRequest) -> ConsentDecision;
}

// The image port is the session's own (sessions call it when they create their VM); re-exported here
// so all ports are in one place.
pub use crate::session::{
    ImageFailure, ImageHold, ImageRequest, ImageSource, LocalImage, ProgressFn,
};
