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

/// The index of an interpreter in the per-thread caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Slot(pub usize);

/// The main interpreter, which serves `%{GLOBAL}`.
pub const MAIN_SLOT: Slot = Slot(0);

thread_local! {
    /// This thread's states, indexed by slot; null where none was created yet. Raw pointers
    /// only: the engine is never unloaded, and the states are deleted by the interpreter's end,
    /// not by this thread's exit.
    static STATES: RefCell<Vec<*mut ffi::PyThreadState>> = const { RefCell::new(Vec::new()) };
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

/// The interpreter behind each slot, registered when the interpreter is created.
static INTERPRETERS: parking_lot::RwLock<Vec<usize>> = parking_lot::RwLock::new(Vec::new());

/// Records that `slot` is `interp` (called once per interpreter, by the group registry).
pub fn register_interpreter(slot: Slot, interp: *mut ffi::PyInterpreterState) {
    let mut table = INTERPRETERS.write();
    if table.len() <= slot.0 {
        table.resize(slot.0 + 1, 0);
    }
    table[slot.0] = interp as usize;
}

/// Adopts the calling thread's current thread state as its state for `slot` (used for the
/// state `Py_InitializeFromConfig` or `Py_NewInterpreter` created on this thread).
pub fn adopt_current(slot: Slot, tstate: *mut ffi::PyThreadState) {
    STATES.with(|states| {
        let mut states = states.borrow_mut();
        if states.len() <= slot.0 {
            states.resize(slot.0 + 1, std::ptr::null_mut());
        }
        states[slot.0] = tstate;
    });
    count(slot, |n| *n += 1);
}

/// Stops handing out this thread's state for an interpreter that is being ended (its states
/// are deleted by then: the count goes back to zero).
pub fn forget_interpreter(slot: Slot) {
    count(slot, |n| *n = 0);
    STATES.with(|states| {
        if let Some(entry) = states.borrow_mut().get_mut(slot.0) {
            *entry = std::ptr::null_mut();
        }
    });
}

/// This thread's state for `slot`, created on first use (the main interpreter's first).
pub fn thread_state(slot: Slot) -> *mut ffi::PyThreadState {
    if slot != MAIN_SLOT {
        thread_state(MAIN_SLOT);
    }
    STATES.with(|states| {
        let mut states = states.borrow_mut();
        if states.len() <= slot.0 {
            states.resize(slot.0 + 1, std::ptr::null_mut());
        }
        if states[slot.0].is_null() {
            let interp = INTERPRETERS.read().get(slot.0).copied().unwrap_or(0) as *mut ffi::PyInterpreterState;
            assert!(!interp.is_null(), "no interpreter registered for slot {}", slot.0);
            // SAFETY: interp is a live interpreter; PyThreadState_New does not need the GIL.
            states[slot.0] = unsafe { ffi::PyThreadState_New(interp) };
            count(slot, |n| *n += 1);
        }
        states[slot.0]
    })
}
