//! Public keys (DER SubjectPublicKeyInfo, RSA or Ed25519) and signature checks with ring; private keys
//! (PKCS#8 or PKCS#1 PEM) and signing for the operator tools.
//!
//! ring's RSA verifier wants the PKCS#1 `RSAPublicKey`, not the SPKI that OpenSSL and keystores carry,
//! so the SPKI wrapper is taken apart here (shared/research/anchors.md §3.7).

use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::der::pem;
use rsa::pkcs8::spki::SubjectPublicKeyInfoRef;
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_ED25519: &str = "1.3.101.112";
/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), followed by the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// The largest key text we accept (an RSA-8192 SPKI is about 1.4 kB of base64).
const MAX_KEY_BASE64: usize = 4096;

/// Which signature scheme a key uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-512 (the original's scheme), 2048 to 8192 bits.
    RsaPkcs1Sha512,
    /// Ed25519 (RFC 8032) over the same bytes.
    Ed25519,
}

/// A public key that can check signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    algorithm: KeyAlgorithm,
    /// PKCS#1 `RSAPublicKey` DER, or the 32 raw Ed25519 bytes.
    raw: Vec<u8>,
    spki: Vec<u8>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PublicKey({:?}, sha256:{})",
            self.algorithm,
            self.fingerprint()
        )
    }
}

impl PublicKey {
    /// Parses a DER SubjectPublicKeyInfo holding an RSA (2048–8192 bits) or Ed25519 key.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, String> {
        let info = SubjectPublicKeyInfoRef::try_from(der)
            .map_err(|e| format!("not a DER SubjectPublicKeyInfo: {e}"))?;
        let oid = info.algorithm.oid.to_string();
        let raw = info
            .subject_public_key
            .as_bytes()
            .ok_or("the key bit string has unused bits")?
            .to_vec();
        match oid.as_str() {
            OID_RSA => {
                let key = rsa::RsaPublicKey::from_public_key_der(der)
                    .map_err(|e| format!("bad RSA public key: {e}"))?;
                let bits = key.n().bits();
                if !(2048..=8192).contains(&bits) {
                    return Err(format!(
                        "RSA key has {bits} bits; 2048 to 8192 are accepted"
                    ));
                }
                Ok(Self {
                    algorithm: KeyAlgorithm::RsaPkcs1Sha512,
                    raw,
                    spki: der.to_vec(),
                })
            }
            OID_ED25519 => {
                if info.algorithm.parameters.is_some() || raw.len() != 32 {
                    return Err("bad Ed25519 public key".into());
                }
                Ok(Self {
                    algorithm: KeyAlgorithm::Ed25519,
                    raw,
                    spki: der.to_vec(),
                })
            }
            other => Err(format!(
                "key algorithm {other} is not supported (RSA or Ed25519 only)"
            )),
        }
    }

    /// Parses the one-line base64 SPKI of a keystore line or a `.pub` file (surrounding whitespace
    /// and a trailing `\r` are ignored).
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.len() > MAX_KEY_BASE64 {
            return Err(format!(
                "key text is longer than {MAX_KEY_BASE64} characters"
            ));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("key is not valid base64: {e}"))?;
        Self::from_spki_der(&der)
    }

    /// Builds an Ed25519 key from its 32 raw bytes.
    pub fn ed25519(raw: &[u8]) -> Result<Self, String> {
        let mut der = ED25519_SPKI_PREFIX.to_vec();
        der.extend_from_slice(raw);
        Self::from_spki_der(&der)
    }

    /// Builds an RSA key from a PKCS#1 `RSAPublicKey` DER.
    pub fn rsa_pkcs1(der: &[u8]) -> Result<Self, String> {
        let key = rsa::RsaPublicKey::from_pkcs1_der(der)
            .map_err(|e| format!("bad RSA public key: {e}"))?;
        let spki = key
            .to_public_key_der()
            .map_err(|e| format!("cannot encode RSA public key: {e}"))?;
        Self::from_spki_der(spki.as_bytes())
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// One-line base64 of the SPKI, as in keystore lines and `.pub` files.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.spki)
    }

    /// Lowercase hex SHA-256 of the SPKI DER.
    pub fn fingerprint(&self) -> String {
        hex::encode(ring::digest::digest(&ring::digest::SHA256, &self.spki))
    }

    /// True when `signature` is this key's signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let algorithm: &dyn signature::VerificationAlgorithm = match self.algorithm {
            KeyAlgorithm::RsaPkcs1Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            KeyAlgorithm::Ed25519 => &signature::ED25519,
        };
        signature::UnparsedPublicKey::new(algorithm, &self.raw)
            .verify(message, signature)
            .is_ok()
    }
}

