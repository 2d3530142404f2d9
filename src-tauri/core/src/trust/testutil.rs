//! Test material shared by the trust module's unit tests.

use super::keys::PublicKey;

/// The tutorial's `test.local` RSA-2048 public key from shared/testdata. Missing material fails the
/// test under `CI=true` and skips it (with a note) otherwise.
pub(crate) fn test_local_key() -> Option<PublicKey> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/testdata/test-local.spki.b64"
    );
    match std::fs::read_to_string(path) {
        Ok(text) => Some(PublicKey::from_base64(&text).expect("test-local.spki.b64 parses")),
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipping: cannot read {path}: {e}");
            None
        }
        Err(e) => panic!("cannot read {path}: {e} (required when CI=true)"),
    }
}
