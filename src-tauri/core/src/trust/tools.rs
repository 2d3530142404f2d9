//! The operator tools behind `cvmwebapi keygen`, `cvmwebapi vmcp sign` and `cvmwebapi keystore
//! sign|verify`: what the people who run websites use to make keys, sign VMCPs and keystores.
//!
//! Ed25519 keys come from ring. RSA keys come from the RustCrypto `rsa` crate (ring cannot generate
//! RSA keys); signing always goes through ring.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{Map, Value};

use super::canonical::{canonical_buffer, flatten, FlatMap};
use super::error::{TrustError, TrustErrorKind};
use super::keys::{PublicKey, SigningKey};
use super::keystore::{parse_keystore, read_bounded};
use super::salt::is_salt;
use super::signed_keystore::{accept, AcceptedKeystore};

/// Which kind of key `keygen` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewKey {
    Ed25519,
    /// RSA with this many bits (2048, 3072 or 4096; ring signs with keys up to 4096 bits).
    Rsa(usize),
}

/// The private and public key paths for `PREFIX`: `PREFIX.key` and `PREFIX.pub`.
pub fn key_paths(prefix: &Path) -> (PathBuf, PathBuf) {
    let mut key = prefix.as_os_str().to_owned();
    key.push(".key");
    let mut public = prefix.as_os_str().to_owned();
    public.push(".pub");
    (key.into(), public.into())
}

/// Makes a key pair: `PREFIX.key` (PKCS#8 PEM, mode 0600) and `PREFIX.pub` (one-line base64 SPKI,
/// ready for a keystore line). Existing files are never overwritten.
pub fn keygen(kind: NewKey, prefix: &Path) -> Result<PublicKey, TrustError> {
    let (key_path, pub_path) = key_paths(prefix);
    for path in [&key_path, &pub_path] {
        if path.exists() {
            return Err(TrustError::usage(format!(
                "{} already exists; not overwriting it",
                path.display()
            )));
        }
    }
    let pkcs8_der: Vec<u8> = match kind {
        NewKey::Ed25519 => {
            let rng = ring::rand::SystemRandom::new();
            ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| TrustError::io("generating an Ed25519 key failed"))?
                .as_ref()
                .to_vec()
        }
        NewKey::Rsa(bits) => {
            use rsa::pkcs8::EncodePrivateKey;
            if ![2048, 3072, 4096].contains(&bits) {
                return Err(TrustError::usage(format!(
                    "RSA keys may have 2048, 3072 or 4096 bits, not {bits}"
                )));
            }
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits)
                .map_err(|e| TrustError::io(format!("generating an RSA key failed: {e}")))?;
            key.to_pkcs8_der()
                .map_err(|e| TrustError::io(format!("encoding the RSA key failed: {e}")))?
                .as_bytes()
                .to_vec()
        }
    };
    let signing = SigningKey::from_der("PRIVATE KEY", &pkcs8_der).map_err(TrustError::io)?;
    let public = signing.public_key().map_err(TrustError::io)?;
    let pem =
        rsa::pkcs8::der::pem::encode_string("PRIVATE KEY", rsa::pkcs8::LineEnding::LF, &pkcs8_der)
            .map_err(|e| TrustError::io(format!("PEM encoding failed: {e}")))?;
    write_new_file(&key_path, pem.as_bytes(), true)?;
    write_new_file(
        &pub_path,
        format!("{}\n", public.to_base64()).as_bytes(),
        false,
    )?;
    Ok(public)
}

fn write_new_file(path: &Path, bytes: &[u8], private: bool) -> Result<(), TrustError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options
        .open(path)
        .map_err(|e| TrustError::io(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| TrustError::io(format!("cannot write {}: {e}", path.display())))
}

/// Reads a private key file (PKCS#8 or PKCS#1 PEM).
pub fn load_signing_key(path: &Path) -> Result<SigningKey, TrustError> {
    let text = read_bounded(path)?;
    SigningKey::from_pem(&text).map_err(|e| TrustError::usage(format!("{}: {e}", path.display())))
}

/// Reads a public key file (one-line base64 SPKI, as `keygen` writes).
pub fn load_public_key(path: &Path) -> Result<PublicKey, TrustError> {
    let text = read_bounded(path)?;
    PublicKey::from_base64(&text).map_err(|e| TrustError::usage(format!("{}: {e}", path.display())))
}

