//! The monitor's memory: per session, the samples of the last window, oldest first. Bounded in
//! sessions ([`MAX_SESSIONS`]) and in samples per session ([`MAX_SAMPLES`]).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde::Serialize;

/// At most this many sessions are tracked.
pub const MAX_SESSIONS: usize = 256;
/// At most this many samples per session (10 minutes every 2 s is 300).
pub const MAX_SAMPLES: usize = 400;

/// One sample of one session.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The CPU cap applied to the running VM (percent), if known.
    pub cap: Option<u8>,
    /// Host CPU use of the VM's process since the previous sample, in percent of one CPU (may exceed
    /// 100 with several virtual CPUs); `None` when the VM has no process or this is its first sample.
    pub cpu_percent: Option<f32>,
}

/// Samples per session.
#[derive(Debug, Clone)]
pub struct History {
    window_ms: u64,
    sessions: BTreeMap<String, VecDeque<Sample>>,
}

impl History {
    pub fn new(window: Duration) -> Self {
        Self {
            window_ms: window.as_millis() as u64,
            sessions: BTreeMap::new(),
        }
    }

    /// Adds a sample, dropping the session's samples older than the window before it. A new session
    /// beyond [`MAX_SESSIONS`] is not tracked.
    pub fn push(&mut self, name: &str, sample: Sample) {
        if !self.sessions.contains_key(name) && self.sessions.len() >= MAX_SESSIONS {
            return;
        }
        let samples = self.sessions.entry(name.to_string()).or_default();
        let oldest = sample.at_ms.saturating_sub(self.window_ms);
        while samples
            .front()
            .is_some_and(|s| s.at_ms < oldest || samples.len() >= MAX_SAMPLES)
        {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// Forgets the sessions for which `keep` says false.
    pub fn retain_sessions(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.sessions.retain(|name, _| keep(name));
    }

    /// A copy of everything, oldest sample first.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<Sample>> {
        self.sessions
            .iter()
            .map(|(name, s)| (name.clone(), s.iter().copied().collect()))
            .collect()
    }
}
