//! The persisted form of a session (one JSON file per session in the data dir's `sessions/` folder,
//! written atomically): everything needed to find and continue it after a restart. Never the secret.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::params::SessionParams;
use super::secret::SecretHash;
use crate::hypervisor::{VmHandle, VmSpec};
use crate::protocol::SessionState;
use crate::store::{read_json, write_json_atomic};

/// A created VM: how it was specified and how to find it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmRecord {
    pub spec: VmSpec,
    pub handle: VmHandle,
}

/// One session on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Format version of this file.
    pub version: u32,
    pub secret: SecretHash,
    pub params: SessionParams,
    /// The last start values (macro values of `userData`).
    pub user_values: BTreeMap<String, String>,
    /// Properties set by `setProperty`.
    pub properties: BTreeMap<String, String>,
    /// The origin that created the session (`CallerOrigin::serialized()`).
    pub origin: String,
    pub domain: String,
    /// The last state the session reached.
    pub state: SessionState,
    pub vm: Option<VmRecord>,
    /// The user or the page paused, saved or stopped the VM by hand (idle control leaves it so).
    #[serde(default)]
    pub held_by_hand: bool,
    /// The user's idle policy for this session (control panel); wins over `params`' `daemon*` values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_policy: Option<crate::idle::IdlePolicy>,
}

impl SessionRecord {
    pub const VERSION: u32 = 1;

    /// The file name stem and VM name for a session name: safe for files and hypervisor objects
    /// (`[A-Za-z0-9_-]{1,64}`), distinct for distinct session names.
    pub fn vm_name(session_name: &str) -> String {
        let safe: String = session_name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(47)
            .collect();
        let digest = ring::digest::digest(&ring::digest::SHA256, session_name.as_bytes());
        format!("{safe}-{}", &hex::encode(digest)[..16])
    }

    /// Where this session's record lives.
    pub fn path(sessions_dir: &Path, session_name: &str) -> PathBuf {
        sessions_dir.join(format!("{}.json", Self::vm_name(session_name)))
    }

    pub fn save(&self, sessions_dir: &Path) -> anyhow::Result<()> {
        write_json_atomic(&Self::path(sessions_dir, &self.params.name), self)
    }

    pub fn delete(sessions_dir: &Path, session_name: &str) -> std::io::Result<()> {
        match std::fs::remove_file(Self::path(sessions_dir, session_name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Loads every record of `sessions_dir`. Unreadable files are reported, not fatal.
    pub fn load_all(sessions_dir: &Path) -> Vec<Result<SessionRecord, anyhow::Error>> {
        let Ok(entries) = std::fs::read_dir(sessions_dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            match read_json::<SessionRecord>(&path) {
                Ok(Some(r)) if r.version == Self::VERSION => out.push(Ok(r)),
                Ok(Some(r)) => out.push(Err(anyhow::anyhow!(
                    "{}: unknown record version {}",
                    path.display(),
                    r.version
                ))),
                Ok(None) => {}
                Err(e) => out.push(Err(e)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_names_are_safe_and_distinct() {
        let a = SessionRecord::vm_name("a+b");
        let b = SessionRecord::vm_name("a~b");
        assert_ne!(a, b);
        assert!(
            a.len() <= 64
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert!(SessionRecord::vm_name(&"x".repeat(64)).len() <= 64);
    }

    #[test]
    fn round_trip_without_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let r = SessionRecord {
            version: SessionRecord::VERSION,
            secret: SecretHash::new("pw-123"),
            params: SessionParams::defaults("vm".into()),
            user_values: BTreeMap::new(),
            properties: BTreeMap::new(),
            origin: "http://test.local".into(),
            domain: "test.local".into(),
            state: SessionState::PowerOff,
            vm: None,
            held_by_hand: false,
            user_policy: crate::idle::IdlePolicy::validate(1, 10, 90, 0).ok(),
        };
        r.save(dir.path()).unwrap();
        let text = std::fs::read_to_string(SessionRecord::path(dir.path(), "vm")).unwrap();
        assert!(!text.contains("pw-123"));
        let all = SessionRecord::load_all(dir.path());
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].as_ref().unwrap(), &r);
        SessionRecord::delete(dir.path(), "vm").unwrap();
        assert!(SessionRecord::load_all(dir.path()).is_empty());
    }
}
