//! The per-session idle parameters (`daemonControlled`, `daemonMinCap`, `daemonMaxCap`, `daemonFlags`)
//! and their validation, shared by the VMCP parser, the `set` action and the control panel.

use serde::{Deserialize, Serialize};

/// `DF_SUSPEND`: save the VM to disk (hibernate) instead of pausing it while the user is active.
pub const DF_SUSPEND: u32 = 0x1;
/// `DF_AUTOSTART`: start a powered-off controlled VM when the user goes idle.
pub const DF_AUTOSTART: u32 = 0x2;
/// `DF_AUTODESTROY` of the 1.x daemon (destroy a VM that is down). Refused: deleting a volunteer's VM
/// behind their back is not something a web page may ask for.
pub const DF_AUTODESTROY: u32 = 0x4;
/// Every flag bit this daemon implements.
pub const KNOWN_FLAGS: u32 = DF_SUSPEND | DF_AUTOSTART;

/// The names of the four parameters as they appear in the VMCP, `set` and `stateVariables`.
pub const PARAM_CONTROLLED: &str = "daemonControlled";
pub const PARAM_MIN_CAP: &str = "daemonMinCap";
pub const PARAM_MAX_CAP: &str = "daemonMaxCap";
pub const PARAM_FLAGS: &str = "daemonFlags";

/// A validated idle policy of one session. Build it with [`IdlePolicy::validate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct IdlePolicy {
    /// `daemonControlled = 1`: the idle controller may act on this session.
    pub controlled: bool,
    /// CPU cap (percent) while the user is active; 0 means "paused (or saved) while active".
    pub min_cap: u8,
    /// CPU cap (percent) while the user is idle; used only when `min_cap > 0`.
    pub max_cap: u8,
    /// `DF_*` bits, a subset of [`KNOWN_FLAGS`].
    pub flags: u32,
}

