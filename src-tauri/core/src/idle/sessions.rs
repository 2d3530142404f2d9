//! The idle controller's view of the daemon's sessions ([`IdleTarget`] over the session actors), and
//! [`spawn_for`] / [`spawn_with`], which start the controller for a running daemon.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::join_all;
use tokio::sync::oneshot;

use super::{
    Clock, ControlledSession, Controller, IdleAction, IdleHandle, IdleSource, IdleTarget,
    PollPeriods, SessionView, SystemClock, TargetError,
};
use crate::daemon::DaemonState;
use crate::hypervisor::VmState;
use crate::protocol::SessionState;
use crate::session::{Command, SessionHandle, SessionSnapshot};

/// How long one session may take to answer an `Inspect` before it is skipped on this poll.
const INSPECT_TIMEOUT: Duration = Duration::from_millis(300);

/// The sessions of a daemon as the idle controller sees them. Holds the daemon's state weakly, so a
/// stopped daemon is not kept alive by its controller.
pub struct SessionsTarget {
    state: std::sync::Weak<DaemonState>,
}

impl SessionsTarget {
    pub fn new(state: &Arc<DaemonState>) -> Self {
        Self {
            state: Arc::downgrade(state),
        }
    }

    fn sessions(&self) -> Vec<SessionHandle> {
        self.state
            .upgrade()
            .map(|s| s.registry().sessions())
            .unwrap_or_default()
    }
}

#[async_trait]
impl IdleTarget for SessionsTarget {
    async fn controlled_sessions(&self) -> Vec<ControlledSession> {
        let snapshots = join_all(self.sessions().into_iter().map(inspect)).await;
        snapshots
            .into_iter()
            .flatten()
            .filter(|(_, s)| s.effective_policy().controlled)
            .map(|(name, s)| controlled_session(name, &s))
            .collect()
    }

    async fn apply(&self, id: &str, action: IdleAction) -> Result<(), TargetError> {
        let state = self
            .state
            .upgrade()
            .ok_or_else(|| TargetError("the daemon stopped".into()))?;
        let handle = state
            .registry()
            .by_name(id)
            .ok_or_else(|| TargetError("the session is gone".into()))?;
        let (answer, answered) = oneshot::channel();
        handle
            .send(Command::Idle { action, answer })
            .await
            .map_err(|_| TargetError("the session is being released".into()))?;
        match answered.await {
            Ok(result) => result.map_err(TargetError),
            Err(_) => Err(TargetError("the session did not answer".into())),
        }
    }
}

/// Asks one session for its snapshot; `None` when it does not answer in time.
async fn inspect(handle: SessionHandle) -> Option<(String, SessionSnapshot)> {
    let snapshot = handle.inspect(INSPECT_TIMEOUT).await?;
    Some((handle.name().to_string(), snapshot))
}

/// The controller's view of one session snapshot.
pub fn controlled_session(name: String, s: &SessionSnapshot) -> ControlledSession {
    let state = match s.state {
        _ if s.busy => None,
        SessionState::Running => Some(VmState::Running),
        SessionState::Paused => Some(VmState::Paused),
        SessionState::Saved => Some(VmState::Saved),
        SessionState::PowerOff => Some(VmState::PoweredOff),
        SessionState::Missing | SessionState::Available => None,
    };
    ControlledSession {
        id: name,
        policy: s.effective_policy(),
        view: SessionView {
            state,
            cap: s.applied_cap,
            held_by_hand: s.held_by_hand,
        },
    }
}

/// Starts the idle controller for `state` with `source` and `clock`, publishes its handle to the
/// daemon's pages (`getIdleStatus`), and returns the handle (for the tray: status, snooze, threshold).
/// The controller reports idle/active changes to the daemon's event feed.
pub fn spawn_with(
    state: &Arc<DaemonState>,
    source: Arc<dyn IdleSource>,
    clock: Arc<dyn Clock>,
    threshold: Duration,
) -> IdleHandle {
    spawn_with_poll(state, source, clock, threshold, PollPeriods::default())
}

/// As [`spawn_with`], polling at `poll` (tests use a long period to prove what wakes the controller).
pub fn spawn_with_poll(
    state: &Arc<DaemonState>,
    source: Arc<dyn IdleSource>,
    clock: Arc<dyn Clock>,
    threshold: Duration,
    poll: PollPeriods,
) -> IdleHandle {
    let target = Arc::new(SessionsTarget::new(state));
    let (controller, handle) = Controller::new(source, target, clock, threshold);
    let controller = controller
        .with_events(state.events().clone())
        .with_poll(poll);
    tokio::spawn(controller.run());
    state.registry().set_idle(handle.clone());
    handle
}

/// Picks the idle source of this system (`idle::detect`) and starts the controller for `state`.
///
/// `cvmwebapi serve` and the tray app call this once after binding the daemon, with the
/// `--idle-threshold` value (default [`super::DEFAULT_THRESHOLD`]).
pub async fn spawn_for(state: &Arc<DaemonState>, threshold: Duration) -> IdleHandle {
    let source = super::detect().await;
    spawn_with(state, source, Arc::new(SystemClock), threshold)
}
