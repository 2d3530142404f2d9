//! A tiny loopback HTTP/1.1 server (optionally TLS with a CA and certificate made here with rcgen)
//! whose replies a test scripts: JSON, status codes, redirects, a hang, an endless body.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

/// What the server answers to one request.
pub enum Reply {
    Status(u16, Vec<u8>),
    Redirect(String),
    /// Read the request, then never answer.
    Hang,
    /// Headers without Content-Length, then body bytes until the client gives up.
    Endless,
    /// A Content-Length far over any limit, then nothing.
    HugeDeclared,
}

impl Reply {
    pub fn json(text: impl Into<String>) -> Self {
        Self::Status(200, text.into().into_bytes())
    }
}

type Handler = Arc<dyn Fn(&str) -> Reply + Send + Sync>;

/// A running server; `targets` lists the request targets (path and query) it received.
pub struct TestServer {
    pub addr: SocketAddr,
    pub targets: Arc<Mutex<Vec<String>>>,
    tls: bool,
}

impl TestServer {
    /// The URL of `path` on this server (https://localhost:PORT or http://127.0.0.1:PORT).
    pub fn url(&self, path: &str) -> String {
        if self.tls {
            format!("https://localhost:{}{path}", self.addr.port())
        } else {
            format!("http://127.0.0.1:{}{path}", self.addr.port())
        }
    }
    pub fn requests(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }
}

/// A test CA and a `localhost` / `127.0.0.1` server certificate it signed.
pub struct TestPki {
    pub ca_pem: String,
    pub acceptor: TlsAcceptor,
}

pub fn test_pki() -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "cernvm-webapi test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone(), ca.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    TestPki {
        ca_pem: ca.pem(),
        acceptor: TlsAcceptor::from(Arc::new(config)),
    }
}

/// Starts a server on 127.0.0.1 answering every request with `handler(target)`.
pub async fn serve(
    tls: Option<TlsAcceptor>,
    handler: impl Fn(&str) -> Reply + Send + Sync + 'static,
) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let targets = Arc::new(Mutex::new(Vec::new()));
    let handler: Handler = Arc::new(handler);
    let server = TestServer {
        addr,
        targets: targets.clone(),
        tls: tls.is_some(),
    };
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            let targets = targets.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => {
                        // A client that rejects our certificate ends the handshake: fine.
                        if let Ok(s) = acceptor.accept(stream).await {
                            handle(s, handler, targets).await;
                        }
                    }
                    None => handle(stream, handler, targets).await,
                }
            });
        }
    });
    server
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    handler: Handler,
    targets: Arc<Mutex<Vec<String>>>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 16 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head);
    let target = text.split(' ').nth(1).unwrap_or("").to_string();
    targets.lock().unwrap().push(target.clone());
    let reply = handler(&target);
    let _ = match reply {
        Reply::Status(code, body) => {
            let head = format!(
                "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).await.ok();
            stream.write_all(&body).await
        }
        Reply::Redirect(location) => {
            let head = format!(
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await
        }
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        }
        Reply::Endless => {
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
            stream.write_all(head.as_bytes()).await.ok();
            let chunk = vec![b' '; 64 * 1024];
            // At most 256 MiB, so a broken client cannot keep the test running forever.
            for _ in 0..4096 {
                if stream.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            Ok(())
        }
        Reply::HugeDeclared => {
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\nConnection: close\r\n\r\n";
            stream.write_all(head.as_bytes()).await.ok();
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        }
    };
    let _ = stream.shutdown().await;
}

/// The value of query parameter `name` in a request target.
pub fn query_param(target: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(&format!("http://x{target}")).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