/// Why idle parameters were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("{name} must be a whole number, got {got}")]
    NotANumber { name: &'static str, got: String },
    #[error("{name} must be 0 or 1, got {got}")]
    BadSwitch { name: &'static str, got: i64 },
    #[error("{name} must be between 0 and 100 (percent of one CPU), got {got}")]
    CapOutOfRange { name: &'static str, got: i64 },
    #[error("daemonFlags bit 0x4 (DF_AUTODESTROY) is not supported: the daemon never deletes a VM on its own")]
    AutodestroyRefused,
    #[error("daemonFlags {got:#x} has unknown bits {unknown:#x}; known are DF_SUSPEND (0x1) and DF_AUTOSTART (0x2)")]
    UnknownFlags { got: i64, unknown: i64 },
    #[error("daemonMaxCap must be at least 1 when daemonMinCap is {min_cap} (the VM runs at daemonMaxCap while the user is idle)")]
    MaxCapZero { min_cap: u8 },
    #[error("daemonMaxCap ({max_cap}) is below daemonMinCap ({min_cap}); the VM would get less CPU when the computer is idle than when it is in use")]
    MaxBelowMin { min_cap: u8, max_cap: u8 },
}

/// Checks one parameter on its own (range, flag bits) and returns its value as stored.
///
/// `name` is one of the `PARAM_*` names; any other name is not an idle parameter and yields `Ok(None)`.
/// The `set` action calls this for each idle field, then [`IdlePolicy::validate`] on the merged result.
pub fn validate_param(name: &str, value: i64) -> Result<Option<u32>, ParamError> {
    match name {
        PARAM_CONTROLLED => match value {
            0 | 1 => Ok(Some(value as u32)),
            got => Err(ParamError::BadSwitch {
                name: PARAM_CONTROLLED,
                got,
            }),
        },
        PARAM_MIN_CAP => cap(PARAM_MIN_CAP, value).map(|c| Some(c.into())),
        PARAM_MAX_CAP => cap(PARAM_MAX_CAP, value).map(|c| Some(c.into())),
        PARAM_FLAGS => flags(value).map(Some),
        _ => Ok(None),
    }
}

/// Reads a parameter from JSON: a number or a decimal string (the original stored every value as text).
pub fn param_from_json(name: &'static str, value: &serde_json::Value) -> Result<i64, ParamError> {
    let bad = || ParamError::NotANumber {
        name,
        got: truncate(&value.to_string()),
    };
    match value {
        serde_json::Value::Number(n) => n.as_i64().ok_or_else(bad),
        serde_json::Value::String(s) if s.len() <= 20 => s.trim().parse().map_err(|_| bad()),
        serde_json::Value::Bool(b) => Ok(i64::from(*b)),
        _ => Err(bad()),
    }
}

impl IdlePolicy {
    /// Validates the four parameters together.
    ///
    /// Ranges are always checked. The combination (`daemonMaxCap` ≥ 1 and ≥ `daemonMinCap` when
    /// `daemonMinCap` > 0) is checked only when `controlled`, so a page can set the caps in any order
    /// and switch `daemonControlled` on last.
    pub fn validate(
        controlled: i64,
        min_cap: i64,
        max_cap: i64,
        flag_bits: i64,
    ) -> Result<Self, ParamError> {
        let controlled = validate_param(PARAM_CONTROLLED, controlled)? == Some(1);
        let min_cap = cap(PARAM_MIN_CAP, min_cap)?;
        let max_cap = cap(PARAM_MAX_CAP, max_cap)?;
        let flags = flags(flag_bits)?;
        if controlled && min_cap > 0 {
            if max_cap == 0 {
                return Err(ParamError::MaxCapZero { min_cap });
            }
            if max_cap < min_cap {
                return Err(ParamError::MaxBelowMin { min_cap, max_cap });
            }
        }
        Ok(Self {
            controlled,
            min_cap,
            max_cap,
            flags,
        })
    }

    /// What the controller does with this session, in words (for the control panel and logs).
    pub fn mode(&self) -> PolicyMode {
        if !self.controlled {
            PolicyMode::NotControlled
        } else if self.min_cap > 0 {
            PolicyMode::Cap {
                active: self.min_cap,
                idle: self.max_cap.max(1),
            }
        } else if self.flags & DF_SUSPEND != 0 {
            PolicyMode::Suspend
        } else {
            PolicyMode::Pause
        }
    }

    pub fn autostart(&self) -> bool {
        self.flags & DF_AUTOSTART != 0
    }
}

/// The row of the idle policy table a session is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyMode {
    NotControlled,
    /// `daemonMinCap > 0`: cap = `active` while the user is active, `idle` while idle.
    Cap {
        active: u8,
        idle: u8,
    },
    /// `daemonMinCap = 0`: paused while active, resumed when idle.
    Pause,
    /// `daemonMinCap = 0` with `DF_SUSPEND`: saved to disk while active, restored when idle.
    Suspend,
}

fn cap(name: &'static str, value: i64) -> Result<u8, ParamError> {
    u8::try_from(value)
        .ok()
        .filter(|c| *c <= 100)
        .ok_or(ParamError::CapOutOfRange { name, got: value })
}

fn flags(value: i64) -> Result<u32, ParamError> {
    if value & i64::from(DF_AUTODESTROY) != 0 {
        return Err(ParamError::AutodestroyRefused);
    }
    let unknown = value & !i64::from(KNOWN_FLAGS);
    if unknown != 0 {
        return Err(ParamError::UnknownFlags {
            got: value,
            unknown,
        });
    }
    Ok(value as u32)
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_each_table_row() {
        let cap = IdlePolicy::validate(1, 10, 90, 0).unwrap();
        assert_eq!(
            cap.mode(),
            PolicyMode::Cap {
                active: 10,
                idle: 90
            }
        );
        assert_eq!(
            IdlePolicy::validate(1, 0, 0, 0).unwrap().mode(),
            PolicyMode::Pause
        );
        assert_eq!(
            IdlePolicy::validate(1, 0, 55, 1).unwrap().mode(),
            PolicyMode::Suspend
        );
        let auto = IdlePolicy::validate(1, 0, 0, 3).unwrap();
        assert!(auto.autostart());
        assert_eq!(auto.mode(), PolicyMode::Suspend);
        assert_eq!(
            IdlePolicy::validate(0, 0, 0, 0).unwrap().mode(),
            PolicyMode::NotControlled
        );
    }

    #[test]
    fn cap_bounds_are_exact() {
        assert!(IdlePolicy::validate(1, 100, 100, 0).is_ok());
        assert!(IdlePolicy::validate(1, 1, 1, 0).is_ok());
        assert_eq!(
            IdlePolicy::validate(1, 101, 101, 0),
            Err(ParamError::CapOutOfRange {
                name: PARAM_MIN_CAP,
                got: 101
            })
        );
        assert_eq!(
            IdlePolicy::validate(1, 5, -1, 0),
            Err(ParamError::CapOutOfRange {
                name: PARAM_MAX_CAP,
                got: -1
            })
        );
        assert!(IdlePolicy::validate(0, 0, 256, 0).is_err());
    }

    #[test]
    fn max_cap_must_be_usable_when_controlled() {
        assert_eq!(
            IdlePolicy::validate(1, 20, 0, 0),
            Err(ParamError::MaxCapZero { min_cap: 20 })
        );
        assert_eq!(
            IdlePolicy::validate(1, 20, 19, 0),
            Err(ParamError::MaxBelowMin {
                min_cap: 20,
                max_cap: 19
            })
        );
        // Not controlled yet: the page may set the caps first and switch control on last.
        assert!(IdlePolicy::validate(0, 20, 0, 0).is_ok());
        // minCap = 0 ignores maxCap.
        assert!(IdlePolicy::validate(1, 0, 0, 0).is_ok());
    }

    #[test]
    fn unknown_and_refused_flags() {
        assert_eq!(
            IdlePolicy::validate(1, 0, 0, 4),
            Err(ParamError::AutodestroyRefused)
        );
        let err = IdlePolicy::validate(1, 0, 0, 0x18).unwrap_err();
        assert_eq!(
            err,
            ParamError::UnknownFlags {
                got: 0x18,
                unknown: 0x18
            }
        );
        assert!(err.to_string().contains("0x18"));
        assert!(IdlePolicy::validate(1, 0, 0, -1).is_err());
    }

    #[test]
    fn controlled_is_a_switch() {
        assert_eq!(
            IdlePolicy::validate(2, 0, 0, 0),
            Err(ParamError::BadSwitch {
                name: PARAM_CONTROLLED,
                got: 2
            })
        );
    }

    #[test]
    fn single_params() {
        assert_eq!(validate_param(PARAM_MIN_CAP, 42), Ok(Some(42)));
        assert_eq!(validate_param(PARAM_FLAGS, 3), Ok(Some(3)));
        assert!(validate_param(PARAM_MAX_CAP, 1000).is_err());
        assert_eq!(validate_param("cpus", 1000), Ok(None));
    }

    #[test]
    fn json_numbers_and_strings() {
        assert_eq!(param_from_json(PARAM_MIN_CAP, &json!(25)), Ok(25));
        assert_eq!(param_from_json(PARAM_MIN_CAP, &json!("25")), Ok(25));
        assert_eq!(param_from_json(PARAM_CONTROLLED, &json!(true)), Ok(1));
        assert!(param_from_json(PARAM_MIN_CAP, &json!(2.5)).is_err());
        assert!(param_from_json(PARAM_MIN_CAP, &json!("x")).is_err());
        let long = "9".repeat(10_000);
        let err = param_from_json(PARAM_MIN_CAP, &json!(long)).unwrap_err();
        assert!(err.to_string().len() < 120, "error message is bounded");
    }
}
