//! API-port probing (shared/spec/protocol.md §5.10): while a VM runs, its forwarded guest API port is
//! tried once per tick (TCP connect + `HEAD /`, alive if any bytes come back); once up, every 11th tick,
//! and two failures in a row mark it down. Runs as its own task so a slow probe never blocks the actor.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

/// Probes the address in `target` (none: idle) and reports up/down changes on `report`.
pub(super) async fn run(
    mut target: watch::Receiver<Option<SocketAddr>>,
    report: mpsc::Sender<(SocketAddr, bool)>,
    tick: Duration,
) {
    let mut up = false;
    let mut failures = 0u32;
    let mut ticks = 0u32;
    loop {
        let addr = *target.borrow_and_update();
        if let Some(addr) = addr {
            if !up || ticks % 11 == 0 {
                let timeout = if up {
                    Duration::from_secs(10)
                } else {
                    Duration::from_secs(1)
                };
                let alive = probe(addr, timeout).await;
                if alive {
                    failures = 0;
                    if !up {
                        up = true;
                        if report.send((addr, true)).await.is_err() {
                            return;
                        }
                    }
                } else if up {
                    failures += 1;
                    if failures >= 2 {
                        up = false;
                        failures = 0;
                        if report.send((addr, false)).await.is_err() {
                            return;
                        }
                    }
                }
            }
            ticks = ticks.wrapping_add(1);
            tokio::select! {
                _ = tokio::time::sleep(tick) => continue,
                changed = target.changed() => if changed.is_err() { return },
            }
        } else if target.changed().await.is_err() {
            return;
        }
        up = false;
        failures = 0;
        ticks = 0;
    }
}

/// Whether anything answers an HTTP `HEAD /` at `addr` within `timeout`.
async fn probe(addr: SocketAddr, timeout: Duration) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(b"HEAD / HTTP/1.0\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut byte = [0u8; 1];
        let n = stream.read(&mut byte).await.ok()?;
        (n > 0).then_some(())
    };
    matches!(tokio::time::timeout(timeout, attempt).await, Ok(Some(())))
}