/// Decodes a base64 signature the way the original did: whitespace and `=` are ignored, any other
/// character outside the base64 alphabet is an error.
pub fn decode_signature(text: &str) -> Result<Vec<u8>, String> {
    const MAX_SIGNATURE_BASE64: usize = 4096;
    if text.len() > MAX_SIGNATURE_BASE64 {
        return Err(format!(
            "signature is longer than {MAX_SIGNATURE_BASE64} characters"
        ));
    }
    let cleaned: String = text
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && *c != '=')
        .collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    );
    engine
        .decode(cleaned)
        .map_err(|e| format!("signature is not valid base64: {e}"))
}

/// A private key for signing (operator tools only; the daemon never holds one).
pub enum SigningKey {
    Rsa(signature::RsaKeyPair),
    Ed25519(signature::Ed25519KeyPair),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rsa(_) => f.write_str("SigningKey::Rsa"),
            Self::Ed25519(_) => f.write_str("SigningKey::Ed25519"),
        }
    }
}

impl SigningKey {
    /// Reads a PEM private key: PKCS#8 (`PRIVATE KEY`, RSA or Ed25519, as written by `keygen` or
    /// `openssl genpkey`) or PKCS#1 (`RSA PRIVATE KEY`, as the original tutorial's key).
    pub fn from_pem(text: &str) -> Result<Self, String> {
        let (label, der) = pem::decode_vec(text.trim().as_bytes())
            .map_err(|e| format!("not a PEM private key: {e}"))?;
        Self::from_der(label, &der)
    }

    /// Builds a key from DER with its PEM label.
    pub fn from_der(label: &str, der: &[u8]) -> Result<Self, String> {
        match label {
            "PRIVATE KEY" => {
                if let Ok(pair) = signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
                    return Ok(Self::Ed25519(pair));
                }
                signature::RsaKeyPair::from_pkcs8(der)
                    .map(Self::Rsa)
                    .map_err(|e| format!("PKCS#8 key is neither Ed25519 nor a usable RSA key: {e}"))
            }
            "RSA PRIVATE KEY" => signature::RsaKeyPair::from_der(der)
                .map(Self::Rsa)
                .map_err(|e| format!("bad PKCS#1 RSA key: {e}")),
            other => Err(format!(
                "PEM label {other:?} is not a private key (expected PRIVATE KEY or RSA PRIVATE KEY)"
            )),
        }
    }

    /// Signs `message` (RSA: PKCS#1 v1.5 with SHA-512; Ed25519: pure Ed25519).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            Self::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public().modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA512,
                    &SystemRandom::new(),
                    message,
                    &mut sig,
                )
                .map_err(|_| "RSA signing failed".to_string())?;
                Ok(sig)
            }
            Self::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> Result<PublicKey, String> {
        match self {
            Self::Rsa(pair) => PublicKey::rsa_pkcs1(pair.public().as_ref()),
            Self::Ed25519(pair) => PublicKey::ed25519(pair.public_key().as_ref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_tutorial_key_and_fingerprint_matches_the_spec() {
        let key = crate::trust::testutil::test_local_key();
        assert_eq!(key.algorithm(), KeyAlgorithm::RsaPkcs1Sha512);
        assert_eq!(
            key.fingerprint(),
            "9fab657dd90b21a0dd1c7cbfd066aa00bf35e8ae327e8006c73cd09c59173b96"
        );
    }

    #[test]
    fn ed25519_sign_and_verify_round_trip() {
        let rng = SystemRandom::new();
        let pkcs8 = signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let key = SigningKey::from_der("PRIVATE KEY", pkcs8.as_ref()).unwrap();
        let public = key.public_key().unwrap();
        let again = PublicKey::from_base64(&public.to_base64()).unwrap();
        assert_eq!(again, public);
        let sig = key.sign(b"hello").unwrap();
        assert!(public.verify(b"hello", &sig));
        assert!(!public.verify(b"hellO", &sig));
    }

    #[test]
    fn rejects_garbage_keys() {
        assert!(PublicKey::from_base64("not base64!").is_err());
        assert!(PublicKey::from_base64("AAAA").is_err());
        assert!(PublicKey::from_spki_der(&[0x30, 0x00]).is_err());
        assert!(PublicKey::ed25519(&[1u8; 31]).is_err());
        assert!(SigningKey::from_pem(
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
        )
        .is_err());
    }

    #[test]
    fn signature_decoding_ignores_whitespace_and_padding_only() {
        assert_eq!(decode_signature("QU\nJD =").unwrap(), b"ABC");
        assert_eq!(decode_signature("QUI=").unwrap(), b"AB");
        assert!(decode_signature("QU*JD").is_err());
    }
}
