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

use parking_lot::{Condvar, Mutex, MutexGuard};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// One waiting thread. Everything about it is read and written under the gate's one mutex
/// (`Admission::state`), and it sleeps on its own condvar with that mutex: one lock, so no
/// lock order to get wrong, and no wake-up can fall between a check and the wait.
struct Waiter {
    /// Set by the thread that hands it a slot. Atomic only to be `Sync`: accessed under
    /// the state mutex, so `Relaxed` suffices.
    granted: AtomicBool,
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
    /// The stall guard (`auto`): the most the limit may be raised to (0: no guard), when a
    /// slot was last given back, and when the queue last became non-empty (a stall is
    /// counted from the later: an idle spell before a burst is not one).
    stall_max: usize,
    last_release: Option<Instant>,
    queued_since: Option<Instant>,
}

/// How long the slots may all stay taken, with requests waiting and none given back, before
/// the stall guard raises the limit; and how often a waiter looks.
const STALL: Duration = Duration::from_secs(1);
const STALL_CHECK: Duration = Duration::from_millis(250);

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
                stall_max: 0,
                last_release: None,
                queued_since: None,
            }),
        }
    }

    /// Waits for a slot, FIFO, for at most `timeout`. Every wait is bounded: a caller that
    /// must not fail picks what to do when it is refused.
    pub fn acquire(&self, timeout: Duration) -> Result<(), Refused> {
        let mut s = self.state.lock();
        if s.closing {
            return Err(Refused::Closing);
        }
        if s.active < s.limit && s.queue.is_empty() {
            s.active += 1;
            s.peak_active = s.peak_active.max(s.active);
            return Ok(());
        }
        let waiter = Arc::new(Waiter { granted: AtomicBool::new(false), wake: Condvar::new() });
        if s.queue.is_empty() && s.stall_max > 0 {
            s.queued_since = Some(Instant::now());
        }
        s.queue.push_back(waiter.clone());
        s.peak_queued = s.peak_queued.max(s.queue.len());
        // A timeout too large to add (a queue timeout of centuries) waits a year at most.
        let now = Instant::now();
        let deadline = now.checked_add(timeout).unwrap_or(now + Duration::from_secs(365 * 86_400));
        loop {
            if waiter.granted.load(Ordering::Relaxed) {
                if s.closing {
                    // Granted, then the gate closed before this thread woke: the slot goes
                    // back and the request is refused all the same.
                    s.active -= 1;
                    return Err(Refused::Closing);
                }
                return Ok(());
            }
            let now = Instant::now();
            if s.closing || now >= deadline {
                s.queue.retain(|w| !Arc::ptr_eq(w, &waiter));
                return Err(if s.closing { Refused::Closing } else { Refused::TimedOut });
            }
            if let Some((from, to)) = Self::unstall(&mut s, now) {
                MutexGuard::unlocked(&mut s, || {
                    crate::interp::log_debug(&format!(
                        "WSGIPythonConcurrency auto: {from} -> {to} threads (no slot given back for {} s while requests waited)",
                        STALL.as_secs_f64()
                    ))
                });
                continue;
            }
            let wake_at = if s.stall_max > 0 { deadline.min(now + STALL_CHECK) } else { deadline };
            waiter.wake.wait_until(&mut s, wake_at);
        }
    }

    /// Guards `auto` against a stall: requests that hold their slots while they wait, with
    /// the GIL released, for something only a queued request can do (a long poll fed by
    /// another request, a lock, a call to another URL of the same site). No throughput is
    /// measured then, since nothing completes: so when every slot has stayed taken for
    /// [`STALL`] with requests waiting, the limit doubles (up to `stall_max`) and the queue
    /// moves. The tuner brings it down again if the extra threads only contend.
    pub fn guard_stalls(&self, max: usize) {
        let mut s = self.state.lock();
        s.stall_max = max;
        s.last_release = Some(Instant::now());
    }

    /// Raises the limit if the gate has stalled; the old and new limits.
    fn unstall(s: &mut State, now: Instant) -> Option<(usize, usize)> {
        if s.stall_max == 0 || s.limit >= s.stall_max || s.active < s.limit || s.queue.is_empty() {
            return None;
        }
        let since = match (s.last_release, s.queued_since) {
            (Some(a), Some(b)) => a.max(b),
            (a, b) => a.or(b).unwrap_or(now),
        };
        if now.duration_since(since) < STALL {
            return None;
        }
        let from = s.limit;
        s.limit = (from * 2).min(s.stall_max);
        // The next raise needs another stall of its own.
        s.last_release = Some(now);
        Self::admit_waiters(s);
        Some((from, s.limit))
    }

    /// Gives the slot back: to the longest-waiting thread if there is one.
    pub fn release(&self) {
        let mut s = self.state.lock();
        s.active = s.active.saturating_sub(1);
        if s.stall_max > 0 {
            s.last_release = Some(Instant::now());
        }
        Self::admit_waiters(&mut s);
    }

    /// Hands free slots to waiters, oldest first.
    fn admit_waiters(s: &mut State) {
        while s.active < s.limit {
            let Some(next) = s.queue.pop_front() else { break };
            s.active += 1;
            s.peak_active = s.peak_active.max(s.active);
            next.granted.store(true, Ordering::Relaxed);
            next.wake.notify_one();
        }
    }

    /// Changes the limit; a raise admits waiters at once (tests: the tuner uses
    /// [`Admission::replace_limit`]).
    #[cfg(test)]
    pub fn set_limit(&self, limit: usize) {
        let mut s = self.state.lock();
        s.limit = limit.max(1);
        Self::admit_waiters(&mut s);
    }

    /// Changes the limit from `from` to `to`, unless it changed meanwhile (the stall guard
    /// raised it since the tuner read it: that raise stands). Whether it changed it.
    pub fn replace_limit(&self, from: usize, to: usize) -> bool {
        let mut s = self.state.lock();
        if s.limit != from {
            return false;
        }
        s.limit = to.max(1);
        Self::admit_waiters(&mut s);
        true
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
    use std::sync::atomic::AtomicUsize;

    /// Long enough never to expire in these tests.
    const LONG: Duration = Duration::from_secs(600);

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
                        admission.acquire(LONG).unwrap();
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
        // Never more than the limit; reaching it depends on how the threads were scheduled
        // (a loaded machine may run them one after another).
        let peak = peak.load(Ordering::SeqCst);
        assert!((1..=3).contains(&peak), "peak {peak}");
        let c = admission.counts();
        assert_eq!((c.active, c.queued), (0, 0));
        assert!(c.peak_active <= 3 && c.peak_active >= peak, "peak_active {} (seen inside: {peak})", c.peak_active);
    }

    #[test]
    fn waiters_are_admitted_in_arrival_order() {
        let admission = Arc::new(Admission::new(1));
        admission.acquire(LONG).unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for i in 0..4 {
            let (mine, order) = (admission.clone(), order.clone());
            threads.push(std::thread::spawn(move || {
                mine.acquire(LONG).unwrap();
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
        admission.acquire(LONG).unwrap();
        assert_eq!(admission.acquire(Duration::from_millis(20)), Err(Refused::TimedOut));
        assert_eq!(admission.counts().queued, 0);
        let waiting = {
            let admission = admission.clone();
            std::thread::spawn(move || admission.acquire(LONG))
        };
        while admission.counts().queued == 0 {
            std::thread::yield_now();
        }
        admission.close();
        assert_eq!(waiting.join().unwrap(), Err(Refused::Closing));
        assert_eq!(admission.acquire(LONG), Err(Refused::Closing));
        admission.release();
        assert_eq!(admission.counts().active, 0);
    }

    /// xorshift: enough randomness for interleavings, without a dependency.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// Runs `f` on its own thread; a hang (a deadlock, a lost wake-up) fails the test instead
    /// of wedging the test run.
    fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        match rx.recv_timeout(limit) {
            Ok(value) => value,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("the admission gate hung for {limit:?}"),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("the stress run panicked (see above)"),
        }
    }

    /// Requests with short queue timeouts, slots given back and re-taken around "I/O" (as
    /// `pause`/`resume` do), limit changes (as `auto` makes) and a close, all racing: nothing
    /// hangs, never more than the largest limit is inside, and the counts end at zero.
    #[test]
    fn timeouts_releases_limit_changes_and_closes_race_without_hanging() {
        const MAX: usize = 4;
        within(Duration::from_secs(120), || {
            for round in 0..40u64 {
                let admission = Admission::new(2);
                let inside = AtomicUsize::new(0);
                let peak = AtomicUsize::new(0);
                let closed = AtomicBool::new(false);
                let enter = || {
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                };
                let leave = || {
                    inside.fetch_sub(1, Ordering::SeqCst);
                    admission.release();
                };
                std::thread::scope(|scope| {
                    for t in 0..12u64 {
                        let (admission, enter, leave) = (&admission, &enter, &leave);
                        scope.spawn(move || {
                            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (round << 8 | t));
                            loop {
                                match admission.acquire(Duration::from_micros(rng.below(1500))) {
                                    Err(Refused::Closing) => return,
                                    Err(Refused::TimedOut) => continue,
                                    Ok(()) => enter(),
                                }
                                std::thread::yield_now();
                                if rng.below(2) == 0 {
                                    // I/O: the slot goes back and is taken again, no timeout.
                                    leave();
                                    match admission.acquire(LONG) {
                                        Ok(()) => enter(),
                                        // Closing: the request finishes without a slot.
                                        Err(_) => continue,
                                    }
                                }
                                leave();
                            }
                        });
                    }
                    let (admission, closed) = (&admission, &closed);
                    scope.spawn(move || {
                        let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ round);
                        while !closed.load(Ordering::SeqCst) {
                            admission.set_limit(1 + rng.below(MAX as u64) as usize);
                            std::thread::sleep(Duration::from_micros(rng.below(300)));
                        }
                    });
                    std::thread::sleep(Duration::from_millis(20));
                    admission.close();
                    closed.store(true, Ordering::SeqCst);
                });
                let c = admission.counts();
                assert_eq!((c.active, c.queued), (0, 0), "round {round}: {c:?}");
                assert!(peak.load(Ordering::SeqCst) <= MAX, "round {round}: {} inside", peak.load(Ordering::SeqCst));
            }
        });
    }

    #[test]
    fn a_stall_raises_the_limit_when_guarded() {
        let started = Instant::now();
        let admission = Arc::new(Admission::new(1));
        admission.guard_stalls(4);
        // The one slot is held and never given back (a request waiting for another).
        admission.acquire(LONG).unwrap();
        let waiting = {
            let admission = admission.clone();
            std::thread::spawn(move || admission.acquire(LONG))
        };
        assert_eq!(within(Duration::from_secs(30), move || waiting.join().unwrap()), Ok(()));
        // Admitted by the guard: after a stall, not at once, and the limit doubled.
        assert!(started.elapsed() >= STALL, "{:?}", started.elapsed());
        let c = admission.counts();
        assert_eq!((c.limit, c.active), (2, 2));
    }

    #[test]
    fn an_idle_spell_before_a_burst_is_not_a_stall() {
        let admission = Admission::new(1);
        admission.guard_stalls(4);
        // Idle for longer than a stall, then a burst that queues briefly behind one slot.
        std::thread::sleep(STALL + STALL_CHECK);
        admission.acquire(LONG).unwrap();
        let admission = Arc::new(admission);
        let waiting = {
            let admission = admission.clone();
            std::thread::spawn(move || admission.acquire(LONG))
        };
        while admission.counts().queued == 0 {
            std::thread::yield_now();
        }
        std::thread::sleep(STALL_CHECK * 2);
        // Half a second of queueing is not a stall: the limit stands.
        assert_eq!(admission.counts().limit, 1);
        admission.release();
        assert_eq!(waiting.join().unwrap(), Ok(()));
    }

    #[test]
    fn without_the_guard_a_stall_waits_for_its_timeout() {
        let admission = Admission::new(1);
        admission.acquire(LONG).unwrap();
        assert_eq!(admission.acquire(STALL + STALL_CHECK * 2), Err(Refused::TimedOut));
        assert_eq!(admission.counts().limit, 1);
    }

    #[test]
    fn raising_the_limit_admits_waiters() {
        let admission = Arc::new(Admission::new(1));
        admission.acquire(LONG).unwrap();
        let waiting = {
            let admission = admission.clone();
            std::thread::spawn(move || admission.acquire(LONG))
        };
        while admission.counts().queued == 0 {
            std::thread::yield_now();
        }
        admission.set_limit(2);
        assert_eq!(waiting.join().unwrap(), Ok(()));
        assert_eq!(admission.counts().active, 2);
    }
}
