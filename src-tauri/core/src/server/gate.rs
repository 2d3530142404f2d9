//! The Host gate: which requests may reach the daemon. The Host header must name the daemon's own
//! loopback address (defeats DNS rebinding). The Origin header is read by `protocol::CallerOrigin`.

/// Whether a Host header value names this daemon: `127.0.0.1:PORT`, `localhost:PORT` or `[::1]:PORT`.
pub fn host_is_allowed(host: Option<&str>, port: u16) -> bool {
    let Some(host) = host else { return false };
    let host = host.to_ascii_lowercase();
    ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|name| host == format!("{name}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_must_be_our_loopback_address() {
        assert!(host_is_allowed(Some("127.0.0.1:5624"), 5624));
        assert!(host_is_allowed(Some("localhost:5624"), 5624));
        assert!(host_is_allowed(Some("LOCALHOST:5624"), 5624));
        assert!(host_is_allowed(Some("[::1]:5624"), 5624));
        assert!(!host_is_allowed(Some("127.0.0.1:5625"), 5624));
        assert!(!host_is_allowed(Some("127.0.0.1"), 5624));
        assert!(!host_is_allowed(Some("evil.example:5624"), 5624));
        assert!(!host_is_allowed(Some("127.0.0.1.evil.example:5624"), 5624));
        assert!(!host_is_allowed(None, 5624));
    }
}
