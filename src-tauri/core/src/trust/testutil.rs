//! Test material shared by the trust module's unit tests.

use super::keys::PublicKey;

/// The tutorial's `test.local` RSA-2048 public key (shared/spec/protocol.md's signature test vectors),
/// kept in the repository so the tests never depend on files outside it. Its fingerprint is checked
/// against the spec's value in `keys::tests`.
pub(crate) fn test_local_key() -> PublicKey {
    PublicKey::from_base64(include_str!("testdata/test-local.spki.b64"))
        .expect("test-local.spki.b64 parses")
}
