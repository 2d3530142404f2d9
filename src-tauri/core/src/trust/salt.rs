//! The per-request `cvm_salt`, the per-domain `cvm_hostid`, and the persisted local id they derive
//! from (shared/spec/protocol.md §4.2).

use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::error::TrustError;

/// The 63 symbols of salts and local ids, in the original's order.
const ALPHABET: &[u8; 63] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-";
/// Length of a salt and of the local id.
pub const SALT_LEN: usize = 64;

/// A fresh 64-character salt from the OS CSPRNG. Unlike the original's `byte % 63`, bytes ≥ 252 are
/// rejected so every symbol is equally likely.
pub fn new_salt() -> Result<String, TrustError> {
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(SALT_LEN);
    let mut buf = [0u8; 96];
    while out.len() < SALT_LEN {
        rng.fill(&mut buf)
            .map_err(|_| TrustError::io("the system random number generator failed"))?;
        for &b in &buf {
            if b < 252 && out.len() < SALT_LEN {
                out.push(ALPHABET[(b % 63) as usize] as char);
            }
        }
    }
    Ok(out)
}

/// True when `s` looks like a salt: 64 symbols of the salt alphabet.
pub fn is_salt(s: &str) -> bool {
    s.len() == SALT_LEN && s.bytes().all(|b| ALPHABET.contains(&b))
}

/// `cvm_hostid`: lowercase hex SHA-256 of `local_id + "|" + domain`.
pub fn host_id(local_id: &str, domain: &str) -> String {
    let input = format!("{local_id}|{domain}");
    hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        input.as_bytes(),
    ))
}

#[derive(Serialize, Deserialize)]
struct LocalIdFile {
    local_id: String,
}

/// Reads the local id from `path`, creating it (atomically) the first time. A file that exists but
/// is damaged is an error, never silently replaced: a new id would change every site's host id.
pub fn load_or_create_local_id(path: &Path) -> Result<String, TrustError> {
    let existing: Option<LocalIdFile> =
        crate::store::read_json(path).map_err(|e| TrustError::io(format!("{e:#}")))?;
    if let Some(file) = existing {
        if is_salt(&file.local_id) {
            return Ok(file.local_id);
        }
        return Err(TrustError::io(format!(
            "{} holds a malformed local id (64 characters of a-z A-Z 0-9 - expected); move it away to start with a new one",
            path.display()
        )));
    }
    let local_id = new_salt()?;
    crate::store::write_json_atomic(
        path,
        &LocalIdFile {
            local_id: local_id.clone(),
        },
    )
    .map_err(|e| TrustError::io(format!("cannot store the local id: {e:#}")))?;
    Ok(local_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salts_are_64_symbols_and_differ() {
        let a = new_salt().unwrap();
        let b = new_salt().unwrap();
        assert!(is_salt(&a) && is_salt(&b), "{a} {b}");
        assert_ne!(a, b);
        assert!(!is_salt("short"));
        assert!(!is_salt(&"a".repeat(63).replace('a', "_")));
    }

    #[test]
    fn host_id_matches_the_spec_example() {
        assert_eq!(
            host_id(
                "LocalId0LocalId1LocalId2LocalId3LocalId4LocalId5LocalId6LocalId-",
                "test.local"
            ),
            "5ab204f1968c04b74e3d2648c38235d4d2b144e0132b72dc00a49848535615b1"
        );
    }

    #[test]
    fn local_id_persists_and_damage_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trust/local-id.json");
        let first = load_or_create_local_id(&path).unwrap();
        assert_eq!(load_or_create_local_id(&path).unwrap(), first);
        std::fs::write(&path, br#"{"local_id":"x"}"#).unwrap();
        let err = load_or_create_local_id(&path).unwrap_err();
        assert_eq!(err.code(), -6);
        assert!(err.detail().contains("malformed"), "{err}");
        assert!(
            std::fs::read(&path).unwrap().ends_with(b"\"x\"}"),
            "the damaged file is kept"
        );
    }
}
