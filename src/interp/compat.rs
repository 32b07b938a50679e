//! Shims for C-API functions that not every supported Python has, after pyo3-ffi's
//! `compat` module: the rest of the engine calls one function whatever the version.

use pyo3_ffi as ffi;

/// The current thread state's interpreter (`PyInterpreterState_Get`, public from 3.9).
///
/// # Safety
/// A thread state must be current (the GIL held).
pub unsafe fn current_interpreter() -> *mut ffi::PyInterpreterState {
    #[cfg(Py_3_9)]
    {
        // SAFETY: forwarded from the caller.
        unsafe { ffi::PyInterpreterState_Get() }
    }
    #[cfg(not(Py_3_9))]
    {
        extern "C" {
            /// 3.8's name for the same function (exported, with a leading underscore).
            fn _PyInterpreterState_Get() -> *mut ffi::PyInterpreterState;
        }
        // SAFETY: forwarded from the caller.
        unsafe { _PyInterpreterState_Get() }
    }
}
