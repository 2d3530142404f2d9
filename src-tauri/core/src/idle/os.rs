//! macOS and Windows idle source through the `user-idle` crate (IOKit `HIDIdleTime`, `GetLastInputInfo`).
//! Built only on those systems; on Linux the X11 and GNOME sources are used instead.

use std::time::Duration;

use async_trait::async_trait;

use super::source::{with_timeout, IdleError, IdleSource};

const NAME: &str = if cfg!(target_os = "macos") {
    "macos-iokit"
} else {
    "windows-lastinput"
};

/// The operating system's own idle counter.
#[derive(Debug, Default)]
pub struct OsSource;

#[async_trait]
impl IdleSource for OsSource {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn idle_time(&self) -> Result<Duration, IdleError> {
        with_timeout(NAME, false, async {
            tokio::task::spawn_blocking(|| {
                user_idle::UserIdle::get_time()
                    .map(|t| Duration::from_millis(t.as_milliseconds().min(u64::MAX.into()) as u64))
                    .map_err(|e| IdleError::failed(NAME, format!("{e:?}")))
            })
            .await
            .map_err(|e| IdleError::failed(NAME, format!("probe thread failed: {e}")))?
        })
        .await
    }
}
