//! RAII guards for holding and releasing the GIL, after pyo3's `SuspendAttach`.

use super::scheduler;
use super::thread_state::{thread_state, InterpIndex};
use crate::pyffi as ffi;
use std::cell::Cell;
use std::marker::PhantomData;

thread_local! {
    /// Whether this thread holds the GIL through a [`GilGuard`] (and not inside [`released`]).
    static HELD: Cell<bool> = const { Cell::new(false) };
}

/// Holds the GIL in one interpreter, through this thread's cached state for it.
/// Not `Send`: a thread state belongs to the OS thread that made it.
pub struct GilGuard {
    _not_send: PhantomData<*mut ()>,
}

impl GilGuard {
    /// Enters the interpreter in `index`, waiting for the GIL.
    pub fn acquire(index: InterpIndex) -> GilGuard {
        let tstate = thread_state(index);
        // SAFETY: tstate belongs to this thread and is not current (no guard is active on this
        // thread: guards do not nest across interpreters in this engine).
        super::wait::timed(|| unsafe { ffi::PyEval_RestoreThread(tstate) });
        HELD.with(|held| held.set(true));
        GilGuard { _not_send: PhantomData }
    }
}

impl Drop for GilGuard {
    fn drop(&mut self) {
        HELD.with(|held| held.set(false));
        // SAFETY: this thread holds the GIL through the state restored in acquire().
        unsafe { ffi::PyEval_SaveThread() };
    }
}

/// Runs `f` with the GIL released (Apache's network I/O, waiting on a lock), then takes it
/// back in the same thread state. The request's scheduler slot is given back meanwhile, and
/// re-taken before the GIL: a thread never waits for a slot while holding the GIL.
pub fn released<R>(f: impl FnOnce() -> R) -> R {
    struct Restore {
        tstate: *mut ffi::PyThreadState,
        paused: Option<&'static scheduler::Gate>,
        was_held: bool,
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            super::wait::timed(|| {
                if let Some(gate) = self.paused {
                    scheduler::resume(gate);
                }
                // SAFETY: the state saved below, on this thread; restored even if f panics.
                unsafe { ffi::PyEval_RestoreThread(self.tstate) };
            });
            HELD.with(|held| held.set(self.was_held));
        }
    }
    // SAFETY: the caller holds the GIL (a GilGuard is active on this thread).
    let tstate = unsafe { ffi::PyEval_SaveThread() };
    let was_held = HELD.with(|held| held.replace(false));
    let _restore = Restore { tstate, paused: scheduler::pause(), was_held };
    f()
}

/// Runs `f` without the GIL: released around it when this thread holds it through a
/// [`GilGuard`], as is otherwise. For writes to Apache's error log, which can block (a piped
/// logger that stalls): mod_wsgi releases the GIL around them too. Unlike [`released`], the
/// request keeps its scheduler slot: a log line must not send it to the back of the queue.
pub fn outside<R>(f: impl FnOnce() -> R) -> R {
    struct Reenter(*mut ffi::PyThreadState);
    impl Drop for Reenter {
        fn drop(&mut self) {
            // SAFETY: the state saved below, on this thread; restored even if f panics.
            super::wait::timed(|| unsafe { ffi::PyEval_RestoreThread(self.0) });
            HELD.with(|held| held.set(true));
        }
    }
    if !held_here() {
        return f();
    }
    // SAFETY: this thread holds the GIL through a GilGuard (HELD).
    let _reenter = Reenter(unsafe { ffi::PyEval_SaveThread() });
    HELD.with(|held| held.set(false));
    f()
}

/// Runs `f` without the GIL, for a function Python called on this thread, whether it holds
/// the GIL through a [`GilGuard`] (a request) or not (a thread the application started, a
/// finaliser run while a state is cleared): [`outside`] releases it only for the first. An
/// error-log write can block (a piped logger that stalls), and holding the GIL across it
/// would stop every Python thread of the process.
///
/// Once Python is being finalised, a thread that takes the GIL back is ended by CPython with
/// `pthread_exit`, which must never unwind through Rust frames. So the release is announced
/// to the process's end ([`super::thread_state::stop_reaping`] waits a while for it to be
/// taken back before finalising), and once the end has begun the line is written with the GIL
/// held, as it always was.
///
/// # Safety
/// This thread must hold the GIL of the interpreter whose state is current.
pub unsafe fn outside_from_python<R>(f: impl FnOnce() -> R) -> R {
    if held_here() {
        return outside(f);
    }
    let Some(_announced) = super::thread_state::OutsideWrite::announce() else { return f() };
    struct Reenter(*mut ffi::PyThreadState);
    impl Drop for Reenter {
        fn drop(&mut self) {
            // SAFETY: the state saved below, on this thread; restored even if f panics.
            unsafe { ffi::PyEval_RestoreThread(self.0) };
        }
    }
    // SAFETY: the caller holds the GIL through the current state (the function's contract).
    let _reenter = Reenter(unsafe { ffi::PyEval_SaveThread() });
    f()
}

/// Whether this thread holds the GIL through a [`GilGuard`] (outside [`released`]).
pub(super) fn held_here() -> bool {
    HELD.with(Cell::get)
}
