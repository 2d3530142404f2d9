//! `webapi-core`: everything of CernVM WebAPI that needs no GUI.
//!
//! Data flows one way: page → [`server`] → [`daemon`] → [`session`] → [`hypervisor`]; events flow
//! back through the daemon's fan-out. See `docs/architecture.md` for the map.

pub mod config;
pub mod consent;
pub mod daemon;
pub mod demo;
pub mod desktop;
pub mod events;
pub mod footprint;
pub mod hypervisor;
pub mod idle;
pub mod logging;
pub mod media;
pub mod monitor;
pub mod protocol;
pub mod server;
pub mod session;
pub mod settings;
pub mod store;
pub mod trust;

#[cfg(all(test, target_os = "linux"))]
mod testutil_linux;

/// The version this build reports in `/info` and `cvmwebapi --version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The protocol version reported to the JavaScript client in the handshake and `/info`.
///
/// The 2.0.x JS library compares this against its own version and shows an "upgrade" notice when the
/// daemon reports an older one (shared/spec/protocol.md §3.9), so we report the newest 2.0.x release.
pub const PROTOCOL_VERSION: &str = "2.0.12";
