//! Host CPU use of VM processes: the process's accumulated CPU time (sysinfo) between two samples,
//! divided by the wall time between them.

use std::collections::HashMap;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// Measures processes by pid across calls. Keeps state only for the pids of the last call.
pub struct CpuMeter {
    system: System,
    /// Per pid: accumulated CPU milliseconds and when they were read.
    last: HashMap<u32, (u64, u64)>,
}

impl Default for CpuMeter {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuMeter {
    pub fn new() -> Self {
        Self {
            system: System::new(),
            last: HashMap::new(),
        }
    }

    /// Reads `pids` at `at_ms`; returns the CPU use (percent of one CPU) of each pid that was also read
    /// by the previous call and still runs.
    pub fn measure(&mut self, pids: &[u32], at_ms: u64) -> HashMap<u32, f32> {
        let wanted: Vec<Pid> = pids.iter().map(|p| Pid::from_u32(*p)).collect();
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&wanted),
            true,
            ProcessRefreshKind::nothing().with_cpu(),
        );
        let mut out = HashMap::new();
        let mut next = HashMap::new();
        for pid in pids {
            let Some(process) = self.system.process(Pid::from_u32(*pid)) else {
                continue;
            };
            let cpu_ms = process.accumulated_cpu_time();
            if let Some((before_ms, before_at)) = self.last.get(pid) {
                if let Some(percent) = percent(*before_ms, *before_at, cpu_ms, at_ms) {
                    out.insert(*pid, percent);
                }
            }
            next.insert(*pid, (cpu_ms, at_ms));
        }
        self.last = next;
        out
    }
}

/// CPU use between two readings, in percent of one CPU; `None` when no wall time passed or the counter
/// went backwards (a new process with a reused pid).
pub fn percent(cpu_before: u64, at_before: u64, cpu_now: u64, at_now: u64) -> Option<f32> {
    let wall = at_now.checked_sub(at_before).filter(|w| *w > 0)?;
    let used = cpu_now.checked_sub(cpu_before)?;
    Some((used as f64 * 100.0 / wall as f64) as f32)
}
