//! [`SettingsStore`]: the settings in memory and in the data dir's `settings.json`. The file is shared
//! with the modules that read their own part at start (`images` → media, `trust` → trust); this store
//! writes those members and its own (`idle`, `hypervisor`) in one atomic write, keeping every other
//! member of the file as it was.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::validate::{validate, SettingsError};
use super::Settings;
use crate::hypervisor::HypervisorChoice;
use crate::idle::IdlePolicy;
use crate::media::MediaSettings;
use crate::store::DataDir;
use crate::trust::TrustSettings;

/// The `idle` member of the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdleMember {
    threshold_secs: u64,
    #[serde(default)]
    default_policy: IdlePolicy,
}

/// The settings of one data dir. Reads are served from memory; `update` validates, writes, then swaps.
pub struct SettingsStore {
    path: PathBuf,
    current: Mutex<Settings>,
}

impl std::fmt::Debug for SettingsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingsStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SettingsStore {
    /// Loads the settings of `data_dir`. A missing file means the defaults; an unreadable file or member
    /// is logged and its part replaced by the defaults (the file itself is left alone until saved).
    pub fn open(data_dir: &DataDir) -> Self {
        let path = data_dir.settings_file();
        let current = match read_object(&path) {
            Ok(file) => from_file(&file),
            Err(e) => {
                tracing::warn!("using default settings: {e}");
                Settings::default()
            }
        };
        Self {
            path,
            current: Mutex::new(current),
        }
    }

    /// Where the settings are stored.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current settings.
    pub fn get(&self) -> Settings {
        self.lock().clone()
    }

    /// Validates `settings` and stores them (atomically, keeping the file's other members). On error
    /// nothing changes, in memory or on disk. Returns the settings as stored (normalized).
    pub fn update(&self, settings: Settings) -> Result<Settings, SettingsError> {
        let settings = validate(settings)?;
        let mut current = self.lock();
        let store_err = |reason: String| SettingsError::Store {
            path: self.path.display().to_string(),
            reason,
        };
        let mut file = read_object(&self.path).map_err(store_err)?;
        merge_into(&mut file, &settings).map_err(store_err)?;
        crate::store::write_json_atomic(&self.path, &Value::Object(file))
            .map_err(|e| store_err(format!("{e:#}")))?;
        tracing::info!(?settings, "settings saved");
        *current = settings.clone();
        Ok(settings)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Settings> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The file as a JSON object (empty when missing).
fn read_object(path: &Path) -> Result<Map<String, Value>, String> {
    match crate::store::read_json::<Value>(path) {
        Ok(None) => Ok(Map::new()),
        Ok(Some(Value::Object(map))) => Ok(map),
        Ok(Some(_)) => Err(format!(
            "{} is not a JSON object; fix or remove it",
            path.display()
        )),
        Err(e) => Err(format!("{e:#}; fix or remove the file")),
    }
}

/// Reads one member, or `None` (with a warning) when it is missing or malformed.
fn member<T: serde::de::DeserializeOwned>(file: &Map<String, Value>, key: &str) -> Option<T> {
    let value = file.get(key)?;
    match serde_json::from_value(value.clone()) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!("settings: ignoring the malformed \"{key}\" member: {e}");
            None
        }
    }
}

/// The settings in the file; malformed or out-of-range parts fall back to their defaults.
fn from_file(file: &Map<String, Value>) -> Settings {
    let defaults = Settings::default();
    let idle: Option<IdleMember> = member(file, "idle");
    let images: MediaSettings = member(file, "images").unwrap_or_default();
    let trust: TrustSettings = member(file, "trust").unwrap_or_default();
    let read = Settings {
        idle_threshold_secs: idle
            .as_ref()
            .map_or(defaults.idle_threshold_secs, |i| i.threshold_secs),
        default_idle_policy: idle.map(|i| i.default_policy).unwrap_or_default(),
        hypervisor: member::<HypervisorChoice>(file, "hypervisor").unwrap_or_default(),
        image_mirror: images.image_mirror,
        cache_limit_bytes: images
            .cache_limit_bytes
            .unwrap_or(defaults.cache_limit_bytes),
        local_keystores: trust.keystores,
    };
    // Each field on its own, so one bad value does not reset the others.
    let mut out = defaults.clone();
    let fields: [fn(&mut Settings, &Settings); 6] = [
        |o, r| o.idle_threshold_secs = r.idle_threshold_secs,
        |o, r| o.default_idle_policy = r.default_idle_policy,
        |o, r| o.hypervisor = r.hypervisor,
        |o, r| o.image_mirror = r.image_mirror.clone(),
        |o, r| o.cache_limit_bytes = r.cache_limit_bytes,
        |o, r| o.local_keystores = r.local_keystores.clone(),
    ];
    for set in fields {
        let mut candidate = out.clone();
        set(&mut candidate, &read);
        match validate(candidate) {
            Ok(valid) => out = valid,
            Err(e) => tracing::warn!("settings: ignoring a stored value: {e}"),
        }
    }
    out
}

