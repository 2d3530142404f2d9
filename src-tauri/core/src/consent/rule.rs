//! The throttle rule of the original daemon (shared/spec/protocol.md §5.9), as a pure function:
//! two explicit denials from one origin at most five seconds apart (measured from the first denial
//! of the streak) block that origin. An accepted request resets the streak.

use std::time::{Duration, Instant};

/// How far apart two denials may be to count as one streak (inclusive: exactly 5 s still counts).
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(5);
/// Denials in one streak that block the origin.
pub const THROTTLE_TRIES: u32 = 2;

/// The history the rule needs for one origin: when the current streak of denials began and how
/// many denials it holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DenialStreak {
    started: Option<Instant>,
    denials: u32,
}

impl DenialStreak {
    pub fn denials(&self) -> u32 {
        self.denials
    }

    /// Whether this streak can still grow into a block at `now` (otherwise it may be forgotten).
    pub fn is_live(&self, now: Instant, window: Duration) -> bool {
        self.started
            .is_some_and(|s| now.saturating_duration_since(s) <= window)
    }
}

/// What the rule says after a denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterDenial {
    pub streak: DenialStreak,
    /// The origin must be blocked from now on.
    pub block: bool,
}

/// The user denied a request at `now`, with `history` the origin's streak so far.
pub fn after_denial(history: DenialStreak, now: Instant) -> AfterDenial {
    let streak = match history.started {
        Some(start) if now.saturating_duration_since(start) <= THROTTLE_WINDOW => DenialStreak {
            started: Some(start),
            denials: history.denials.saturating_add(1),
        },
        _ => DenialStreak {
            started: Some(now),
            denials: 1,
        },
    };
    AfterDenial {
        streak,
        block: streak.denials >= THROTTLE_TRIES,
    }
}

/// The user accepted a request: the streak starts over.
pub fn after_accept() -> DenialStreak {
    DenialStreak::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn one_denial_does_not_block() {
        let t0 = Instant::now();
        let r = after_denial(DenialStreak::default(), t0);
        assert!(!r.block);
        assert_eq!(r.streak.denials(), 1);
    }

    #[test]
    fn two_denials_within_five_seconds_block() {
        let t0 = Instant::now();
        let first = after_denial(DenialStreak::default(), t0);
        let second = after_denial(first.streak, t0 + ms(1200));
        assert!(second.block);
    }

    #[test]
    fn exactly_five_seconds_apart_still_blocks() {
        let t0 = Instant::now();
        let first = after_denial(DenialStreak::default(), t0);
        assert!(after_denial(first.streak, t0 + THROTTLE_WINDOW).block);
    }

    #[test]
    fn one_millisecond_past_five_seconds_starts_a_new_streak() {
        let t0 = Instant::now();
        let first = after_denial(DenialStreak::default(), t0);
        let late = after_denial(first.streak, t0 + THROTTLE_WINDOW + ms(1));
        assert!(!late.block);
        assert_eq!(late.streak.denials(), 1);
        // ...and the new streak is measured from the late denial.
        let third = after_denial(late.streak, t0 + THROTTLE_WINDOW + ms(1) + ms(4999));
        assert!(third.block);
    }

    #[test]
    fn window_is_measured_from_the_first_denial_of_the_streak() {
        // Denials at 0 s and 6 s: the second starts a new streak at 6 s; a third at 10.5 s is within
        // 5 s of the second, so it blocks. A streak is anchored at its first denial, not sliding.
        let t0 = Instant::now();
        let a = after_denial(DenialStreak::default(), t0);
        let b = after_denial(a.streak, t0 + ms(6000));
        assert!(!b.block);
        assert!(after_denial(b.streak, t0 + ms(10_500)).block);
    }

    #[test]
    fn accept_resets_the_streak() {
        let t0 = Instant::now();
        let first = after_denial(DenialStreak::default(), t0);
        let reset = after_accept();
        assert_eq!(reset, DenialStreak::default());
        let next = after_denial(reset, t0 + ms(100));
        assert!(!next.block, "a denial right after an accept starts over");
        assert_ne!(first.streak, next.streak);
    }

    #[test]
    fn liveness_follows_the_window() {
        let t0 = Instant::now();
        let s = after_denial(DenialStreak::default(), t0).streak;
        assert!(s.is_live(t0 + THROTTLE_WINDOW, THROTTLE_WINDOW));
        assert!(!s.is_live(t0 + THROTTLE_WINDOW + ms(1), THROTTLE_WINDOW));
        assert!(!DenialStreak::default().is_live(t0, THROTTLE_WINDOW));
    }
}
