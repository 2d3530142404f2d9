//! The contract between the idle controller and the sessions it acts on (implemented by the daemon over
//! the session actors).

use async_trait::async_trait;

use super::params::IdlePolicy;
use super::policy::{IdleAction, SessionView};

/// One session under idle control, as the controller sees it on one poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlledSession {
    /// A stable id of the session (used in logs and the status).
    pub id: String,
    pub policy: IdlePolicy,
    pub view: SessionView,
}

/// Why a session did not take an action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(pub String);

/// The sessions the controller acts on.
///
/// Both methods are called about twice a second while a session is controlled, so they must be cheap:
/// `controlled_sessions` reads a snapshot, `apply` enqueues a command to the session's actor and returns
/// without waiting for the VM (the controller gives up on a call after [`super::controller::APPLY_TIMEOUT`]).
/// The actor must tell apart state changes made by the controller from those made by the user or page and
/// report the latter as [`SessionView::held_by_hand`], and must not mark a controller's pause as by hand.
#[async_trait]
pub trait IdleTarget: Send + Sync {
    /// Sessions with `daemonControlled = 1` (others are ignored if returned).
    async fn controlled_sessions(&self) -> Vec<ControlledSession>;
    /// Asks session `id` to do `action`.
    async fn apply(&self, id: &str, action: IdleAction) -> Result<(), TargetError>;
}
