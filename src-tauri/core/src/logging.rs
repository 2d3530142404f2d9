//! Logging: tracing to stderr and to a daily-rotated file in the data dir's `logs/` folder.

use std::io::IsTerminal;
use std::path::Path;

pub use tracing_appender::non_blocking::WorkerGuard as FlushGuard;
use tracing_subscriber::{fmt, prelude::*, EnvFilter};

/// Installs the global subscriber. Keep the returned guard alive: it flushes the file log on drop.
/// The filter comes from `RUST_LOG` (default `info`). Colours only on a terminal that did not ask for
/// none (`NO_COLOR`), so redirected output stays plain text.
pub fn init(data_dir: &Path) -> anyhow::Result<FlushGuard> {
    let log_dir = data_dir.join("logs");
    std::fs::create_dir_all(&log_dir)
        .map_err(|e| anyhow::anyhow!("cannot create log folder {}: {e}", log_dir.display()))?;
    let file = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("cernvm-webapi")
        .filename_suffix("log")
        .max_log_files(7)
        .build(&log_dir)?;
    let (file_writer, guard) = tracing_appender::non_blocking(file);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::registry()
        .with(filter)
        .with(
            fmt::layer()
                .with_ansi(
                    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
                )
                .with_writer(std::io::stderr),
        )
        .with(fmt::layer().with_ansi(false).with_writer(file_writer))
        .try_init()
        .map_err(|e| anyhow::anyhow!("logging already initialised: {e}"))?;
    Ok(guard)
}
