//! Chooses the idle source at start: the OS counter on macOS/Windows; on Linux under Wayland the
//! ext-idle-notify-v1 protocol, else GNOME's Mutter; on X11 the MIT-SCREEN-SAVER extension, else Mutter;
//! `unknown` when nothing answers.
//! The choice and every rejected candidate are logged.

use std::sync::Arc;

use super::source::{IdleError, IdleSource, UnknownSource};

/// The environment the choice depends on (read from the process environment by [`detect`]).
#[derive(Debug, Clone, Default)]
pub struct SessionEnv {
    /// `$DISPLAY` (an X server or Xwayland).
    pub display: Option<String>,
    /// `$WAYLAND_DISPLAY` or `$XDG_SESSION_TYPE=wayland`.
    pub wayland: bool,
    /// The compositor's socket (`$XDG_RUNTIME_DIR/$WAYLAND_DISPLAY`), if known.
    pub wayland_socket: Option<std::path::PathBuf>,
    /// `$DBUS_SESSION_BUS_ADDRESS`, if set (zbus also finds the bus from `$XDG_RUNTIME_DIR` without it).
    pub dbus_address: Option<String>,
}

impl SessionEnv {
    pub fn from_process() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Self {
            display: var("DISPLAY"),
            wayland: var("WAYLAND_DISPLAY").is_some()
                || var("XDG_SESSION_TYPE").is_some_and(|t| t.eq_ignore_ascii_case("wayland")),
            dbus_address: var("DBUS_SESSION_BUS_ADDRESS"),
            #[cfg(not(any(target_os = "macos", target_os = "windows")))]
            wayland_socket: super::wayland::socket_from_env(),
            #[cfg(any(target_os = "macos", target_os = "windows"))]
            wayland_socket: None,
        }
    }
}

/// The chosen source and why the others were not taken.
pub struct Detected {
    pub source: Arc<dyn IdleSource>,
    /// `(candidate, reason it was not used)`, in the order tried.
    pub rejected: Vec<(&'static str, String)>,
}

/// Picks the idle source for this process's session and logs the choice.
pub async fn detect() -> Arc<dyn IdleSource> {
    let found = detect_in(&SessionEnv::from_process()).await;
    for (name, why) in &found.rejected {
        tracing::info!(candidate = name, reason = %why, "idle source not used");
    }
    if found.source.name() == "unknown" {
        tracing::warn!(
            "no idle source works in this session: idle control treats the user as always active"
        );
    } else {
        tracing::info!(source = found.source.name(), "idle source chosen");
    }
    found.source
}

/// A text report for `cvmwebapi idle-status`: the chosen source, the rejected ones and one reading.
pub async fn report() -> String {
    use std::fmt::Write;
    let found = detect_in(&SessionEnv::from_process()).await;
    let mut out = String::new();
    let _ = writeln!(out, "idle source: {}", found.source.name());
    for (name, why) in &found.rejected {
        let why = why.strip_prefix(&format!("{name}: ")).unwrap_or(why);
        let _ = writeln!(out, "not used: {name}: {why}");
    }
    let _ = match found.source.idle_time().await {
        Ok(t) => writeln!(out, "idle time: {:.1} s", t.as_secs_f64()),
        Err(IdleError::Unsupported) => {
            writeln!(
                out,
                "idle time: unknown; idle control treats the user as always active"
            )
        }
        Err(e) => writeln!(
            out,
            "idle time: unknown ({e}); idle control treats the user as active"
        ),
    };
    out
}

/// The choice for a given environment (each candidate is probed once, under the probe timeout).
pub async fn detect_in(env: &SessionEnv) -> Detected {
    let mut rejected = Vec::new();
    #[cfg(any(target_os = "macos", target_os = "windows"))]
    {
        let _ = env;
        let os = super::os::OsSource;
        match os.idle_time().await {
            Ok(_) => {
                return Detected {
                    source: Arc::new(os),
                    rejected,
                }
            }
            Err(e) => rejected.push((os.name(), e.to_string())),
        }
    }
    #[cfg(not(any(target_os = "macos", target_os = "windows")))]
    {
        use super::{gnome::GnomeSource, wayland::WaylandIdleSource, x11::X11Source};
        // On Wayland, X11 clients do not see input to native Wayland windows: ask the compositor.
        if env.wayland {
            match &env.wayland_socket {
                Some(path) => match WaylandIdleSource::open(path.clone()).await {
                    Ok(s) => {
                        return Detected {
                            source: Arc::new(s),
                            rejected,
                        }
                    }
                    Err(e) => rejected.push(("wayland-ext-idle-notify", e.to_string())),
                },
                None => rejected.push((
                    "wayland-ext-idle-notify",
                    "WAYLAND_DISPLAY or XDG_RUNTIME_DIR is not set".into(),
                )),
            }
            match GnomeSource::open(env.dbus_address.clone()).await {
                Ok(s) => {
                    return Detected {
                        source: Arc::new(s),
                        rejected,
                    }
                }
                Err(e) => rejected.push(("gnome-mutter", e.to_string())),
            }
            if env.display.is_some() {
                rejected.push((
                    "x11",
                    "not used on Wayland: Xwayland sees only input to X11 windows".into(),
                ));
            }
        } else {
            match &env.display {
                Some(display) => match X11Source::open(Some(display.clone())).await {
                    Ok(s) => {
                        return Detected {
                            source: Arc::new(s),
                            rejected,
                        }
                    }
                    Err(e) => rejected.push(("x11", e.to_string())),
                },
                None => rejected.push(("x11", "DISPLAY is not set".into())),
            }
            match GnomeSource::open(env.dbus_address.clone()).await {
                Ok(s) => {
                    return Detected {
                        source: Arc::new(s),
                        rejected,
                    }
                }
                Err(e) => rejected.push(("gnome-mutter", e.to_string())),
            }
        }
    }
    Detected {
        source: Arc::new(UnknownSource),
        rejected,
    }
}
