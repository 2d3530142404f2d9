//! [`Verifier`]: what the daemon calls. It holds the merged keystore (signed keystore first, then
//! local files), refreshes the signed one on a schedule, and runs the whole VMCP fetch-and-verify
//! flow of shared/spec/protocol.md §4.1 steps 3–8, with the signature check on the blocking pool.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use url::Url;

use super::canonical::FlatMap;
use super::error::{TrustError, TrustErrorKind};
use super::fetch::{vmcp_request_url, FetchPolicy, Fetcher};
use super::keys::{KeyAlgorithm, PublicKey};
use super::keystore::{load_local_file, normalize_domain};
use super::salt::{host_id, load_or_create_local_id, new_salt};
use super::settings::TrustSettings;
use super::signed_keystore::{fetch_and_accept, AcceptedKeystore, KeystoreCache};
use super::vmcp::validate_vmcp;
use crate::store::DataDir;

/// How the trust layer is set up (from `cvmwebapi serve` options; the settings file adds to it).
#[derive(Debug, Clone)]
pub struct TrustConfig {
    /// Local keystore files (`--keystore`, repeatable). A bad one stops the daemon from starting.
    pub keystore_files: Vec<PathBuf>,
    /// Where the signed keystore is published (`<url>` and `<url>.sig`). Unset by default: there is
    /// no official one for this edition yet.
    pub keystore_url: Option<Url>,
    /// Keys that may sign the keystore: the compiled-in list plus `--keystore-root` keys.
    pub root_keys: Vec<PublicKey>,
    /// How often the signed keystore is fetched again.
    pub refresh_interval: Duration,
    pub fetch: FetchPolicy,
}

impl Default for TrustConfig {
    fn default() -> Self {
        Self {
            keystore_files: Vec::new(),
            keystore_url: None,
            root_keys: super::roots::compiled_in(),
            refresh_interval: Duration::from_secs(6 * 3600),
            fetch: FetchPolicy::default(),
        }
    }
}

impl TrustConfig {
    /// Builds the configuration from the `serve` options (reads root-key and CA files).
    pub fn from_serve_args(args: &crate::config::ServeArgs) -> Result<Self, TrustError> {
        let mut config = Self {
            keystore_files: args.keystore.clone(),
            ..Self::default()
        };
        if let Some(url) = &args.keystore_url {
            config.keystore_url = Some(parse_keystore_url(url)?);
        }
        for path in &args.keystore_root {
            let text = super::keystore::read_bounded(path)?;
            let key = PublicKey::from_base64(&text)
                .map_err(|e| TrustError::usage(format!("{}: {e}", path.display())))?;
            config.root_keys.push(key);
        }
        for path in &args.ca_cert {
            config.fetch.extra_ca_pem.push(read_ca(path)?);
        }
        Ok(config)
    }
}

impl TrustConfig {
    /// Loads every `--keystore` file once, so `serve` refuses to start with a bad one.
    pub fn check_keystore_files(&self) -> Result<(), TrustError> {
        for path in &self.keystore_files {
            load_local_file(path)?;
        }
        Ok(())
    }
}

fn parse_keystore_url(text: &str) -> Result<Url, TrustError> {
    let url =
        Url::parse(text).map_err(|e| TrustError::usage(format!("keystore URL {text:?}: {e}")))?;
    if url.scheme() != "https" {
        return Err(TrustError::usage(format!(
            "keystore URL {text:?} must use https"
        )));
    }
    Ok(url)
}

fn read_ca(path: &std::path::Path) -> Result<Vec<u8>, TrustError> {
    super::keystore::read_bounded(path).map(String::into_bytes)
}

/// Injectable time source (tests move time forward to expire keystores).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// A trusted domain as shown in the control panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedDomain {
    pub domain: String,
    /// `signed keystore v<N>` or the local file's path.
    pub source: String,
    pub algorithm: KeyAlgorithm,
    /// Hex SHA-256 of the key's SPKI.
    pub fingerprint: String,
}

#[derive(Default)]
struct SignedState {
    keystore: Option<AcceptedKeystore>,
    last_success: Option<SystemTime>,
    last_attempt: Option<SystemTime>,
    last_error: Option<String>,
}

