//! The last-resort CPU cap: a QMP `stop`/`cont` duty cycle with a 100 ms period (BOINC's throttle idea,
//! but finer). It shares the run-control lock with the VM's own pause/resume so it never resumes a VM the
//! session paused.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::qmp::QmpClient;
use super::shared::Shared;

const PERIOD_MS: u64 = 100;

/// Starts the duty cycle for the cap held in `percent` (read every period).
pub fn start(qmp: Arc<QmpClient>, shared: Arc<Shared>, percent: Arc<AtomicU8>) -> JoinHandle<()> {
    tokio::spawn(async move {
        while qmp.is_open() {
            let on = u64::from(percent.load(Ordering::Relaxed).clamp(1, 100));
            {
                let _g = shared.run.lock().await;
                if !shared.user_paused() {
                    let _ = qmp.execute("cont", None).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(on * PERIOD_MS / 100)).await;
            if on >= 100 {
                continue;
            }
            {
                let _g = shared.run.lock().await;
                if !shared.user_paused() {
                    let _ = qmp.execute("stop", None).await;
                }
            }
            tokio::time::sleep(Duration::from_millis((100 - on) * PERIOD_MS / 100)).await;
        }
    })
}
