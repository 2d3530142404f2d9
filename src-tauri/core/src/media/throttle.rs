//! The progress throttle: at most one update per interval, the final one always. Pure; the caller
//! passes the current instant (the injected clock).

use std::time::{Duration, Instant};

/// Decides which progress updates are worth sending.
#[derive(Debug, Clone)]
pub struct Throttle {
    interval: Duration,
    last: Option<Instant>,
}

impl Throttle {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
        }
    }

    /// True when an update at `now` should be sent; records it as sent. `last` (final) updates always pass.
    pub fn admit(&mut self, now: Instant, last: bool) -> bool {
        let due = match self.last {
            None => true,
            Some(prev) => now.saturating_duration_since(prev) >= self.interval,
        };
        if due || last {
            self.last = Some(now);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_first_then_one_per_interval_and_always_the_last() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut t = Throttle::new(ms(250));
        assert!(t.admit(t0, false));
        assert!(!t.admit(t0 + ms(100), false));
        assert!(!t.admit(t0 + ms(249), false));
        assert!(t.admit(t0 + ms(250), false));
        assert!(!t.admit(t0 + ms(300), false));
        assert!(t.admit(t0 + ms(301), true));
        let sent = (0..1000)
            .filter(|i| t.admit(t0 + ms(1000 + i), false))
            .count();
        assert_eq!(
            sent, 4,
            "one second of updates every millisecond gives four"
        );
    }
}
