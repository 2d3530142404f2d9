//! Idle-time VM control: idle sources (X11, Wayland ext-idle-notify-v1, GNOME/Mutter, macOS/Windows, unknown), the
//! `daemonControlled` / `daemonMinCap` / `daemonMaxCap` / `daemonFlags` policy as pure functions, and the
//! controller task that applies it to the sessions through [`IdleTarget`].
//!
//! Wiring in a daemon: `let handle = idle::spawn_for(&daemon.state(), threshold).await;` (picks the
//! source, starts the controller over the daemon's sessions, publishes it to pages) and keep `handle`
//! for the tray (status, snooze).

pub mod clock;
pub mod controller;
pub mod detect;
#[cfg(not(any(target_os = "macos", target_os = "windows")))]
pub mod gnome;
#[cfg(any(target_os = "macos", target_os = "windows"))]
pub mod os;
pub mod params;
pub mod policy;
pub mod sessions;
pub mod source;
pub mod status;
pub mod target;
#[cfg(not(any(target_os = "macos", target_os = "windows")))]
pub mod wayland;
#[cfg(not(any(target_os = "macos", target_os = "windows")))]
pub mod x11;

#[cfg(test)]
mod controller_tests;
#[cfg(all(test, target_os = "linux"))]
mod linux_sources_tests;
#[cfg(all(test, target_os = "linux"))]
mod wayland_tests;

pub use clock::{Clock, SystemClock};
pub use controller::{Controller, IdleHandle, PollPeriods};
pub use detect::detect;
pub use params::{IdlePolicy, ParamError, PolicyMode, DF_AUTOSTART, DF_SUSPEND};
pub use policy::{decide, presence, IdleAction, Presence, SessionView, DEFAULT_THRESHOLD};
pub use sessions::{spawn_for, spawn_with, spawn_with_poll, SessionsTarget};
pub use source::{IdleError, IdleSource, UnknownSource};
pub use status::{Doing, IdleStatus};
pub use target::{ControlledSession, IdleTarget, TargetError};
