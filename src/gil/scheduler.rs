//! The scheduler of the shared GIL: one [`Admission`] gate, its configuration
//! (`WSGIPythonConcurrency`, `WSGIPythonQueueTimeout`) and, for `auto`, its [`Tuner`].
//!
//! A request enters with [`enter`], which returns a [`Ticket`]; dropping it (also on an
//! exception or a panic) gives the slot back. While the ticket's thread releases the GIL for
//! Apache's I/O, `guard::released` gives the slot back too and re-takes it (slot first, then
//! the GIL: a thread never holds the GIL while it waits for a slot).

use super::admission::{Admission, Counts, Refused};
use super::tuner::{Step, Tuner};
use parking_lot::Mutex;
use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How many threads may run Python at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Concurrency {
    /// No limit: every Apache thread competes for the GIL (mod_wsgi's behaviour).
    Unlimited,
    Fixed(usize),
    /// Adapted to the observed throughput, between 1 and the child's thread count.
    Auto,
}

struct Scheduler {
    mode: Concurrency,
    queue_timeout: Duration,
    admission: Admission,
    tuner: Option<Mutex<Tuner>>,
}

static SCHEDULER: OnceLock<Scheduler> = OnceLock::new();

thread_local! {
    /// Whether this thread holds a slot (a ticket is alive on it).
    static HOLDS_SLOT: Cell<bool> = const { Cell::new(false) };
}

/// Sets the scheduler up, once per process, before any request.
pub fn configure(mode: Concurrency, queue_timeout: Duration, threads: usize) {
    let threads = threads.max(1);
    let (initial, tuner) = match mode {
        Concurrency::Unlimited => (0, None),
        Concurrency::Fixed(n) => (n.max(1), None),
        Concurrency::Auto => {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            (cores.min(threads), Some(Mutex::new(Tuner::new(1, threads))))
        }
    };
    let _ = SCHEDULER.set(Scheduler { mode, queue_timeout, admission: Admission::new(initial), tuner });
}

fn scheduler() -> Option<&'static Scheduler> {
    SCHEDULER.get().filter(|s| s.mode != Concurrency::Unlimited)
}

/// A request's slot; dropping it gives the slot back.
pub struct Ticket {
    _not_send: std::marker::PhantomData<*mut ()>,
}

/// Waits for a slot for this request, at most the queue timeout.
pub fn enter() -> Result<Ticket, Refused> {
    if let Some(s) = scheduler() {
        s.admission.acquire(s.queue_timeout)?;
        HOLDS_SLOT.with(|h| h.set(true));
    }
    Ok(Ticket { _not_send: std::marker::PhantomData })
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let Some(s) = scheduler() else { return };
        if HOLDS_SLOT.with(|h| h.replace(false)) {
            s.admission.release();
        }
        if let Some(tuner) = &s.tuner {
            let counts = s.admission.counts();
            let step = tuner.lock().request_done(counts.limit, counts.queued > 0, Instant::now());
            if let Some(step) = step {
                s.admission.set_limit(step.to);
                log_step(&step, counts);
            }
        }
    }
}

fn log_step(step: &Step, counts: Counts) {
    crate::interp::log_debug(&format!(
        "WSGIPythonConcurrency auto: {} -> {} threads ({:.0} requests/s, {} queued)",
        step.from, step.to, step.rate, counts.queued
    ));
}

/// Gives this thread's slot back while it waits on I/O; `true` if it had one to give.
pub fn pause() -> bool {
    match scheduler() {
        Some(s) if HOLDS_SLOT.with(|h| h.replace(false)) => {
            s.admission.release();
            true
        }
        _ => false,
    }
}

/// Takes a slot again after [`pause`] returned `true`, waiting at most the queue timeout.
/// The request is under way and never fails here: refused (the process is closing, or the
/// slots stayed taken for the whole timeout), it goes on without a slot.
pub fn resume() {
    let Some(s) = scheduler() else { return };
    match s.admission.acquire(s.queue_timeout) {
        Ok(()) => HOLDS_SLOT.with(|h| h.set(true)),
        Err(Refused::Closing) => {}
        Err(Refused::TimedOut) => crate::interp::log_warning(&format!(
            "A request waited {} s to take its Python slot back after I/O; it goes on without one. Raise WSGIPythonConcurrency or WSGIPythonQueueTimeout, or find what holds the slots.",
            s.queue_timeout.as_secs_f64()
        )),
    }
}

/// Refuses every waiting and later request: the child is exiting.
pub fn close() {
    if let Some(s) = scheduler() {
        s.admission.close();
    }
}

/// The scheduler's state for `mod_wsgi.process_metrics()`.
pub struct Metrics {
    pub mode: &'static str,
    pub counts: Counts,
    pub queue_timeout: Duration,
}

pub fn metrics() -> Metrics {
    match SCHEDULER.get() {
        Some(s) => Metrics {
            mode: match s.mode {
                Concurrency::Unlimited => "off",
                Concurrency::Fixed(_) => "fixed",
                Concurrency::Auto => "auto",
            },
            counts: s.admission.counts(),
            queue_timeout: s.queue_timeout,
        },
        None => Metrics {
            mode: "off",
            counts: Counts { limit: 0, active: 0, queued: 0, peak_active: 0, peak_queued: 0 },
            queue_timeout: Duration::ZERO,
        },
    }
}
