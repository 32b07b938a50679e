//! The figures of the interpreter that served a request (`abi::GroupFigures`), which the
//! module shows per application group on its status page: the thread states the engine keeps
//! in it, and the objects its garbage collector tracks, "where Python can tell".
//!
//! Both are read from per-interpreter gauges (`gil::gauges`) at the end of each request,
//! without a lock or the GIL. The object count costs a list of every tracked object
//! (`gc.get_objects()`), so it is sampled at most every `SAMPLE_EVERY` (10 s) per interpreter, by
//! one request that already holds that interpreter's GIL through its own thread state (which
//! an interpreter with its own GIL requires) once its response is complete; the other
//! requests report the last sample. It is an interpreter's own figure only from Python 3.9,
//! where each interpreter has its own collector: before, the collector is the process's, and
//! the count stays unknown (-1).

use crate::abi;
use crate::gil::{self, InterpIndex};

/// How often an interpreter's objects are counted, at most.
#[cfg(Py_3_9)]
pub const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Counts the objects of the interpreter in `index` if its last count is old enough, and
/// keeps the count for [`of`]. A failure is cleared and the last count stays; an exception
/// already pending is left alone (and nothing is counted). Call with `index`'s GIL held
/// through this thread's state for it, after the application's response is complete.
#[cfg(Py_3_9)]
pub fn sample(index: InterpIndex) {
    use crate::pyffi as ffi;
    // SAFETY: under the GIL (the caller's contract); only reads the thread's exception.
    if !unsafe { ffi::PyErr_Occurred() }.is_null() || !gil::gauges::claim_sample(index, SAMPLE_EVERY) {
        return;
    }
    match count_objects() {
        Ok(count) => gil::gauges::record_objects(index, count),
        // SAFETY: under the GIL; the failed count's exception is dropped (the request is over).
        Err(_) => unsafe { ffi::PyErr_Clear() },
    }
}

/// Python before 3.9: one collector for the process, not the interpreter's figure.
#[cfg(not(Py_3_9))]
pub fn sample(_index: InterpIndex) {}

/// `len(gc.get_objects())` in the current interpreter.
#[cfg(Py_3_9)]
fn count_objects() -> super::py::PyResult<i64> {
    use crate::pyffi as ffi;
    let objects = super::py::import("gc")?.call_method("get_objects", &[])?;
    // SAFETY: under the GIL; a live object; -1 with an exception set when it has no length.
    let len = unsafe { ffi::PyObject_Size(objects.as_ptr()) };
    if len < 0 {
        return Err(super::py::PyErrSet);
    }
    Ok(len as i64)
}

/// The figures of the interpreter in `index` (its group's replica `replica`) as they stand: no
/// lock, no GIL.
pub fn of(index: InterpIndex, replica: u32) -> abi::GroupFigures {
    abi::GroupFigures { thread_states: gil::thread_state_count(index) as u64, objects: gil::gauges::objects(index), replica }
}
