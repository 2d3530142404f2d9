//! Reads the host side of a `hostfwd` rule from `info usernet` (QEMU picks the port when we ask for 0).

use std::net::{IpAddr, SocketAddr};

/// Finds the host address forwarded to `guest_port` in the text of `info usernet`, e.g. the line
/// `  TCP[HOST_FORWARD]  13   127.0.0.1 43205  10.0.2.15    80     0     0`.
pub fn forwarded_addr(usernet: &str, guest_port: u16) -> Option<SocketAddr> {
    usernet.lines().find_map(|line| {
        let t: Vec<&str> = line.split_whitespace().collect();
        let at = t.iter().position(|w| w.contains("HOST_FORWARD"))?;
        let (src_ip, src_port, dst_port) = (t.get(at + 2)?, t.get(at + 3)?, t.get(at + 5)?);
        if dst_port.parse::<u16>().ok()? != guest_port {
            return None;
        }
        let ip: IpAddr = src_ip.parse().ok()?;
        let port: u16 = src_port.parse().ok()?;
        (port != 0).then_some(SocketAddr::new(ip, port))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_forward_for_the_guest_port() {
        let text = "Hub -1 (n0):\r\n  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\r\n  TCP[HOST_FORWARD]  13       127.0.0.1 43205       10.0.2.15    80     0     0\r\n  TCP[HOST_FORWARD]  14       127.0.0.1 43206       10.0.2.15    22     0     0\r\n";
        assert_eq!(
            forwarded_addr(text, 80),
            Some("127.0.0.1:43205".parse().unwrap())
        );
        assert_eq!(
            forwarded_addr(text, 22),
            Some("127.0.0.1:43206".parse().unwrap())
        );
        assert_eq!(forwarded_addr(text, 8080), None);
    }
}
