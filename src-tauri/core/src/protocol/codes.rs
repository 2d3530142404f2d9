//! Error codes (`HVE_*`, §6.1), session state codes (§5.5) and the flag bits the daemon reads (§6.2, §6.4).

/// An error code as sent in `failed [message, code]` (shared/spec/protocol.md §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ErrorCode {
    /// `HVE_CREATE_ERROR`; also the default code of a progress `failed`.
    CreateError = -1,
    ModifyError = -2,
    ControlError = -3,
    DeleteError = -4,
    /// `HVE_QUERY_ERROR`: the VMCP is not valid JSON.
    QueryError = -5,
    /// `HVE_IO_ERROR`: VMCP fetch or download failed.
    IoError = -6,
    /// `HVE_EXTERNAL_ERROR`: unexpected failure, bad domain key, hypervisor command failure.
    ExternalError = -7,
    /// `HVE_INVALID_STATE`: the session cannot do this in its current state.
    InvalidState = -8,
    NotFound = -9,
    /// `HVE_NOT_ALLOWED`: the user denied, or the throttle blocks.
    NotAllowed = -10,
    /// `HVE_NOT_SUPPORTED`: e.g. no VM backend configured.
    NotSupported = -11,
    /// `HVE_NOT_VALIDATED`: bad signature, invalid keystore.
    NotValidated = -12,
    /// `HVE_NOT_TRUSTED`: the domain is not in the keystore.
    NotTrusted = -13,
    StillWorking = -14,
    /// `HVE_PASSWORD_DENIED`: wrong session secret.
    PasswordDenied = -20,
    /// `HVE_USAGE_ERROR`: missing or invalid parameters.
    UsageError = -99,
    NotImplemented = -100,
}

impl ErrorCode {
    /// The number sent on the wire.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// Maps a wire number back to a code (`None` for numbers libcernvm does not define as errors).
    pub fn from_code(code: i32) -> Option<Self> {
        use ErrorCode::*;
        Some(match code {
            -1 => CreateError,
            -2 => ModifyError,
            -3 => ControlError,
            -4 => DeleteError,
            -5 => QueryError,
            -6 => IoError,
            -7 => ExternalError,
            -8 => InvalidState,
            -9 => NotFound,
            -10 => NotAllowed,
            -11 => NotSupported,
            -12 => NotValidated,
            -13 => NotTrusted,
            -14 => StillWorking,
            -20 => PasswordDenied,
            -99 => UsageError,
            -100 => NotImplemented,
            _ => return None,
        })
    }

    /// libcernvm's human-readable name (§6.1), used as the short string of structured errors.
    pub fn short(self) -> &'static str {
        use ErrorCode::*;
        match self {
            CreateError => "Creation error",
            ModifyError => "Modification error",
            ControlError => "Control error",
            DeleteError => "Delete error",
            QueryError => "Query error",
            IoError => "I/O error",
            ExternalError => "External error",
            InvalidState => "Not in a valid state",
            NotFound => "Not found",
            NotAllowed => "Not allowed",
            NotSupported => "Not supported",
            NotValidated => "Not validated",
            NotTrusted => "Not trusted",
            StillWorking => "Still working",
            PasswordDenied => "Password denied",
            UsageError => "Usage error",
            NotImplemented => "Not implemented",
        }
    }
}

/// A session's state as reported in `stateChanged` (2.x numbering, §5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[repr(u8)]
pub enum SessionState {
    /// No VM exists (new session, or closed).
    Missing = 0,
    /// Defined but never produced (kept for the numbering).
    Available = 1,
    PowerOff = 2,
    Saved = 3,
    Paused = 4,
    Running = 5,
}

impl SessionState {
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The JS `stateName` of this state.
    pub fn js_name(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Available => "available",
            Self::PowerOff => "poweroff",
            Self::Saved => "saved",
            Self::Paused => "paused",
            Self::Running => "running",
        }
    }
}

/// `HVF_SYSTEM_64BIT`: 64-bit guest.
pub const HVF_SYSTEM_64BIT: u32 = 1;
/// `HVF_DEPLOYMENT_HDD`: boot from the `diskURL` image instead of the µCernVM ISO.
pub const HVF_DEPLOYMENT_HDD: u32 = 2;
/// `UI_OK`: the user's "Ok" in `interactionCallback`.
pub const UI_OK: i64 = 1;
/// `UI_MASK_BUTTON`: the button part of an interaction result.
pub const UI_MASK_BUTTON: i64 = 0xFF;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_match_the_spec() {
        for c in [
            -1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12, -13, -14, -20, -99, -100,
        ] {
            assert_eq!(ErrorCode::from_code(c).unwrap().code(), c);
        }
        assert_eq!(ErrorCode::from_code(0), None);
        assert_eq!(ErrorCode::NotTrusted.code(), -13);
        assert_eq!(SessionState::Running.code(), 5);
        assert_eq!(SessionState::Saved.js_name(), "saved");
    }
}
