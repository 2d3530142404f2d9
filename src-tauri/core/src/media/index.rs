//! The cache index (`images/index.json`): which complete images exist, their size, origin and last
//! use; and the pure least-recently-used eviction rule.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::MediaError;

/// One complete, verified image in the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// File name inside the images folder.
    pub file: String,
    pub size: u64,
    /// The URL it was downloaded from.
    pub url: String,
    /// Last time a session asked for it, milliseconds since the Unix epoch.
    pub last_used_ms: u64,
    /// True when the download was gunzipped into `file`.
    #[serde(default)]
    pub gunzipped: bool,
}

/// All complete images, by cache key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub entries: BTreeMap<String, Entry>,
}

impl Index {
    /// Loads the index, dropping entries whose file is gone. A corrupt index starts empty (the
    /// images it listed are then unknown and removed by the caller's sweep).
    pub fn load(path: &Path, images_dir: &Path) -> Self {
        let mut index: Index = match crate::store::read_json(path) {
            Ok(Some(i)) => i,
            Ok(None) => Index::default(),
            Err(e) => {
                tracing::warn!("image cache index unreadable, starting empty: {e:#}");
                Index::default()
            }
        };
        index
            .entries
            .retain(|_, e| is_plain_file_name(&e.file) && images_dir.join(&e.file).is_file());
        index
    }

    pub fn save(&self, path: &Path) -> Result<(), MediaError> {
        crate::store::write_json_atomic(path, self).map_err(|e| MediaError::io(path, e))
    }

    pub fn total_bytes(&self) -> u64 {
        self.entries.values().map(|e| e.size).sum()
    }

    /// The entry downloaded from `url`, if any.
    pub fn by_url(&self, url: &str) -> Option<(&String, &Entry)> {
        self.entries.iter().find(|(_, e)| e.url == url)
    }
}

/// Keys to evict, oldest use first, so that the unpinned images fit in `limit` bytes together with
/// `incoming` more bytes. Pinned images are never chosen (they may keep the total above the limit).
pub fn choose_evictions(
    index: &Index,
    pinned: &HashSet<String>,
    limit: u64,
    incoming: u64,
) -> Vec<String> {
    let mut total = index.total_bytes().saturating_add(incoming);
    let mut candidates: Vec<(&String, &Entry)> = index
        .entries
        .iter()
        .filter(|(k, _)| !pinned.contains(*k))
        .collect();
    candidates.sort_by_key(|(k, e)| (e.last_used_ms, (*k).clone()));
    let mut chosen = Vec::new();
    for (key, entry) in candidates {
        if total <= limit {
            break;
        }
        total = total.saturating_sub(entry.size);
        chosen.push(key.clone());
    }
    chosen
}

/// A file name without folders (index content is not trusted to point outside the cache).
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && Path::new(name).file_name().is_some_and(|n| n == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(size: u64, used: u64) -> Entry {
        Entry {
            file: "f".into(),
            size,
            url: "u".into(),
            last_used_ms: used,
            gunzipped: false,
        }
    }

    fn index(items: &[(&str, u64, u64)]) -> Index {
        Index {
            entries: items
                .iter()
                .map(|(k, s, u)| (k.to_string(), entry(*s, *u)))
                .collect(),
        }
    }

    #[test]
    fn evicts_least_recently_used_until_it_fits() {
        let i = index(&[("a", 40, 3), ("b", 40, 1), ("c", 40, 2)]);
        let none = HashSet::new();
        assert!(choose_evictions(&i, &none, 120, 0).is_empty());
        assert_eq!(choose_evictions(&i, &none, 100, 0), vec!["b"]);
        assert_eq!(choose_evictions(&i, &none, 100, 40), vec!["b", "c"]);
        assert_eq!(choose_evictions(&i, &none, 0, 0), vec!["b", "c", "a"]);
    }

    #[test]
    fn never_evicts_pinned_images() {
        let i = index(&[("a", 40, 3), ("b", 40, 1), ("c", 40, 2)]);
        let pinned: HashSet<String> = ["b".to_string()].into();
        assert_eq!(choose_evictions(&i, &pinned, 50, 0), vec!["c", "a"]);
        let all: HashSet<String> = ["a", "b", "c"].map(String::from).into();
        assert!(choose_evictions(&i, &all, 0, 0).is_empty());
    }

    #[test]
    fn file_names_stay_inside_the_cache() {
        assert!(is_plain_file_name("sha256-ab.img"));
        assert!(!is_plain_file_name("../x"));
        assert!(!is_plain_file_name(".."));
        assert!(!is_plain_file_name("a/b"));
        assert!(!is_plain_file_name(""));
    }
}
