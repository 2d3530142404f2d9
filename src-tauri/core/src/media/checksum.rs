//! Expected checksums (SHA-256 or SHA-512, chosen by the hex length, any case) and the streaming
//! hasher that digests bytes as they arrive.

use ring::digest;

use super::error::MediaError;

/// The digest algorithm of an expected checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    fn ring(self) -> &'static digest::Algorithm {
        match self {
            Algorithm::Sha256 => &digest::SHA256,
            Algorithm::Sha512 => &digest::SHA512,
        }
    }
}

/// An expected checksum, normalised to lower-case hex. It is also the image's cache key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checksum {
    algorithm: Algorithm,
    hex: String,
}

impl Checksum {
    /// Parses a hex digest: 64 digits mean SHA-256, 128 mean SHA-512; upper or lower case.
    pub fn parse(text: &str) -> Result<Self, MediaError> {
        let text = text.trim();
        let algorithm = match text.len() {
            64 => Algorithm::Sha256,
            128 => Algorithm::Sha512,
            n => {
                return Err(MediaError::InvalidInput(format!(
                    "checksum must be 64 (SHA-256) or 128 (SHA-512) hex digits, got {n} characters"
                )))
            }
        };
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(MediaError::InvalidInput(
                "checksum must contain only hex digits".into(),
            ));
        }
        Ok(Self {
            algorithm,
            hex: text.to_ascii_lowercase(),
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Lower-case hex of the digest.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The cache key: algorithm prefix plus hex, safe as a file name.
    pub fn key(&self) -> String {
        match self.algorithm {
            Algorithm::Sha256 => format!("sha256-{}", self.hex),
            Algorithm::Sha512 => format!("sha512-{}", self.hex),
        }
    }
}

/// Digests bytes as they arrive; cloneable so a failed attempt can keep its state.
#[derive(Clone)]
pub struct StreamHasher {
    ctx: digest::Context,
    len: u64,
}

impl StreamHasher {
    pub fn new(algorithm: Algorithm) -> Self {
        Self {
            ctx: digest::Context::new(algorithm.ring()),
            len: 0,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.ctx.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Number of bytes digested so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Lower-case hex of the digest of everything seen.
    pub fn finish_hex(self) -> String {
        hex::encode(self.ctx.finish().as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn picks_algorithm_by_length_and_accepts_upper_case() {
        let c = Checksum::parse(&ABC256.to_uppercase()).unwrap();
        assert_eq!(c.algorithm(), Algorithm::Sha256);
        assert_eq!(c.hex(), ABC256);
        assert_eq!(c.key(), format!("sha256-{ABC256}"));
        let long = "a".repeat(128);
        assert_eq!(
            Checksum::parse(&long).unwrap().algorithm(),
            Algorithm::Sha512
        );
    }

    #[test]
    fn rejects_bad_lengths_and_characters() {
        assert!(Checksum::parse("abc").is_err());
        assert!(Checksum::parse(&"g".repeat(64)).is_err());
        assert!(Checksum::parse("").is_err());
        assert!(Checksum::parse(&"../".repeat(22)[..64]).is_err());
    }

    #[test]
    fn streaming_equals_one_shot() {
        let mut h = StreamHasher::new(Algorithm::Sha256);
        h.update(b"a");
        h.update(b"bc");
        assert_eq!(h.len(), 3);
        assert_eq!(h.finish_hex(), ABC256);
        let mut h = StreamHasher::new(Algorithm::Sha512);
        h.update(b"abc");
        assert!(h.finish_hex().starts_with("ddaf35a193617aba"));
    }
}
