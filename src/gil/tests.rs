//! The thread-state cache and guards against a real CPython, under random interleavings of
//! threads and interpreters (proptest): every entry into an interpreter runs in that
//! interpreter, with the same cached state each time on a given thread; the cache holds at
//! most one state per (thread, interpreter); and every thread's `PyGILState` state is its
//! main-interpreter one, whatever interpreter it entered first.

use super::*;
use crate::pyffi as ffi;
use proptest::prelude::*;
use std::sync::OnceLock;

const SUB_INTERPRETERS: usize = 3;

/// Python, started once for the test process: the main interpreter plus three others, each
/// registered in its index as the group registry would.
fn interpreters() -> &'static [usize] {
    static INTERPRETERS: OnceLock<Vec<usize>> = OnceLock::new();
    INTERPRETERS.get_or_init(|| {
        let mut interps = Vec::new();
        // SAFETY: initialises Python on this thread, which then holds the GIL; each new
        // interpreter is registered, and the thread swaps back to main before releasing.
        unsafe {
            ffi::Py_InitializeEx(0);
            let main = ffi::PyThreadState_Get();
            register_interpreter(MAIN_INTERP, ffi::PyInterpreterState_Get());
            adopt_current(MAIN_INTERP, main);
            interps.push(ffi::PyInterpreterState_Get() as usize);
            for i in 1..=SUB_INTERPRETERS {
                let tstate = ffi::Py_NewInterpreter();
                assert!(!tstate.is_null());
                register_interpreter(InterpIndex(i), ffi::PyInterpreterState_Get());
                adopt_current(InterpIndex(i), tstate);
                interps.push(ffi::PyInterpreterState_Get() as usize);
                ffi::PyThreadState_Swap(main);
            }
            ffi::PyEval_SaveThread();
        }
        interps
    })
}

/// Serialises the cases: the counts are process-wide.
static CASES: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn cache_under_random_interleavings(
        plans in proptest::collection::vec(proptest::collection::vec(0..=SUB_INTERPRETERS, 1..12), 1..5)
    ) {
        let interps = interpreters();
        let _case = CASES.lock();
        let before = thread_state_counts();
        // Plain threads joined by handle: pthread_join returns after the thread's TLS
        // destructors (which delete its states) ran; a scope's join may return before.
        let threads: Vec<_> = plans.iter().cloned().map(|plan| {
                std::thread::spawn(move || {
                    let mut seen: Vec<Option<usize>> = vec![None; SUB_INTERPRETERS + 1];
                    for &index in &plan {
                        let _gil = GilGuard::acquire(InterpIndex(index));
                        // SAFETY: GIL held through this thread's state for `index`.
                        let (interp, tstate, gilstate) = unsafe {
                            (ffi::PyInterpreterState_Get() as usize, ffi::PyThreadState_Get() as usize, ffi::PyGILState_GetThisThreadState() as usize)
                        };
                        assert_eq!(interp, interps[index], "entered the wrong interpreter");
                        assert_eq!(*seen[index].get_or_insert(tstate), tstate, "a second state for the same thread and interpreter");
                        assert_eq!(gilstate, thread_state(MAIN_INTERP) as usize, "PyGILState is not the main interpreter's state");
                        // Some Python work with the GIL released in the middle, as during I/O.
                        released(std::thread::yield_now);
                    }
                })
            }).collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let after = thread_state_counts();
        for (index, &now) in after.iter().enumerate().take(SUB_INTERPRETERS + 1) {
            // Each thread made one state per interpreter it used (and a main one first), and
            // deleted them when it ended, but for an interpreter's last one. (Other tests'
            // threads may end meanwhile and delete theirs: at most, not exactly.)
            let before = before.get(index).copied().unwrap_or(0);
            prop_assert!(now <= before.max(1), "index {}: {} states before, {} after; plans {:?}", index, before, now, plans);
        }
        // The lock-free count each request reports is the cache's (read between two equal
        // looks at the cache, in case another test's thread ends meanwhile).
        for index in 0..=SUB_INTERPRETERS {
            let matched = (0..100).any(|_| {
                let (first, gauge, second) = (thread_state_counts(), thread_state_count(InterpIndex(index)), thread_state_counts());
                first == second && first.get(index).copied().unwrap_or(0) == gauge
            });
            prop_assert!(matched, "index {}: gauge {} but the cache has {:?}", index, thread_state_count(InterpIndex(index)), thread_state_counts());
        }
    }
}
