//! A small async QMP client: JSON lines over a unix socket. It reads the greeting, negotiates
//! capabilities, matches replies to commands by `id` and forwards events to a broadcast channel.
//! A closed connection (QEMU exited) fails pending commands and is announced as `QmpEvent::Closed`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

/// The longest line we accept from QEMU (a reply to `human-monitor-command` can be long).
const MAX_LINE: usize = 1024 * 1024;
/// Default time a command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Something QEMU told us without being asked.
#[derive(Debug, Clone, PartialEq)]
pub enum QmpEvent {
    /// A QMP event: its name (`STOP`, `SHUTDOWN`, ...) and `data`.
    Event { name: String, data: Value },
    /// The connection closed: QEMU quit or died.
    Closed,
}

/// Why a QMP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    #[error("cannot connect to QMP socket: {0}")]
    Connect(std::io::Error),
    #[error("QMP I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("QMP protocol error: {0}")]
    Protocol(String),
    #[error("QEMU refused {command}: {class}: {desc}")]
    Command {
        command: String,
        class: String,
        desc: String,
    },
    #[error("QMP connection closed")]
    Closed,
    #[error("QMP command {0} timed out")]
    Timeout(String),
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// One QMP connection.
pub struct QmpClient {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Pending,
    next_id: AtomicU64,
    events: broadcast::Sender<QmpEvent>,
    reader: JoinHandle<()>,
    peer_pid: Option<u32>,
}

impl QmpClient {
    /// Connects to `path`, reads the greeting and negotiates capabilities.
    pub async fn connect(path: &Path) -> Result<Self, QmpError> {
        let stream = UnixStream::connect(path).await.map_err(QmpError::Connect)?;
        let peer_pid = stream
            .peer_cred()
            .ok()
            .and_then(|c| c.pid())
            .and_then(|p| u32::try_from(p).ok());
        let (read, writer) = stream.into_split();
        let mut lines = BufReader::new(read);
        let greeting = tokio::time::timeout(COMMAND_TIMEOUT, read_json_line(&mut lines))
            .await
            .map_err(|_| QmpError::Timeout("greeting".into()))??
            .ok_or(QmpError::Closed)?;
        if greeting.get("QMP").is_none() {
            return Err(QmpError::Protocol(format!(
                "unexpected greeting {greeting}"
            )));
        }
        let pending: Pending = Arc::default();
        let (events, _) = broadcast::channel(256);
        let reader = tokio::spawn(read_loop(lines, pending.clone(), events.clone()));
        let client = Self {
            writer: tokio::sync::Mutex::new(writer),
            pending,
            next_id: AtomicU64::new(1),
            events,
            reader,
            peer_pid,
        };
        client.execute("qmp_capabilities", None).await?;
        Ok(client)
    }

    /// A new receiver of QMP events (and of `Closed`).
    pub fn subscribe(&self) -> broadcast::Receiver<QmpEvent> {
        self.events.subscribe()
    }

    /// Runs `command` with optional `arguments` and returns its `return` value.
    pub async fn execute(
        &self,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<Value, QmpError> {
        self.execute_timeout(command, arguments, COMMAND_TIMEOUT)
            .await
    }

    /// Like `execute`, with an explicit timeout.
    pub async fn execute_timeout(
        &self,
        command: &str,
        arguments: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, QmpError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut msg = json!({ "execute": command, "id": id });
        if let Some(a) = arguments {
            msg["arguments"] = a;
        }
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending map").insert(id, tx);
        if self.reader.is_finished() {
            self.pending.lock().expect("pending map").remove(&id);
            return Err(QmpError::Closed);
        }
        let mut line = serde_json::to_vec(&msg).expect("json");
        line.push(b'\n');
        {
            let mut w = self.writer.lock().await;
            if let Err(e) = w.write_all(&line).await {
                self.pending.lock().expect("pending map").remove(&id);
                return Err(e.into());
            }
        }
        let reply = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(v)) => v,
            Ok(Err(_)) => return Err(QmpError::Closed),
            Err(_) => {
                self.pending.lock().expect("pending map").remove(&id);
                return Err(QmpError::Timeout(command.into()));
            }
        };
        if let Some(err) = reply.get("error") {
            return Err(QmpError::Command {
                command: command.into(),
                class: err["class"].as_str().unwrap_or("?").into(),
                desc: err["desc"].as_str().unwrap_or("?").into(),
            });
        }
        Ok(reply.get("return").cloned().unwrap_or(Value::Null))
    }

    /// The pid of the process on the other end (QEMU), where the OS tells it.
    pub fn peer_pid(&self) -> Option<u32> {
        self.peer_pid
    }

    /// Is the connection still open?
    pub fn is_open(&self) -> bool {
        !self.reader.is_finished()
    }
}

