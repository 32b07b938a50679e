//! The GIL scheduler: one admission [`Gate`] per GIL (the shared GIL's, and one for each
//! interpreter with its own GIL), with one configuration (`WSGIPythonConcurrency`,
//! `WSGIPythonQueueTimeout`); for `auto`, each gate has its own [`Tuner`], since each GIL has
//! its own load.
//!
//! A request enters with [`enter`] (the shared GIL) or [`enter_gate`] (its group's own GIL),
//! which return a [`Ticket`]; dropping it (also on an exception or a panic) gives the slot
//! back. While the ticket's thread releases the GIL for Apache's I/O, `guard::released` gives
//! the slot back too and re-takes it (slot first, then the GIL: a thread never holds the GIL
//! while it waits for a slot).

use super::admission::{Admission, Counts, Refused};
use super::tuner::{Step, Tuner};
use parking_lot::Mutex;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Apache's threads in this process: the most a gate can admit.
    threads: usize,
    shared: Gate,
    /// The gates of own-GIL interpreters, for [`close`] (touched when a group is created), and
    /// whether [`close`] ran (a gate made after it is closed at once).
    own: Mutex<(Vec<&'static Gate>, bool)>,
}

/// The slots of one GIL.
pub struct Gate {
    admission: Admission,
    tuner: Option<Mutex<Tuner>>,
    /// CPU time (ns) that threads spent holding this gate's slots since the tuner's last
    /// window: how busy the GIL behind it was (`auto` only; see `tuner.rs`).
    busy_ns: AtomicU64,
}

impl Gate {
    /// Its slots now, for `mod_wsgi.process_metrics()`.
    pub fn counts(&self) -> Counts {
        self.admission.counts()
    }

    fn new(mode: Concurrency, threads: usize) -> Gate {
        let (initial, tuner) = match mode {
            Concurrency::Unlimited => (0, None),
            Concurrency::Fixed(n) => (n.max(1), None),
            Concurrency::Auto => {
                let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
                (cores.min(threads), Some(Mutex::new(Tuner::new(1, threads))))
            }
        };
        let admission = Admission::new(initial);
        if tuner.is_some() {
            admission.guard_stalls(threads);
        }
        Gate { admission, tuner, busy_ns: AtomicU64::new(0) }
    }

    /// This thread took one of the gate's slots: its CPU clock starts counting for the gate.
    fn slot_taken(&self) {
        if self.tuner.is_some() {
            SLOT_SINCE.with(|since| since.set(thread_cpu_ns()));
        }
    }

    /// This thread gave its slot back: the CPU it used meanwhile counts as the GIL's work.
    fn slot_given_back(&self) {
        if self.tuner.is_some() {
            let used = thread_cpu_ns().saturating_sub(SLOT_SINCE.with(Cell::get));
            self.busy_ns.fetch_add(used, Ordering::Relaxed);
        }
    }
}

/// The calling thread's CPU time, in nanoseconds (0 if the clock cannot be read).
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec, which lives on this stack for the call.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

static SCHEDULER: OnceLock<Scheduler> = OnceLock::new();

thread_local! {
    /// The gate whose slot this thread holds (a ticket is alive on it), if any.
    static HOLDS_SLOT: Cell<Option<&'static Gate>> = const { Cell::new(None) };
    /// This thread's CPU clock when it took the slot it holds (`auto` only).
    static SLOT_SINCE: Cell<u64> = const { Cell::new(0) };
}

/// Sets the scheduler up, once per process, before any request.
pub fn configure(mode: Concurrency, queue_timeout: Duration, threads: usize) {
    let threads = threads.max(1);
    // One thread per process (prefork, a daemon with threads=1) cannot contend with itself:
    // `auto` has nothing to decide there, and no gate is set up.
    let mode = if threads == 1 && mode == Concurrency::Auto { Concurrency::Unlimited } else { mode };
    let shared = Gate::new(mode, threads);
    let _ = SCHEDULER.set(Scheduler { mode, queue_timeout, threads, shared, own: Mutex::new((Vec::new(), false)) });
}

fn scheduler() -> Option<&'static Scheduler> {
    SCHEDULER.get().filter(|s| s.mode != Concurrency::Unlimited)
}

/// A new gate for an interpreter with its own GIL, kept for the life of the process; `None`
/// when the scheduler is off (`WSGIPythonConcurrency off`).
pub fn own_gate() -> Option<&'static Gate> {
    let s = scheduler()?;
    let gate: &'static Gate = Box::leak(Box::new(Gate::new(s.mode, s.threads)));
    let mut own = s.own.lock();
    if own.1 {
        gate.admission.close();
    }
    own.0.push(gate);
    Some(gate)
}

