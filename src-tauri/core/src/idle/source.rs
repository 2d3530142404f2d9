//! The `IdleSource` trait (how long since the last keyboard or mouse input), the probe timeout every source
//! runs under, and the `Unknown` source that never reports idle.

use std::time::Duration;

use async_trait::async_trait;

/// The longest a single idle probe may take before it counts as failed.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// The longest a probe that first has to (re)connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why an idle probe failed.
#[derive(Debug, thiserror::Error)]
pub enum IdleError {
    #[error("{source_name}: probe timed out after {timeout:?}")]
    Timeout {
        source_name: &'static str,
        timeout: Duration,
    },
    #[error("{source_name}: an earlier probe is still stuck; not starting another")]
    Stuck { source_name: &'static str },
    #[error("{source_name}: {message}")]
    Failed {
        source_name: &'static str,
        message: String,
    },
    #[error("no idle source: the user counts as always active")]
    Unsupported,
}

impl IdleError {
    pub fn failed(source_name: &'static str, message: impl ToString) -> Self {
        Self::Failed {
            source_name,
            message: message.to_string(),
        }
    }
}

/// Something that can tell how long the user has not touched keyboard or mouse.
#[async_trait]
pub trait IdleSource: Send + Sync {
    /// A short name for logs, the control panel and the protocol ("x11", "gnome-mutter", "unknown", ...).
    fn name(&self) -> &'static str;
    /// Time since the last user input. Implementations return within [`PROBE_TIMEOUT`], or [`CONNECT_TIMEOUT`] when they
    /// must connect first (use [`with_timeout`]).
    async fn idle_time(&self) -> Result<Duration, IdleError>;
}

/// Runs `probe` under [`PROBE_TIMEOUT`], or [`CONNECT_TIMEOUT`] when it must connect first, mapping an
/// expired timer to [`IdleError::Timeout`].
pub async fn with_timeout<F>(
    source_name: &'static str,
    connecting: bool,
    probe: F,
) -> Result<Duration, IdleError>
where
    F: std::future::Future<Output = Result<Duration, IdleError>>,
{
    let timeout = if connecting {
        CONNECT_TIMEOUT
    } else {
        PROBE_TIMEOUT
    };
    tokio::time::timeout(timeout, probe)
        .await
        .unwrap_or(Err(IdleError::Timeout {
            source_name,
            timeout,
        }))
}

/// The source used when no other works: it never reports idle, so no VM runs at its idle setting by mistake.
#[derive(Debug, Default)]
pub struct UnknownSource;

#[async_trait]
impl IdleSource for UnknownSource {
    fn name(&self) -> &'static str {
        "unknown"
    }
    async fn idle_time(&self) -> Result<Duration, IdleError> {
        Err(IdleError::Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_never_reports_idle() {
        let s = UnknownSource;
        assert_eq!(s.name(), "unknown");
        assert!(matches!(s.idle_time().await, Err(IdleError::Unsupported)));
    }

    #[tokio::test]
    async fn slow_probe_times_out() {
        let started = std::time::Instant::now();
        let r = with_timeout("slow", false, async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(Duration::ZERO)
        })
        .await;
        assert!(matches!(r, Err(IdleError::Timeout { .. })), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(30));
    }
}
