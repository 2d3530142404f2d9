//! Whether the desktop shows tray icons. On Linux something must host them: a StatusNotifierItem host
//! (an owner of `org.kde.StatusNotifierWatcher` on the session bus: KDE, XFCE, Cinnamon, MATE, GNOME with
//! the AppIndicator extension) or an XEmbed system tray (an owner of the X selection
//! `_NET_SYSTEM_TRAY_S<screen>`, which libappindicator falls back to). GNOME without the extension has
//! neither, so the tray icon is invisible there; the tray app then shows its control panel instead.
//! Other systems always show tray icons.

use std::time::Duration;

/// How long each check may take before it counts as "no".
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// The StatusNotifierItem watcher's bus name.
pub const SNI_WATCHER: &str = "org.kde.StatusNotifierWatcher";

/// Whether this desktop shows tray icons (on Linux: a StatusNotifierItem host on the session bus, or an
/// XEmbed tray on `$DISPLAY`).
pub async fn tray_icons_shown() -> bool {
    #[cfg(target_os = "linux")]
    {
        sni_host_on(None).await || xembed_tray_on(None).await
    }
    #[cfg(not(target_os = "linux"))]
    {
        true
    }
}

/// Whether the bus at `address` (`None`: the session bus) has a StatusNotifierItem watcher.
#[cfg(target_os = "linux")]
pub async fn sni_host_on(address: Option<&str>) -> bool {
    let check = async {
        let conn = match address {
            Some(a) => zbus::connection::Builder::address(a)?.build().await?,
            None => zbus::Connection::session().await?,
        };
        let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
        let name = zbus::names::BusName::try_from(SNI_WATCHER)?;
        Ok::<bool, zbus::Error>(dbus.name_has_owner(name).await?)
    };
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            tracing::debug!("no StatusNotifierItem watcher: {e}");
            false
        }
        Err(_) => false,
    }
}

/// Whether the X display `display` (`None`: `$DISPLAY`) has an XEmbed system tray on its default screen.
#[cfg(target_os = "linux")]
pub async fn xembed_tray_on(display: Option<&str>) -> bool {
    let display = display.map(str::to_string);
    let check = tokio::task::spawn_blocking(move || xembed_tray_blocking(display.as_deref()));
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(Ok(found))) => found,
        Ok(Ok(Err(e))) => {
            tracing::debug!("no XEmbed tray: {e}");
            false
        }
        _ => false,
    }
}

#[cfg(target_os = "linux")]
fn xembed_tray_blocking(
    display: Option<&str>,
) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
    use x11rb::protocol::xproto::ConnectionExt as _;
    let (conn, screen) = x11rb::rust_connection::RustConnection::connect(display)?;
    let name = format!("_NET_SYSTEM_TRAY_S{screen}");
    let atom = conn.intern_atom(true, name.as_bytes())?.reply()?.atom;
    if atom == x11rb::NONE {
        return Ok(false); // nobody ever named it on this server
    }
    let owner = conn.get_selection_owner(atom)?.reply()?.owner;
    Ok(owner != x11rb::NONE)
}

#[cfg(all(test, target_os = "linux"))]
mod tests;