/// A request's slot; dropping it gives the slot back.
pub struct Ticket {
    gate: Option<&'static Gate>,
    _not_send: std::marker::PhantomData<*mut ()>,
}

/// Waits for a slot of the shared GIL for this request, at most the queue timeout.
pub fn enter() -> Result<Ticket, Refused> {
    enter_gate(scheduler().map(|s| &s.shared))
}

/// Waits for a slot of `gate` (an own GIL's, from [`own_gate`]; `None`: no gate), at most the
/// queue timeout.
pub fn enter_gate(gate: Option<&'static Gate>) -> Result<Ticket, Refused> {
    if let (Some(s), Some(gate)) = (scheduler(), gate) {
        debug_assert!(HOLDS_SLOT.with(|h| h.get()).is_none(), "a second slot taken on one thread without pausing the first");
        super::wait::timed(|| gate.admission.acquire(s.queue_timeout))?;
        HOLDS_SLOT.with(|h| h.set(Some(gate)));
        gate.slot_taken();
    }
    Ok(Ticket { gate, _not_send: std::marker::PhantomData })
}

impl Ticket {
    /// Gives the slot back unused (the request turned out to need another GIL's): not a
    /// finished request for the gate's tuner.
    pub fn unused(mut self) {
        self.release();
        self.gate = None;
    }

    /// Releases this ticket's slot if this thread holds it (not if paused for I/O).
    fn release(&self) {
        let Some(gate) = self.gate else { return };
        let held = HOLDS_SLOT.with(|h| h.get());
        if held.is_some_and(|held| std::ptr::eq(held, gate)) {
            HOLDS_SLOT.with(|h| h.set(None));
            gate.slot_given_back();
            gate.admission.release();
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let Some(gate) = self.gate else { return };
        self.release();
        if let Some(tuner) = &gate.tuner {
            let counts = gate.admission.counts();
            let step = tuner.lock().request_done(counts.limit, counts.queued > 0, Instant::now(), &gate.busy_ns);
            // Unless the stall guard raised the limit meanwhile (the tuner sees it next time).
            if let Some(step) = step.filter(|step| gate.admission.replace_limit(step.from, step.to)) {
                log_step(&step, counts);
            }
        }
    }
}

fn log_step(step: &Step, counts: Counts) {
    crate::interp::log_debug(&format!(
        "WSGIPythonConcurrency auto: {} -> {} threads ({:.0} requests/s, GIL busy {:.0}%, {} queued)",
        step.from,
        step.to,
        step.rate,
        step.busy * 100.0,
        counts.queued
    ));
}

/// Gives this thread's slot back while it waits on I/O; the gate it came from, if it had one.
pub fn pause() -> Option<&'static Gate> {
    let gate = HOLDS_SLOT.with(|h| h.take())?;
    gate.slot_given_back();
    gate.admission.release();
    Some(gate)
}

/// Takes a slot of `gate` again after [`pause`], waiting at most the queue timeout. The
/// request is under way and never fails here: refused (the process is closing, or the slots
/// stayed taken for the whole timeout), it goes on without a slot.
pub fn resume(gate: &'static Gate) {
    let Some(s) = scheduler() else { return };
    match gate.admission.acquire(s.queue_timeout) {
        Ok(()) => {
            HOLDS_SLOT.with(|h| h.set(Some(gate)));
            gate.slot_taken();
        }
        Err(Refused::Closing) => {}
        Err(Refused::TimedOut) => crate::interp::log_warning(&format!(
            "A request waited {} s to take its Python slot back after I/O; it goes on without one. Raise WSGIPythonConcurrency or WSGIPythonQueueTimeout, or find what holds the slots.",
            s.queue_timeout.as_secs_f64()
        )),
    }
}

/// Refuses every waiting and later request, at every gate: the child is exiting.
pub fn close() {
    if let Some(s) = scheduler() {
        s.shared.admission.close();
        let mut own = s.own.lock();
        own.1 = true;
        for gate in own.0.iter() {
            gate.admission.close();
        }
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
            counts: s.shared.admission.counts(),
            queue_timeout: s.queue_timeout,
        },
        None => {
            Metrics { mode: "off", counts: Counts { limit: 0, active: 0, queued: 0, peak_active: 0, peak_queued: 0 }, queue_timeout: Duration::ZERO }
        }
    }
}
