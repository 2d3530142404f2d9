//! `cvmwebapi demo-site`: a small website on loopback that shows the whole product working. It serves
//! the demo page (ui/demo, compiled in), a `/vmcp` endpoint answering each request with the demo VMCP
//! signed for the request's `cvm_salt`, and `/guest.iso`, the image that VMCP boots. Its development
//! key lives in `<data dir>/demo/` and a keystore line for it in `<data dir>/demo/keystore.txt`, which
//! the daemon is given with `--keystore`.

mod assets;
mod routes;
mod setup;
mod vmcp;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

pub use setup::{find_test_guest, DemoFiles, GuestImage, MAX_IMAGE_BYTES};
pub use vmcp::demo_vmcp;

/// The default address of the demo site.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Options of `cvmwebapi demo-site`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Address to serve the demo website on (an IPv4 loopback address; port 0 picks a free port).
    #[arg(long, value_name = "ADDR:PORT", default_value = DEFAULT_LISTEN)]
    pub listen: String,

    /// The daemon's data folder; the demo keeps its key and keystore in its `demo/` subfolder
    /// (default: the per-OS application data folder, as for `serve`).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// The VM image the demo VMCP boots (default: the test guest, built by tests/guest/build.sh when
    /// run from a source checkout).
    #[arg(long, value_name = "PATH")]
    pub image: Option<PathBuf>,
}

/// Why the demo site cannot start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("--listen {0:?} is not a valid ADDR:PORT (for example 127.0.0.1:8080)")]
    BadListen(String),
    #[error("--listen {0} is not an IPv4 loopback address (127.x.x.x): the demo's keystore entry names the page's host")]
    NotLoopback(SocketAddr),
    #[error("no per-user application data folder is known on this system; pass --data-dir")]
    NoDataDir,
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("{0}")]
    Setup(String),
    #[error("the image: {0}")]
    Image(String),
}

/// The validated options.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub image: Option<PathBuf>,
}

impl DemoArgs {
    /// Checks the options and fills in defaults.
    pub fn validate(&self) -> Result<DemoConfig, DemoError> {
        let listen: SocketAddr = self
            .listen
            .parse()
            .map_err(|_| DemoError::BadListen(self.listen.clone()))?;
        match listen {
            SocketAddr::V4(v4) if v4.ip().is_loopback() => {}
            _ => return Err(DemoError::NotLoopback(listen)),
        }
        let data_dir = match &self.data_dir {
            Some(d) => d.clone(),
            None => crate::config::default_data_dir().ok_or(DemoError::NoDataDir)?,
        };
        Ok(DemoConfig {
            listen,
            data_dir,
            image: self.image.clone(),
        })
    }
}

/// A bound, ready demo site.
pub struct DemoSite {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    files: DemoFiles,
    state: std::sync::Arc<routes::SiteState>,
}

impl DemoSite {
    /// Prepares the key and keystore, loads the image and binds the listener.
    pub async fn prepare(config: &DemoConfig) -> Result<Self, DemoError> {
        let image_path = match &config.image {
            Some(p) => p.clone(),
            None => find_test_guest()?,
        };
        let image = tokio::task::spawn_blocking(move || GuestImage::load(&image_path))
            .await
            .map_err(|e| DemoError::Image(e.to_string()))??;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| DemoError::Bind(config.listen, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| DemoError::Bind(config.listen, e))?;
        let (files, key) = DemoFiles::prepare(&config.data_dir, &addr.ip().to_string())?;
        let vmcp = demo_vmcp(addr, &image.sha256_hex);
        let state = std::sync::Arc::new(routes::SiteState { key, vmcp, image });
        Ok(Self {
            listener,
            addr,
            files,
            state,
        })
    }

    /// The address the site listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The demo's key, public key and keystore paths.
    pub fn files(&self) -> &DemoFiles {
        &self.files
    }

    /// What to tell the user: the page's URL and the daemon options that trust this site.
    pub fn instructions(&self) -> String {
        let ks = self.files.keystore.display();
        let origin = format!("http://{}", self.addr);
        format!(
            "CernVM WebAPI demo site: {origin}/\n\
             It signs its VMCP with the development key in {dir}.\n\
             Run the app so that it trusts this site:\n\
             \x20 cernvm-webapi --keystore {ks}\n\
             or headless, pre-approving this page (no consent dialog):\n\
             \x20 cvmwebapi serve --keystore {ks} --allow-origin {origin} --hypervisor qemu\n\
             Then open {origin}/ and click \"Request session\", then \"Start\".\n",
            dir = self.files.dir.display(),
        )
    }

    /// Serves until `shutdown` completes.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, routes::router(self.state))
            .with_graceful_shutdown(shutdown)
            .await
    }
}

impl From<crate::trust::TrustError> for DemoError {
    fn from(e: crate::trust::TrustError) -> Self {
        DemoError::Setup(e.detail().to_string())
    }
}
