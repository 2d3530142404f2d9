//! State shared between a `QemuVm`, its event monitor task and its duty-cycle task: who paused the VM,
//! whether an exit is expected, and the event channel.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::broadcast;

use crate::hypervisor::VmEvent;

pub struct Shared {
    /// Held while issuing `stop`/`cont`, so the duty cycle and the session's pause/resume never interleave.
    pub run: tokio::sync::Mutex<()>,
    user_paused: AtomicBool,
    duty_active: AtomicBool,
    expect_exit: AtomicBool,
    pub events: broadcast::Sender<VmEvent>,
}

impl Shared {
    pub fn new() -> Self {
        Self {
            run: tokio::sync::Mutex::new(()),
            user_paused: AtomicBool::new(false),
            duty_active: AtomicBool::new(false),
            expect_exit: AtomicBool::new(false),
            events: broadcast::channel(64).0,
        }
    }
    pub fn user_paused(&self) -> bool {
        self.user_paused.load(Ordering::SeqCst)
    }
    pub fn set_user_paused(&self, v: bool) {
        self.user_paused.store(v, Ordering::SeqCst)
    }
    pub fn duty_active(&self) -> bool {
        self.duty_active.load(Ordering::SeqCst)
    }
    pub fn set_duty_active(&self, v: bool) {
        self.duty_active.store(v, Ordering::SeqCst)
    }
    pub fn expect_exit(&self) -> bool {
        self.expect_exit.load(Ordering::SeqCst)
    }
    pub fn set_expect_exit(&self, v: bool) {
        self.expect_exit.store(v, Ordering::SeqCst)
    }
    pub fn emit(&self, e: VmEvent) {
        tracing::debug!(event = ?e, "vm event");
        let _ = self.events.send(e);
    }
}
