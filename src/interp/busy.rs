//! Which threads are running a request in which interpreter, so that a non-graceful stop can
//! interrupt them.
//!
//! Without this, a request stuck in a CPU-bound loop keeps its Apache child alive past the
//! stop until Apache SIGKILLs it (Debian's mod_wsgi needs that after 5 s with two busy
//! groups), and no `atexit` callback or shutdown subscriber runs. On `child_stopping` the
//! engine raises `SystemExit` asynchronously in each such thread; the application unwinds
//! (running its `finally` blocks), the request ends, and the child exits normally.

use crate::gil::{GilGuard, InterpIndex};
use parking_lot::Mutex;
use crate::pyffi as ffi;

/// (OS thread identity as CPython knows it, interpreter) of every request being served, and
/// whether a non-graceful stop has begun (then no request may start running Python).
struct Registry {
    busy: Vec<(std::ffi::c_long, InterpIndex)>,
    stopping: bool,
}

static BUSY: Mutex<Registry> = Mutex::new(Registry { busy: Vec::new(), stopping: false });

/// The child is stopping: the request must not start.
pub struct Stopping;

/// Marks the calling thread busy in `index` until dropped. A thread can be busy twice (a
/// sub-request served while its parent request waits, possibly in another group): each
/// guard removes its own entry.
pub struct Busy(std::ffi::c_long, InterpIndex);

impl Busy {
    /// Registers the calling thread, unless a stop has begun: a request that got this far
    /// only after the running ones were interrupted would otherwise keep the child alive.
    pub fn enter(index: InterpIndex) -> Result<Busy, Stopping> {
        // pthread_self is what PyThread_get_thread_ident (and so PyThreadState_SetAsyncExc)
        // uses on POSIX.
        // SAFETY: pthread_self has no preconditions.
        let ident = unsafe { libc::pthread_self() } as std::ffi::c_long;
        let mut registry = BUSY.lock();
        if registry.stopping {
            return Err(Stopping);
        }
        registry.busy.push((ident, index));
        Ok(Busy(ident, index))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let busy = &mut BUSY.lock().busy;
        if let Some(i) = busy.iter().rposition(|entry| *entry == (self.0, self.1)) {
            busy.swap_remove(i);
        }
    }
}

/// Raises `SystemExit` in those of `idents` (`pthread_self` values) that are serving a
/// request: a daemon's `request-timeout` interrupts the stuck requests only. Called without
/// the GIL, from a thread that serves no request. Returns how many were interrupted.
pub fn interrupt(idents: &[std::ffi::c_long]) -> usize {
    let targets: Vec<(std::ffi::c_long, InterpIndex)> = BUSY.lock().busy.iter().filter(|(ident, _)| idents.contains(ident)).copied().collect();
    raise_in(&targets)
}

/// Raises `SystemExit` in every thread that is serving a request. Called without the GIL,
/// from a thread that serves no request (the MPM's stopping thread).
pub fn interrupt_all() -> usize {
    let targets: Vec<(std::ffi::c_long, InterpIndex)> = {
        let mut registry = BUSY.lock();
        registry.stopping = true;
        registry.busy.clone()
    };
    raise_in(&targets)
}

/// Raises `SystemExit` in each (thread, interpreter) of `targets`, taking the GIL once per
/// interpreter (no Rust lock held meanwhile).
fn raise_in(targets: &[(std::ffi::c_long, InterpIndex)]) -> usize {
    let mut indexes: Vec<InterpIndex> = targets.iter().map(|(_, s)| *s).collect();
    indexes.sort_by_key(|s| s.0);
    indexes.dedup();
    let mut interrupted = 0;
    for index in indexes {
        // PyThreadState_SetAsyncExc looks the thread up in the current interpreter.
        let _gil = GilGuard::acquire(index);
        for (ident, _) in targets.iter().filter(|(_, s)| *s == index) {
            // SAFETY: GIL held in the thread's interpreter; SystemExit is a static type.
            interrupted += unsafe { ffi::PyThreadState_SetAsyncExc(*ident as _, ffi::PyExc_SystemExit) } as usize;
        }
    }
    interrupted
}

/// The interpreter in which thread `ident` is serving a request (its innermost one), if any.
pub fn interpreter_of(ident: std::ffi::c_long) -> Option<InterpIndex> {
    BUSY.lock().busy.iter().rev().find(|(i, _)| *i == ident).map(|(_, index)| *index)
}
