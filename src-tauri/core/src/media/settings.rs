//! The user-facing image settings (cache size limit, mirror) and how the command line, the settings
//! file and the defaults combine into [`CacheOptions`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::backoff::RetryPolicy;
use super::error::MediaError;
use super::source::Mirror;

/// Default cache size limit: 20 GiB.
pub const DEFAULT_CACHE_LIMIT: u64 = 20 << 30;

/// Image settings as stored in the settings file (`images` object), all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaSettings {
    /// Base URL replacing the official µCernVM release area.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_mirror: Option<String>,
    /// Cache size limit in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_limit_bytes: Option<u64>,
}

/// The settings file's top-level object, of which only `images` matters here.
#[derive(Deserialize)]
struct SettingsFile {
    #[serde(default)]
    images: MediaSettings,
}

impl MediaSettings {
    /// Reads the `images` object of the settings file (`settings.json` in the data dir); defaults
    /// when the file or the object is missing. Other keys of the file are ignored.
    pub fn load(settings_file: &std::path::Path) -> Result<Self, MediaError> {
        match crate::store::read_json::<SettingsFile>(settings_file) {
            Ok(file) => Ok(file.map(|f| f.images).unwrap_or_default()),
            Err(e) => Err(MediaError::InvalidInput(format!("{e:#}"))),
        }
    }
}

/// How the image cache behaves.
#[derive(Debug, Clone)]
pub struct CacheOptions {
    /// Images nobody uses are evicted (least recently used first) above this many bytes.
    pub max_bytes: u64,
    pub mirror: Mirror,
    pub retry: RetryPolicy,
    /// A transfer with no byte for this long is treated as stalled and retried.
    pub read_timeout: Duration,
    pub connect_timeout: Duration,
    /// Minimum time between two progress events of one fetch.
    pub progress_interval: Duration,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_CACHE_LIMIT,
            mirror: Mirror::default(),
            retry: RetryPolicy::default(),
            read_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            progress_interval: Duration::from_millis(250),
        }
    }
}

impl CacheOptions {
    /// Combines the `--image-mirror` flag (wins), the settings file and the defaults.
    /// A bad mirror in the settings file is an error (the flag was validated by `config`).
    pub fn resolve(
        cli_mirror: Option<&Mirror>,
        settings: &MediaSettings,
    ) -> Result<Self, MediaError> {
        let mut options = CacheOptions::default();
        if let Some(mirror) = cli_mirror {
            options.mirror = mirror.clone();
        } else if let Some(mirror) = &settings.image_mirror {
            options.mirror = Mirror::parse(mirror)?;
        }
        if let Some(limit) = settings.cache_limit_bytes {
            options.max_bytes = limit;
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_the_images_object_of_the_settings_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        assert_eq!(
            MediaSettings::load(&path).unwrap(),
            MediaSettings::default()
        );
        std::fs::write(&path, r#"{"other":1,"images":{"cacheLimitBytes":5}}"#).unwrap();
        assert_eq!(
            MediaSettings::load(&path).unwrap().cache_limit_bytes,
            Some(5)
        );
        std::fs::write(&path, r#"{"other":1}"#).unwrap();
        assert_eq!(
            MediaSettings::load(&path).unwrap(),
            MediaSettings::default()
        );
        std::fs::write(&path, r#"{"images":{"cacheLimitBytes":"big"}}"#).unwrap();
        let err = MediaSettings::load(&path).unwrap_err();
        assert!(err.to_string().contains("settings.json"), "{err}");
    }

    #[test]
    fn flag_beats_setting_beats_default() {
        let settings: MediaSettings = serde_json::from_str(
            r#"{"imageMirror":"https://setting.example/r","cacheLimitBytes":1000}"#,
        )
        .unwrap();
        let flag = Mirror::parse("http://flag.example/m/").unwrap();
        let o = CacheOptions::resolve(Some(&flag), &settings).unwrap();
        assert_eq!(o.mirror.as_str(), "http://flag.example/m");
        assert_eq!(o.max_bytes, 1000);
        let o = CacheOptions::resolve(None, &settings).unwrap();
        assert_eq!(o.mirror.as_str(), "https://setting.example/r");
        let o = CacheOptions::resolve(None, &MediaSettings::default()).unwrap();
        assert_eq!(o.mirror, Mirror::default());
        assert_eq!(o.max_bytes, DEFAULT_CACHE_LIMIT);
        let bad = MediaSettings {
            image_mirror: Some("not a url".into()),
            ..MediaSettings::default()
        };
        assert!(CacheOptions::resolve(None, &bad).is_err());
    }
}
