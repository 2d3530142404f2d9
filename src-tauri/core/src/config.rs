//! Daemon configuration: the options shared by `cvmwebapi serve` and the tray app, and their validation.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// The port the original daemon and its JavaScript library use.
pub const DEFAULT_PORT: u16 = 5624;

/// Command-line options shared by `cvmwebapi serve` and the `cernvm-webapi` tray app.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (a loopback address unless --allow-remote is given).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:5624")]
    pub listen: String,

    /// Folder for sessions, logs, images and settings (default: the per-OS application data folder).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Allow --listen on a non-loopback address. Dangerous: any host on the network could reach the API.
    #[arg(long)]
    pub allow_remote: bool,

    /// Seconds without keyboard or mouse input after which the computer counts as idle, for sessions
    /// under idle control (1 to 86400). Default: the control panel's setting, else 60.
    #[arg(long, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idle_threshold: Option<u64>,

    /// Pre-approve new VM sessions from this exact website origin (scheme://host[:port]); repeatable.
    /// The headless daemon can ask nobody, so it refuses new sessions from every other origin.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origin: Vec<String>,

    /// Trust the domain keys in this local keystore file (`domain=base64-SPKI` lines). Repeatable.
    #[arg(long = "keystore", value_name = "FILE")]
    pub keystore: Vec<PathBuf>,

    /// Use the signed keystore published at this https URL (its signature at URL.sig).
    #[arg(long, value_name = "URL")]
    pub keystore_url: Option<String>,

    /// Accept signed keystores signed by this key (a `.pub` file: one-line base64 SPKI). Repeatable.
    #[arg(long = "keystore-root", value_name = "FILE")]
    pub keystore_root: Vec<PathBuf>,

    /// Also trust this CA certificate (PEM) for VMCP and keystore downloads. Repeatable.
    #[arg(long = "ca-cert", value_name = "FILE")]
    pub ca_cert: Vec<PathBuf>,

    /// Base URL of a µCernVM image mirror replacing https://cernvm.cern.ch/releases (see docs/images.md).
    #[arg(long, value_name = "URL")]
    pub image_mirror: Option<String>,

    /// Which hypervisor runs the VMs: `auto` prefers VirtualBox when installed and working, then QEMU.
    /// Default: the control panel's setting, else `auto`.
    #[arg(long, value_enum, value_name = "BACKEND")]
    pub hypervisor: Option<crate::hypervisor::HypervisorChoice>,
}

impl ServeArgs {
    /// The idle threshold given with `--idle-threshold` (already range-checked by the parser), if any.
    pub fn idle_threshold_flag(&self) -> Option<std::time::Duration> {
        self.idle_threshold
            .map(|secs| std::time::Duration::from_secs(secs.clamp(1, 86_400)))
    }

    /// The idle threshold: `--idle-threshold`, else the built-in default (the settings come in between,
    /// see `settings::Startup`).
    pub fn idle_threshold(&self) -> std::time::Duration {
        self.idle_threshold_flag()
            .unwrap_or(crate::idle::DEFAULT_THRESHOLD)
    }
}

/// Validated daemon configuration.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Serialized origins pre-approved by `--allow-origin` (for the headless consent prompter).
    pub allow_origins: Vec<String>,
    /// The validated `--image-mirror`, if given (it wins over the settings file).
    pub image_mirror: Option<crate::media::Mirror>,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--listen {0:?} is not a valid ADDR:PORT (for example 127.0.0.1:5624)")]
    BadListen(String),
    #[error("--listen {0} is not a loopback address; websites on other hosts could reach the API. Pass --allow-remote if you really want this")]
    NotLoopback(SocketAddr),
    #[error("no per-user application data folder is known on this system; pass --data-dir")]
    NoDataDir,
    #[error("--allow-origin {0:?} is not a website origin; write it as scheme://host[:port], for example https://example.org")]
    BadOrigin(String),
    #[error("--image-mirror: {0}")]
    BadMirror(crate::media::MediaError),
}

