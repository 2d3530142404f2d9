//! The errors of image downloads, each with the protocol error code the session reports
//! (shared/spec/protocol.md §6.1) and a human-readable detail.

use std::path::PathBuf;

/// `HVE_IO_ERROR`: downloads that failed, disk full, file-system errors.
pub const HVE_IO_ERROR: i32 = -6;
/// `HVE_NOT_VALIDATED`: wrong checksum, malformed checksum or version string.
pub const HVE_NOT_VALIDATED: i32 = -12;
/// `HVE_USAGE_ERROR`: a parameter that can never work (bad URL, bad flavour).
pub const HVE_USAGE_ERROR: i32 = -99;

/// Why an image could not be provided.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MediaError {
    #[error("invalid image parameter: {0}")]
    InvalidInput(String),
    #[error("checksum mismatch for {url}: expected {expected}, got {actual}; the downloaded file was deleted")]
    ChecksumMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("the server sent a malformed checksum or version for {url}: {detail}")]
    BadRemoteText { url: String, detail: String },
    #[error("download of {url} failed after {attempts} attempt(s): {detail}")]
    Download {
        url: String,
        attempts: u32,
        detail: String,
    },
    #[error("download of {url} failed: the server answered HTTP {status}")]
    HttpStatus { url: String, status: u16 },
    #[error(
        "not enough free disk space in {dir}: {needed} bytes needed, {available} bytes available"
    )]
    NoSpace {
        dir: PathBuf,
        needed: u64,
        available: u64,
    },
    #[error("the image {path} is not a valid gzip file: {detail}; it was deleted")]
    Gunzip { path: PathBuf, detail: String },
    #[error("file-system error on {path}: {detail}")]
    Io { path: PathBuf, detail: String },
    #[error("the image cache is shutting down")]
    Shutdown,
}

impl MediaError {
    /// The protocol error code (`HVE_*`) to report in a `failed` event.
    pub fn code(&self) -> i32 {
        match self {
            MediaError::InvalidInput(_) => HVE_USAGE_ERROR,
            MediaError::ChecksumMismatch { .. } | MediaError::BadRemoteText { .. } => {
                HVE_NOT_VALIDATED
            }
            MediaError::Download { .. }
            | MediaError::HttpStatus { .. }
            | MediaError::NoSpace { .. }
            | MediaError::Gunzip { .. }
            | MediaError::Io { .. }
            | MediaError::Shutdown => HVE_IO_ERROR,
        }
    }

    /// The detail string for logs and the `failed` event message.
    pub fn detail(&self) -> String {
        self.to_string()
    }

    pub(crate) fn io(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        MediaError::Io {
            path: path.into(),
            detail: e.to_string(),
        }
    }
}

/// True when an I/O error means the disk (or quota) is full.
pub(crate) fn is_no_space(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(28) | Some(122)) // ENOSPC, EDQUOT on Linux
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_protocol() {
        let mismatch = MediaError::ChecksumMismatch {
            url: "u".into(),
            expected: "a".into(),
            actual: "b".into(),
        };
        assert_eq!(mismatch.code(), -12);
        assert!(mismatch.detail().contains("expected a"));
        let space = MediaError::NoSpace {
            dir: "/x".into(),
            needed: 10,
            available: 1,
        };
        assert_eq!(space.code(), -6);
        assert_eq!(MediaError::InvalidInput("x".into()).code(), -99);
    }
}
