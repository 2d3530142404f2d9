//! The resource monitor: every [`INTERVAL`] it samples each live session's applied CPU cap and the host
//! CPU use of its VM process, and keeps the last [`WINDOW`] per session in memory (bounded), for the
//! control panel's chart.

mod cpu;
mod history;

pub use cpu::CpuMeter;
pub use history::{History, Sample, MAX_SAMPLES, MAX_SESSIONS};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;

use crate::daemon::DaemonState;
use crate::session::SessionHandle;

/// Time between two samples.
pub const INTERVAL: Duration = Duration::from_secs(2);
/// How much history is kept per session.
pub const WINDOW: Duration = Duration::from_secs(10 * 60);
/// How long a session may take to answer before it is left out of one round.
const INSPECT_TIMEOUT: Duration = Duration::from_secs(1);

/// What one session looks like to the sampler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub name: String,
    pub cap: Option<u8>,
    pub pid: Option<u32>,
}

/// The sampler's state: the CPU meter and the history. [`ResourceMonitor`] drives it on a timer;
/// tests drive [`Sampler::record`] directly.
pub struct Sampler {
    meter: CpuMeter,
    history: History,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    pub fn new() -> Self {
        Self {
            meter: CpuMeter::new(),
            history: History::new(WINDOW),
        }
    }

    /// Records one round at `at_ms`: a sample per observed session; sessions not observed are dropped.
    pub fn record(&mut self, sessions: &[Observed], at_ms: u64) {
        let pids: Vec<u32> = sessions.iter().filter_map(|s| s.pid).collect();
        let cpu = self.meter.measure(&pids, at_ms);
        self.history
            .retain_sessions(|name| sessions.iter().any(|s| s.name == name));
        for s in sessions {
            self.history.push(
                &s.name,
                Sample {
                    at_ms,
                    cap: s.cap,
                    cpu_percent: s.pid.and_then(|p| cpu.get(&p).copied()),
                },
            );
        }
    }

    pub fn history(&self) -> &History {
        &self.history
    }
}

/// The running monitor of one daemon. Cheap to clone; the task ends when the daemon's state is gone.
#[derive(Clone)]
pub struct ResourceMonitor {
    sampler: Arc<Mutex<Sampler>>,
}

impl ResourceMonitor {
    /// Starts sampling the sessions of `state` every [`INTERVAL`] (needs a tokio runtime).
    pub fn spawn(state: Arc<DaemonState>) -> Self {
        let monitor = Self {
            sampler: Arc::new(Mutex::new(Sampler::new())),
        };
        let weak = Arc::downgrade(&state);
        drop(state);
        tokio::spawn(run(weak, Arc::downgrade(&monitor.sampler)));
        monitor
    }

    /// The samples of the last [`WINDOW`], per session name, oldest first.
    pub fn samples(&self) -> BTreeMap<String, Vec<Sample>> {
        self.lock().history.snapshot()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sampler> {
        self.sampler.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn run(state: Weak<DaemonState>, sampler: Weak<Mutex<Sampler>>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(handles) = state.upgrade().map(|s| s.registry().sessions()) else {
            return;
        };
        let observed = observe(handles).await;
        let Some(sampler) = sampler.upgrade() else {
            return;
        };
        let mut sampler = sampler.lock().unwrap_or_else(|e| e.into_inner());
        sampler.record(&observed, now_ms());
    }
}

/// Snapshots every session (at most [`MAX_SESSIONS`]) concurrently; those that do not answer are left out.
async fn observe(handles: Vec<SessionHandle>) -> Vec<Observed> {
    let asks = handles.into_iter().take(MAX_SESSIONS).map(|h| async move {
        let snap = h.inspect(INSPECT_TIMEOUT).await?;
        Some(Observed {
            name: h.name().to_string(),
            cap: snap.applied_cap,
            pid: snap.pid,
        })
    });
    join_all(asks).await.into_iter().flatten().collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests;
