//! The waiting line for the one dialog slot: requests in arrival order, served fairly between origins
//! (after a dialog for origin A, a waiting request of another origin goes first), so one site that
//! sends many requests cannot keep the others' dialogs from ever showing.

/// Tickets waiting for the dialog slot.
#[derive(Debug, Default)]
pub(crate) struct FairQueue {
    waiting: Vec<(u64, String)>,
}

impl FairQueue {
    pub(crate) fn push(&mut self, ticket: u64, origin: &str) {
        self.waiting.push((ticket, origin.to_string()));
    }

    pub(crate) fn remove(&mut self, ticket: u64) {
        self.waiting.retain(|(t, _)| *t != ticket);
    }

    pub(crate) fn len(&self) -> usize {
        self.waiting.len()
    }

    pub(crate) fn count(&self, origin: &str) -> usize {
        self.waiting.iter().filter(|(_, o)| o == origin).count()
    }

    /// The ticket to serve next, given the origin whose dialog was shown last.
    pub(crate) fn next(&self, last_origin: Option<&str>) -> Option<u64> {
        self.waiting
            .iter()
            .find(|(_, o)| Some(o.as_str()) != last_origin)
            .or_else(|| self.waiting.first())
            .map(|(t, _)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_in_order_but_alternates_origins() {
        let mut q = FairQueue::default();
        q.push(1, "a");
        q.push(2, "a");
        q.push(3, "b");
        assert_eq!(q.next(None), Some(1));
        q.remove(1);
        assert_eq!(
            q.next(Some("a")),
            Some(3),
            "b goes before a's second request"
        );
        q.remove(3);
        assert_eq!(q.next(Some("b")), Some(2));
        assert_eq!(q.next(Some("a")), Some(2), "only a waits: a again");
        q.remove(2);
        assert_eq!(q.next(Some("a")), None);
    }

    #[test]
    fn counts_per_origin() {
        let mut q = FairQueue::default();
        q.push(1, "a");
        q.push(2, "b");
        q.push(3, "a");
        assert_eq!(q.count("a"), 2);
        assert_eq!(q.len(), 3);
        q.remove(3);
        assert_eq!(q.count("a"), 1);
    }
}
