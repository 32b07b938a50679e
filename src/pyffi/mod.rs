//! The CPython C API as the engine uses it, whichever way it was bound.
//!
//! By default this is pyo3-ffi (CPython 3.7 and later). With the `legacy-abi` feature it is
//! bindgen's output for the selected interpreter's own headers plus small shims for what
//! bindgen cannot translate (`legacy.rs`). Either way the rest of the engine sees the same
//! names, plus the few constructors below for records whose Rust shape differs.

#[cfg(feature = "pyo3")]
pub use pyo3_ffi::*;

#[cfg(all(feature = "legacy-abi", not(feature = "pyo3")))]
mod legacy;
#[cfg(all(feature = "legacy-abi", not(feature = "pyo3")))]
pub use legacy::*;
#[cfg(all(feature = "legacy-abi", not(feature = "pyo3")))]
use legacy::{args_pointer, kw_pointer, null_pointer};

pub mod compat;

use std::ffi::CStr;

/// A method taking `(self, args, kwargs)`.
pub type KwFn = unsafe extern "C" fn(*mut PyObject, *mut PyObject, *mut PyObject) -> *mut PyObject;
/// A method taking `(self, args)` (`METH_VARARGS` or `METH_NOARGS`).
pub type ArgsFn = unsafe extern "C" fn(*mut PyObject, *mut PyObject) -> *mut PyObject;

/// A `METH_VARARGS | METH_KEYWORDS` method definition.
pub const fn method_kw(name: &'static CStr, f: KwFn, doc: &'static CStr) -> PyMethodDef {
    PyMethodDef { ml_name: name.as_ptr(), ml_meth: kw_pointer(f), ml_flags: METH_VARARGS | METH_KEYWORDS, ml_doc: doc.as_ptr() }
}

/// A `METH_VARARGS` or `METH_NOARGS` method definition.
pub const fn method_args(name: &'static CStr, f: ArgsFn, flags: i32, doc: &'static CStr) -> PyMethodDef {
    PyMethodDef { ml_name: name.as_ptr(), ml_meth: args_pointer(f), ml_flags: flags, ml_doc: doc.as_ptr() }
}

/// The all-null entry that ends a method table.
#[cfg(feature = "pyo3")]
pub const fn method_end() -> PyMethodDef {
    PyMethodDef::zeroed()
}

/// The all-null entry that ends a method table.
#[cfg(all(feature = "legacy-abi", not(feature = "pyo3")))]
pub const fn method_end() -> PyMethodDef {
    PyMethodDef { ml_name: std::ptr::null(), ml_meth: null_pointer(), ml_flags: 0, ml_doc: std::ptr::null() }
}

#[cfg(feature = "pyo3")]
const fn kw_pointer(f: KwFn) -> PyMethodDefPointer {
    PyMethodDefPointer { PyCFunctionWithKeywords: f }
}
#[cfg(feature = "pyo3")]
const fn args_pointer(f: ArgsFn) -> PyMethodDefPointer {
    PyMethodDefPointer { PyCFunction: f }
}
