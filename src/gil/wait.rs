//! How long the current request's thread has waited for Python: for a slot of the GIL
//! scheduler and for the GIL itself, summed over every wait of the request (its start, and
//! each return from Apache's I/O). Telemetry reports it per request (`abi::PythonWait`), as
//! mod_wsgi 6.1's `gil_wait_time`; with the scheduler on, most of it is time in its queue.

use std::cell::Cell;
use std::time::Instant;

thread_local! {
    /// Nanoseconds waited and waits since the last [`take`].
    static WAITED: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Runs `f`, a wait for Python, and adds its time to this thread's.
pub fn timed<R>(f: impl FnOnce() -> R) -> R {
    let began = Instant::now();
    let result = f();
    let nanos = began.elapsed().as_nanos() as u64;
    WAITED.with(|w| {
        let (total, count) = w.get();
        w.set((total.saturating_add(nanos), count + 1));
    });
    result
}

/// This thread's waits since the last call: nanoseconds and count.
pub fn take() -> (u64, u64) {
    WAITED.with(|w| w.replace((0, 0)))
}

/// Puts back waits taken out by [`take`] (an enclosing request's).
pub fn add((nanos, count): (u64, u64)) {
    WAITED.with(|w| {
        let (total, n) = w.get();
        w.set((total.saturating_add(nanos), n + count));
    });
}
