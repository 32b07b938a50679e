//! The functions the engine gives every interpreter: `mod_wsgi.process_metrics()` (what this
//! process's scheduler is doing, thread states per group) and the error-log writer behind
//! `sys.stdout`, `sys.stderr` and `wsgi.errors` (`bootstrap.py`'s `Log`).

use super::py::{self, PyObj, PyResult};
use super::trampoline::python_trampoline;
use crate::gil::scheduler;
use crate::pyffi as ffi;

/// A `PyMethodDef` in a static.
#[repr(transparent)]
struct Def(ffi::PyMethodDef);
// SAFETY: immutable; CPython only reads it.
unsafe impl Sync for Def {}

static PROCESS_METRICS: Def = Def(ffi::method_args(
    c"process_metrics",
    process_metrics,
    ffi::METH_NOARGS,
    c"process_metrics() -> dict of this process's metrics",
));

static LOG: Def = Def(ffi::method_args(
    c"log",
    log,
    ffi::METH_VARARGS,
    c"log(level, line): one line to Apache's error log, attributed to the current request",
));

fn function(def: &'static Def) -> PyResult<PyObj> {
    // SAFETY: a static method definition; no self, no module.
    unsafe {
        PyObj::from_owned(ffi::PyCFunction_NewEx(
            &def.0 as *const ffi::PyMethodDef as *mut ffi::PyMethodDef,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        ))
    }
}

/// `mod_wsgi.process_metrics` for the current interpreter.
pub fn process_metrics_function() -> PyResult<PyObj> {
    function(&PROCESS_METRICS)
}

/// The error-log writer for the current interpreter.
pub fn log_function() -> PyResult<PyObj> {
    function(&LOG)
}

unsafe extern "C" fn log(_slf: *mut ffi::PyObject, args: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let write = || -> PyResult<PyObj> {
        // SAFETY: args is the call's tuple; items are borrowed then re-owned.
        let (level, line) = unsafe {
            if ffi::PyTuple_Size(args) != 2 {
                return Err(py::raise(ffi::PyExc_TypeError, "log() takes a level and a line"));
            }
            (PyObj::from_borrowed(ffi::PyTuple_GetItem(args, 0))?, PyObj::from_borrowed(ffi::PyTuple_GetItem(args, 1))?)
        };
        // SAFETY: live object; -1 with an exception means not an int.
        let level = unsafe { ffi::PyLong_AsLong(level.as_ptr()) };
        // SAFETY: checks the exception PyLong_AsLong may have set.
        if level == -1 && unsafe { !ffi::PyErr_Occurred().is_null() } {
            return Err(py::PyErrSet);
        }
        let text = py::utf8(&line).unwrap_or_else(|| line.to_text());
        super::exchange::log_current(level as i32, &text);
        Ok(py::none())
    };
    python_trampoline(write)
}

unsafe extern "C" fn process_metrics(_slf: *mut ffi::PyObject, _args: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let build = || -> PyResult<PyObj> {
        let m = scheduler::metrics();
        let d = py::dict()?;
        py::dict_set(&d, "pid", &py::int(std::process::id() as i64)?)?;
        py::dict_set(&d, "python_concurrency_mode", &py::text(m.mode)?)?;
        py::dict_set(&d, "python_concurrency", &py::int(m.counts.limit as i64)?)?;
        py::dict_set(&d, "python_active", &py::int(m.counts.active as i64)?)?;
        py::dict_set(&d, "python_queued", &py::int(m.counts.queued as i64)?)?;
        py::dict_set(&d, "python_peak_active", &py::int(m.counts.peak_active as i64)?)?;
        py::dict_set(&d, "python_peak_queued", &py::int(m.counts.peak_queued as i64)?)?;
        // Thread states per application group ('' is %{GLOBAL}).
        let states = py::dict()?;
        let counts = crate::gil::thread_state_counts();
        let groups = super::group::all();
        for group in &groups {
            let n = counts.get(group.index.0).copied().unwrap_or(0);
            py::dict_set(&states, &group.name, &py::int(n as i64)?)?;
        }
        py::dict_set(&d, "thread_states", &states)?;
        py::dict_set(&d, "interpreters", &py::int(groups.len() as i64)?)?;
        Ok(d)
    };
    python_trampoline(build)
}
