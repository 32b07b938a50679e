//! The per-thread cache of thread states: one per (OS thread, interpreter).
//!
//! Interpreters are numbered by [`InterpIndex`]: the main interpreter is index 0 and each application
//! group gets the next free number, so the cache is a small vector per thread (bounded by
//! threads x groups). The first thread state any OS thread gets is always its main-interpreter
//! one: up to 3.11 CPython binds the first state created on a thread to `PyGILState_*` for
//! good (see CPython's `_PyGILState_NoteThreadState`), and C extensions running in `%{GLOBAL}`
//! rely on that state being the main interpreter's, even on a thread that has served a named
//! group before. (From 3.12 the binding follows the state a thread made current last.)

use super::gauges;
use crate::pyffi as ffi;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

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

/// This thread's states, indexed by index. When the thread ends while the process goes on
/// (mod_http2 retires idle workers, a daemon's pool shrinks), its states are deleted with it
/// (see [`reap`]); otherwise a child serving h2 would collect one state per retired thread
/// and group until it exits.
struct ThreadStates(RefCell<Vec<Cached>>);

impl Drop for ThreadStates {
    fn drop(&mut self) {
        reap(std::mem::take(self.0.get_mut()));
    }
}

thread_local! {
    static STATES: ThreadStates = const { ThreadStates(RefCell::new(Vec::new())) };
}

/// Every state the cache made or adopted, per index (as addresses): bounded by threads x
/// interpreters, and emptied when an interpreter ends. The cache serves Apache's threads only
/// (requests, the child's start and stop), so these are the states an interpreter's end may
/// delete: by then their threads have stopped. Any other state of an interpreter belongs to a
/// thread the application or an extension started, which may still be running.
/// Each change of an index's list stores its length in the index's gauge (under this lock),
/// for [`thread_state_count`].
static OWNED: parking_lot::Mutex<Vec<Vec<usize>>> = parking_lot::Mutex::new(Vec::new());

/// Forgets `tstate` (one entry) before it is deleted, unless it is the last state the cache
/// owns in `index`: then it is kept, and so is the interpreter's thread list non-empty (see
/// [`reap`]). Called with the interpreter's GIL held, so two threads ending at once cannot
/// both see the other's state as the one that stays.
fn disown_unless_last(index: InterpIndex, tstate: *mut ffi::PyThreadState) -> bool {
    let mut owned = OWNED.lock();
    let Some(states) = owned.get_mut(index.0) else { return false };
    match states.iter().position(|&owned| owned == tstate as usize) {
        Some(i) if states.len() > 1 => {
            states.swap_remove(i);
            gauges::set_thread_states(index, states.len());
            true
        }
        _ => false,
    }
}

fn own(index: InterpIndex, tstate: *mut ffi::PyThreadState) {
    let mut owned = OWNED.lock();
    if owned.len() <= index.0 {
        owned.resize(index.0 + 1, Vec::new());
    }
    owned[index.0].push(tstate as usize);
    gauges::set_thread_states(index, owned[index.0].len());
}

/// Thread states per index, for `mod_wsgi.process_metrics()` and the tests.
pub fn thread_state_counts() -> Vec<usize> {
    OWNED.lock().iter().map(Vec::len).collect()
}

