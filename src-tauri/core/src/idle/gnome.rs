//! GNOME idle source: Mutter's `org.gnome.Mutter.IdleMonitor.GetIdletime` on the session bus, which
//! works on GNOME under Wayland (where X11 clients see no input of native Wayland windows). One bus
//! connection is kept open and re-made after an error.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Mutex;
use zbus::Connection;

use super::source::{with_timeout, IdleError, IdleSource};

const NAME: &str = "gnome-mutter";
pub const BUS_NAME: &str = "org.gnome.Mutter.IdleMonitor";
pub const OBJECT_PATH: &str = "/org/gnome/Mutter/IdleMonitor/Core";
pub const INTERFACE: &str = "org.gnome.Mutter.IdleMonitor";

/// Idle time from GNOME Shell (Mutter) over D-Bus.
pub struct GnomeSource {
    /// A D-Bus address (`unix:path=...`); `None` means the user's session bus.
    address: Option<String>,
    conn: Mutex<Option<Connection>>,
}

impl GnomeSource {
    pub fn new(address: Option<String>) -> Self {
        Self {
            address,
            conn: Mutex::new(None),
        }
    }

    /// Connects and probes once, so a caller learns at start whether Mutter answers here.
    pub async fn open(address: Option<String>) -> Result<Self, IdleError> {
        let source = Self::new(address);
        source.idle_time().await?;
        Ok(source)
    }

    async fn connect(&self) -> Result<Connection, IdleError> {
        let built = match &self.address {
            None => Connection::session().await,
            Some(addr) => match zbus::connection::Builder::address(addr.as_str()) {
                Ok(b) => b.build().await,
                Err(e) => Err(e),
            },
        };
        built
            .map_err(|e| IdleError::failed(NAME, format!("cannot connect to the session bus: {e}")))
    }
}

#[async_trait]
impl IdleSource for GnomeSource {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn idle_time(&self) -> Result<Duration, IdleError> {
        let connecting = self.conn.try_lock().is_ok_and(|g| g.is_none());
        with_timeout(NAME, connecting, async {
            let mut slot = self.conn.lock().await;
            if slot.is_none() {
                *slot = Some(self.connect().await?);
            }
            let conn = slot.as_ref().expect("connected above");
            let result = get_idletime(conn).await;
            if result.is_err() {
                *slot = None;
            }
            result
        })
        .await
    }
}

async fn get_idletime(conn: &Connection) -> Result<Duration, IdleError> {
    let reply = conn
        .call_method(
            Some(BUS_NAME),
            OBJECT_PATH,
            Some(INTERFACE),
            "GetIdletime",
            &(),
        )
        .await
        .map_err(|e| IdleError::failed(NAME, format!("GetIdletime: {e}")))?;
    let ms: u64 = reply
        .body()
        .deserialize()
        .map_err(|e| IdleError::failed(NAME, format!("GetIdletime reply: {e}")))?;
    Ok(Duration::from_millis(ms))
}