/// Local keys: normalised domain → (key, source file).
type LocalKeys = BTreeMap<String, (PublicKey, String)>;

/// Retry a failed keystore download at most this often.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

struct Inner {
    fetcher: Fetcher,
    local_id: String,
    keystore_url: Option<Url>,
    roots: Vec<PublicKey>,
    refresh_interval: Duration,
    cache: KeystoreCache,
    cli_keystores: Vec<PathBuf>,
    settings_file: PathBuf,
    local: RwLock<Arc<LocalKeys>>,
    signed: RwLock<SignedState>,
    refresh_lock: tokio::sync::Mutex<()>,
    clock: Clock,
}

/// The trust layer. Cheap to clone; share one per daemon.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("keystore_url", &self.inner.keystore_url)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Sets up the trust layer: local id, local keystores, cached signed keystore. A bad
    /// `--keystore` file is an error; a bad file from the settings is logged and skipped.
    pub fn new(config: TrustConfig, data_dir: &DataDir) -> Result<Self, TrustError> {
        Self::with_clock(config, data_dir, Arc::new(SystemTime::now))
    }

    /// [`Verifier::new`] with an injected clock.
    pub fn with_clock(
        mut config: TrustConfig,
        data_dir: &DataDir,
        clock: Clock,
    ) -> Result<Self, TrustError> {
        let settings_file = data_dir.settings_file();
        let settings = TrustSettings::load(&settings_file).unwrap_or_else(|e| {
            tracing::warn!("ignoring trust settings: {e}");
            TrustSettings::default()
        });
        if config.keystore_url.is_none() {
            if let Some(url) = &settings.keystore_url {
                match parse_keystore_url(url) {
                    Ok(u) => config.keystore_url = Some(u),
                    Err(e) => tracing::warn!("ignoring the keystore URL from the settings: {e}"),
                }
            }
        }
        for path in &settings.ca_files {
            match read_ca(path) {
                Ok(pem) => config.fetch.extra_ca_pem.push(pem),
                Err(e) => tracing::warn!("ignoring a CA file from the settings: {e}"),
            }
        }
        let trust_dir = data_dir.root().join("trust");
        let local_id = load_or_create_local_id(&trust_dir.join("local-id.json"))?;
        let inner = Inner {
            fetcher: Fetcher::new(config.fetch)?,
            local_id,
            keystore_url: config.keystore_url,
            roots: config.root_keys,
            refresh_interval: config.refresh_interval,
            cache: KeystoreCache::new(&trust_dir),
            cli_keystores: config.keystore_files,
            settings_file,
            local: RwLock::new(Arc::new(LocalKeys::new())),
            signed: RwLock::new(SignedState::default()),
            refresh_lock: tokio::sync::Mutex::new(()),
            clock,
        };
        let verifier = Self {
            inner: Arc::new(inner),
        };
        verifier.reload_local()?;
        if verifier.inner.keystore_url.is_some() {
            match verifier
                .inner
                .cache
                .load(&verifier.inner.roots, verifier.now_unix())
            {
                Ok(Some(accepted)) => {
                    tracing::info!(
                        version = accepted.version,
                        "using the cached signed keystore"
                    );
                    verifier.signed_mut().keystore = Some(accepted);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("not using the cached keystore: {}", e.detail()),
            }
        }
        Ok(verifier)
    }

    /// Re-reads the local keystore files (`--keystore` ones and those in the settings). Errors in a
    /// `--keystore` file are returned (nothing changes); settings files with errors are skipped.
    pub fn reload_local(&self) -> Result<(), TrustError> {
        let mut keys = LocalKeys::new();
        for path in &self.inner.cli_keystores {
            add_local(&mut keys, path, load_local_file(path)?);
        }
        let settings = TrustSettings::load(&self.inner.settings_file).unwrap_or_default();
        for path in &settings.keystores {
            match load_local_file(path) {
                Ok(text) => add_local(&mut keys, path, text),
                Err(e) => tracing::warn!("skipping keystore from the settings: {e}"),
            }
        }
        *self.inner.local.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(())
    }

    /// Fetches the VMCP at `vmcp_url` for a page of `domain` and verifies it with the domain's key.
    /// Returns the flat parameter map (strings and ints, including `signature`).
    pub async fn fetch_verified(
        &self,
        vmcp_url: &str,
        domain: &str,
    ) -> Result<FlatMap, TrustError> {
        self.refresh_if_due().await;
        let (key, source) = self.lookup(domain)?;
        let salt = new_salt()?;
        let url = vmcp_request_url(vmcp_url, &salt, &host_id(&self.inner.local_id, domain))?;
        let body = self.inner.fetcher.get(&url).await?;
        let map = tokio::task::spawn_blocking(move || validate_vmcp(&body, &salt, &key))
            .await
            .map_err(|e| TrustError::io(format!("the verification task failed: {e}")))??;
        tracing::info!(%domain, %source, "VMCP verified");
        Ok(map)
    }

    /// True when `domain` has a key in a usable keystore (for the consent dialog).
    pub fn is_trusted(&self, domain: &str) -> bool {
        self.lookup(domain).is_ok()
    }

    /// The key for `domain` and where it comes from, or why there is none.
    pub fn lookup(&self, domain: &str) -> Result<(PublicKey, String), TrustError> {
        let Some(normalized) = normalize_domain(domain) else {
            return Err(TrustError::new(
                TrustErrorKind::NotTrusted,
                format!("{domain:?} is not a domain name that can be trusted"),
            ));
        };
        let now = self.now_unix();
        let signed_error = {
            let signed = self.signed();
            match &signed.keystore {
                Some(ks) if ks.expires_unix > now => {
                    if let Some(key) = ks.text.entries.get(&normalized) {
                        return Ok((key.clone(), format!("signed keystore v{}", ks.version)));
                    }
                    None
                }
                Some(ks) => Some(format!(
                    "the signed keystore v{} expired at {}",
                    ks.version,
                    super::signed_keystore::format_unix(ks.expires_unix)
                )),
                None => self.inner.keystore_url.as_ref().map(|url| {
                    signed
                        .last_error
                        .clone()
                        .unwrap_or_else(|| format!("the signed keystore {url} is not loaded yet"))
                }),
            }
        };
        if let Some((key, source)) = self.local().get(&normalized) {
            return Ok((key.clone(), source.clone()));
        }
        match signed_error {
            Some(e) => Err(TrustError::new(TrustErrorKind::KeystoreInvalid, e)),
            None => Err(TrustError::new(
                TrustErrorKind::NotTrusted,
                format!("no keystore lists {normalized}"),
            )),
        }
    }

    /// Every trusted domain with its source (signed keystore entries win over local ones).
    pub fn trusted_domains(&self) -> Vec<TrustedDomain> {
        let mut out: BTreeMap<String, TrustedDomain> = BTreeMap::new();
        let entry = |domain: &String, key: &PublicKey, source: String| TrustedDomain {
            domain: domain.clone(),
            source,
            algorithm: key.algorithm(),
            fingerprint: key.fingerprint(),
        };
        for (domain, (key, source)) in self.local().iter() {
            out.insert(domain.clone(), entry(domain, key, source.clone()));
        }
        let now = self.now_unix();
        if let Some(ks) = self
            .signed()
            .keystore
            .as_ref()
            .filter(|k| k.expires_unix > now)
        {
            for (domain, key) in &ks.text.entries {
                out.insert(
                    domain.clone(),
                    entry(domain, key, format!("signed keystore v{}", ks.version)),
                );
            }
        }
        out.into_values().collect()
    }

    /// Downloads the signed keystore now if one is configured and the last copy is older than the
    /// refresh interval (or missing). Failures keep the previous copy until it expires.
    pub async fn refresh_if_due(&self) {
        let Some(url) = self.inner.keystore_url.clone() else {
            return;
        };
        if !self.refresh_due() {
            return;
        }
        let _guard = self.inner.refresh_lock.lock().await;
        if !self.refresh_due() {
            return;
        }
        self.signed_mut().last_attempt = Some((self.inner.clock)());
        let result = fetch_and_accept(
            &self.inner.fetcher,
            &url,
            &self.inner.roots,
            &self.inner.cache,
            self.now_unix(),
        )
        .await;
        let mut signed = self.signed_mut();
        match result {
            Ok(accepted) => {
                tracing::info!(version = accepted.version, %url, "signed keystore updated");
                signed.keystore = Some(accepted);
                signed.last_success = Some((self.inner.clock)());
                signed.last_error = None;
            }
            Err(e) => {
                tracing::warn!(%url, "signed keystore not updated: {}", e.detail());
                signed.last_error = Some(e.detail().to_string());
            }
        }
    }

    /// Starts a task that keeps the signed keystore fresh; it ends when the verifier is dropped.
    /// `None` when no keystore URL is configured.
    pub fn spawn_refresh_task(&self) -> Option<tokio::task::JoinHandle<()>> {
        self.inner.keystore_url.as_ref()?;
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let period = self.inner.refresh_interval.min(RETRY_AFTER_FAILURE * 10);
        Some(tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                Verifier { inner }.refresh_if_due().await;
                tokio::time::sleep(period).await;
            }
        }))
    }

    fn refresh_due(&self) -> bool {
        let now = (self.inner.clock)();
        let older = |t: Option<SystemTime>, d: Duration| {
            t.is_none_or(|t| now.duration_since(t).unwrap_or_default() >= d)
        };
        let signed = self.signed();
        if signed.last_error.is_some() && !older(signed.last_attempt, RETRY_AFTER_FAILURE) {
            return false;
        }
        let usable = signed
            .keystore
            .as_ref()
            .is_some_and(|k| k.expires_unix > self.now_unix());
        !usable || older(signed.last_success, self.inner.refresh_interval)
    }

    fn now_unix(&self) -> i64 {
        let now = (self.inner.clock)();
        match now.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        }
    }

    fn local(&self) -> Arc<LocalKeys> {
        self.inner
            .local
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn signed(&self) -> std::sync::RwLockReadGuard<'_, SignedState> {
        self.inner.signed.read().unwrap_or_else(|e| e.into_inner())
    }

    fn signed_mut(&self) -> std::sync::RwLockWriteGuard<'_, SignedState> {
        self.inner.signed.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Adds a file's entries; the first source that lists a domain wins (one key per domain).
