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
