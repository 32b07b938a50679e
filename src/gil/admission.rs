//! Admission control for a GIL: at most N Apache threads run Python at once; the others
//! wait here, in FIFO order, holding neither the GIL nor a thread state, and are woken in
//! turn.
//!
//! Without it, every Apache thread with a request competes for the GIL: with 32 threads in
//! one child, each switch interval wakes them all and most of the process's time goes to
//! handing the GIL around. A thread holds its slot from the start of a request to its end,
//! and gives it back whenever our code releases the GIL for Apache's I/O (see `guard.rs`).
//! The limit is fixed (`WSGIPythonConcurrency N`) or adapted to the throughput it yields
//! (`auto`, see `tuner.rs`).

use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a thread was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// It waited longer than the queue timeout.
    TimedOut,
    /// The process is shutting down.
    Closing,
}

/// One waiting thread: granted by the thread that passes it its slot.
struct Waiter {
    granted: Mutex<bool>,
    wake: Condvar,
}

struct State {
    limit: usize,
    active: usize,
    queue: VecDeque<Arc<Waiter>>,
    closing: bool,
    /// Most threads ever inside at once, and most ever queued (for tests and metrics).
    peak_active: usize,
    peak_queued: usize,
}

pub struct Admission {
    state: Mutex<State>,
}

/// A snapshot for metrics and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    pub limit: usize,
    pub active: usize,
    pub queued: usize,
    pub peak_active: usize,
    pub peak_queued: usize,
}

impl Admission {
    /// `limit` 0 means no limit.
    pub const fn new(limit: usize) -> Admission {
        Admission {
            state: Mutex::new(State {
                limit: if limit == 0 { usize::MAX } else { limit },
                active: 0,
                queue: VecDeque::new(),
                closing: false,
                peak_active: 0,
                peak_queued: 0,
            }),
        }
    }

    /// Waits for a slot, FIFO, for at most `timeout` (`None`: as long as it takes).
    pub fn acquire(&self, timeout: Option<Duration>) -> Result<(), Refused> {
        let waiter = {
            let mut s = self.state.lock();
            if s.closing {
                return Err(Refused::Closing);
            }
            if s.active < s.limit && s.queue.is_empty() {
                s.active += 1;
                s.peak_active = s.peak_active.max(s.active);
                return Ok(());
            }
            let waiter = Arc::new(Waiter { granted: Mutex::new(false), wake: Condvar::new() });
            s.queue.push_back(waiter.clone());
            s.peak_queued = s.peak_queued.max(s.queue.len());
            waiter
        };
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut granted = waiter.granted.lock();
        while !*granted {
            let timed_out = match deadline {
                Some(deadline) => waiter.wake.wait_until(&mut granted, deadline).timed_out(),
                None => {
                    waiter.wake.wait(&mut granted);
                    false
                }
            };
            if *granted {
                break;
            }
            let closing = self.state.lock().closing;
            if timed_out || closing {
                drop(granted);
                let mut s = self.state.lock();
                // Granted between the wake-up and this lock: the slot is ours after all.
                if *waiter.granted.lock() {
                    return if s.closing { Err(self.give_back(&mut s)) } else { Ok(()) };
                }
                s.queue.retain(|w| !Arc::ptr_eq(w, &waiter));
                return Err(if s.closing { Refused::Closing } else { Refused::TimedOut });
            }
        }
        Ok(())
    }

    /// Returns a slot granted during shutdown and reports the refusal.
    fn give_back(&self, s: &mut State) -> Refused {
        s.active -= 1;
        Refused::Closing
    }

    /// Gives the slot back: to the longest-waiting thread if there is one.
    pub fn release(&self) {
        let mut s = self.state.lock();
        s.active = s.active.saturating_sub(1);
        self.admit_waiters(&mut s);
    }

    /// Hands free slots to waiters, oldest first.
    fn admit_waiters(&self, s: &mut State) {
        while s.active < s.limit {
            let Some(next) = s.queue.pop_front() else { break };
            s.active += 1;
            s.peak_active = s.peak_active.max(s.active);
            *next.granted.lock() = true;
            next.wake.notify_one();
        }
    }

    /// Changes the limit (`auto` tuning); a raise admits waiters at once.
    pub fn set_limit(&self, limit: usize) {
        let mut s = self.state.lock();
        s.limit = limit.max(1);
        self.admit_waiters(&mut s);
    }

    /// Refuses every waiter and every later request (the child is exiting).
    pub fn close(&self) {
        let mut s = self.state.lock();
        s.closing = true;
        for waiter in s.queue.drain(..) {
            waiter.wake.notify_one();
        }
    }

    pub fn counts(&self) -> Counts {
        let s = self.state.lock();
        Counts {
            limit: if s.limit == usize::MAX { 0 } else { s.limit },
            active: s.active,
            queued: s.queue.len(),
            peak_active: s.peak_active,
            peak_queued: s.peak_queued,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn never_more_than_the_limit_inside() {
        let admission = Arc::new(Admission::new(3));
        let inside = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let (admission, inside, peak) = (admission.clone(), inside.clone(), peak.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        admission.acquire(None).unwrap();
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                        admission.release();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 3);
        let c = admission.counts();
        assert_eq!((c.active, c.queued, c.peak_active), (0, 0, 3));
    }

    #[test]
    fn waiters_are_admitted_in_arrival_order() {
        let admission = Arc::new(Admission::new(1));
        admission.acquire(None).unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for i in 0..4 {
            let (mine, order) = (admission.clone(), order.clone());
            threads.push(std::thread::spawn(move || {
                mine.acquire(None).unwrap();
                order.lock().push(i);
                mine.release();
            }));
            // Let each thread queue before the next one arrives.
            while admission.counts().queued < i + 1 {
                std::thread::yield_now();
            }
        }
        admission.release();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*order.lock(), [0, 1, 2, 3]);
    }

    #[test]
    fn timeout_and_close_refuse_and_leave_no_trace() {
        let admission = Arc::new(Admission::new(1));
        admission.acquire(None).unwrap();
        assert_eq!(admission.acquire(Some(Duration::from_millis(20))), Err(Refused::TimedOut));
        assert_eq!(admission.counts().queued, 0);
        let waiting = {
            let admission = admission.clone();
            std::thread::spawn(move || admission.acquire(None))
        };
        while admission.counts().queued == 0 {
            std::thread::yield_now();
        }
        admission.close();
        assert_eq!(waiting.join().unwrap(), Err(Refused::Closing));
        assert_eq!(admission.acquire(None), Err(Refused::Closing));
        admission.release();
        assert_eq!(admission.counts().active, 0);
    }

    #[test]
    fn raising_the_limit_admits_waiters() {
        let admission = Arc::new(Admission::new(1));
        admission.acquire(None).unwrap();
        let waiting = {
            let admission = admission.clone();
            std::thread::spawn(move || admission.acquire(None))
        };
        while admission.counts().queued == 0 {
            std::thread::yield_now();
        }
        admission.set_limit(2);
        assert_eq!(waiting.join().unwrap(), Ok(()));
        assert_eq!(admission.counts().active, 2);
    }
}
