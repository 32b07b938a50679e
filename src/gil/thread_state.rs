//! The per-thread cache of thread states: one per (OS thread, interpreter).
//!
//! Interpreters are numbered by [`InterpIndex`]: the main interpreter is index 0 and each application
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
pub struct InterpIndex(pub usize);

/// The main interpreter, which serves `%{GLOBAL}`.
pub const MAIN_INTERP: InterpIndex = InterpIndex(0);

/// A cached state, and the generation of the interpreter registration it was made for.
#[derive(Clone, Copy)]
struct Cached {
    tstate: *mut ffi::PyThreadState,
    /// 0: none cached.
    generation: u64,
}

const NONE_CACHED: Cached = Cached { tstate: std::ptr::null_mut(), generation: 0 };

thread_local! {
    /// This thread's states, indexed by index. Raw pointers only: the engine is never unloaded,
    /// and the states are deleted by the interpreter's end, not by this thread's exit.
    static STATES: RefCell<Vec<Cached>> = const { RefCell::new(Vec::new()) };
}

/// Every state the cache made or adopted, per index (as addresses): bounded by threads x
/// interpreters, and emptied when an interpreter ends. The cache serves Apache's threads only
/// (requests, the child's start and stop), so these are the states an interpreter's end may
/// delete: by then their threads have stopped. Any other state of an interpreter belongs to a
/// thread the application or an extension started, which may still be running.
static OWNED: parking_lot::Mutex<Vec<Vec<usize>>> = parking_lot::Mutex::new(Vec::new());

fn own(index: InterpIndex, tstate: *mut ffi::PyThreadState) {
    let mut owned = OWNED.lock();
    if owned.len() <= index.0 {
        owned.resize(index.0 + 1, Vec::new());
    }
    owned[index.0].push(tstate as usize);
}

/// Thread states per index, for `mod_wsgi.process_metrics()` and the tests.
pub fn thread_state_counts() -> Vec<usize> {
    OWNED.lock().iter().map(Vec::len).collect()
}

/// Whether `tstate` is one the cache made or adopted for `index` (an Apache thread's).
pub fn is_cached(index: InterpIndex, tstate: *mut ffi::PyThreadState) -> bool {
    OWNED.lock().get(index.0).is_some_and(|states| states.contains(&(tstate as usize)))
}

/// The interpreter behind a index, and a generation number unique to this registration.
///
/// A index is reused when an interpreter ends (a group whose set-up failed): a state any
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

fn registered(index: InterpIndex) -> Registered {
    INTERPRETERS.read().get(index.0).copied().unwrap_or(UNREGISTERED)
}

/// Records that `index` is `interp` (called once per interpreter, by the group registry).
pub fn register_interpreter(index: InterpIndex, interp: *mut ffi::PyInterpreterState) {
    let generation = GENERATIONS.fetch_add(1, Ordering::Relaxed) + 1;
    let mut table = INTERPRETERS.write();
    if table.len() <= index.0 {
        table.resize(index.0 + 1, UNREGISTERED);
    }
    table[index.0] = Registered { interp: interp as usize, generation };
}

/// This thread's cache entry for `index`, the cache grown as needed.
fn with_entry<R>(index: InterpIndex, f: impl FnOnce(&mut Cached) -> R) -> R {
    STATES.with(|states| {
        let mut states = states.borrow_mut();
        if states.len() <= index.0 {
            states.resize(index.0 + 1, NONE_CACHED);
        }
        f(&mut states[index.0])
    })
}

/// Adopts the calling thread's current thread state as its state for `index` (used for the
/// state `Py_InitializeFromConfig` or `Py_NewInterpreter` created on this thread).
pub fn adopt_current(index: InterpIndex, tstate: *mut ffi::PyThreadState) {
    let generation = registered(index).generation;
    with_entry(index, |entry| *entry = Cached { tstate, generation });
    own(index, tstate);
}

/// Stops handing out states for an interpreter that is being ended (its states are deleted
/// by then, or left to it: the count goes back to zero). The index is free for the next
/// interpreter; states other threads may still cache for this one are never used again (see
/// [`Registered`]).
pub fn forget_interpreter(index: InterpIndex) {
    if let Some(states) = OWNED.lock().get_mut(index.0) {
        states.clear();
    }
    if let Some(entry) = INTERPRETERS.write().get_mut(index.0) {
        *entry = UNREGISTERED;
    }
    with_entry(index, |entry| *entry = NONE_CACHED);
}

/// This thread's state for `index`, created on first use (the main interpreter's first).
pub fn thread_state(index: InterpIndex) -> *mut ffi::PyThreadState {
    if index != MAIN_INTERP {
        thread_state(MAIN_INTERP);
    }
    let current = registered(index);
    assert!(current.interp != 0, "no interpreter registered for index {}", index.0);
    with_entry(index, |entry| {
        if entry.generation != current.generation {
            // None yet, or one made for an interpreter that has ended since (deleted with it).
            // SAFETY: current.interp is a live interpreter (registered, not yet forgotten);
            // PyThreadState_New does not need the GIL.
            let tstate = unsafe { ffi::PyThreadState_New(current.interp as *mut ffi::PyInterpreterState) };
            *entry = Cached { tstate, generation: current.generation };
            own(index, tstate);
        }
        entry.tstate
    })
}
