//! Is there a desktop to show a tray icon on? GTK aborts the process without one, so we ask first.

/// Ok when a graphical display can be reached; otherwise why not.
pub fn check() -> Result<(), String> {
    if !cfg!(any(
        target_os = "linux",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd"
    )) {
        return Ok(());
    }
    let set = |v: &str| std::env::var_os(v).is_some_and(|s| !s.is_empty());
    if set("WAYLAND_DISPLAY") {
        return Ok(());
    }
    if !set("DISPLAY") {
        return Err("no graphical display (neither DISPLAY nor WAYLAND_DISPLAY is set)".into());
    }
    match x11rb::connect(None) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "cannot open the X display {:?}: {e}",
            std::env::var("DISPLAY").unwrap_or_default()
        )),
    }
}
