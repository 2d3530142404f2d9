//! X11 idle source: the MIT-SCREEN-SAVER extension's "milliseconds since user input", through x11rb (pure
//! Rust, so a missing display is an error, not a crash). One connection is kept open and re-made after an
//! error; each probe runs on a blocking thread under the probe timeout.

use std::sync::{Arc, Mutex, TryLockError};
use std::time::Duration;

use async_trait::async_trait;
use x11rb::connection::{Connection as _, RequestConnection};
use x11rb::protocol::screensaver::{self, ConnectionExt as _};
use x11rb::rust_connection::RustConnection;

use super::source::{with_timeout, IdleError, IdleSource};

const NAME: &str = "x11";

/// The open connection and the root window whose screen we ask about.
struct Open {
    conn: RustConnection,
    root: u32,
}

/// Idle time from an X server (a real desktop, Xwayland or Xvfb).
pub struct X11Source {
    /// The display name (`:0`); `None` uses `$DISPLAY` at connect time.
    display: Option<String>,
    /// The single connection; `None` until the first probe and after an error.
    conn: Arc<Mutex<Option<Open>>>,
}

impl X11Source {
    /// A source for `display` (or `$DISPLAY` when `None`). Connects lazily on the first probe.
    pub fn new(display: Option<String>) -> Self {
        Self {
            display,
            conn: Arc::new(Mutex::new(None)),
        }
    }

    /// Connects and probes once, so a caller learns at start whether this source works here.
    pub async fn open(display: Option<String>) -> Result<Self, IdleError> {
        let source = Self::new(display);
        source.idle_time().await?;
        Ok(source)
    }
}

#[async_trait]
impl IdleSource for X11Source {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn idle_time(&self) -> Result<Duration, IdleError> {
        let slot = Arc::clone(&self.conn);
        let display = self.display.clone();
        // A stuck probe holds the lock: then this one fails fast inside, whatever the timeout.
        let connecting = self.conn.try_lock().is_ok_and(|g| g.is_none());
        let probe = tokio::task::spawn_blocking(move || probe_blocking(&slot, display.as_deref()));
        with_timeout(NAME, connecting, async move {
            probe
                .await
                .map_err(|e| IdleError::failed(NAME, format!("probe thread failed: {e}")))?
        })
        .await
    }
}

/// One probe on a blocking thread: (re)connect if needed, ask the extension, drop the connection on error.
fn probe_blocking(
    slot: &Mutex<Option<Open>>,
    display: Option<&str>,
) -> Result<Duration, IdleError> {
    let mut guard = match slot.try_lock() {
        Ok(g) => g,
        // A probe that timed out may still hang in a read; never pile up threads behind it.
        Err(TryLockError::WouldBlock) => return Err(IdleError::Stuck { source_name: NAME }),
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
    };
    if guard.is_none() {
        *guard = Some(connect(display)?);
    }
    let open = guard.as_ref().expect("connected above");
    let result = query(open);
    if result.is_err() {
        *guard = None;
    }
    result
}

fn connect(display: Option<&str>) -> Result<Open, IdleError> {
    let (conn, screen) = x11rb::connect(display).map_err(|e| {
        IdleError::failed(
            NAME,
            format!(
                "cannot connect to X display {}: {e}",
                display.unwrap_or("$DISPLAY")
            ),
        )
    })?;
    let has_extension = conn
        .extension_information(screensaver::X11_EXTENSION_NAME)
        .map_err(|e| IdleError::failed(NAME, format!("asking for extensions: {e}")))?
        .is_some();
    if !has_extension {
        return Err(IdleError::failed(
            NAME,
            "the X server lacks the MIT-SCREEN-SAVER extension",
        ));
    }
    let root = conn
        .setup()
        .roots
        .get(screen)
        .ok_or_else(|| IdleError::failed(NAME, format!("X server has no screen {screen}")))?
        .root;
    Ok(Open { conn, root })
}

fn query(open: &Open) -> Result<Duration, IdleError> {
    let reply = open
        .conn
        .screensaver_query_info(open.root)
        .map_err(|e| IdleError::failed(NAME, format!("sending query: {e}")))?
        .reply()
        .map_err(|e| IdleError::failed(NAME, format!("query reply: {e}")))?;
    Ok(Duration::from_millis(reply.ms_since_user_input.into()))
}
