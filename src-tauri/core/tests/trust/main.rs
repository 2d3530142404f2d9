//! Integration tests of the trust layer against real loopback HTTP(S) servers, the real
//! `cvmwebapi` binary and the Python example server: VMCP fetch limits, TLS verification,
//! signed keystores (signature, expiry, rollback), operator tools.

mod cli;
mod server;
mod signed_keystore;
mod vmcp_fetch;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use webapi_core::store::DataDir;
use webapi_core::trust::tools::sign_vmcp;
use webapi_core::trust::{FetchPolicy, PublicKey, SigningKey, TrustConfig, Verifier};

use server::{query_param, Reply};

/// The VMCP the test sites serve.
pub const DOC: &str = r#"{"name":"testvm","secret":"s3cret","cpus":1,"memory":256,"userData":"[cernvm]\nusers=a:b:c\n"}"#;

/// A fresh Ed25519 site key.
pub fn site_key() -> Arc<SigningKey> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    Arc::new(SigningKey::from_der("PRIVATE KEY", pkcs8.as_ref()).unwrap())
}

/// A handler that signs [`DOC`] for the salt of each request.
pub fn signing_handler(key: Arc<SigningKey>) -> impl Fn(&str) -> Reply + Send + Sync + 'static {
    move |target| match query_param(target, "cvm_salt") {
        Some(salt) => Reply::json(sign_vmcp(DOC.as_bytes(), &salt, &key, false).unwrap().json),
        None => Reply::Status(400, b"no salt".to_vec()),
    }
}

/// Short limits so failure tests end quickly.
pub fn test_policy() -> FetchPolicy {
    FetchPolicy {
        connect_timeout: Duration::from_secs(5),
        total_timeout: Duration::from_secs(2),
        max_body_bytes: 64 * 1024,
        ..FetchPolicy::default()
    }
}

/// A verifier whose only keystore is a local file trusting `domain` with `public`.
pub fn verifier_trusting(
    dir: &Path,
    domain: &str,
    public: &PublicKey,
    policy: FetchPolicy,
) -> Verifier {
    std::fs::create_dir_all(dir).unwrap();
    let keystore = dir.join("local.lst");
    std::fs::write(&keystore, format!("{domain}={}\n", public.to_base64())).unwrap();
    let config = TrustConfig {
        keystore_files: vec![keystore],
        fetch: policy,
        ..TrustConfig::default()
    };
    Verifier::new(config, &DataDir::open(&dir.join("data")).unwrap()).unwrap()
}