/// A signed VMCP and the members left out of it.
#[derive(Debug)]
pub struct SignedVmcp {
    /// The document to serve: the kept members plus `signature`, as compact JSON.
    pub json: String,
    /// Members the daemon would drop (key, reason); only non-empty with `drop_unsupported`.
    pub dropped: Vec<(String, &'static str)>,
}

/// Signs a VMCP document for `salt` (the `cvm_salt` of the request being answered). Values the
/// daemon would drop (booleans, null, arrays, doubles, ints beyond 32 bits, nested objects) are
/// refused, or with `drop_unsupported` left out of the output, so what is signed is exactly what the
/// daemon checks. An existing `signature` member is replaced.
pub fn sign_vmcp(
    document: &[u8],
    salt: &str,
    key: &SigningKey,
    drop_unsupported: bool,
) -> Result<SignedVmcp, TrustError> {
    if !is_salt(salt) {
        return Err(TrustError::usage(
            "the salt must be the 64-character cvm_salt of the request (a-z A-Z 0-9 -)",
        ));
    }
    let value: Value = serde_json::from_slice(document).map_err(|e| {
        TrustError::new(TrustErrorKind::Parse, format!("the VMCP is not JSON: {e}"))
    })?;
    let Value::Object(mut doc) = value else {
        return Err(TrustError::new(
            TrustErrorKind::Parse,
            "the VMCP is not a JSON object",
        ));
    };
    doc.remove("signature");
    if let Some(k) = doc.keys().find(|k| k.eq_ignore_ascii_case("signature")) {
        return Err(TrustError::usage(format!(
            "the member {k:?} clashes with 'signature'; rename it"
        )));
    }
    if let Some(k) = doc.keys().find(|k| !k.is_ascii()) {
        return Err(TrustError::usage(format!(
            "the key {k:?} is not ASCII; the daemon lower-cases only ASCII keys"
        )));
    }
    let unsupported: Vec<(String, &'static str)> = doc
        .iter()
        .filter_map(|(k, v)| unsupported_reason(v).map(|r| (k.clone(), r)))
        .collect();
    if !unsupported.is_empty() && !drop_unsupported {
        let list: Vec<String> = unsupported
            .iter()
            .map(|(k, r)| format!("{k} ({r})"))
            .collect();
        return Err(TrustError::usage(format!(
            "the daemon ignores these members, so they cannot be signed: {}; use strings or 32-bit integers (or --drop-unsupported)",
            list.join(", ")
        )));
    }
    for (k, _) in &unsupported {
        doc.remove(k);
    }
    let map: FlatMap = flatten(&doc).map_err(TrustError::usage)?.map;
    let signature = key
        .sign(&canonical_buffer(&map, salt))
        .map_err(TrustError::io)?;
    let mut out: Map<String, Value> = map;
    out.insert(
        "signature".into(),
        Value::String(base64::engine::general_purpose::STANDARD.encode(signature)),
    );
    let json = serde_json::to_string(&out).map_err(|e| TrustError::io(e.to_string()))?;
    Ok(SignedVmcp {
        json,
        dropped: unsupported,
    })
}

fn unsupported_reason(value: &Value) -> Option<&'static str> {
    match value {
        Value::String(_) => None,
        Value::Number(n) if n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()) => None,
        Value::Number(n) if n.is_f64() => Some("a number with a fraction or exponent"),
        Value::Number(_) => Some("an integer outside the signed 32-bit range"),
        Value::Bool(_) => Some("a boolean; use 0 or 1"),
        Value::Null => Some("null"),
        Value::Array(_) => Some("an array"),
        Value::Object(_) => Some("a nested object"),
    }
}

/// Builds a signed keystore from `domain=base64-SPKI` lines: returns the keystore text (with
/// `@version` and `@expires` headers, normalised domains) and its base64 detached signature.
pub fn sign_keystore(
    entries: &str,
    key: &SigningKey,
    version: u64,
    expires: &str,
) -> Result<(String, String), TrustError> {
    let parsed = parse_keystore(entries).map_err(TrustError::usage)?;
    if parsed.version.is_some() || parsed.expires_unix.is_some() {
        return Err(TrustError::usage(
            "the input already has @version/@expires headers; give only domain lines and use --version/--expires",
        ));
    }
    let expires_time =
        time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339)
            .map_err(|e| {
                TrustError::usage(format!(
                    "--expires {expires:?} is not an RFC 3339 time: {e}"
                ))
            })?;
    let mut text = format!(
        "# CernVM WebAPI signed keystore\n@version {version}\n@expires {}\n",
        super::signed_keystore::format_unix(expires_time.unix_timestamp())
    );
    for (domain, public) in &parsed.entries {
        text.push_str(&format!("{domain}={}\n", public.to_base64()));
    }
    let signature = key.sign(text.as_bytes()).map_err(TrustError::io)?;
    Ok((
        text,
        format!(
            "{}\n",
            base64::engine::general_purpose::STANDARD.encode(signature)
        ),
    ))
}

/// Checks a signed keystore with `roots` at `now_unix` (signature, headers, expiry).
pub fn verify_keystore(
    bytes: &[u8],
    signature: &str,
    roots: &[PublicKey],
    now_unix: i64,
) -> Result<AcceptedKeystore, TrustError> {
    accept(bytes, signature, roots, None, now_unix)
        .map_err(|e| TrustError::new(TrustErrorKind::KeystoreInvalid, e))
}
