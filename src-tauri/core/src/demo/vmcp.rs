//! The demo VMCP: a small VM booting the site's `/guest.iso`, with a userData macro and an idle
//! policy, so every part of the product shows.

use std::net::SocketAddr;

use serde_json::{json, Value};

/// The session name of the demo VM (letters, digits and `+-_~` only).
pub const DEMO_VM_NAME: &str = "cernvm-webapi-demo";

/// The unsigned demo VMCP for a site at `site` whose image has SHA-256 `sha256_hex`.
///
/// 1 CPU, 256 MB; `flags` 3 (64-bit guest, boot the `diskURL` image); the guest's HTTP API on port
/// 80 becomes the session's apiURL; `userData` has a `${greeting}` macro the page may fill in;
/// `daemonControlled` with caps 50 % while the user is active and 100 % while away.
pub fn demo_vmcp(site: SocketAddr, sha256_hex: &str) -> Value {
    json!({
        "name": DEMO_VM_NAME,
        "secret": "the-cernvm-webapi-demo-site",
        "cpus": 1,
        "memory": 256,
        "disk": 1024,
        "diskURL": format!("http://{site}/guest.iso"),
        "diskChecksum": sha256_hex,
        "flags": 3,
        "apiPort": 80,
        "userData": "greeting=${greeting:hello from the demo page}\nsite=cernvm-webapi-demo\n",
        "daemonControlled": 1,
        "daemonMinCap": 50,
        "daemonMaxCap": 100,
        "daemonFlags": 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::SessionParams;
    use std::collections::BTreeMap;

    #[test]
    fn the_daemon_accepts_the_demo_vmcp_as_session_parameters() {
        let doc = demo_vmcp("127.0.0.1:8080".parse().unwrap(), &"ab".repeat(32));
        let flat: BTreeMap<String, String> = doc
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let s = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                (k.clone(), s)
            })
            .collect();
        let p = SessionParams::from_vmcp(&flat).expect("valid session parameters");
        assert_eq!((p.cpus, p.memory, p.flags, p.api_port), (1, 256, 3, 80));
        assert_eq!(p.disk_url, "http://127.0.0.1:8080/guest.iso");
        assert!(p.daemon_controlled);
        assert_eq!((p.daemon_min_cap, p.daemon_max_cap), (50, 100));
        assert!(p.user_data.contains("${greeting:"));
    }
}