/// Thread states of one index, for the figures each request reports: read from its gauge,
/// without the lock (under it only for an index past the gauges).
pub fn thread_state_count(index: InterpIndex) -> usize {
    gauges::thread_states(index).unwrap_or_else(|| OWNED.lock().get(index.0).map_or(0, Vec::len))
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

/// The interpreter registered as `index` (null when none is).
pub fn interpreter_of(index: InterpIndex) -> *mut ffi::PyInterpreterState {
    registered(index).interp as *mut ffi::PyInterpreterState
}

/// Records that `index` is `interp` (called once per interpreter, by the group registry).
pub fn register_interpreter(index: InterpIndex, interp: *mut ffi::PyInterpreterState) {
    let generation = GENERATIONS.fetch_add(1, Ordering::Relaxed) + 1;
    let mut table = INTERPRETERS.write();
    if table.len() <= index.0 {
        table.resize(index.0 + 1, UNREGISTERED);
    }
    table[index.0] = Registered { interp: interp as usize, generation };
    drop(table);
    // The index may have served an interpreter that ended: its figures are not this one's.
    let owned = OWNED.lock();
    gauges::reset(index);
    gauges::set_thread_states(index, owned.get(index.0).map_or(0, Vec::len));
}

/// This thread's cache entry for `index`, the cache grown as needed.
fn with_entry<R>(index: InterpIndex, f: impl FnOnce(&mut Cached) -> R) -> R {
    STATES.with(|states| {
        let mut states = states.0.borrow_mut();
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
    {
        let mut owned = OWNED.lock();
        if let Some(states) = owned.get_mut(index.0) {
            states.clear();
        }
        gauges::reset(index);
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

/// Set when the child (or daemon) starts ending its interpreters: from then on a thread that
/// ends leaves its states to that (see [`reap`]).
static PROCESS_ENDING: AtomicBool = AtomicBool::new(false);
/// Threads deleting their states right now; the process's end waits for them.
static REAPING: AtomicUsize = AtomicUsize::new(0);

/// Deletes the states of a thread that is ending, from that thread's TLS destructor.
///
/// Deleting a state on its own thread is the only safe way: from 3.12 `PyThreadState_Delete`
/// of a state the `PyGILState` API has bound (the state a thread made current last) clears the
/// *calling* thread's binding. Each state is entered, cleared (which may run Python:
/// `threading.local` values, and on 3.9 to 3.12 releasing `threading`'s lock for the thread
/// that first imported it) and deleted with `PyThreadState_DeleteCurrent`, which gives the
/// GIL back. Sub-interpreter states go first, the main one last.
///
/// The last state the cache owns in an interpreter is kept until the interpreter ends, so that
/// its thread list never runs empty while it lives: 3.11 and 3.12 hand out the interpreter's
/// built-in first state again when the list is empty, and abort ("thread state already
/// initialized") if that state was deleted before. Threads the application starts do not
/// count: they end on their own.
///
/// Skipped on the process's main thread (its TLS destructors run inside `exit()`, wherever
/// that was called from, even from prefork's SIGTERM handler in the middle of Python), on a
/// thread that holds the GIL (a library calling `exit()` from a request), before Python is
/// initialised or after it is finalised, and once the process has started to end
/// ([`process_ending`]): the end deletes what is left.
fn reap(states: Vec<Cached>) {
    if states.iter().all(|cached| cached.generation == 0) || is_main_thread() || super::guard::held_here() {
        return;
    }
    // Dekker-style hand-shake with stop_reaping(): either it sees this thread counted, or
    // this thread sees the flag (both SeqCst).
    REAPING.fetch_add(1, Ordering::SeqCst);
    // SAFETY: Py_IsInitialized only reads the runtime's flag.
    if !PROCESS_ENDING.load(Ordering::SeqCst) && unsafe { ffi::Py_IsInitialized() } != 0 {
        for (i, cached) in states.iter().enumerate().rev() {
            let index = InterpIndex(i);
            if cached.generation == 0 || registered(index).generation != cached.generation {
                continue; // none, or its interpreter ended (and deleted it) since
            }
            // SAFETY: the interpreter is live: registered with this state's generation, and
            // an interpreter ends only when its set-up fails (on the thread that created it,
            // before any other thread has a state in it) or after stop_reaping() waited for
            // this loop. The state is this thread's, and this thread holds no GIL (checked
            // above), so it is not current. It is entered, then either left as it was or
            // cleared and deleted as the current state, which releases the GIL.
            unsafe {
                ffi::PyEval_RestoreThread(cached.tstate);
                if disown_unless_last(index, cached.tstate) {
                    ffi::PyThreadState_Clear(cached.tstate);
                    ffi::PyThreadState_DeleteCurrent();
                } else {
                    ffi::PyEval_SaveThread();
                }
            }
        }
    }
    REAPING.fetch_sub(1, Ordering::SeqCst);
}

/// The process has begun to end (the MPM is stopping this child): threads that end from now
/// on leave their states to the end. A single atomic store, safe in a signal handler.
pub fn process_ending() {
    PROCESS_ENDING.store(true, Ordering::SeqCst);
}

/// Threads that released the GIL around an error-log write from Python without a
/// [`super::GilGuard`] ([`super::guard::outside_from_python`]) and have not taken it back.
static OUTSIDE_WRITES: AtomicUsize = AtomicUsize::new(0);
/// How long the process's end waits for those writes: a write stuck on a stalled logger for
/// longer is left, and its thread must not come back to a Python being finalised (it would
/// be ended with `pthread_exit` through Rust frames); one that is stuck for good never does.
const OUTSIDE_WRITES_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// One such write, announced until dropped (after the GIL was taken back).
pub(super) struct OutsideWrite(());

impl OutsideWrite {
    /// `None` once the process's end has begun: then the GIL stays held.
    pub(super) fn announce() -> Option<OutsideWrite> {
        // The same Dekker-style hand-shake as reap's: either stop_reaping() sees this write
        // counted, or this thread sees the flag (both SeqCst).
        OUTSIDE_WRITES.fetch_add(1, Ordering::SeqCst);
        if PROCESS_ENDING.load(Ordering::SeqCst) {
            OUTSIDE_WRITES.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(OutsideWrite(()))
    }
}

impl Drop for OutsideWrite {
    fn drop(&mut self) {
        OUTSIDE_WRITES.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Ends the deleting of states by ending threads, waiting for any in progress, before the
/// process ends its interpreters (which then delete what is left, their threads having
/// stopped); and waits (a while) for error-log writes made without the GIL to take it back.
/// Called without the GIL: a thread in [`reap`], or back from such a write, may be waiting for it.
/// Returns how many such writes are still out: then Python must not be finalised.
pub fn stop_reaping() -> usize {
    process_ending();
    while REAPING.load(Ordering::SeqCst) > 0 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let deadline = std::time::Instant::now() + OUTSIDE_WRITES_WAIT;
    while OUTSIDE_WRITES.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    OUTSIDE_WRITES.load(Ordering::SeqCst)
}

fn is_main_thread() -> bool {
    // SAFETY: getpid and gettid only read the calling thread's ids.
    unsafe { libc::getpid() == libc::gettid() }
}
