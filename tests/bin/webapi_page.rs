//! `webapi-page`: a scripted website for the GUI end-to-end tests (tests/gui/consent.sh).
//!
//! `webapi-page site` serves signed VMCPs on loopback: `/vmcp?name=NAME[&cpus=N&memory=MB&disk=MB]`
//! answers each request with a VMCP for a session called NAME (default 1 CPU, 256 MB, 1024 MB), signed for the request's `cvm_salt` with a key made by
//! `cvmwebapi keygen` (so each test request can ask for a new session, and so a new consent dialog).
//!
//! `webapi-page request` is one page's `requestSession` over a real WebSocket, with the `Origin`
//! header a browser would send: handshake, requestSession, then every frame printed as `# NAME DATA`
//! and the outcome as the last line, `succeed [msg, id]` or `failed [msg, code]`. With `--nudge` it
//! also answers `interactionCallback {"result": 1}` (the page's "OK") as soon as the daemon says it
//! waits for the user, to show that a page cannot answer the app's consent dialog.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use webapi_core::trust::tools;
use webapi_core::trust::SigningKey;

/// Longest session name the site signs a VMCP for.
const MAX_NAME: usize = 64;

#[derive(Parser)]
#[command(about = "A scripted website for the GUI end-to-end tests")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve signed VMCPs on loopback; prints `listening ADDR` once ready.
    Site {
        /// Loopback address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// The private key (PREFIX.key from `cvmwebapi keygen`).
        #[arg(long)]
        key: PathBuf,
    },
    /// One requestSession from a page at ORIGIN; prints the frames and the outcome last.
    Request {
        /// The daemon's address.
        #[arg(long)]
        daemon: SocketAddr,
        /// The page's origin (the Origin header of the WebSocket upgrade).
        #[arg(long)]
        origin: String,
        /// The VMCP URL to request.
        #[arg(long)]
        vmcp: String,
        /// Answer interactionCallback {"result": 1} while the daemon waits for the user.
        #[arg(long)]
        nudge: bool,
        /// Give up after this many seconds without an outcome.
        #[arg(long, default_value_t = 180)]
        timeout: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Site { listen, key } => site(listen, key).await,
        Command::Request {
            daemon,
            origin,
            vmcp,
            nudge,
            timeout,
        } => {
            let outcome = tokio::time::timeout(
                Duration::from_secs(timeout),
                request(daemon, &origin, &vmcp, nudge),
            )
            .await
            .unwrap_or_else(|_| Err(anyhow!("no outcome within {timeout} s")));
            match outcome {
                Ok(line) => {
                    say(&line).await;
                    Ok(())
                }
                Err(e) => {
                    say(&format!("error {e:#}")).await;
                    std::process::exit(1)
                }
            }
        }
    }
}

