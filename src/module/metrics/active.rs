//! The requests running now, one entry per worker thread ("slot", as mod_wsgi numbers its
//! request threads): what a slow-request report and the in-flight part of a thread's busy
//! time are made from. Each slot has its own lock, taken briefly by its own thread at the
//! start and end of a request and by the reporter when it looks; no Python runs under it.

use std::sync::Mutex;
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// What is known of a running request, for reports about it.
#[derive(Clone, Default)]
pub struct Describe {
    pub method: Vec<u8>,
    pub scheme: Vec<u8>,
    pub hostname: Vec<u8>,
    pub script_name: Vec<u8>,
    pub path_info: Vec<u8>,
    pub protocol: Vec<u8>,
    pub peer_ip: Vec<u8>,
    pub user_agent: Vec<u8>,
    pub log_id: Vec<u8>,
    pub process_group: String,
    pub application_group: String,
}

/// A running request.
pub struct Running {
    pub began: Instant,
    /// Epoch seconds at `began`.
    pub began_epoch: f64,
    /// `pthread_self()` of its thread, for its Python stack.
    pub thread: u64,
    pub describe: Describe,
    /// Whether its slow-request line was logged.
    pub reported_slow: bool,
    /// Requests in flight when it started, itself included.
    pub active_at_start: u64,
}

/// Room for this many request threads at once (more than the wire's per-thread arrays hold:
/// a daemon may have thousands of threads, and mod_http2's workers come and go).
const TABLE: usize = 4096;

fn table() -> &'static [Mutex<Option<Box<Running>>>] {
    static TABLE_SLOTS: OnceLock<Vec<Mutex<Option<Box<Running>>>>> = OnceLock::new();
    TABLE_SLOTS.get_or_init(|| (0..TABLE).map(|_| Mutex::new(None)).collect())
}

/// Slots never taken start at NEXT; slots of threads that ended are in FREE.
static NEXT: AtomicUsize = AtomicUsize::new(0);
static FREE: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// How many threads have taken a slot (for `request_threads_started`).
static TAKEN: AtomicUsize = AtomicUsize::new(0);

/// A thread's slot, given back when the thread ends.
struct Held(Cell<Option<usize>>);

impl Drop for Held {
    fn drop(&mut self) {
        // Not while the process exits: prefork's exit runs thread-local destructors from its
        // signal handler, on a thread that may hold this very lock.
        if super::ending() {
            return;
        }
        if let Some(slot) = self.0.get() {
            // No request of this thread can be running: its entry is stale if any.
            super::lock(&table()[slot]).take();
            super::lock(&FREE).push(slot);
        }
    }
}

thread_local! {
    static SLOT: Held = const { Held(Cell::new(None)) };
}

/// The calling thread's slot, taken on its first request (the lowest free one, so that the
/// per-thread figures, which cover the first slots, describe live threads, see `super::MAX_SLOTS`); `None`
/// past [`TABLE`] threads at once (their requests are counted, but not seen running).
pub fn my_slot() -> Option<usize> {
    SLOT.try_with(|held| {
        if held.0.get().is_none() {
            let reused = {
                let mut free = super::lock(&FREE);
                free.sort_unstable_by(|a, b| b.cmp(a));
                free.pop()
            };
            let slot = reused.or_else(|| {
                let next = NEXT.fetch_add(1, Ordering::Relaxed);
                (next < TABLE).then_some(next)
            });
            if slot.is_some() {
                TAKEN.fetch_add(1, Ordering::Relaxed);
            }
            held.0.set(slot);
        }
        held.0.get()
    })
    .ok()
    .flatten()
}

/// How many worker threads have served a request.
pub fn threads_started() -> usize {
    TAKEN.load(Ordering::Relaxed)
}

/// How many slots have ever been used (the highest one plus one).
pub fn slots_used() -> usize {
    NEXT.load(Ordering::Relaxed).min(TABLE)
}

/// Marks `slot` running `running`; false (and nothing changed) when it already runs one: a
/// request handled inside another on its thread (a subrequest from an output filter) is not
/// tracked, and the outer one stays.
pub fn enter(slot: usize, running: Running) -> bool {
    let mut entry = super::lock(&table()[slot]);
    if entry.is_some() {
        return false;
    }
    *entry = Some(Box::new(running));
    true
}

pub fn leave(slot: usize) -> Option<Box<Running>> {
    super::lock(&table()[slot]).take()
}

/// Calls `f` on each running request (slot, entry), one slot locked at a time.
pub fn each(mut f: impl FnMut(usize, &mut Running)) {
    for (i, entry) in table().iter().enumerate() {
        if let Some(running) = super::lock(entry).as_mut() {
            f(i, running);
        }
    }
}
