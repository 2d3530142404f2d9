//! A real loopback HTTP server for the image tests: serves files with or without range support, can
//! drop the connection or stall at chosen byte offsets, can pace its chunks, and counts what it sends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;

/// Size of the chunks the server writes.
pub const CHUNK: usize = 64 * 1024;

/// How the server misbehaves. Drop and stall points are used once each, in order.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub ranges: bool,
    /// Send no Content-Length (chunked transfer encoding).
    pub no_length: bool,
    pub drop_at: Vec<u64>,
    pub stall_at: Vec<u64>,
    /// Stall at this offset on every request (a server that never finishes).
    pub always_stall_at: Option<u64>,
    pub chunk_delay: Option<Duration>,
    /// Size of the chunks written.
    pub chunk: usize,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            ranges: true,
            no_length: false,
            drop_at: Vec::new(),
            stall_at: Vec::new(),
            always_stall_at: None,
            chunk_delay: None,
            chunk: CHUNK,
        }
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub path: String,
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub status: u16,
}

#[derive(Default)]
struct Inner {
    files: Mutex<HashMap<String, Bytes>>,
    behaviour: Mutex<Behaviour>,
    log: Mutex<Vec<Logged>>,
    sent: AtomicU64,
}

/// A running server; it stops when the test's runtime ends.
#[derive(Clone)]
pub struct TestServer {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

impl TestServer {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let listener = CountingListener {
            tcp,
            inner: inner.clone(),
        };
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, inner }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn put(&self, path: &str, data: impl Into<Bytes>) {
        self.inner
            .files
            .lock()
            .unwrap()
            .insert(path.into(), data.into());
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.inner.behaviour.lock().unwrap() = behaviour;
    }

    /// Bytes written to the sockets so far (bodies plus a few hundred bytes of headers per response).
    pub fn sent(&self) -> u64 {
        self.inner.sent.load(Ordering::SeqCst)
    }

    pub fn log(&self) -> Vec<Logged> {
        self.inner.log.lock().unwrap().clone()
    }

    /// Requests for `path` (exact).
    pub fn requests_for(&self, path: &str) -> Vec<Logged> {
        self.log().into_iter().filter(|l| l.path == path).collect()
    }
}

/// Accepts connections whose writes are counted (what really left the server, not what hyper
/// buffered and discarded when a body was cut).
struct CountingListener {
    tcp: tokio::net::TcpListener,
    inner: Arc<Inner>,
}

impl axum::serve::Listener for CountingListener {
    type Io = CountingStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Ok((stream, addr)) = self.tcp.accept().await {
                let inner = self.inner.clone();
                return (CountingStream { stream, inner }, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

struct CountingStream {
    stream: tokio::net::TcpStream,
    inner: Arc<Inner>,
}

impl tokio::io::AsyncRead for CountingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for CountingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &result {
            self.inner.sent.fetch_add(*n as u64, Ordering::SeqCst);
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &result {
            self.inner.sent.fetch_add(*n as u64, Ordering::SeqCst);
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// What happens when the body reaches a point.
#[derive(Clone, Copy)]
enum Stop {
    Drop,
    Stall,
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().to_string();
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let (range, if_range) = (text(header::RANGE), text(header::IF_RANGE));
    let data = inner.files.lock().unwrap().get(&path).cloned();
    let behaviour = inner.behaviour.lock().unwrap().clone();
    let log = |status: u16| {
        inner.log.lock().unwrap().push(Logged {
            path: path.clone(),
            range: range.clone(),
            if_range: if_range.clone(),
            status,
        })
    };
    let Some(data) = data.filter(|_| method == Method::GET) else {
        log(404);
        return Response::builder().status(404).body(Body::empty()).unwrap();
    };
    let len = data.len() as u64;
    let etag = format!("\"{len}-test\"");
    let start = match (&range, behaviour.ranges) {
        (Some(r), true) if if_range.as_deref().is_none_or(|v| v == etag) => r
            .strip_prefix("bytes=")
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<u64>().ok()),
        _ => None,
    };
    if start.is_some_and(|s| s >= len) {
        log(416);
        return Response::builder()
            .status(416)
            .header(header::CONTENT_RANGE, format!("bytes */{len}"))
            .body(Body::empty())
            .unwrap();
    }
    let status = if start.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    log(status.as_u16());
    let from = start.unwrap_or(0);
    // The next stop point past `from`, consumed from the behaviour.
    let stop = {
        let mut b = inner.behaviour.lock().unwrap();
        if let Some(at) = b.always_stall_at {
            Some((at.max(from), Stop::Stall))
        } else if let Some(i) = b.drop_at.iter().position(|&p| p > from) {
            Some((b.drop_at.remove(i), Stop::Drop))
        } else {
            let i = b.stall_at.iter().position(|&p| p > from);
            i.map(|i| (b.stall_at.remove(i), Stop::Stall))
        }
    };
    let mut builder = Response::builder()
        .status(status)
        .header(header::ETAG, &etag)
        .header(header::LAST_MODIFIED, "Mon, 23 Nov 2026 10:00:00 GMT");
    if behaviour.ranges {
        builder = builder.header(header::ACCEPT_RANGES, "bytes");
    }
    if !behaviour.no_length {
        builder = builder.header(header::CONTENT_LENGTH, len - from);
    }
    if start.is_some() {
        builder = builder.header(
            header::CONTENT_RANGE,
            format!("bytes {from}-{}/{len}", len - 1),
        );
    }
    let (delay, chunk_size) = (behaviour.chunk_delay, behaviour.chunk as u64);
    let stream = futures_util::stream::unfold(from, move |pos| {
        let data = data.clone();
        async move {
            if let Some((at, what)) = stop {
                if pos >= at {
                    match what {
                        Stop::Drop => {
                            return Some((Err(std::io::Error::other("test drop")), u64::MAX))
                        }
                        Stop::Stall => tokio::time::sleep(Duration::from_secs(3600)).await,
                    }
                }
            }
            if pos >= data.len() as u64 {
                return None;
            }
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            let mut end = (pos + chunk_size).min(data.len() as u64);
            if let Some((at, _)) = stop {
                if pos < at {
                    end = end.min(at);
                }
            }
            let chunk = data.slice(pos as usize..end as usize);
            Some((Ok::<_, std::io::Error>(chunk), end))
        }
    });
    builder.body(Body::from_stream(stream)).unwrap()
}
