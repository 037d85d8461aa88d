//! Group commit: concurrent writers share one fsync.
//!
//! A durable write is acknowledged only after sled's `flush` (which writes and fsyncs its log)
//! has run *after* the write completed. An fsync costs milliseconds; one per write would cap a
//! store at a few hundred writes a second. Instead each writer, once its write is in sled's
//! memory, takes a ticket (`written += 1`) and waits until a flush that started after its ticket
//! has finished. The first waiter with no flush running becomes the leader: it notes the newest
//! ticket, flushes once, and wakes everyone whose ticket that flush covered. Writers that arrived
//! during the flush become the next group. Under load, one fsync acknowledges many writes; alone,
//! a writer pays exactly one fsync, as before.
//!
//! A failed flush is returned to the leader only; its followers are not told they are durable
//! and one of them leads the next attempt, so every writer either sees success after a flush that
//! covered it or an error.

use parking_lot::{Condvar, Mutex};

#[derive(Debug, Default)]
struct State {
    /// Tickets handed out: writes that completed in memory and wait to be durable.
    written: u64,
    /// Every ticket up to this one is durable.
    synced: u64,
    /// Whether a leader is flushing now.
    flushing: bool,
    /// How many flushes ran (for tests and metrics).
    flushes: u64,
}

/// The group-commit coordinator of one store.
#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    done: Condvar,
}

impl GroupCommit {
    /// Waits until a flush that began after this call has completed, leading one if nobody is.
    /// Call it after the write to be made durable has completed in memory.
    pub fn commit<E>(&self, flush: impl Fn() -> Result<(), E>) -> Result<(), E> {
        let mut s = self.state.lock();
        s.written += 1;
        let ticket = s.written;
        loop {
            if s.synced >= ticket {
                return Ok(());
            }
            if s.flushing {
                self.done.wait(&mut s);
                continue;
            }
            // Lead: every ticket handed out so far completed before this flush starts.
            s.flushing = true;
            let target = s.written;
            drop(s);
            let result = flush();
            s = self.state.lock();
            s.flushing = false;
            s.flushes += 1;
            if result.is_ok() {
                s.synced = s.synced.max(target);
            }
            self.done.notify_all();
            result?;
        }
    }

    /// How many flushes have run.
    pub fn flushes(&self) -> u64 {
        self.state.lock().flushes
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use super::*;

    #[test]
    fn concurrent_writers_share_flushes() {
        let gc = Arc::new(GroupCommit::default());
        let calls = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (gc, calls) = (gc.clone(), calls.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        gc.commit(|| {
                            calls.fetch_add(1, Ordering::Relaxed);
                            // An fsync's worth of time, so writers pile up behind the leader.
                            std::thread::sleep(Duration::from_millis(2));
                            Ok::<(), ()>(())
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let flushes = calls.load(Ordering::Relaxed);
        assert_eq!(flushes, gc.flushes());
        assert!(
            flushes < 400,
            "8×50 commits took {flushes} flushes: no grouping"
        );
        assert!(
            flushes >= 50,
            "each writer needs its own flush after each write"
        );
    }

    #[test]
    fn a_failed_flush_is_not_success() {
        let gc = GroupCommit::default();
        assert_eq!(gc.commit(|| Err("disk gone")), Err("disk gone"));
        // The next commit flushes again rather than trusting the failed one.
        let ran = AtomicU64::new(0);
        gc.commit(|| {
            ran.fetch_add(1, Ordering::Relaxed);
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(ran.load(Ordering::Relaxed), 1);
    }
}
