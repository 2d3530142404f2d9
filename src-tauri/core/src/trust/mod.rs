//! Trust: nothing runs unless the website's VM configuration (VMCP) is signed by the key that a
//! keystore trusts for the website's domain (shared/spec/protocol.md §4).
//!
//! - [`Verifier`] is what the daemon calls: [`Verifier::fetch_verified`] runs steps 3–8 of
//!   requestSession (keystore, domain trust, fetch with `cvm_salt`/`cvm_hostid`, parse, required
//!   fields, signature), [`Verifier::is_trusted`] answers the consent dialog.
//! - [`canonical`] is the exact signed buffer, [`keys`] the RSA/Ed25519 keys (ring), [`fetch`] the
//!   bounded https client, [`keystore`] and [`signed_keystore`] the key lists, [`tools`] the operator
//!   commands of `cvmwebapi` (keygen, vmcp sign, keystore sign/verify).

pub mod canonical;
pub mod cli;
pub mod error;
pub mod fetch;
pub mod keys;
pub mod keystore;
pub mod roots;
pub mod salt;
pub mod settings;
pub mod signed_keystore;
pub mod tools;
pub mod verifier;
pub mod vmcp;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

pub use canonical::FlatMap;
pub use error::{TrustError, TrustErrorKind};
pub use fetch::FetchPolicy;
pub use keys::{KeyAlgorithm, PublicKey, SigningKey};
pub use settings::TrustSettings;
pub use verifier::{Clock, TrustConfig, TrustedDomain, Verifier};
