//! The signed keystore: a keystore text with `@version` and `@expires` headers and a detached
//! signature (`<url>.sig`, base64) by one of the trust-root keys, fetched over https, cached in the
//! data dir, and accepted only if the signature verifies, it has not expired, and its version is not
//! older than the highest version seen before (so an old, still-signed file cannot be replayed).
//!
//! Acceptance is the pure function [`accept`] with an injected clock; the rest moves bytes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use url::Url;

use super::error::{TrustError, TrustErrorKind};
use super::fetch::Fetcher;
use super::keys::{decode_signature, PublicKey};
use super::keystore::{parse_keystore, KeystoreText, MAX_KEYSTORE_BYTES};

/// The highest version accepted so far and the hash of that file (persisted in the data dir).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenVersion {
    pub version: u64,
    pub sha256: String,
}

/// A signed keystore that passed [`accept`].
#[derive(Debug, Clone)]
pub struct AcceptedKeystore {
    pub text: KeystoreText,
    pub version: u64,
    pub expires_unix: i64,
    pub sha256: String,
}

/// Decides whether a signed keystore may be used at `now_unix`.
pub fn accept(
    bytes: &[u8],
    signature_text: &str,
    roots: &[PublicKey],
    highest_seen: Option<&SeenVersion>,
    now_unix: i64,
) -> Result<AcceptedKeystore, String> {
    if roots.is_empty() {
        return Err(
            "no trust-root key is configured, so no signed keystore can be verified".into(),
        );
    }
    let signature = decode_signature(signature_text.trim())?;
    if !roots.iter().any(|root| root.verify(bytes, &signature)) {
        return Err("the keystore signature does not verify with any trust-root key".into());
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "the keystore is not UTF-8 text")?;
    let parsed = parse_keystore(text)?;
    let version = parsed
        .version
        .ok_or("the keystore has no @version header")?;
    let expires_unix = parsed
        .expires_unix
        .ok_or("the keystore has no @expires header")?;
    if now_unix >= expires_unix {
        return Err(format!(
            "the keystore expired at {} (it must be re-signed and republished)",
            format_unix(expires_unix)
        ));
    }
    let sha256 = hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes));
    if let Some(seen) = highest_seen {
        if version < seen.version {
            return Err(format!(
                "rollback refused: keystore version {version} is older than version {} seen before",
                seen.version
            ));
        }
        if version == seen.version && sha256 != seen.sha256 {
            return Err(format!(
                "keystore version {version} differs from the version {version} seen before; a changed keystore needs a higher version"
            ));
        }
    }
    Ok(AcceptedKeystore {
        text: parsed,
        version,
        expires_unix,
        sha256,
    })
}

/// RFC 3339 text of a Unix time (for messages).
pub fn format_unix(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// The URL of the detached signature: the keystore URL with `.sig` appended to its path.
pub fn signature_url(url: &Url) -> Url {
    let mut sig = url.clone();
    sig.set_path(&format!("{}.sig", url.path()));
    sig
}

/// Where the signed keystore is cached in the data dir.
#[derive(Debug, Clone)]
pub struct KeystoreCache {
    dir: PathBuf,
}

impl KeystoreCache {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }
    fn list(&self) -> PathBuf {
        self.dir.join("keystore.lst")
    }
    fn sig(&self) -> PathBuf {
        self.dir.join("keystore.lst.sig")
    }
    fn seen(&self) -> PathBuf {
        self.dir.join("keystore-version.json")
    }

    /// The highest version accepted so far, if any.
    pub fn highest_seen(&self) -> Result<Option<SeenVersion>, TrustError> {
        crate::store::read_json(&self.seen()).map_err(|e| TrustError::io(format!("{e:#}")))
    }

    /// Loads and re-verifies the cached copy (a cache is never trusted just because it is there).
    pub fn load(
        &self,
        roots: &[PublicKey],
        now_unix: i64,
    ) -> Result<Option<AcceptedKeystore>, TrustError> {
        let (bytes, sig) = match (
            std::fs::read(self.list()),
            std::fs::read_to_string(self.sig()),
        ) {
            (Ok(b), Ok(s)) => (b, s),
            _ => return Ok(None),
        };
        let seen = self.highest_seen()?;
        accept(&bytes, &sig, roots, seen.as_ref(), now_unix)
            .map(Some)
            .map_err(|e| {
                TrustError::new(
                    TrustErrorKind::KeystoreInvalid,
                    format!("cached keystore: {e}"),
                )
            })
    }

    /// Stores an accepted keystore and raises the highest version seen.
    pub fn store(
        &self,
        bytes: &[u8],
        sig: &str,
        accepted: &AcceptedKeystore,
    ) -> Result<(), TrustError> {
        let io = |e: anyhow::Error| TrustError::io(format!("caching the keystore: {e:#}"));
        crate::store::write_atomic(&self.list(), bytes).map_err(io)?;
        crate::store::write_atomic(&self.sig(), sig.as_bytes()).map_err(io)?;
        let seen = SeenVersion {
            version: accepted.version,
            sha256: accepted.sha256.clone(),
        };
        crate::store::write_json_atomic(&self.seen(), &seen).map_err(io)
    }
}

/// Downloads the keystore and its signature, accepts them, and caches them.
pub async fn fetch_and_accept(
    fetcher: &Fetcher,
    url: &Url,
    roots: &[PublicKey],
    cache: &KeystoreCache,
    now_unix: i64,
) -> Result<AcceptedKeystore, TrustError> {
    let invalid = |d: String| TrustError::new(TrustErrorKind::KeystoreInvalid, d);
    let bytes = fetcher
        .get(url)
        .await
        .map_err(|e| invalid(e.detail().to_string()))?;
    if bytes.len() as u64 > MAX_KEYSTORE_BYTES {
        return Err(invalid("the keystore is too large".into()));
    }
    let sig_bytes = fetcher
        .get(&signature_url(url))
        .await
        .map_err(|e| invalid(e.detail().to_string()))?;
    let sig = String::from_utf8(sig_bytes)
        .map_err(|_| invalid("the .sig file is not base64 text".into()))?;
    let seen = cache.highest_seen()?;
    let accepted = accept(&bytes, &sig, roots, seen.as_ref(), now_unix)
        .map_err(|e| invalid(format!("{url}: {e}")))?;
    cache.store(&bytes, &sig, &accepted)?;
    Ok(accepted)
}
