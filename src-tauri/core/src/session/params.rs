//! A session's typed, validated parameters (VMCP fields, `set` keys, idle-control keys) with the
//! original's defaults (shared/spec/protocol.md §4.4, §5.4) and our bounds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::idle::params as idle;
use crate::idle::IdlePolicy;

/// Bounds on parameters. Values outside are refused with a clear message.
pub const CPUS: (u32, u32) = (1, 64);
pub const MEMORY_MB: (u32, u32) = (32, 256 * 1024);
pub const DISK_MB: (u32, u32) = (0, 2 * 1024 * 1024);
/// The largest `userData` template accepted (the original's context ISO holds 309 248 bytes).
pub const MAX_USER_DATA: usize = 300 * 1024;
/// At most this many extra (unknown) VMCP keys or properties, each at most `MAX_VALUE` bytes.
pub const MAX_EXTRA_KEYS: usize = 256;
pub const MAX_KEY: usize = 128;
pub const MAX_VALUE: usize = 64 * 1024;

/// Why a parameter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid '{key}': {reason}")]
pub struct ParamError {
    pub key: String,
    pub reason: String,
}

fn bad(key: &str, reason: impl Into<String>) -> ParamError {
    ParamError {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// The parameters of one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionParams {
    /// Session and VM name: `[A-Za-z0-9+_~-]{1,64}`; identifies the session across domains.
    pub name: String,
    pub cpus: u32,
    pub memory: u32,
    pub disk: u32,
    pub execution_cap: u8,
    pub flags: u32,
    pub api_port: u16,
    pub cernvm_version: String,
    pub cernvm_flavor: String,
    pub disk_url: String,
    pub disk_checksum: String,
    pub user_data: String,
    /// Parameter names that `start` values and `setProperty` may override.
    pub can_override: Vec<String>,
    pub ip: String,
    pub daemon_controlled: bool,
    pub daemon_min_cap: u8,
    pub daemon_max_cap: u8,
    pub daemon_flags: u32,
    /// Any other string or int VMCP key, stored and otherwise unused.
    pub extra: BTreeMap<String, String>,
}

/// Keys `set` accepts (the original's list plus the idle-control keys).
pub const SETTABLE: &[&str] = &[
    "cpus",
    "disk",
    "memory",
    "cernvmVersion",
    "cernvmFlavor",
    "executionCap",
    "flags",
    "daemonControlled",
    "daemonMinCap",
    "daemonMaxCap",
    "daemonFlags",
];

/// VMCP keys that are not session parameters.
const NOT_STORED: &[&str] = &["secret", "signature", "name"];

impl SessionParams {
    /// Builds validated parameters from a flattened VMCP (§2.1 typing), defaults for absent keys.
    pub fn from_vmcp(vmcp: &BTreeMap<String, String>) -> Result<Self, ParamError> {
        let name = vmcp.get("name").cloned().unwrap_or_default();
        validate_name(&name)?;
        let mut params = Self::defaults(name);
        for (key, value) in vmcp {
            if NOT_STORED.contains(&key.as_str()) {
                continue;
            }
            params.apply(key, value)?;
        }
        if !params.disk_url.is_empty() && params.disk_checksum.is_empty() {
            return Err(bad("diskURL", "a diskURL needs a diskChecksum"));
        }
        Ok(params)
    }

    /// The original's defaults for a new session.
    pub fn defaults(name: String) -> Self {
        Self {
            name,
            cpus: 1,
            memory: 512,
            disk: 1024,
            execution_cap: 100,
            flags: 0,
            api_port: 80,
            cernvm_version: "latest".into(),
            cernvm_flavor: "prod".into(),
            disk_url: String::new(),
            disk_checksum: String::new(),
            user_data: String::new(),
            can_override: Vec::new(),
            ip: String::new(),
            daemon_controlled: false,
            daemon_min_cap: 0,
            daemon_max_cap: 0,
            daemon_flags: 0,
            extra: BTreeMap::new(),
        }
    }

    /// Sets one parameter by its wire name after validating it. Unknown keys go to `extra`.
    pub fn apply(&mut self, key: &str, value: &str) -> Result<(), ParamError> {
        match key {
            "cpus" => self.cpus = int_in(key, value, CPUS.0, CPUS.1)?,
            "memory" => self.memory = int_in(key, value, MEMORY_MB.0, MEMORY_MB.1)?,
            "disk" => self.disk = int_in(key, value, DISK_MB.0, DISK_MB.1)?,
            "executionCap" => self.execution_cap = int_in(key, value, 1, 100)? as u8,
            "flags" => self.flags = int_in(key, value, 0, 255)?,
            "apiPort" => self.api_port = int_in(key, value, 1, 65535)? as u16,
            "cernvmVersion" => self.cernvm_version = token(key, value, 32, ".")?,
            "cernvmFlavor" => self.cernvm_flavor = token(key, value, 32, "")?,
            "diskURL" => self.disk_url = disk_url(value)?,
            "diskChecksum" => self.disk_checksum = checksum(value)?,
            "userData" => {
                if value.len() > MAX_USER_DATA {
                    return Err(bad(key, format!("longer than {MAX_USER_DATA} bytes")));
                }
                self.user_data = value.to_string();
            }
            "canOverride" => {
                self.can_override = value
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .take(64)
                    .collect()
            }
            "ip" => self.ip = short_text(key, value)?,
            idle::PARAM_CONTROLLED
            | idle::PARAM_MIN_CAP
            | idle::PARAM_MAX_CAP
            | idle::PARAM_FLAGS => self.apply_idle(key, value)?,
            "name" => return Err(bad(key, "the session name cannot be changed")),
            _ => {
                if key.len() > MAX_KEY || value.len() > MAX_VALUE {
                    return Err(bad(key, "key or value too long"));
                }
                if !self.extra.contains_key(key) && self.extra.len() >= MAX_EXTRA_KEYS {
                    return Err(bad(key, "too many parameters"));
                }
                self.extra.insert(key.to_string(), value.to_string());
            }
        }
        Ok(())
    }

    /// Sets one idle-control parameter with the idle module's rules (ranges, flag bits, and the
    /// combination of the four once `daemonControlled` is 1); nothing changes when it is refused.
    fn apply_idle(&mut self, key: &str, value: &str) -> Result<(), ParamError> {
        let idle_err = |e: idle::ParamError| bad(key, e.to_string());
        let number = value
            .trim()
            .parse::<i64>()
            .map_err(|_| bad(key, format!("{value:?} is not an integer")))?;
        let checked = idle::validate_param(key, number)
            .map_err(idle_err)?
            .unwrap_or_default();
        let mut next = [
            i64::from(self.daemon_controlled),
            i64::from(self.daemon_min_cap),
            i64::from(self.daemon_max_cap),
            i64::from(self.daemon_flags),
        ];
        let slot = match key {
            idle::PARAM_CONTROLLED => 0,
            idle::PARAM_MIN_CAP => 1,
            idle::PARAM_MAX_CAP => 2,
            _ => 3,
        };
        next[slot] = i64::from(checked);
        let policy = IdlePolicy::validate(next[0], next[1], next[2], next[3]).map_err(idle_err)?;
        self.set_idle_policy(policy);
        Ok(())
    }

    /// The session's idle policy (validated when it was set).
    pub fn idle_policy(&self) -> IdlePolicy {
        IdlePolicy {
            controlled: self.daemon_controlled,
            min_cap: self.daemon_min_cap,
            max_cap: self.daemon_max_cap,
            flags: self.daemon_flags,
        }
    }

    /// Whether `key` is one of the four idle-control keys (`daemonControlled`, ...).
    pub fn is_idle_key(key: &str) -> bool {
        matches!(
            key,
            idle::PARAM_CONTROLLED | idle::PARAM_MIN_CAP | idle::PARAM_MAX_CAP | idle::PARAM_FLAGS
        )
    }

    /// Replaces the idle policy (already validated).
    pub fn set_idle_policy(&mut self, p: IdlePolicy) {
        self.daemon_controlled = p.controlled;
        self.daemon_min_cap = p.min_cap;
        self.daemon_max_cap = p.max_cap;
        self.daemon_flags = p.flags;
    }

    /// Whether `key` may be overridden by start values and `setProperty` (VMCP `canOverride`).
    pub fn can_override(&self, key: &str) -> bool {
        key != "name" && self.can_override.iter().any(|k| k == key)
    }

    /// The first element of `stateVariables` (§2.8), plus the idle-control keys.
    pub fn config_object(&self, api_port: Option<u16>) -> Value {
        let mut m = Map::new();
        m.insert("apiURL".into(), json!(api_url(api_port)));
        m.insert("rdpURL".into(), json!("127.0.0.1:@"));
        m.insert("ip".into(), json!(self.ip));
        m.insert("cpus".into(), json!(self.cpus));
        m.insert("disk".into(), json!(self.disk));
        m.insert("memory".into(), json!(self.memory));
        m.insert("cernvmVersion".into(), json!(self.cernvm_version));
        m.insert("cernvmFlavor".into(), json!(self.cernvm_flavor));
        m.insert("executionCap".into(), json!(self.execution_cap));
        m.insert("flags".into(), json!(self.flags));
        m.insert(
            "daemonControlled".into(),
            json!(u8::from(self.daemon_controlled)),
        );
        m.insert("daemonMinCap".into(), json!(self.daemon_min_cap));
        m.insert("daemonMaxCap".into(), json!(self.daemon_max_cap));
        m.insert("daemonFlags".into(), json!(self.daemon_flags));
        Value::Object(m)
    }

    /// The value `get key` returns (§2.5.4): always a string, `""` for unknown keys.
    pub fn get(&self, key: &str, api_port: Option<u16>) -> String {
        match key {
            "apiURL" => format!("{}/", api_url(api_port)),
            "rdpURL" => "127.0.0.1:@".into(),
            "ip" => self.ip.clone(),
            "cpus" => self.cpus.to_string(),
            "disk" => self.disk.to_string(),
            "memory" => self.memory.to_string(),
            "cernvmVersion" => self.cernvm_version.clone(),
            "cernvmFlavor" => self.cernvm_flavor.clone(),
            "executionCap" => self.execution_cap.to_string(),
            "flags" => self.flags.to_string(),
            "daemonControlled" => u8::from(self.daemon_controlled).to_string(),
            "daemonMinCap" => self.daemon_min_cap.to_string(),
            "daemonMaxCap" => self.daemon_max_cap.to_string(),
            "daemonFlags" => self.daemon_flags.to_string(),
            _ => String::new(),
        }
    }
}

/// `http://127.0.0.1:<port>` (no trailing slash), `:80` before a port is known (§2.8).
pub fn api_url(api_port: Option<u16>) -> String {
    format!("http://127.0.0.1:{}", api_port.unwrap_or(80))
}

/// Checks a session name: `[A-Za-z0-9+_~-]{1,64}` (the original's charset).
pub fn validate_name(name: &str) -> Result<(), ParamError> {
    if name.is_empty() || name.len() > 64 {
        return Err(bad("name", "must have 1 to 64 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+-_~".contains(&b))
    {
        return Err(bad(
            "name",
            "may contain only letters, digits and + - _ ~ (no spaces)",
        ));
    }
    Ok(())
}

fn int_in(key: &str, value: &str, min: u32, max: u32) -> Result<u32, ParamError> {
    let v = value.trim();
    let n: i64 = v
        .parse()
        .map_err(|_| bad(key, format!("{value:?} is not an integer")))?;
    if n < i64::from(min) || n > i64::from(max) {
        return Err(bad(key, format!("{n} is outside {min}..={max}")));
    }
    Ok(n as u32)
}

fn token(key: &str, value: &str, max: usize, extra: &str) -> Result<String, ParamError> {
    if value.is_empty()
        || value.len() > max
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || extra.contains(c))
    {
        return Err(bad(
            key,
            format!("must be 1 to {max} letters, digits, '-', '_'{extra}"),
        ));
    }
    Ok(value.to_string())
}

fn short_text(key: &str, value: &str) -> Result<String, ParamError> {
    if value.len() > 256 || value.chars().any(char::is_control) {
        return Err(bad(key, "must be at most 256 printable characters"));
    }
    Ok(value.to_string())
}

fn disk_url(value: &str) -> Result<String, ParamError> {
    if value.is_empty() {
        return Ok(String::new());
    }
    if value.len() > 4096 {
        return Err(bad("diskURL", "longer than 4096 bytes"));
    }
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            Ok(value.to_string())
        }
        _ => Err(bad("diskURL", "must be an http:// or https:// URL")),
    }
}

