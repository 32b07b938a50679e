//! Turning the current Python exception into error-log lines.

use super::py::{self, PyObj};
use crate::pyffi as ffi;

/// What the pending exception is, leaving it pending: its type's name and whether it is a
/// `SystemExit` (`None` when there is none).
pub fn pending_kind() -> Option<(String, bool)> {
    let (mut kind, mut value, mut tb) = (std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: under the GIL; the exception is taken out (owned references) while its type is
    // looked at, so that nothing done meanwhile can replace it, and put back as it was.
    #[allow(deprecated)]
    unsafe {
        ffi::PyErr_Fetch(&mut kind, &mut value, &mut tb)
    };
    if kind.is_null() {
        return None;
    }
    // SAFETY: a live type object (owned by us until restored); SystemExit is static.
    let system_exit = unsafe { ffi::PyErr_GivenExceptionMatches(kind, ffi::PyExc_SystemExit) } != 0;
    // SAFETY: a live type object, borrowed into a new reference.
    let name = unsafe { PyObj::from_borrowed(kind) }.ok().and_then(|k| k.getattr("__name__").ok()).map(|n| n.to_text());
    // SAFETY: under the GIL: a failed look-up's error is dropped, then the references taken
    // above are given back (PyErr_Restore steals them).
    #[allow(deprecated)]
    unsafe {
        ffi::PyErr_Clear();
        ffi::PyErr_Restore(kind, value, tb);
    }
    Some((name.unwrap_or_else(|| "Exception".into()), system_exit))
}

/// Where an interpreter runs, as mod_wsgi 6 names it in its messages:
/// `sub-interpreter 'site' in embedded mode`, `main interpreter of daemon process 'd'`.
pub fn interpreter_context(group: &str) -> String {
    let daemon = &super::settings::get().process_group;
    let interpreter = if group.is_empty() { "main interpreter".to_string() } else { format!("sub-interpreter '{group}'") };
    if daemon.is_empty() {
        format!("{interpreter} in embedded mode")
    } else {
        format!("{interpreter} of daemon process '{daemon}'")
    }
}

/// mod_wsgi 6's numbered headline for the pending exception raised by a WSGI script:
/// `WSGI0175` for `SystemExit` (no traceback follows), else `WSGI0174` with its type; and
/// whether a traceback should follow.
pub fn headline(script: &str, group: &str) -> (String, bool) {
    let context = interpreter_context(group);
    match pending_kind() {
        Some((_, true)) => (format!("WSGI0175: SystemExit exception raised by WSGI script '{script}' for {context}; ignored."), false),
        Some((kind, false)) => (format!("WSGI0174: {kind} exception raised processing WSGI script '{script}' for {context}."), true),
        None => (format!("WSGI0174: Exception raised processing WSGI script '{script}' for {context}."), true),
    }
}

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
    let (kind, value, tb) = (own(kind).ok(), own(value).ok(), own(tb).ok());
    let formatted = (|| {
        let (kind, value, tb) = (kind.as_ref()?, value.as_ref()?, tb.as_ref()?);
        let lines = py::import("traceback").ok()?.call_method("format_exception", &[kind, value, tb]).ok()?;
        let joined = py::text("").ok()?.call_method("join", &[&lines]).ok()?;
        py::utf8(&joined)
    })();
    match formatted {
        Some(text) => text.lines().map(str::to_string).collect(),
        None => {
            // SAFETY: under the GIL: whatever failed while formatting is dropped.
            unsafe { ffi::PyErr_Clear() };
            plain_traceback(kind.as_ref(), value.as_ref(), tb.as_ref())
        }
    }
}

/// The traceback read straight off the frame objects, for when `traceback` itself fails: an
/// interpreter whose `abc` caches were corrupted (an extension module shared with another
/// interpreter, as a PyO3 package is) raises from inside `format_exception`. Only attribute
/// reads of built-in objects are used here, so the files and lines still reach the log (and
/// `fallback::advise`, which looks for the package in them).
fn plain_traceback(kind: Option<&PyObj>, value: Option<&PyObj>, tb: Option<&PyObj>) -> Vec<String> {
    // A failed read is cleared at once: no Python call is made with an exception pending.
    let get = |obj: &PyObj, name: &str| {
        obj.getattr(name).ok().or_else(|| {
            // SAFETY: under the GIL; drops the failed lookup's exception.
            unsafe { ffi::PyErr_Clear() };
            None
        })
    };
    let mut lines = vec!["Traceback (most recent call last):".to_string()];
    let mut next = tb.filter(|t| !t.is_none()).cloned();
    // A bound, in case a traceback object was made to loop.
    for _ in 0..200 {
        let Some(t) = next.take() else { break };
        let frame = (|| {
            let code = get(&get(&t, "tb_frame")?, "f_code")?;
            let (file, name) = (get(&code, "co_filename")?.to_text(), get(&code, "co_name")?.to_text());
            Some(format!("  File \"{file}\", line {}, in {name}", get(&t, "tb_lineno")?.to_text()))
        })();
        lines.push(frame.unwrap_or_else(|| "  (a frame that could not be read)".to_string()));
        next = get(&t, "tb_next").filter(|n| !n.is_none());
    }
    let name = kind.and_then(|k| get(k, "__name__")).map_or_else(|| "Exception".to_string(), |n| n.to_text());
    let message = value.filter(|v| !v.is_none()).map(PyObj::to_text).unwrap_or_default();
    lines.push(if message.is_empty() { name } else { format!("{name}: {message}") });
    lines.push("(formatted without the traceback module, which failed on this exception)".to_string());
    lines
}
