//! The trust layer's error: a protocol code and message (shared/spec/protocol.md §4.1, §6.1) plus a
//! detail string that says what exactly failed, for the log and the control panel.

/// What went wrong, mapped to the code and message the original daemon sends in `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustErrorKind {
    /// No keystore source could be loaded or verified (step 3): -12.
    KeystoreInvalid,
    /// The calling domain has no key in any keystore (step 4): -13.
    NotTrusted,
    /// The VMCP endpoint could not be fetched (step 5): -6.
    Fetch,
    /// The VMCP body is not a JSON object (step 6): -5.
    Parse,
    /// A required VMCP field is missing (step 7): -99.
    MissingName,
    MissingSecret,
    MissingSignature,
    /// `diskURL` without `diskChecksum` (step 7): -99.
    DiskUrlWithoutChecksum,
    /// The `signature` field is empty (step 8): -99.
    EmptySignature,
    /// The signature does not verify with the domain's key, or is not base64 (step 8): -12.
    BadSignature,
    /// A local file (keystore, key, local id) cannot be read or written: -6.
    Io,
    /// A bad argument or malformed input to an operator tool: -99.
    Usage,
}

impl TrustErrorKind {
    /// The `HVE_*` code of the original daemon.
    pub fn code(self) -> i32 {
        match self {
            Self::KeystoreInvalid | Self::BadSignature => -12,
            Self::NotTrusted => -13,
            Self::Fetch | Self::Io => -6,
            Self::Parse => -5,
            Self::MissingName
            | Self::MissingSecret
            | Self::MissingSignature
            | Self::DiskUrlWithoutChecksum
            | Self::EmptySignature
            | Self::Usage => -99,
        }
    }

    /// The short message sent to the page (the original's text where it had one).
    pub fn message(self) -> &'static str {
        match self {
            Self::KeystoreInvalid => "Unable to initialize cryptographic store",
            Self::NotTrusted => "The domain is not trusted",
            Self::Fetch => "Unable to contact the VMCP endpoint",
            Self::Parse => "Unable to parse response data as JSON",
            Self::MissingName => "Missing 'name' parameter from the VMCP response",
            Self::MissingSecret => "Missing 'secret' parameter from the VMCP response",
            Self::MissingSignature => "Missing 'signature' parameter from the VMCP response",
            Self::DiskUrlWithoutChecksum => {
                "The VMCP response has a 'diskURL' parameter but no 'diskChecksum'"
            }
            Self::EmptySignature | Self::BadSignature => {
                "The VMCP response signature could not be validated"
            }
            Self::Io => "I/O error",
            Self::Usage => "Usage error",
        }
    }
}

/// A trust failure: [`TrustErrorKind`] plus what exactly failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", .kind.message())]
pub struct TrustError {
    kind: TrustErrorKind,
    detail: String,
}

impl TrustError {
    pub fn new(kind: TrustErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
    pub fn kind(&self) -> TrustErrorKind {
        self.kind
    }
    /// The protocol error code (-12, -13, -6, -5 or -99).
    pub fn code(&self) -> i32 {
        self.kind.code()
    }
    /// The short message for the page's `failed` event.
    pub fn message(&self) -> &'static str {
        self.kind.message()
    }
    /// What exactly failed (for the log and the control panel; not sent to the page).
    pub fn detail(&self) -> &str {
        &self.detail
    }
    pub(crate) fn usage(detail: impl Into<String>) -> Self {
        Self::new(TrustErrorKind::Usage, detail)
    }
    pub(crate) fn io(detail: impl Into<String>) -> Self {
        Self::new(TrustErrorKind::Io, detail)
    }
}