impl ServeArgs {
    /// Checks the options and fills in defaults.
    pub fn validate(&self) -> Result<DaemonConfig, ConfigError> {
        let listen: SocketAddr = self
            .listen
            .parse()
            .map_err(|_| ConfigError::BadListen(self.listen.clone()))?;
        if !listen.ip().is_loopback() && !self.allow_remote {
            return Err(ConfigError::NotLoopback(listen));
        }
        let data_dir = match &self.data_dir {
            Some(dir) => dir.clone(),
            None => default_data_dir().ok_or(ConfigError::NoDataDir)?,
        };
        let allow_origins = self
            .allow_origin
            .iter()
            .map(|o| {
                crate::consent::serialize_origin(o).ok_or_else(|| ConfigError::BadOrigin(o.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let image_mirror = self
            .image_mirror
            .as_deref()
            .map(crate::media::Mirror::parse)
            .transpose()
            .map_err(ConfigError::BadMirror)?;
        Ok(DaemonConfig {
            listen,
            data_dir,
            allow_origins,
            image_mirror,
        })
    }
}

/// The per-OS application data folder, e.g. `~/.local/share/cernvm-webapi` on Linux.
pub fn default_data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("ch", "cern", "cernvm-webapi")
        .map(|d| d.data_dir().to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(listen: &str, allow_remote: bool) -> ServeArgs {
        ServeArgs {
            listen: listen.into(),
            data_dir: Some("/nonexistent".into()),
            allow_remote,
            idle_threshold: None,
            allow_origin: Vec::new(),
            keystore: Vec::new(),
            keystore_url: None,
            keystore_root: Vec::new(),
            ca_cert: Vec::new(),
            image_mirror: None,
            hypervisor: None,
        }
    }

    #[test]
    fn validates_the_image_mirror() {
        let mut a = args("127.0.0.1:1", false);
        a.image_mirror = Some("http://mirror.example/cernvm/".into());
        let mirror = a.validate().unwrap().image_mirror.unwrap();
        assert_eq!(mirror.as_str(), "http://mirror.example/cernvm");
        a.image_mirror = Some("file:///tmp".into());
        assert!(matches!(a.validate(), Err(ConfigError::BadMirror(_))));
    }

    #[test]
    fn accepts_loopback_v4_and_v6() {
        assert_eq!(
            args("127.0.0.1:1", false).validate().unwrap().listen.port(),
            1
        );
        assert!(args("[::1]:5624", false).validate().is_ok());
    }

    #[test]
    fn idle_threshold_is_parsed_and_bounded() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let default = Cli::try_parse_from(["x"]).unwrap().serve;
        assert_eq!(default.idle_threshold(), std::time::Duration::from_secs(60));
        let set = Cli::try_parse_from(["x", "--idle-threshold", "300"])
            .unwrap()
            .serve;
        assert_eq!(set.idle_threshold(), std::time::Duration::from_secs(300));
        for bad in ["0", "86401", "-5", "soon"] {
            assert!(
                Cli::try_parse_from(["x", "--idle-threshold", bad]).is_err(),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn refuses_malformed_address() {
        let err = args("localhost", false).validate().unwrap_err();
        assert!(matches!(err, ConfigError::BadListen(_)), "{err}");
        assert!(args("127.0.0.1:99999", false).validate().is_err());
    }

    #[test]
    fn refuses_remote_without_flag() {
        let err = args("0.0.0.0:5624", false).validate().unwrap_err();
        assert!(matches!(err, ConfigError::NotLoopback(_)));
        assert!(err.to_string().contains("--allow-remote"));
        assert!(args("0.0.0.0:5624", true).validate().is_ok());
    }

    #[test]
    fn allow_origin_is_normalized_or_refused() {
        let mut a = args("127.0.0.1:1", false);
        a.allow_origin = vec![
            "https://Example.ORG:443".into(),
            "http://127.0.0.1:8000".into(),
        ];
        assert_eq!(
            a.validate().unwrap().allow_origins,
            vec!["https://example.org", "http://127.0.0.1:8000"]
        );
        a.allow_origin = vec!["example.org".into()];
        let err = a.validate().unwrap_err();
        assert!(matches!(err, ConfigError::BadOrigin(_)), "{err}");
        assert!(err.to_string().contains("scheme://host"));
    }
}
