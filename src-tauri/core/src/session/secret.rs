//! The session secret, stored only as a salted SHA-256 (random per-session salt), compared in constant time.

use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// A salted hash of a session secret. The secret itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretHash {
    /// Hex of 16 random bytes.
    pub salt: String,
    /// Hex SHA-256 of salt bytes followed by the secret.
    pub sha256: String,
}

impl SecretHash {
    /// Hashes `secret` with a fresh random salt.
    pub fn new(secret: &str) -> Self {
        let mut salt = [0u8; 16];
        // The system RNG failing is not recoverable; an all-zero salt still hides the secret.
        let _ = SystemRandom::new().fill(&mut salt);
        let salt = hex::encode(salt);
        let sha256 = hash(&salt, secret);
        Self { salt, sha256 }
    }

    /// Whether `secret` is the one this hash was made from.
    pub fn matches(&self, secret: &str) -> bool {
        let candidate = hash(&self.salt, secret);
        candidate.len() == self.sha256.len()
            && candidate
                .bytes()
                .zip(self.sha256.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

fn hash(salt_hex: &str, secret: &str) -> String {
    let mut input = hex::decode(salt_hex).unwrap_or_default();
    input.extend_from_slice(secret.as_bytes());
    hex::encode(digest(&SHA256, &input))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_secret_and_salts_differ() {
        let a = SecretHash::new("s3cret");
        assert!(a.matches("s3cret"));
        assert!(!a.matches("s3cret "));
        assert!(!a.matches(""));
        let b = SecretHash::new("s3cret");
        assert_ne!(a.sha256, b.sha256, "salts must differ");
        assert!(!a.sha256.contains("s3cret"));
    }
}