/// Prints one line and flushes (the test script reads the output while the client runs).
async fn say(line: &str) {
    let mut out = tokio::io::stdout();
    let _ = out.write_all(format!("{line}\n").as_bytes()).await;
    let _ = out.flush().await;
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

// ---- the site ----

struct Site {
    key: SigningKey,
}

async fn site(listen: SocketAddr, key: PathBuf) -> anyhow::Result<()> {
    if !listen.ip().is_loopback() {
        bail!("--listen {listen} is not a loopback address");
    }
    let key = tools::load_signing_key(&key).map_err(|e| anyhow!("{e}"))?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/vmcp", get(vmcp))
        .with_state(Arc::new(Site { key }));
    say(&format!("listening {addr}")).await;
    axum::serve(listener, app).await?;
    Ok(())
}

#[derive(serde::Deserialize)]
struct VmcpQuery {
    name: Option<String>,
    cpus: Option<u32>,
    memory: Option<u32>,
    disk: Option<u32>,
    cvm_salt: Option<String>,
}

async fn vmcp(
    State(site): State<Arc<Site>>,
    query: Result<Query<VmcpQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return (StatusCode::BAD_REQUEST, "bad query").into_response();
    };
    let name = q.name.unwrap_or_else(|| "consent-test".into());
    let name_ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-_~".contains(c));
    if !name_ok {
        return (StatusCode::BAD_REQUEST, "name: 1-64 of A-Z a-z 0-9 + - _ ~").into_response();
    }
    let (cpus, memory, disk) = (
        q.cpus.unwrap_or(1),
        q.memory.unwrap_or(256),
        q.disk.unwrap_or(1024),
    );
    if !(1..=64).contains(&cpus)
        || !(64..=65536).contains(&memory)
        || !(64..=1_048_576).contains(&disk)
    {
        return (
            StatusCode::BAD_REQUEST,
            "cpus 1-64, memory 64-65536 MB, disk 64-1048576 MB",
        )
            .into_response();
    }
    let Some(salt) = q.cvm_salt else {
        return (StatusCode::BAD_REQUEST, "no cvm_salt").into_response();
    };
    // requestSession only creates the session: no VM starts (nor memory is taken) without `start`.
    let doc = json!({
        "name": name,
        "secret": "consent-e2e-secret",
        "cpus": cpus,
        "memory": memory,
        "disk": disk,
        "daemonControlled": 1,
        "daemonMinCap": 50,
        "daemonMaxCap": 100,
    });
    match tools::sign_vmcp(doc.to_string().as_bytes(), &salt, &site.key, false) {
        Ok(signed) => ([("content-type", "application/json")], signed.json).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

// ---- the page ----

/// Handshake, requestSession, frames until `succeed` or `failed` for the request; returns the
/// outcome line.
async fn request(
    daemon: SocketAddr,
    origin: &str,
    vmcp: &str,
    nudge: bool,
) -> anyhow::Result<String> {
    let mut req = format!("ws://{daemon}/").into_client_request()?;
    req.headers_mut().insert(
        "origin",
        HeaderValue::from_str(origin).context("the origin is not a valid header value")?,
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .with_context(|| format!("cannot open a WebSocket to {daemon}"))?;
    let mut next = 0u32;
    let mut send = |name: &str, data: Value| {
        next += 1;
        let id = format!("a-{next}");
        (
            id.clone(),
            json!({"type": "action", "name": name, "id": id, "data": data}),
        )
    };
    let (handshake, frame) = send("handshake", json!({"version": "2.0.12", "auth": ""}));
    ws.send(Message::Text(frame.to_string().into())).await?;
    let (request, frame) = send("requestSession", json!({"vmcp": vmcp}));
    ws.send(Message::Text(frame.to_string().into())).await?;
    say(&format!(
        "# sent requestSession {request} at_ms={}",
        now_ms()
    ))
    .await;
    let mut nudged = false;
    while let Some(msg) = ws.next().await {
        let text = match msg.context("the WebSocket failed")? {
            Message::Text(t) => t.as_str().to_owned(),
            Message::Close(c) => bail!("the daemon closed the connection: {c:?}"),
            _ => continue,
        };
        let f: Value = serde_json::from_str(&text).context("a frame is not JSON")?;
        let id = f["id"].as_str().unwrap_or("");
        match f["type"].as_str() {
            Some("result") if id == handshake => say(&format!("# handshake {}", f["data"])).await,
            Some("event") => {
                let name = f["name"].as_str().unwrap_or("?");
                let data = &f["data"];
                say(&format!("# {name} {data} id={id:?} at_ms={}", now_ms())).await;
                if id != request {
                    continue;
                }
                if nudge && !nudged && name == "lengthyTask" && data[1] == 1 {
                    nudged = true;
                    let (_, frame) = send("interactionCallback", json!({"result": 1}));
                    ws.send(Message::Text(frame.to_string().into())).await?;
                    say("# sent interactionCallback {\"result\":1}").await;
                }
                if name == "failed" {
                    let _ = ws.close(None).await;
                    return Ok(format!("{name} {data}"));
                }
                if name == "succeed" {
                    // The new session's actor then sends its stateVariables and stateChanged.
                    let session = data[1].to_string();
                    let seen =
                        tokio::time::timeout(Duration::from_secs(30), state_of(&mut ws, &session))
                            .await;
                    if !matches!(seen, Ok(Ok(()))) {
                        say("# (no stateChanged for the new session within 30 s)").await;
                    }
                    let _ = ws.close(None).await;
                    return Ok(format!("{name} {data}"));
                }
            }
            _ => say(&format!("# frame {text}")).await,
        }
    }
    bail!("the connection ended before the outcome")
}

/// Prints the session's frames up to and including its first `stateChanged`.
async fn state_of<S>(ws: &mut S, session: &str) -> anyhow::Result<()>
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    while let Some(msg) = ws.next().await {
        let Message::Text(text) = msg? else { continue };
        let f: Value = serde_json::from_str(text.as_str())?;
        let name = f["name"].as_str().unwrap_or("?");
        say(&format!(
            "# {name} {} id={} at_ms={}",
            f["data"],
            f["id"],
            now_ms()
        ))
        .await;
        if name == "stateChanged" && f["id"].as_str() == Some(session) {
            return Ok(());
        }
    }
    bail!("the connection ended")
}
