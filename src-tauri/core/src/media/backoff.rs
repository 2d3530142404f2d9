//! The retry policy: how many failed attempts are allowed and how long to wait before the next one.
//! Pure functions, no clock.

use std::time::Duration;

/// Bounded retries with exponential back-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Failed attempts in a row (without any new byte) after which the download gives up.
    pub max_failures: u32,
    /// Wait before the first retry; doubled each further failure.
    pub base_delay: Duration,
    /// Upper bound of the wait.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_failures: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before retrying after `failures` failures in a row (1 = the first failure), or
    /// `None` when the budget is exhausted.
    pub fn delay_after(&self, failures: u32) -> Option<Duration> {
        if failures == 0 {
            return Some(Duration::ZERO);
        }
        if failures >= self.max_failures {
            return None;
        }
        let factor = 1u32.checked_shl(failures - 1).unwrap_or(u32::MAX);
        Some(self.base_delay.saturating_mul(factor).min(self.max_delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_then_gives_up() {
        let p = RetryPolicy {
            max_failures: 40,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        assert_eq!(p.delay_after(0), Some(Duration::ZERO));
        assert_eq!(p.delay_after(1), Some(Duration::from_millis(100)));
        assert_eq!(p.delay_after(2), Some(Duration::from_millis(200)));
        assert_eq!(p.delay_after(4), Some(Duration::from_millis(800)));
        assert_eq!(p.delay_after(5), Some(Duration::from_secs(1)));
        assert_eq!(
            p.delay_after(39),
            Some(Duration::from_secs(1)),
            "no overflow"
        );
        assert_eq!(p.delay_after(40), None);
        assert_eq!(RetryPolicy::default().delay_after(6), None);
    }
}
