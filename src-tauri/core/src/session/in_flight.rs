//! Which sessions a connection has commands queued to and not yet answered. While it has, its `get` of
//! such a session goes through the actor's mailbox behind them, so pipelined requests keep their order;
//! otherwise `get` is answered from the session's published view. Session ids share a few counters
//! (id modulo [`SLOTS`]): a shared counter only sends more `get`s the slow, always correct way.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Counters per connection.
const SLOTS: usize = 8;

/// The counters of one connection.
#[derive(Debug, Default)]
pub struct InFlight {
    slots: [AtomicU32; SLOTS],
}

/// One queued command; dropped (by the actor, after its reply was sent) when it is answered.
#[derive(Debug)]
pub struct InFlightToken {
    owner: Arc<InFlight>,
    slot: usize,
}

fn slot(wire_id: u32) -> usize {
    wire_id as usize % SLOTS
}

impl InFlight {
    /// Whether a command to session id `wire_id` may still be queued.
    pub fn is_busy(&self, wire_id: u32) -> bool {
        self.slots[slot(wire_id)].load(Ordering::Acquire) != 0
    }

    /// Counts a command to `wire_id` until the returned token is dropped.
    pub fn track(self: &Arc<Self>, wire_id: u32) -> InFlightToken {
        let slot = slot(wire_id);
        self.slots[slot].fetch_add(1, Ordering::AcqRel);
        InFlightToken {
            owner: self.clone(),
            slot,
        }
    }
}

impl Clone for InFlightToken {
    fn clone(&self) -> Self {
        self.owner.slots[self.slot].fetch_add(1, Ordering::AcqRel);
        Self {
            owner: self.owner.clone(),
            slot: self.slot,
        }
    }
}

impl Drop for InFlightToken {
    fn drop(&mut self) {
        // Release: what the actor published before answering is visible to whoever sees the count drop.
        self.owner.slots[self.slot].fetch_sub(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_busy_while_a_token_or_a_clone_of_it_lives() {
        let f = Arc::new(InFlight::default());
        assert!(!f.is_busy(3));
        let t = f.track(3);
        assert!(f.is_busy(3));
        assert!(!f.is_busy(4));
        let c = t.clone();
        drop(t);
        assert!(f.is_busy(3));
        drop(c);
        assert!(!f.is_busy(3));
    }
}
