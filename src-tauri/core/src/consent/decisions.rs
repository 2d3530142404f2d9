//! The per-origin decisions that outlive a run: blocked origins and remembered "allow" answers,
//! kept in `consent.json` in the data dir (written atomically).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::store::{read_json, write_json_atomic};

/// The file name in the data dir.
pub const DECISIONS_FILE: &str = "consent.json";
const FORMAT_VERSION: u32 = 1;

/// One origin in the "Blocked sites" or "Remembered sites" list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteEntry {
    pub origin: String,
    /// When it was blocked or remembered, in seconds since the Unix epoch.
    pub since: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    #[serde(default)]
    blocked: Vec<SiteEntry>,
    #[serde(default)]
    allowed: Vec<SiteEntry>,
}

/// The decisions in memory, and where they are saved.
#[derive(Debug)]
pub(crate) struct SiteDecisions {
    path: PathBuf,
    blocked: BTreeMap<String, u64>,
    allowed: BTreeMap<String, u64>,
}

impl SiteDecisions {
    /// Loads `consent.json` from `data_dir`. A damaged file is kept aside (renamed with a
    /// `.damaged` suffix, never deleted) and the lists start empty; the error is logged.
    pub(crate) fn load(data_dir: &Path) -> Self {
        let path = data_dir.join(DECISIONS_FILE);
        let mut me = Self {
            path,
            blocked: BTreeMap::new(),
            allowed: BTreeMap::new(),
        };
        match read_json::<OnDisk>(&me.path) {
            Ok(Some(disk)) if disk.version == FORMAT_VERSION => {
                me.blocked = disk
                    .blocked
                    .into_iter()
                    .map(|e| (e.origin, e.since))
                    .collect();
                me.allowed = disk
                    .allowed
                    .into_iter()
                    .map(|e| (e.origin, e.since))
                    .collect();
            }
            Ok(Some(disk)) => {
                tracing::error!(path = %me.path.display(), version = disk.version,
                    "consent decisions written by an unknown version; keeping the file aside");
                me.keep_aside();
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!("{e:#}; keeping the file aside and starting with no blocked sites");
                me.keep_aside();
            }
        }
        me
    }

    fn keep_aside(&self) {
        let aside = self.path.with_extension("json.damaged");
        if let Err(e) = std::fs::rename(&self.path, &aside) {
            tracing::error!("cannot move {} aside: {e}", self.path.display());
        }
    }

    fn save(&self) -> anyhow::Result<()> {
        let list = |m: &BTreeMap<String, u64>| {
            m.iter()
                .map(|(origin, since)| SiteEntry {
                    origin: origin.clone(),
                    since: *since,
                })
                .collect()
        };
        write_json_atomic(
            &self.path,
            &OnDisk {
                version: FORMAT_VERSION,
                blocked: list(&self.blocked),
                allowed: list(&self.allowed),
            },
        )
    }

    pub(crate) fn is_blocked(&self, origin: &str) -> bool {
        self.blocked.contains_key(origin)
    }
    pub(crate) fn is_remembered(&self, origin: &str) -> bool {
        self.allowed.contains_key(origin)
    }

    /// Blocks `origin` (and forgets a remembered "allow" for it); saved at once.
    pub(crate) fn block(&mut self, origin: &str) -> anyhow::Result<()> {
        self.allowed.remove(origin);
        self.blocked.insert(origin.to_string(), unix_now());
        self.save()
    }

    /// Remembers "allow" for `origin`; saved at once.
    pub(crate) fn remember(&mut self, origin: &str) -> anyhow::Result<()> {
        self.allowed.insert(origin.to_string(), unix_now());
        self.save()
    }

    /// Removes `origin` from the blocked list; `Ok(false)` when it was not there.
    pub(crate) fn unblock(&mut self, origin: &str) -> anyhow::Result<bool> {
        if self.blocked.remove(origin).is_none() {
            return Ok(false);
        }
        self.save().map(|()| true)
    }

    /// Forgets a remembered "allow"; `Ok(false)` when there was none.
    pub(crate) fn forget(&mut self, origin: &str) -> anyhow::Result<bool> {
        if self.allowed.remove(origin).is_none() {
            return Ok(false);
        }
        self.save().map(|()| true)
    }

    pub(crate) fn blocked(&self) -> Vec<SiteEntry> {
        entries(&self.blocked)
    }
    pub(crate) fn remembered(&self) -> Vec<SiteEntry> {
        entries(&self.allowed)
    }
}

fn entries(m: &BTreeMap<String, u64>) -> Vec<SiteEntry> {
    m.iter()
        .map(|(origin, since)| SiteEntry {
            origin: origin.clone(),
            since: *since,
        })
        .collect()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = SiteDecisions::load(dir.path());
        d.block("https://bad.example").unwrap();
        d.remember("https://good.example").unwrap();
        let again = SiteDecisions::load(dir.path());
        assert!(again.is_blocked("https://bad.example"));
        assert!(again.is_remembered("https://good.example"));
        assert!(!again.is_blocked("https://good.example"));
    }

    #[test]
    fn block_replaces_a_remembered_allow_and_unblock_undoes() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = SiteDecisions::load(dir.path());
        d.remember("https://a.example").unwrap();
        d.block("https://a.example").unwrap();
        assert!(!d.is_remembered("https://a.example"));
        assert!(d.unblock("https://a.example").unwrap());
        assert!(!d.unblock("https://a.example").unwrap());
        assert!(SiteDecisions::load(dir.path()).blocked().is_empty());
    }

    #[test]
    fn damaged_file_is_kept_aside_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DECISIONS_FILE), b"{oops").unwrap();
        let d = SiteDecisions::load(dir.path());
        assert!(d.blocked().is_empty());
        let aside = std::fs::read(dir.path().join("consent.json.damaged")).unwrap();
        assert_eq!(aside, b"{oops");
    }
}