impl Drop for QmpClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

async fn read_loop(
    mut lines: BufReader<tokio::net::unix::OwnedReadHalf>,
    pending: Pending,
    events: broadcast::Sender<QmpEvent>,
) {
    while let Ok(Some(v)) = read_json_line(&mut lines).await {
        if let Some(name) = v.get("event").and_then(Value::as_str) {
            let data = v.get("data").cloned().unwrap_or(Value::Null);
            let _ = events.send(QmpEvent::Event {
                name: name.to_string(),
                data,
            });
        } else if let Some(id) = v.get("id").and_then(Value::as_u64) {
            if let Some(tx) = pending.lock().expect("pending map").remove(&id) {
                let _ = tx.send(v);
            }
        }
    }
    pending.lock().expect("pending map").clear();
    let _ = events.send(QmpEvent::Closed);
}

/// Reads one JSON line; `None` at end of stream. Lines longer than `MAX_LINE` are an error.
async fn read_json_line<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
) -> Result<Option<Value>, QmpError> {
    let mut buf = Vec::new();
    loop {
        let n = (&mut *r)
            .take((MAX_LINE + 1 - buf.len()) as u64)
            .read_until(b'\n', &mut buf)
            .await?;
        if n == 0 {
            return Ok(None);
        }
        if buf.len() > MAX_LINE {
            return Err(QmpError::Protocol("line too long".into()));
        }
        if buf.ends_with(b"\n") {
            if buf.iter().all(u8::is_ascii_whitespace) {
                buf.clear();
                continue;
            }
            return serde_json::from_slice(&buf)
                .map(Some)
                .map_err(|e| QmpError::Protocol(format!("bad JSON from QEMU: {e}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real QEMU with no guest at all (`-machine none`): enough to speak QMP, starts in milliseconds.
    fn spawn_bare_qemu(sock: &Path) -> Option<std::process::Child> {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        let Some(qemu) = super::super::find_on_path(super::super::QEMU_BINARY) else {
            assert!(!ci, "qemu-system-x86_64 is missing");
            eprintln!("SKIPPED: qemu-system-x86_64 is not installed");
            return None;
        };
        let qmp = format!("unix:{},server=on,wait=off", sock.display());
        std::process::Command::new(qemu)
            .args([
                "-machine",
                "none",
                "-nodefaults",
                "-display",
                "none",
                "-qmp",
                &qmp,
            ])
            .spawn()
            .ok()
    }

    #[tokio::test]
    async fn talks_to_real_qemu_replies_errors_events_and_close() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("q.sock");
        let Some(mut child) = spawn_bare_qemu(&sock) else {
            return;
        };
        let c = loop {
            match QmpClient::connect(&sock).await {
                Ok(c) => break c,
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        };
        let mut ev = c.subscribe();
        assert_eq!(c.peer_pid(), Some(child.id()));
        let status = c.execute("query-status", None).await.unwrap();
        assert!(status["status"].is_string(), "{status}");
        match c.execute("no-such-command", None).await {
            Err(QmpError::Command { class, .. }) => assert_eq!(class, "CommandNotFound"),
            other => panic!("{other:?}"),
        }
        let echoed = c
            .execute(
                "human-monitor-command",
                Some(json!({"command-line": "info version"})),
            )
            .await
            .unwrap();
        assert!(echoed
            .as_str()
            .unwrap()
            .chars()
            .next()
            .unwrap()
            .is_ascii_digit());
        c.execute("stop", None).await.unwrap();
        loop {
            match ev.recv().await.unwrap() {
                QmpEvent::Event { name, .. } if name == "STOP" => break,
                QmpEvent::Event { .. } => continue,
                QmpEvent::Closed => panic!("closed before STOP"),
            }
        }
        let _ = c.execute("quit", None).await;
        loop {
            if ev.recv().await.unwrap() == QmpEvent::Closed {
                break;
            }
        }
        assert!(!c.is_open());
        assert!(matches!(
            c.execute("query-status", None).await,
            Err(QmpError::Closed) | Err(QmpError::Io(_))
        ));
        let _ = child.wait();
    }
}
