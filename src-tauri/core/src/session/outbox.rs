//! Where frames for one connection go: a bounded queue drained by the connection's writer. A client
//! that does not read fast enough fills it; then the connection is dropped instead of buffering forever.

use std::sync::Arc;

use tokio::sync::{mpsc, Notify};

use crate::protocol::Outgoing;

/// A handle to one connection's outgoing queue. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbox {
    tx: mpsc::Sender<String>,
    overflow: Arc<Notify>,
    connection: u64,
}

impl Outbox {
    /// A queue of `capacity` frames for connection `connection`: the outbox, the receiving end for the
    /// writer, and the signal raised when the queue overflowed.
    pub fn new(capacity: usize, connection: u64) -> (Self, mpsc::Receiver<String>, Arc<Notify>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let overflow = Arc::new(Notify::new());
        (
            Self {
                tx,
                overflow: overflow.clone(),
                connection,
            },
            rx,
            overflow,
        )
    }

    /// Queues a frame without waiting. Returns false when the connection is gone or overflowing.
    pub fn send(&self, frame: Outgoing) -> bool {
        match self.tx.try_send(frame.to_text()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflow.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// The connection this outbox belongs to.
    pub fn connection(&self) -> u64 {
        self.connection
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}
