//! The requests running now, one entry per worker thread ("slot", as mod_wsgi numbers its
//! request threads): what a slow-request report and the in-flight part of a thread's busy
//! time are made from. Each slot has its own lock, taken briefly by its own thread at the
//! start and end of a request and by the reporter when it looks; no Python runs under it.

use super::MAX_SLOTS;
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
}

fn table() -> &'static [Mutex<Option<Running>>] {
    static TABLE: OnceLock<Vec<Mutex<Option<Running>>>> = OnceLock::new();
    TABLE.get_or_init(|| (0..MAX_SLOTS).map(|_| Mutex::new(None)).collect())
}

/// How many slots threads have taken.
static TAKEN: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's slot plus one (0: none taken yet).
    static SLOT: Cell<usize> = const { Cell::new(0) };
}

/// The calling thread's slot, taken on its first request; `None` past [`MAX_SLOTS`] threads
/// (their requests are counted, but not per thread).
pub fn my_slot() -> Option<usize> {
    SLOT.with(|slot| {
        if slot.get() == 0 {
            let taken = TAKEN.fetch_add(1, Ordering::Relaxed);
            slot.set(if taken < MAX_SLOTS { taken + 1 } else { usize::MAX });
        }
        match slot.get() {
            usize::MAX => None,
            n => Some(n - 1),
        }
    })
}

/// How many worker threads have served a request.
pub fn threads_started() -> usize {
    TAKEN.load(Ordering::Relaxed).min(MAX_SLOTS)
}

pub fn enter(slot: usize, running: Running) {
    *super::lock(&table()[slot]) = Some(running);
}

pub fn leave(slot: usize) -> Option<Running> {
    super::lock(&table()[slot]).take()
}

/// Calls `f` on each running request (slot, entry), one slot locked at a time.
pub fn each(mut f: impl FnMut(usize, &mut Running)) {
    for (i, entry) in table().iter().enumerate() {
        if let Some(running) = super::lock(&entry).as_mut() {
            f(i, running);
        }
    }
}