/// Writes `s` into the file's members, keeping what other modules store there.
fn merge_into(file: &mut Map<String, Value>, s: &Settings) -> Result<(), String> {
    file.insert(
        "idle".into(),
        to_value(&IdleMember {
            threshold_secs: s.idle_threshold_secs,
            default_policy: s.default_idle_policy,
        })?,
    );
    file.insert("hypervisor".into(), to_value(&s.hypervisor)?);
    let mut images: MediaSettings = member(file, "images").unwrap_or_default();
    images.image_mirror = s.image_mirror.clone();
    images.cache_limit_bytes = Some(s.cache_limit_bytes);
    file.insert("images".into(), to_value(&images)?);
    let mut trust: TrustSettings = member(file, "trust").unwrap_or_default();
    trust.keystores = s.local_keystores.clone();
    file.insert("trust".into(), to_value(&trust)?);
    Ok(())
}

fn to_value<T: Serialize>(value: &T) -> Result<Value, String> {
    serde_json::to_value(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_dir() -> (tempfile::TempDir, DataDir) {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path()).unwrap();
        (dir, data)
    }

    #[test]
    fn defaults_without_a_file_then_saved_and_reloaded() {
        let (_dir, data) = data_dir();
        let store = SettingsStore::open(&data);
        assert_eq!(store.get(), Settings::default());
        let keystore = data.root().join("k.lst");
        std::fs::write(
            &keystore,
            "example.org=MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n",
        )
        .unwrap();
        let wanted = Settings {
            idle_threshold_secs: 300,
            default_idle_policy: IdlePolicy::validate(1, 10, 90, 0).unwrap(),
            hypervisor: HypervisorChoice::Qemu,
            image_mirror: Some("http://mirror.example/cvm/".into()),
            cache_limit_bytes: 1 << 30,
            local_keystores: vec![keystore.clone()],
        };
        let saved = store.update(wanted.clone()).unwrap();
        assert_eq!(
            saved.image_mirror.as_deref(),
            Some("http://mirror.example/cvm")
        );
        assert_eq!(store.get(), saved);
        let again = SettingsStore::open(&data);
        assert_eq!(again.get(), saved);
        // The other modules read their members from the same file.
        let media = MediaSettings::load(&data.settings_file()).unwrap();
        assert_eq!(media.cache_limit_bytes, Some(1 << 30));
        assert_eq!(
            media.image_mirror.as_deref(),
            Some("http://mirror.example/cvm")
        );
        let trust = TrustSettings::load(&data.settings_file()).unwrap();
        assert_eq!(trust.keystores, vec![keystore]);
    }

    #[test]
    fn other_members_are_kept() {
        let (_dir, data) = data_dir();
        std::fs::write(
            data.settings_file(),
            r#"{"future":{"x":1},"trust":{"keystore_url":"https://keys.example/ks","ca_files":[]},"images":{"cacheLimitBytes":1073741824}}"#,
        )
        .unwrap();
        let store = SettingsStore::open(&data);
        assert_eq!(store.get().cache_limit_bytes, 1 << 30);
        store
            .update(Settings {
                idle_threshold_secs: 120,
                ..store.get()
            })
            .unwrap();
        let file: Value =
            serde_json::from_slice(&std::fs::read(data.settings_file()).unwrap()).unwrap();
        assert_eq!(file["future"]["x"], 1);
        assert_eq!(file["trust"]["keystore_url"], "https://keys.example/ks");
        assert_eq!(file["idle"]["thresholdSecs"], 120);
        assert_eq!(file["hypervisor"], "auto");
    }

    #[test]
    fn refused_settings_change_nothing() {
        let (_dir, data) = data_dir();
        let store = SettingsStore::open(&data);
        store
            .update(Settings {
                idle_threshold_secs: 90,
                ..Settings::default()
            })
            .unwrap();
        let before = std::fs::read(data.settings_file()).unwrap();
        let err = store
            .update(Settings {
                idle_threshold_secs: 0,
                hypervisor: HypervisorChoice::Qemu,
                ..Settings::default()
            })
            .unwrap_err();
        assert!(matches!(err, SettingsError::IdleThreshold(0)));
        assert_eq!(store.get().idle_threshold_secs, 90);
        assert_eq!(store.get().hypervisor, HypervisorChoice::Auto);
        assert_eq!(std::fs::read(data.settings_file()).unwrap(), before);
    }

    #[test]
    fn a_corrupt_file_is_not_overwritten() {
        let (_dir, data) = data_dir();
        std::fs::write(data.settings_file(), "{not json").unwrap();
        let store = SettingsStore::open(&data);
        assert_eq!(store.get(), Settings::default());
        let err = store.update(Settings::default()).unwrap_err();
        assert!(err.to_string().contains("fix or remove"), "{err}");
        assert_eq!(std::fs::read(data.settings_file()).unwrap(), b"{not json");
    }

    #[test]
    fn bad_stored_values_fall_back_one_by_one() {
        let (_dir, data) = data_dir();
        std::fs::write(
            data.settings_file(),
            r#"{"idle":{"thresholdSecs":0,"defaultPolicy":{"controlled":true,"minCap":0,"maxCap":0,"flags":1}},"hypervisor":"qemu","images":{"imageMirror":"file:///x"}}"#,
        )
        .unwrap();
        let s = SettingsStore::open(&data).get();
        assert_eq!(s.idle_threshold_secs, 60);
        assert!(s.default_idle_policy.controlled);
        assert_eq!(s.hypervisor, HypervisorChoice::Qemu);
        assert_eq!(s.image_mirror, None);
    }
}
