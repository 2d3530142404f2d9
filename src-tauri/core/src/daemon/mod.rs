//! The application service: owns the listener and the session registry; both the tray app and
//! `cvmwebapi serve` start this same `Daemon`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::DaemonConfig;
use crate::store::DataDir;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("another CernVM WebAPI (or another program) already listens on {0}; only one may run")]
    AddressInUse(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0:#}")]
    DataDir(anyhow::Error),
}

/// State shared by the listener's tasks.
#[derive(Debug)]
pub struct DaemonState {
    local_addr: SocketAddr,
    data_dir: DataDir,
}

impl DaemonState {
    /// The address the listener is bound to (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
    pub fn data_dir(&self) -> &DataDir {
        &self.data_dir
    }
}

/// A bound, not yet serving daemon.
pub struct Daemon {
    listener: TcpListener,
    state: Arc<DaemonState>,
}

impl Daemon {
    /// Opens the data dir and binds the listener. Fails with [`StartError::AddressInUse`] when
    /// another instance runs.
    pub async fn bind(config: &DaemonConfig) -> Result<Self, StartError> {
        let data_dir = DataDir::open(&config.data_dir).map_err(StartError::DataDir)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AddrInUse => StartError::AddressInUse(config.listen),
                _ => StartError::Bind {
                    addr: config.listen,
                    source: e,
                },
            })?;
        let local_addr = listener.local_addr().map_err(|e| StartError::Bind {
            addr: config.listen,
            source: e,
        })?;
        let state = Arc::new(DaemonState {
            local_addr,
            data_dir,
        });
        Ok(Self { listener, state })
    }

    pub fn state(&self) -> Arc<DaemonState> {
        self.state.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.state.local_addr
    }

    /// Serves until `shutdown` completes, then stops accepting and returns.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = self.state.local_addr;
        tracing::info!(%addr, data_dir = %self.state.data_dir.root().display(), "CernVM WebAPI listening");
        let app = crate::server::router(self.state.clone());
        axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        tracing::info!("CernVM WebAPI stopped");
        Ok(())
    }
}
