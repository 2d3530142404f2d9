//! The daemon-wide session registry: sessions by name, and the wire ids (the numbers on the wire, §5.3)
//! each bound to the one connection allowed to address it; and the idle controller's handle, once started.

use std::collections::HashMap;
use std::sync::Mutex;

use ring::rand::{SecureRandom, SystemRandom};

use crate::idle::{IdleHandle, IdleStatus};
use crate::session::SessionHandle;

/// Sessions by name and wire ids by number. Critical sections are short and never await.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_name: HashMap<String, SessionHandle>,
    wires: HashMap<u32, (SessionHandle, u64)>,
    /// The idle controller of this daemon, once started (for `getIdleStatus`).
    idle: Option<IdleHandle>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live session called `name`.
    pub fn by_name(&self, name: &str) -> Option<SessionHandle> {
        let mut inner = self.lock();
        match inner.by_name.get(name) {
            Some(h) if h.is_alive() => Some(h.clone()),
            Some(_) => {
                inner.by_name.remove(name);
                None
            }
            None => None,
        }
    }

    /// Registers a session; gives back the live one of that name if there is one already.
    pub fn insert(&self, handle: SessionHandle) -> Result<(), SessionHandle> {
        let mut inner = self.lock();
        if let Some(existing) = inner.by_name.get(handle.name()) {
            if existing.is_alive() {
                return Err(existing.clone());
            }
        }
        inner.by_name.insert(handle.name().to_string(), handle);
        Ok(())
    }

    /// Binds a new random wire id (1..2³¹) of `handle` to `connection`.
    pub fn bind_wire(&self, handle: &SessionHandle, connection: u64) -> u32 {
        let rng = SystemRandom::new();
        let mut inner = self.lock();
        loop {
            let mut bytes = [0u8; 4];
            let id = match rng.fill(&mut bytes) {
                Ok(()) => u32::from_le_bytes(bytes) & 0x7fff_ffff,
                Err(_) => (inner.wires.len() as u32 + 1) & 0x7fff_ffff,
            };
            if id != 0 && !inner.wires.contains_key(&id) {
                inner.wires.insert(id, (handle.clone(), connection));
                return id;
            }
        }
    }

    /// The session behind `wire_id`, only if `connection` owns that id.
    pub fn wire(&self, wire_id: u32, connection: u64) -> Option<SessionHandle> {
        match self.lock().wires.get(&wire_id) {
            Some((h, owner)) if *owner == connection => Some(h.clone()),
            _ => None,
        }
    }

    /// Removes every wire id of `connection`, returning them with their sessions.
    pub fn release_connection(&self, connection: u64) -> Vec<(u32, SessionHandle)> {
        let mut inner = self.lock();
        let ids: Vec<u32> = inner
            .wires
            .iter()
            .filter(|(_, (_, owner))| *owner == connection)
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter()
            .filter_map(|id| inner.wires.remove(&id).map(|(h, _)| (id, h)))
            .collect()
    }

    /// Every live session (for the tray panel and the idle policy, which command them directly).
    pub fn sessions(&self) -> Vec<SessionHandle> {
        self.lock()
            .by_name
            .values()
            .filter(|h| h.is_alive())
            .cloned()
            .collect()
    }

    /// Publishes the idle controller's handle (replacing an earlier one).
    pub fn set_idle(&self, handle: IdleHandle) {
        self.lock().idle = Some(handle);
    }

    /// The idle controller's handle, if one was started.
    pub fn idle(&self) -> Option<IdleHandle> {
        self.lock().idle.clone()
    }

    /// The idle controller's latest status, if one was started.
    pub fn idle_status(&self) -> Option<IdleStatus> {
        let handle = self.idle()?;
        let status = handle.status().borrow().clone();
        Some(status)
    }

    /// How many sessions are registered (for logs and tests).
    pub fn session_count(&self) -> usize {
        self.lock().by_name.len()
    }
}
