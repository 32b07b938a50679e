//! Turning the current Python exception into error-log lines.

use super::py::{self, PyObj};
use crate::pyffi as ffi;

/// Takes (and clears) the current exception and formats it as `traceback` would print it.
pub fn take_traceback() -> Vec<String> {
    let (mut kind, mut value, mut tb) = (std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: under the GIL; PyErr_Fetch hands us owned references (or nulls).
    #[allow(deprecated)]
    unsafe {
        ffi::PyErr_Fetch(&mut kind, &mut value, &mut tb);
        if kind.is_null() {
            return Vec::new();
        }
        ffi::PyErr_NormalizeException(&mut kind, &mut value, &mut tb);
    }
    // SAFETY: owned references from PyErr_Fetch (value and tb may be null: use None).
    let own = |p: *mut ffi::PyObject| unsafe { if p.is_null() { Ok(py::none()) } else { PyObj::from_owned(p) } };
    let (kind, value, tb) = (own(kind), own(value), own(tb));
    let formatted = (|| {
        let (kind, value, tb) = (kind.ok()?, value.ok()?, tb.ok()?);
        let lines = py::import("traceback").ok()?.call_method("format_exception", &[&kind, &value, &tb]).ok()?;
        let joined = py::text("").ok()?.call_method("join", &[&lines]).ok()?;
        py::utf8(&joined)
    })();
    match formatted {
        Some(text) => text.lines().map(str::to_string).collect(),
        None => {
            // SAFETY: under the GIL: whatever failed while formatting is dropped.
            unsafe { ffi::PyErr_Clear() };
            vec!["(the exception could not be formatted)".to_string()]
        }
    }
}
