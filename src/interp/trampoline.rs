//! The two ways into the engine from C, each catching Rust panics so that nothing unwinds
//! across FFI: [`trampoline`] for the entries of the engine's table (the module calls them),
//! [`python_trampoline`] for every function the engine gives Python.

use super::py::{self, PyErrSet, PyObj, PyResult};
use crate::pyffi as ffi;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs an entry's body; a panic is logged and turned into `fallback`.
pub fn trampoline<R>(what: &str, fallback: R, body: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        let reason = payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned()).unwrap_or_default();
        let _ = catch_unwind(|| eprintln!("mod_wsgi (pid={}): internal error in the engine's {what}: {reason}", std::process::id()));
        fallback
    })
}

/// Runs a method body: a panic becomes a RuntimeError, an `Err` a null return. Every
/// function the engine gives Python goes through it.
pub fn python_trampoline(body: impl FnOnce() -> PyResult<PyObj>) -> *mut ffi::PyObject {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(obj)) => obj.into_ptr(),
        Ok(Err(PyErrSet)) => std::ptr::null_mut(),
        Err(_) => {
            // SAFETY: static exception type.
            py::raise(unsafe { ffi::PyExc_RuntimeError }, "internal error in mod_wsgi-rs (a Rust panic)");
            std::ptr::null_mut()
        }
    }
}
