//! WebSocket API benchmark (not part of `cargo test`): `get` round trip p50/p99 against a raw
//! tokio-tungstenite echo server measured in the same run, and 1,000 concurrent connections each doing
//! handshake + requestSession + 100 `get`, with the daemon's RSS growth per connection.
//!
//! The daemon (with the test fakes behind its ports) and the echo server run in a child process (this
//! binary with `--server`), so the RSS read from /proc is the server's alone.
//! Run: `cargo bench -p webapi-core --bench ws_api`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use support::*;
use tokio_tungstenite::tungstenite::Message;

const ROUND_TRIPS: usize = 20_000;
const WARMUP: usize = 2_000;
const CONNECTIONS: usize = 1_000;
const GETS_PER_CONNECTION: usize = 100;

fn main() {
    if std::env::args().any(|a| a == "--server") {
        return server();
    }
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not: then do nothing.
    if !std::env::args().any(|a| a == "--bench") {
        println!("ws_api: run with `cargo bench -p webapi-core --bench ws_api`");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .arg("--server")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("server child starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut parts = line.split_whitespace();
    let daemon: SocketAddr = parts.next().unwrap().parse().unwrap();
    let echo: SocketAddr = parts.next().unwrap().parse().unwrap();
    let pid = child.id();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let ((echo_p50, echo_p99), (get_p50, get_p99)) = latencies(echo, daemon).await;
        println!("## WebSocket API\n");
        println!("get round trip, one connection, {ROUND_TRIPS} sequential requests after {WARMUP} warm-up, alternating blocks of 500 with the echo:\n");
        println!("| | p50 (µs) | p99 (µs) |\n|---|---|---|");
        println!("| raw tokio-tungstenite echo | {echo_p50:.1} | {echo_p99:.1} |");
        println!("| daemon `get` | {get_p50:.1} | {get_p99:.1} |");
        println!(
            "| ratio | {:.2}× | {:.2}× |\n",
            get_p50 / echo_p50,
            get_p99 / echo_p99
        );
        let before = rss_kib(pid);
        let (errors, elapsed, rss_open) = many_connections(daemon, pid).await;
        let after = rss_kib(pid);
        println!(
            "{CONNECTIONS} concurrent connections × (handshake + requestSession + {GETS_PER_CONNECTION} get): \
             {errors} errors, {:.2} s, {:.0} get/s overall",
            elapsed.as_secs_f64(),
            (CONNECTIONS * GETS_PER_CONNECTION) as f64 / elapsed.as_secs_f64()
        );
        println!(
            "daemon RSS: {before} KiB before, {rss_open} KiB with all {CONNECTIONS} open and idle \
             ({:.1} KiB per connection), {after} KiB after they closed",
            (rss_open.saturating_sub(before)) as f64 / CONNECTIONS as f64
        );
    });
    drop(child.stdin.take());
    let _ = child.wait();
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.50).as_secs_f64() * 1e6, at(0.99).as_secs_f64() * 1e6)
}

/// Round trips on the echo server and on the daemon, measured in alternating blocks of 500 so that
/// load changes on a shared machine affect both alike. The client does the same work in both loops: it
/// sends a frame prepared beforehand (the same bytes but the session id), waits for the next text frame
/// and parses it as JSON, so the ratio compares the servers only.
async fn latencies(echo: SocketAddr, daemon: SocketAddr) -> ((f64, f64), (f64, f64)) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{echo}/"))
        .await
        .unwrap();
    let mut c = Client::connect(daemon).await;
    c.handshake().await;
    let sid = c.open(VMCP_URL).await;
    let frame = |sid: u64| {
        format!(
            r#"{{"type":"action","name":"get","id":"a-1","data":{{"session_id":{sid:>10},"key":"cpus"}}}}"#
        )
    };
    let (echo_frame, get_frame) = (frame(1_234_567_890), frame(sid));
    assert_eq!(echo_frame.len(), get_frame.len());
    let mut echo_samples = Vec::with_capacity(ROUND_TRIPS);
    let mut get_samples = Vec::with_capacity(ROUND_TRIPS);
    const BLOCK: usize = 500;
    for block in 0..(WARMUP + ROUND_TRIPS) / BLOCK {
        let keep = block * BLOCK >= WARMUP;
        for _ in 0..BLOCK {
            let t = Instant::now();
            let reply = round_trip(&mut ws, &echo_frame).await;
            assert_eq!(reply["name"], "get");
            if keep {
                echo_samples.push(t.elapsed());
            }
        }
        for _ in 0..BLOCK {
            let t = Instant::now();
            let reply = round_trip(&mut c.ws, &get_frame).await;
            assert_eq!(reply["name"], "succeed");
            if keep {
                get_samples.push(t.elapsed());
            }
        }
    }
    (percentiles(echo_samples), percentiles(get_samples))
}

/// Sends `frame` and parses the next text frame.
async fn round_trip(ws: &mut Ws, frame: &str) -> serde_json::Value {
    ws.send(Message::Text(frame.into())).await.unwrap();
    loop {
        if let Message::Text(text) = ws.next().await.unwrap().unwrap() {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

async fn many_connections(addr: SocketAddr, pid: u32) -> (usize, Duration, u64) {
    let start = Instant::now();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel(CONNECTIONS);
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    for _ in 0..CONNECTIONS {
        let done = done_tx.clone();
        let release = release.clone();
        tokio::spawn(async move {
            let notified = release.notified();
            let ok = async {
                let mut c = Client::connect(addr).await;
                c.handshake().await;
                let sid = c.open(VMCP_URL).await;
                for _ in 0..GETS_PER_CONNECTION {
                    c.act("get", sid, json!({"key": "memory"})).await;
                    let r = c.next_frame().await;
                    if r["name"] != "succeed" {
                        return None;
                    }
                }
                Some(c)
            };
            let client = tokio::time::timeout(Duration::from_secs(120), ok)
                .await
                .ok()
                .flatten();
            let _ = done.send(client.is_some()).await;
            notified.await;
            drop(client);
        });
    }
    let mut errors = 0;
    for _ in 0..CONNECTIONS {
        if !done_rx.recv().await.unwrap() {
            errors += 1;
        }
    }
    let elapsed = start.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_open = rss_kib(pid);
    release.notify_waiters();
    tokio::time::sleep(Duration::from_secs(1)).await;
    (errors, elapsed, rss_open)
}

/// The child: the daemon with fakes and a raw echo server; prints both ports; exits when stdin closes.
fn server() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let fakes = Fakes::new();
        let limits = webapi_core::daemon::Limits {
            max_connections: 10_000,
            ..webapi_core::daemon::Limits::default()
        };
        let daemon = start_daemon(fakes.services(), limits, &fakes.data_dir()).await;
        let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    while let Some(Ok(msg)) = ws.next().await {
                        if msg.is_text() && ws.send(msg).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        println!("{} {echo_addr}", daemon.addr);
        std::io::stdout().flush().unwrap();
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin()
                .read_line(&mut sink)
                .map(|n| n > 0)
                .unwrap_or(false)
            {}
        })
        .await
        .unwrap();
        drop(daemon);
    });
}
