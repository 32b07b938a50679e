//! Which threads are running a request in which interpreter, so that a non-graceful stop can
//! interrupt them.
//!
//! Without this, a request stuck in a CPU-bound loop keeps its Apache child alive past the
//! stop until Apache SIGKILLs it (Debian's mod_wsgi needs that after 5 s with two busy
//! groups), and no `atexit` callback or shutdown subscriber runs. On `child_stopping` the
//! engine raises `SystemExit` asynchronously in each such thread; the application unwinds
//! (running its `finally` blocks), the request ends, and the child exits normally.

use crate::gil::{GilGuard, InterpIndex};
use crate::pyffi as ffi;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// The most requests one thread serves at once (a request, and sub-requests nested in it while
/// it waits); deeper ones are served but not recorded (so not interruptible).
const DEPTH: usize = 4;

/// One thread's record, written only by that thread: the interpreters (index + 1; 0: none) it
/// is serving requests in, innermost last. The request path touches only this record's
/// atomics, no lock: the registry's mutex is taken once per thread (its first request) and by
/// the interrupting paths, which read every record.
struct Record {
    /// `pthread_self`, which is what `PyThread_get_thread_ident` (and so
    /// `PyThreadState_SetAsyncExc`) uses on POSIX.
    ident: std::ffi::c_long,
    depth: AtomicUsize,
    interps: [AtomicUsize; DEPTH],
    /// Per entry of `interps`: `SystemExit` was raised in that request and may still be
    /// pending on the thread's state there; set and read only with that interpreter's GIL
    /// held (see [`raise_in`]).
    raised: [AtomicBool; DEPTH],
    /// Per entry of `interps`: how many requests have used it, so that an interruption aimed
    /// at a request that ended since tells it from the thread's next one there.
    entered: [AtomicU64; DEPTH],
}

impl Record {
    /// Whether the thread's request at `slot` is still the one `target` saw, in `index`
    /// (read under that GIL, which the thread holds whenever it enters or leaves one).
    fn still_busy(&self, target: &Target) -> bool {
        let slot = target.slot;
        slot < self.depth.load(Ordering::SeqCst).min(DEPTH)
            && self.interps[slot].load(Ordering::SeqCst) == target.index.0 + 1
            && self.entered[slot].load(Ordering::SeqCst) == target.entered
    }
}

/// Every thread that served a request here. Records live as long as the process; a thread
/// that ends leaves its record (depth 0) to the next thread with the same `pthread_t`, which
/// glibc reuses, so they stay about as many as the threads alive at once.
static RECORDS: Mutex<Vec<&'static Record>> = Mutex::new(Vec::new());
/// A non-graceful stop has begun: no request may start running Python.
static STOPPING: AtomicBool = AtomicBool::new(false);

thread_local! {
    static MINE: &'static Record = {
        // SAFETY: pthread_self has no preconditions.
        let ident = unsafe { libc::pthread_self() } as std::ffi::c_long;
        let mut records = RECORDS.lock();
        // A record with this identity belongs to a thread that has ended (no two live threads
        // share a pthread_t): its requests are over (depth 0), and it is taken over.
        if let Some(old) = records.iter().find(|r| r.ident == ident && r.depth.load(Ordering::SeqCst) == 0) {
            return old;
        }
        let record: &'static Record = Box::leak(Box::new(Record { ident, depth: AtomicUsize::new(0), interps: Default::default(), raised: Default::default(), entered: Default::default() }));
        records.push(record);
        record
    };
}

/// The child is stopping: the request must not start.
pub struct Stopping;

/// Marks the calling thread busy in `index` until dropped. A thread can be busy twice (a
/// sub-request served while its parent request waits, possibly in another group): each
/// guard removes its own entry, the innermost first. Made and dropped with the GIL of
/// `index` held through this thread's state there.
pub struct Busy(std::marker::PhantomData<*mut ()>);

impl Busy {
    /// Registers the calling thread, unless a stop has begun: a request that got this far
    /// only after the running ones were interrupted would otherwise keep the child alive.
    /// (The mark is made before the stop flag is read, and `interrupt_all` sets the flag
    /// before it reads the marks, both sequentially consistent: one of the two sees the
    /// other.)
    pub fn enter(index: InterpIndex) -> Result<Busy, Stopping> {
        MINE.with(|record| {
            let depth = record.depth.load(Ordering::Relaxed);
            if let Some(slot) = record.interps.get(depth) {
                record.entered[depth].fetch_add(1, Ordering::SeqCst);
                slot.store(index.0 + 1, Ordering::SeqCst);
            }
            record.depth.store(depth + 1, Ordering::SeqCst);
            if STOPPING.load(Ordering::SeqCst) {
                leave(record);
                return Err(Stopping);
            }
            Ok(Busy(std::marker::PhantomData))
        })
    }
}

fn leave(record: &Record) {
    let depth = record.depth.load(Ordering::Relaxed).saturating_sub(1);
    if let Some(slot) = record.interps.get(depth) {
        slot.store(0, Ordering::SeqCst);
    }
    record.depth.store(depth, Ordering::SeqCst);
}

impl Drop for Busy {
    fn drop(&mut self) {
        MINE.with(|record| {
            // A SystemExit raised after the request ran its last bytecode (its body iterated
            // in C, its last write to Apache) would stay pending on this thread's cached
            // state and fire in whatever Python runs on it next: another request, or a
            // finaliser while the state is cleared. Cleared here, where the request ends.
            let slot = record.depth.load(Ordering::Relaxed).saturating_sub(1);
            if record.raised.get(slot).is_some_and(|raised| raised.swap(false, Ordering::SeqCst)) {
                // SAFETY: the GIL of this request's interpreter is held (Busy's contract).
                unsafe { drop_pending_exit(record.ident) };
            }
            leave(record)
        });
    }
}

