//! The per-thread cache of thread states: one per (OS thread, interpreter).
//!
//! Interpreters are numbered by [`Slot`]: the main interpreter is slot 0 and each application
//! group gets the next free number, so the cache is a small vector per thread (bounded by
//! threads x groups). The first thread state any OS thread gets is always its main-interpreter
//! one: CPython binds the first state created on a thread to `PyGILState_*` (see CPython's
//! `_PyGILState_NoteThreadState`), and C extensions running in `%{GLOBAL}` rely on that state
//! being the main interpreter's, even on a thread that has served a named group before.

use crate::pyffi as ffi;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

/// The index of an interpreter in the per-thread caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Slot(pub usize);

/// The main interpreter, which serves `%{GLOBAL}`.
pub const MAIN_SLOT: Slot = Slot(0);

/// A cached state, and the generation of the interpreter registration it was made for.
#[derive(Clone, Copy)]
struct Cached {
    tstate: *mut ffi::PyThreadState,
    /// 0: none cached.
    generation: u64,
}

const NONE_CACHED: Cached = Cached { tstate: std::ptr::null_mut(), generation: 0 };

thread_local! {
    /// This thread's states, indexed by slot. Raw pointers only: the engine is never unloaded,
    /// and the states are deleted by the interpreter's end, not by this thread's exit.
    static STATES: RefCell<Vec<Cached>> = const { RefCell::new(Vec::new()) };
}

/// How many thread states exist per slot (all threads together): bounded by threads x
/// interpreters, and back to zero when an interpreter ends.
static COUNTS: parking_lot::Mutex<Vec<usize>> = parking_lot::Mutex::new(Vec::new());

fn count(slot: Slot, change: impl FnOnce(&mut usize)) {
    let mut counts = COUNTS.lock();
    if counts.len() <= slot.0 {
        counts.resize(slot.0 + 1, 0);
    }
    change(&mut counts[slot.0]);
}

/// Thread states per slot, for `mod_wsgi.process_metrics()` and the tests.
pub fn thread_state_counts() -> Vec<usize> {
    COUNTS.lock().clone()
}

/// The interpreter behind a slot, and a generation number unique to this registration.
///
/// A slot is reused when an interpreter ends (a group whose set-up failed): a state any
/// thread cached for the old interpreter carries the old generation, so it is never handed
/// out for the new one, even if the new interpreter happens to get the old one's address.
#[derive(Clone, Copy)]
struct Registered {
    interp: usize,
    generation: u64,
}

const UNREGISTERED: Registered = Registered { interp: 0, generation: 0 };

static INTERPRETERS: parking_lot::RwLock<Vec<Registered>> = parking_lot::RwLock::new(Vec::new());
static GENERATIONS: AtomicU64 = AtomicU64::new(0);

fn registered(slot: Slot) -> Registered {
    INTERPRETERS.read().get(slot.0).copied().unwrap_or(UNREGISTERED)
}

/// Records that `slot` is `interp` (called once per interpreter, by the group registry).
pub fn register_interpreter(slot: Slot, interp: *mut ffi::PyInterpreterState) {
    let generation = GENERATIONS.fetch_add(1, Ordering::Relaxed) + 1;
    let mut table = INTERPRETERS.write();
    if table.len() <= slot.0 {
        table.resize(slot.0 + 1, UNREGISTERED);
    }
    table[slot.0] = Registered { interp: interp as usize, generation };
}

/// This thread's cache entry for `slot`, the cache grown as needed.
fn with_entry<R>(slot: Slot, f: impl FnOnce(&mut Cached) -> R) -> R {
    STATES.with(|states| {
        let mut states = states.borrow_mut();
        if states.len() <= slot.0 {
            states.resize(slot.0 + 1, NONE_CACHED);
        }
        f(&mut states[slot.0])
    })
}

/// Adopts the calling thread's current thread state as its state for `slot` (used for the
/// state `Py_InitializeFromConfig` or `Py_NewInterpreter` created on this thread).
pub fn adopt_current(slot: Slot, tstate: *mut ffi::PyThreadState) {
    let generation = registered(slot).generation;
    with_entry(slot, |entry| *entry = Cached { tstate, generation });
    count(slot, |n| *n += 1);
}

/// Stops handing out states for an interpreter that is being ended (its states are deleted
/// by then: the count goes back to zero). The slot is free for the next interpreter; states
/// other threads may still cache for this one are never used again (see [`Registered`]).
pub fn forget_interpreter(slot: Slot) {
    count(slot, |n| *n = 0);
    if let Some(entry) = INTERPRETERS.write().get_mut(slot.0) {
        *entry = UNREGISTERED;
    }
    with_entry(slot, |entry| *entry = NONE_CACHED);
}

/// This thread's state for `slot`, created on first use (the main interpreter's first).
pub fn thread_state(slot: Slot) -> *mut ffi::PyThreadState {
    if slot != MAIN_SLOT {
        thread_state(MAIN_SLOT);
    }
    let current = registered(slot);
    assert!(current.interp != 0, "no interpreter registered for slot {}", slot.0);
    with_entry(slot, |entry| {
        if entry.generation != current.generation {
            // None yet, or one made for an interpreter that has ended since (deleted with it).
            // SAFETY: current.interp is a live interpreter (registered, not yet forgotten);
            // PyThreadState_New does not need the GIL.
            let tstate = unsafe { ffi::PyThreadState_New(current.interp as *mut ffi::PyInterpreterState) };
            *entry = Cached { tstate, generation: current.generation };
            count(slot, |n| *n += 1);
        }
        entry.tstate
    })
}
