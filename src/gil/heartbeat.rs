//! The heartbeat behind a daemon's `deadlock-timeout` (mod_wsgi's `wsgi_deadlock_thread`):
//! a thread of its own takes the GIL briefly every [`INTERVAL`] and counts each time it had
//! it ([`beats`]). A daemon's monitor (in the module) restarts the process when the count
//! stops growing for the timeout: then some thread has held the GIL all that time (a C call
//! that never releases it, a lock taken with the GIL held), and no request can make progress.
//!
//! Each beat takes the main interpreter's GIL, which every application group shares unless it
//! has its own (`WSGIPerInterpreterGIL`, 3.12+), and then each own GIL in turn ([`watch`]):
//! a GIL held for good anywhere stops the beats.
//!
//! The heartbeat holds no Rust lock: its state is one atomic, and it never waits for a
//! scheduler slot (a full queue is not a deadlock). Before Python is finalised, [`stop`] ends
//! it: a beat that is under way (waiting for the GIL, which the caller is about to take
//! as well) is waited for; a heartbeat asleep is not, and ends when it wakes.

use super::guard::GilGuard;
use super::thread_state::{InterpIndex, MAIN_INTERP};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

/// How often the heartbeat takes the GIL (mod_wsgi's: one second).
const INTERVAL: Duration = Duration::from_secs(1);

/// Asleep between beats.
const IDLE: u8 = 0;
/// Taking or holding the GIL.
const BEATING: u8 = 1;
/// Ended by [`stop`]: no beat starts again.
const STOPPED: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(IDLE);
static STARTED: AtomicBool = AtomicBool::new(false);
static BEATS: AtomicU64 = AtomicU64::new(0);
/// The interpreters with their own GIL, each taken by every beat after the main one.
static OWN_GILS: parking_lot::Mutex<Vec<InterpIndex>> = parking_lot::Mutex::new(Vec::new());

/// The GIL the beat under way waits for or holds: an interpreter's index + 1 (0: none).
static WAITING_ON: AtomicUsize = AtomicUsize::new(0);

/// Which GIL the heartbeat is waiting for (the main interpreter's, or an own GIL's), if a beat
/// is under way: after a `deadlock-timeout`, the GIL that is stuck.
pub fn waiting_on() -> Option<InterpIndex> {
    WAITING_ON.load(Ordering::SeqCst).checked_sub(1).map(InterpIndex)
}

/// Makes every beat take `index`'s own GIL too (an interpreter made with its own GIL, set
/// up and registered; it stays until the process ends, as interpreters do here).
pub fn watch(index: InterpIndex) {
    OWN_GILS.lock().push(index);
}

/// Starts the heartbeat thread (once; later calls do nothing). Python must be initialised.
pub fn start() -> std::io::Result<()> {
    if STARTED.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    let spawned = std::thread::Builder::new().name("wsgi-heartbeat".into()).spawn(run);
    if spawned.is_err() {
        STARTED.store(false, Ordering::SeqCst);
    }
    spawned.map(drop)
}

/// Times the heartbeat has had the GIL since it started.
pub fn beats() -> u64 {
    BEATS.load(Ordering::SeqCst)
}

fn run() {
    loop {
        std::thread::sleep(INTERVAL);
        if STATE.compare_exchange(IDLE, BEATING, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            return; // stopped
        }
        WAITING_ON.store(MAIN_INTERP.0 + 1, Ordering::SeqCst);
        drop(GilGuard::acquire(MAIN_INTERP));
        // A copy: no lock is held while a GIL is waited for.
        let own = OWN_GILS.lock().clone();
        for index in own {
            WAITING_ON.store(index.0 + 1, Ordering::SeqCst);
            drop(GilGuard::acquire(index));
        }
        WAITING_ON.store(0, Ordering::SeqCst);
        BEATS.fetch_add(1, Ordering::SeqCst);
        // Only this thread leaves BEATING; stop() waits for it.
        STATE.store(IDLE, Ordering::SeqCst);
    }
}

/// Ends the heartbeat before Python is finalised (a thread that asks for the GIL during or
/// after `Py_FinalizeEx` is ended by Python, or hangs). Called without the GIL: a beat under
/// way is waited for, and it needs the GIL for a moment.
pub fn stop() {
    loop {
        match STATE.compare_exchange(IDLE, STOPPED, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) | Err(STOPPED) => return,
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}
