//! Validation of [`Settings`]: every field is checked and normalized before anything is written.

use std::path::PathBuf;

use super::Settings;
use crate::idle::IdlePolicy;

/// Bounds of the cache size limit: 256 MiB (one image fits) to 16 TiB.
pub const MIN_CACHE_LIMIT: u64 = 256 << 20;
pub const MAX_CACHE_LIMIT: u64 = 16 << 40;
/// At most this many trusted local keystores.
pub const MAX_KEYSTORES: usize = 32;
/// Longest accepted keystore path, in bytes.
const MAX_PATH_LEN: usize = 4096;

/// Why settings were refused (nothing was changed) or could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("idle threshold: {0} seconds is outside 1 to 86400")]
    IdleThreshold(u64),
    #[error("default idle policy: {0}")]
    IdlePolicy(#[from] crate::idle::ParamError),
    #[error("image mirror: {0}")]
    Mirror(String),
    #[error("cache size limit: {got} bytes is outside {MIN_CACHE_LIMIT} (256 MiB) to {MAX_CACHE_LIMIT} (16 TiB)")]
    CacheLimit { got: u64 },
    #[error("local keystores: at most {MAX_KEYSTORES} files")]
    TooManyKeystores,
    #[error("local keystore {path}: {reason}")]
    Keystore { path: String, reason: String },
    #[error("cannot store the settings in {path}: {reason}")]
    Store { path: String, reason: String },
}

/// Checks every field; returns the settings as they will be stored (mirror normalized, keystores
/// de-duplicated, an empty mirror meaning "none").
pub fn validate(mut s: Settings) -> Result<Settings, SettingsError> {
    if !(1..=86_400).contains(&s.idle_threshold_secs) {
        return Err(SettingsError::IdleThreshold(s.idle_threshold_secs));
    }
    let p = s.default_idle_policy;
    s.default_idle_policy = IdlePolicy::validate(
        i64::from(p.controlled),
        i64::from(p.min_cap),
        i64::from(p.max_cap),
        i64::from(p.flags),
    )?;
    s.image_mirror = match s.image_mirror.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(
            crate::media::Mirror::parse(text)
                .map_err(|e| SettingsError::Mirror(e.to_string()))?
                .as_str()
                .to_string(),
        ),
    };
    if !(MIN_CACHE_LIMIT..=MAX_CACHE_LIMIT).contains(&s.cache_limit_bytes) {
        return Err(SettingsError::CacheLimit {
            got: s.cache_limit_bytes,
        });
    }
    if s.local_keystores.len() > MAX_KEYSTORES {
        return Err(SettingsError::TooManyKeystores);
    }
    let mut keystores: Vec<PathBuf> = Vec::with_capacity(s.local_keystores.len());
    for path in s.local_keystores {
        check_keystore(&path)?;
        if !keystores.contains(&path) {
            keystores.push(path);
        }
    }
    s.local_keystores = keystores;
    Ok(s)
}

/// A keystore file must be named by an absolute path, exist, and parse as a keystore.
fn check_keystore(path: &std::path::Path) -> Result<(), SettingsError> {
    let bad = |reason: String| SettingsError::Keystore {
        path: path.display().to_string(),
        reason,
    };
    if path.as_os_str().len() > MAX_PATH_LEN {
        return Err(bad(format!("the path is longer than {MAX_PATH_LEN} bytes")));
    }
    if !path.is_absolute() {
        return Err(bad("give the full path of the file".into()));
    }
    if !path.is_file() {
        return Err(bad("no such file".into()));
    }
    let keystore =
        crate::trust::keystore::load_local_file(path).map_err(|e| bad(e.detail().to_string()))?;
    if keystore.entries.is_empty() {
        return Err(bad(
            "it holds no domain key (expected lines like example.org=<base64 key>)".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ed25519 public key (base64 SPKI), as a keystore line carries it.
    pub(crate) const ED_KEY: &str = "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=";

    #[test]
    fn defaults_are_valid() {
        assert_eq!(validate(Settings::default()).unwrap(), Settings::default());
    }

    #[test]
    fn each_field_is_checked() {
        let ok = Settings::default;
        for secs in [0, 86_401] {
            let e = validate(Settings {
                idle_threshold_secs: secs,
                ..ok()
            })
            .unwrap_err();
            assert!(matches!(e, SettingsError::IdleThreshold(_)), "{e}");
        }
        let e = validate(Settings {
            default_idle_policy: IdlePolicy {
                controlled: true,
                min_cap: 50,
                max_cap: 10,
                flags: 0,
            },
            ..ok()
        })
        .unwrap_err();
        assert!(e.to_string().contains("below daemonMinCap"), "{e}");
        let e = validate(Settings {
            default_idle_policy: IdlePolicy {
                flags: 4,
                ..Default::default()
            },
            ..ok()
        })
        .unwrap_err();
        assert!(e.to_string().contains("DF_AUTODESTROY"), "{e}");
        for mirror in ["file:///etc", "not a url", "http://m.example/x?y=1"] {
            let e = validate(Settings {
                image_mirror: Some(mirror.into()),
                ..ok()
            })
            .unwrap_err();
            assert!(matches!(e, SettingsError::Mirror(_)), "{mirror}: {e}");
        }
        for limit in [0, MIN_CACHE_LIMIT - 1, MAX_CACHE_LIMIT + 1] {
            let e = validate(Settings {
                cache_limit_bytes: limit,
                ..ok()
            })
            .unwrap_err();
            assert!(matches!(e, SettingsError::CacheLimit { .. }), "{e}");
        }
    }

    #[test]
    fn mirror_is_normalized_and_empty_means_none() {
        let s = validate(Settings {
            image_mirror: Some(" http://mirror.example/cernvm/ ".into()),
            ..Settings::default()
        })
        .unwrap();
        assert_eq!(
            s.image_mirror.as_deref(),
            Some("http://mirror.example/cernvm")
        );
        let s = validate(Settings {
            image_mirror: Some("".into()),
            ..Settings::default()
        })
        .unwrap();
        assert_eq!(s.image_mirror, None);
    }

    #[test]
    fn keystores_must_exist_and_parse() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.lst");
        std::fs::write(&good, format!("example.org={ED_KEY}\n")).unwrap();
        let bad = dir.path().join("bad.lst");
        std::fs::write(&bad, "example.org=not-a-key\n").unwrap();
        let empty = dir.path().join("empty.lst");
        std::fs::write(&empty, "just some text\n").unwrap();
        let s = validate(Settings {
            local_keystores: vec![good.clone(), good.clone()],
            ..Settings::default()
        })
        .unwrap();
        assert_eq!(s.local_keystores, vec![good.clone()]);
        for (path, says) in [
            (bad, "keystore"),
            (empty, "no domain key"),
            (dir.path().join("missing.lst"), "no such file"),
            (PathBuf::from("relative.lst"), "full path"),
        ] {
            let e = validate(Settings {
                local_keystores: vec![path.clone()],
                ..Settings::default()
            })
            .unwrap_err();
            assert!(
                matches!(e, SettingsError::Keystore { .. }) && e.to_string().contains(says),
                "{}: {e}",
                path.display()
            );
        }
        let e = validate(Settings {
            local_keystores: vec![good; MAX_KEYSTORES + 1],
            ..Settings::default()
        })
        .unwrap_err();
        assert!(matches!(e, SettingsError::TooManyKeystores));
    }
}
