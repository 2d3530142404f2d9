//! The trust-root keys compiled into this binary: the keys that may sign a keystore.
//!
//! **The list is empty.** There is no official keystore or trust root for the Rust edition yet, and
//! the original's CERN master key (shared/spec/protocol.md §4.6) signs only files in the original's
//! format, which nobody outside CERN can produce. Shipping a project key whose private half nobody
//! responsible holds would be a fake root, so there is none. Until an organisation takes on the role
//! (holding the private key offline and publishing a signed keystore), a signed keystore can only be
//! used with a root key given at run time (`cvmwebapi serve --keystore-root FILE`); the usual setup is
//! local keystore files (`--keystore FILE`). See docs/security.md, "Trust".

use super::keys::PublicKey;

/// Base64 SPKIs of the compiled-in trust roots. Add a key here only together with a statement in
/// docs/security.md of who holds its private half and how it is protected.
const COMPILED_IN_ROOTS: &[&str] = &[];

/// The compiled-in trust-root keys.
pub fn compiled_in() -> Vec<PublicKey> {
    COMPILED_IN_ROOTS
        .iter()
        .map(|b64| PublicKey::from_base64(b64).expect("compiled-in root keys parse"))
        .collect()
}
