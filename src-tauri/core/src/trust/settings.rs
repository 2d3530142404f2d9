//! The trust part of the user's settings (`settings.json`, key `"trust"`), which the control panel
//! edits: extra local keystore files, a signed keystore URL, extra CA certificates.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::TrustError;

/// `settings.json` → `"trust"`. Missing fields mean "none".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrustSettings {
    /// Local keystore files the user added (after those given with `--keystore`).
    pub keystores: Vec<PathBuf>,
    /// URL of a signed keystore (used when `--keystore-url` is not given).
    pub keystore_url: Option<String>,
    /// Extra CA certificate files (PEM) trusted for VMCP and keystore fetches.
    pub ca_files: Vec<PathBuf>,
}

impl TrustSettings {
    /// Reads the `"trust"` member of `settings_file`; defaults when the file or member is missing.
    pub fn load(settings_file: &Path) -> Result<Self, TrustError> {
        let all: Option<serde_json::Value> =
            crate::store::read_json(settings_file).map_err(|e| TrustError::io(format!("{e:#}")))?;
        match all.as_ref().and_then(|v| v.get("trust")) {
            None => Ok(Self::default()),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
                TrustError::usage(format!(
                    "{}: the \"trust\" settings are not valid: {e}",
                    settings_file.display()
                ))
            }),
        }
    }

    /// Writes these settings as the `"trust"` member, keeping every other member of the file.
    pub fn save(&self, settings_file: &Path) -> Result<(), TrustError> {
        let mut all: serde_json::Value = crate::store::read_json(settings_file)
            .map_err(|e| TrustError::io(format!("{e:#}")))?
            .unwrap_or_else(|| serde_json::json!({}));
        let Some(object) = all.as_object_mut() else {
            return Err(TrustError::usage(format!(
                "{} is not a JSON object",
                settings_file.display()
            )));
        };
        let value = serde_json::to_value(self).map_err(|e| TrustError::usage(e.to_string()))?;
        object.insert("trust".into(), value);
        crate::store::write_json_atomic(settings_file, &all)
            .map_err(|e| TrustError::io(format!("{e:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_other_settings() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("settings.json");
        assert_eq!(
            TrustSettings::load(&file).unwrap(),
            TrustSettings::default()
        );
        std::fs::write(&file, r#"{"idle":{"threshold":60}}"#).unwrap();
        let s = TrustSettings {
            keystores: vec!["/k.lst".into()],
            ..Default::default()
        };
        s.save(&file).unwrap();
        assert_eq!(TrustSettings::load(&file).unwrap(), s);
        let all: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(all["idle"]["threshold"], 60);
    }
}