fn checksum(value: &str) -> Result<String, ParamError> {
    if value.is_empty() {
        return Ok(String::new());
    }
    let lower = value.to_ascii_lowercase();
    if lower.len() != 64 || !lower.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("diskChecksum", "must be a hex SHA-256 (64 hex digits)"));
    }
    Ok(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vmcp(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_the_original() {
        let p = SessionParams::from_vmcp(&vmcp(&[("name", "vm"), ("secret", "s")])).unwrap();
        assert_eq!(
            (p.cpus, p.memory, p.disk, p.execution_cap),
            (1, 512, 1024, 100)
        );
        assert_eq!(p.cernvm_version, "latest");
        assert_eq!(p.get("apiURL", None), "http://127.0.0.1:80/");
        assert_eq!(p.get("executionCap", None), "100");
        assert_eq!(p.get("nonsense", None), "");
        assert!(!p.extra.contains_key("secret"));
    }

    #[test]
    fn refuses_bad_values() {
        for (k, v) in [
            ("cpus", "0"),
            ("cpus", "1000"),
            ("cpus", "two"),
            ("memory", "-5"),
            ("executionCap", "101"),
            ("daemonFlags", "8"),
            ("daemonFlags", "4"),
            ("daemonMinCap", "101"),
            ("daemonMaxCap", "-1"),
            ("daemonControlled", "2"),
            ("cernvmVersion", "../x"),
            ("diskURL", "file:///etc/passwd"),
            ("diskChecksum", "abc"),
        ] {
            let e = SessionParams::from_vmcp(&vmcp(&[("name", "vm"), (k, v)])).unwrap_err();
            assert_eq!(e.key, k, "{k}={v}");
        }
        assert!(SessionParams::from_vmcp(&vmcp(&[("name", "My first VM")])).is_err());
        assert!(SessionParams::from_vmcp(&vmcp(&[("name", "")])).is_err());
        let e = SessionParams::from_vmcp(&vmcp(&[("name", "vm"), ("diskURL", "http://h/x")]))
            .unwrap_err();
        assert_eq!(e.key, "diskURL");
    }

    #[test]
    fn idle_keys_are_stored_and_shown() {
        let p = SessionParams::from_vmcp(&vmcp(&[
            ("name", "vm"),
            ("daemonControlled", "1"),
            ("daemonMinCap", "10"),
            ("daemonMaxCap", "90"),
            ("daemonFlags", "3"),
        ]))
        .unwrap();
        assert_eq!(p.idle_policy(), IdlePolicy::validate(1, 10, 90, 3).unwrap());
        let c = p.config_object(Some(4000));
        assert_eq!(c["daemonControlled"], 1);
        assert_eq!(c["daemonMaxCap"], 90);
        assert_eq!(c["apiURL"], "http://127.0.0.1:4000");
    }

    #[test]
    fn idle_keys_follow_the_idle_rules() {
        // The combination is checked once controlled: max below min is refused, and nothing changes.
        let mut p = SessionParams::defaults("vm".into());
        for (k, v) in [
            ("daemonMinCap", "50"),
            ("daemonMaxCap", "80"),
            ("daemonControlled", "1"),
        ] {
            p.apply(k, v).unwrap();
        }
        let before = p.clone();
        let e = p.apply("daemonMaxCap", "20").unwrap_err();
        assert_eq!(e.key, "daemonMaxCap");
        assert!(e.reason.contains("below daemonMinCap"), "{e}");
        let e = p.apply("daemonFlags", "4").unwrap_err();
        assert!(e.reason.contains("DF_AUTODESTROY"), "{e}");
        assert_eq!(p, before);
        // A VMCP with max < min is refused too.
        assert!(SessionParams::from_vmcp(&vmcp(&[
            ("name", "vm"),
            ("daemonControlled", "1"),
            ("daemonMinCap", "60"),
            ("daemonMaxCap", "30"),
        ]))
        .is_err());
    }
}