fn add_local(keys: &mut LocalKeys, path: &std::path::Path, text: super::keystore::KeystoreText) {
    for (domain, key) in text.entries {
        if let Some((_, first)) = keys.get(&domain) {
            tracing::warn!(%domain, "{} also lists this domain; the key from {first} is used", path.display());
            continue;
        }
        keys.insert(domain, (key, path.display().to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: crate::config::ServeArgs,
    }

    #[test]
    fn serve_options_become_trust_config() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root.pub");
        std::fs::write(
            &root,
            "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n",
        )
        .unwrap();
        let p = |name: &str| dir.path().join(name).display().to_string();
        let cli = Cli::parse_from([
            "x",
            "--keystore",
            &p("a.lst"),
            "--keystore",
            &p("b.lst"),
            "--keystore-url",
            "https://keys.example.org/domainkeys.lst",
            "--keystore-root",
            &p("root.pub"),
        ]);
        let config = TrustConfig::from_serve_args(&cli.serve).unwrap();
        assert_eq!(config.keystore_files.len(), 2);
        assert_eq!(
            config.root_keys.len(),
            super::super::roots::compiled_in().len() + 1
        );
        assert_eq!(
            config.keystore_url.unwrap().as_str(),
            "https://keys.example.org/domainkeys.lst"
        );
        // A missing --keystore file is reported by the start-up check.
        assert!(TrustConfig::from_serve_args(&cli.serve)
            .unwrap()
            .check_keystore_files()
            .is_err());

        let http = Cli::parse_from(["x", "--keystore-url", "http://keys.example.org/k.lst"]);
        assert_eq!(
            TrustConfig::from_serve_args(&http.serve)
                .unwrap_err()
                .code(),
            -99
        );
        let bad_ca = Cli::parse_from(["x", "--ca-cert", &p("root.pub")]);
        let config = TrustConfig::from_serve_args(&bad_ca.serve).unwrap();
        let data = DataDir::open(&dir.path().join("data")).unwrap();
        assert_eq!(Verifier::new(config, &data).unwrap_err().code(), -99);
    }
}
