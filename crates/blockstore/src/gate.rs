//! The GC gate: writers (puts, pins, imports holding a [`GcGuard`]) share it, garbage collection
//! takes it alone. Like Kubo's GC lock, it keeps GC from sweeping a block that an unfinished import
//! has written but not pinned yet.

use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

#[derive(Debug, Default)]
struct State {
    writers: usize,
    gc_running: bool,
    gc_waiting: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Gate {
    state: Mutex<State>,
    changed: Condvar,
}

impl Gate {
    /// Enters as a writer; waits only while a GC is actually running, so a writer that already
    /// holds a guard can enter again without deadlocking against a waiting GC.
    pub fn enter_writer(self: &Arc<Self>) -> GcGuard {
        let mut s = self.state.lock();
        while s.gc_running {
            self.changed.wait(&mut s);
        }
        s.writers += 1;
        GcGuard { gate: self.clone() }
    }

    /// Enters as a writer if no GC is running; `None` (at once) if one is.
    pub fn try_enter_writer(self: &Arc<Self>) -> Option<GcGuard> {
        let mut s = self.state.lock();
        if s.gc_running {
            return None;
        }
        s.writers += 1;
        Some(GcGuard { gate: self.clone() })
    }

    /// Enters alone: waits until no writer holds the gate.
    pub fn enter_gc(self: &Arc<Self>) -> GcExclusive {
        let mut s = self.state.lock();
        s.gc_waiting += 1;
        while s.writers > 0 || s.gc_running {
            self.changed.wait(&mut s);
        }
        s.gc_waiting -= 1;
        s.gc_running = true;
        GcExclusive { gate: self.clone() }
    }

    pub fn gc_waiting(&self) -> bool {
        self.state.lock().gc_waiting > 0
    }
}

/// Held by a writer: while any guard lives, garbage collection waits. Hold one across a multi-step
/// import (put the blocks, then pin the root) so GC cannot sweep the blocks in between.
/// Do not call [`crate::Blockstore::gc`] while holding one: it would wait for itself.
#[derive(Debug)]
#[must_use = "the guard protects against GC only while it is held"]
pub struct GcGuard {
    gate: Arc<Gate>,
}

impl Drop for GcGuard {
    fn drop(&mut self) {
        let mut s = self.gate.state.lock();
        s.writers -= 1;
        if s.writers == 0 {
            self.gate.changed.notify_all();
        }
    }
}

/// Held by GC while it marks and sweeps.
#[derive(Debug)]
pub(crate) struct GcExclusive {
    gate: Arc<Gate>,
}

impl Drop for GcExclusive {
    fn drop(&mut self) {
        self.gate.state.lock().gc_running = false;
        self.gate.changed.notify_all();
    }
}
