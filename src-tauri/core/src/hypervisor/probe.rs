//! The guest-API prober behind `apiStateChanged`: an HTTP GET on the forwarded port with a short timeout.
//! Any HTTP status line counts as "up" (an application answered, not just a NAT that accepts connections);
//! the connection is not kept alive (shared/spec/vm-lifecycle.md §10.1 item 35).

use std::net::SocketAddr;
use std::time::Duration;

/// How long one probe may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Does an HTTP server answer at `addr`?
pub async fn probe_api(addr: SocketAddr) -> bool {
    let Ok(client) = reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .pool_max_idle_per_host(0)
        .no_proxy()
        .build()
    else {
        return false;
    };
    client
        .get(format!("http://{addr}/"))
        .header(reqwest::header::CONNECTION, "close")
        .send()
        .await
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn up_on_any_status_line_down_on_silence_or_refusal() {
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_addr = http.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = http.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    .await;
            }
        });
        assert!(probe_api(http_addr).await);

        // accepts but never answers, like a NAT forward with no guest behind it
        let mute = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mute_addr = mute.local_addr().unwrap();
        let _keep = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                held.push(mute.accept().await.unwrap());
            }
        });
        assert!(!probe_api(mute_addr).await);

        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed_addr = closed.local_addr().unwrap();
        drop(closed);
        assert!(!probe_api(closed_addr).await);
    }
}