/// Lets this thread's pending asynchronous exception (if it is still pending) fire and drops
/// it. On Python 3 a tiny evaluation passes the eval loop's check, which delivers it (at the
/// first instruction of a code object on every version): setting it to NULL instead would
/// leave 3.9 to 3.11's "asynchronous exception pending" signal on, sending every thread of
/// the interpreter through the slow path of the loop's checks until the next one. When that
/// cannot be used (an error is already set) or does not end in the SystemExit (a signal
/// handler or pending call raised first), the exception is set to NULL as on Python 2.7,
/// which checks only every hundred instructions and has no such signal.
///
/// # Safety
/// The GIL must be held, in the interpreter of the thread's state that is current.
unsafe fn drop_pending_exit(ident: std::ffi::c_long) {
    // SAFETY: the caller holds the GIL.
    let error_set = unsafe { !ffi::PyErr_Occurred().is_null() };
    #[cfg(Py_3)]
    if !error_set {
        if let Ok(globals) = super::py::dict() {
            // SAFETY: GIL held; a static source and a live globals dict (CPython adds
            // `__builtins__`); the result is owned by the PyObj.
            let result = unsafe {
                super::py::PyObj::from_owned(ffi::PyRun_StringFlags(
                    c"pass".as_ptr(),
                    ffi::Py_file_input,
                    globals.as_ptr(),
                    globals.as_ptr(),
                    std::ptr::null_mut(),
                ))
            };
            match result {
                Ok(_) => return,
                // SAFETY: GIL held, an exception set: SystemExit is the one delivered.
                Err(_) if unsafe { ffi::PyErr_ExceptionMatches(ffi::PyExc_SystemExit) } != 0 => {
                    // SAFETY: GIL held.
                    unsafe { ffi::PyErr_Clear() };
                    return;
                }
                Err(_) => {}
            }
        }
        // SAFETY: GIL held: what the evaluation raised instead (or a MemoryError) is dropped.
        unsafe { ffi::PyErr_Clear() };
    }
    let _ = error_set;
    // SAFETY: GIL held; a null exception clears this thread's pending one (an error already
    // set is left as it is).
    unsafe {
        ffi::PyThreadState_SetAsyncExc(ident as _, std::ptr::null_mut());
    }
}

/// (thread, interpreter) of every request being served now, a thread's nested requests each
/// (outer first): interrupting only the innermost would let the outer one run on.
fn busy_now() -> Vec<Target> {
    let mut busy = Vec::new();
    for r in RECORDS.lock().iter() {
        let depth = r.depth.load(Ordering::SeqCst).min(DEPTH);
        busy.extend((0..depth).filter_map(|slot| {
            let entered = r.entered[slot].load(Ordering::SeqCst);
            Some(Target { record: r, slot, index: InterpIndex(r.interps[slot].load(Ordering::SeqCst).checked_sub(1)?), entered })
        }));
    }
    busy
}

/// One request of [`busy_now`]: its thread's record, its entry there, its interpreter.
struct Target {
    record: &'static Record,
    slot: usize,
    index: InterpIndex,
    /// The slot's `entered` count when seen: which request of the slot this is.
    entered: u64,
}

/// Raises `SystemExit` in those of `idents` (`pthread_self` values) that are serving a
/// request: a daemon's `request-timeout` interrupts the stuck requests only. Called without
/// the GIL, from a thread that serves no request. Returns how many were interrupted.
pub fn interrupt(idents: &[std::ffi::c_long]) -> usize {
    let targets: Vec<Target> = busy_now().into_iter().filter(|t| idents.contains(&t.record.ident)).collect();
    raise_in(&targets)
}

/// Raises `SystemExit` in every thread that is serving a request. Called without the GIL,
/// from a thread that serves no request (the MPM's stopping thread).
pub fn interrupt_all() -> usize {
    STOPPING.store(true, Ordering::SeqCst);
    raise_in(&busy_now())
}

/// Raises `SystemExit` in each (thread, interpreter) of `targets`, taking the GIL once per
/// interpreter (no Rust lock held meanwhile). Under that GIL a thread whose request has ended
/// since the snapshot is skipped, and each one raised in is marked, so that its request's end
/// clears what was not delivered (see [`Busy`]'s drop).
fn raise_in(targets: &[Target]) -> usize {
    let mut indexes: Vec<InterpIndex> = targets.iter().map(|t| t.index).collect();
    indexes.sort_by_key(|s| s.0);
    indexes.dedup();
    let mut interrupted = 0;
    for index in indexes {
        // PyThreadState_SetAsyncExc looks the thread up in the current interpreter.
        let _gil = GilGuard::acquire(index);
        for t in targets.iter().filter(|t| t.index == index && t.record.still_busy(t)) {
            t.record.raised[t.slot].store(true, Ordering::SeqCst);
            // SAFETY: GIL held in the thread's interpreter; SystemExit is a static type.
            interrupted += unsafe { ffi::PyThreadState_SetAsyncExc(t.record.ident as _, ffi::PyExc_SystemExit) } as usize;
        }
    }
    interrupted
}

/// The interpreter in which thread `ident` is serving a request (its innermost one), if any
/// is recorded (not for a request nested deeper than [`DEPTH`]).
pub fn interpreter_of(ident: std::ffi::c_long) -> Option<InterpIndex> {
    let records = RECORDS.lock();
    let r = records.iter().find(|r| r.ident == ident && r.depth.load(Ordering::SeqCst) > 0)?;
    let depth = r.depth.load(Ordering::SeqCst);
    if depth > DEPTH {
        return None;
    }
    r.interps[depth - 1].load(Ordering::SeqCst).checked_sub(1).map(InterpIndex)
}
