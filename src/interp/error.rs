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
/// `WSGI0175` for `SystemExit`, else `WSGI0174` with its type; a request's (`request_file`,
/// the file the request maps to: Apache's `r->filename`) begins with `[script FILE]`, as 6.1's.
/// The traceback follows either (6.1 prints it with `traceback.print_exception`, which on
/// Python 3.11 and older shows only the exception's last line: its value lacks
/// `__traceback__`; the whole traceback is what 6.1 logs on 3.12).
pub fn headline(script: &str, group: &str, request_file: Option<&str>) -> String {
    let context = interpreter_context(group);
    let tag = request_file.map(|file| format!("[script {file}] ")).unwrap_or_default();
    match pending_kind() {
        Some((kind, true)) => format!("WSGI0175: {tag}{kind} exception raised by WSGI script '{script}' for {context}; ignored."),
        Some((kind, false)) => format!("WSGI0174: {tag}{kind} exception raised processing WSGI script '{script}' for {context}."),
        None => format!("WSGI0174: {tag}Exception exception raised processing WSGI script '{script}' for {context}."),
    }
}

/// mod_wsgi 6's lines for a script that failed to load, the exception pending (and taken):
/// the numbered lines, then the traceback (returned apart: the caller also reads it). With a
/// request (`request_file`): `WSGI0105` (it did not compile, or could not be read),
/// `WSGI0107` (it raised `SystemExit`) or `WSGI0109` (it raised), then the `WSGI0174`/`WSGI0175`
/// [`headline`]; without one (`WSGIImportScript`): `WSGI0106`, `WSGI0108` or `WSGI0110`, then the
/// headline except after `WSGI0108` (6.1 logs none there; the traceback still follows here, with
/// the value `SystemExit` was given).
pub fn load_failure(script: &str, group: &str, request_file: Option<&str>, compiling: bool) -> (Vec<String>, Vec<String>) {
    let context = interpreter_context(group);
    let system_exit = pending_kind().is_some_and(|(_, system_exit)| system_exit);
    let request = request_file.is_some();
    // A request's line begins with `[script FILE]`, as every line 6.1 logs for a request
    // through its own logger (not the traceback, nor the WSGI0174 line, which has it after
    // the number).
    let tag = request_file.map(|file| format!("[script {file}] ")).unwrap_or_default();
    let first = match (compiling, system_exit, request) {
        (true, _, true) => format!("{tag}WSGI0105: Could not read or compile WSGI script '{script}' for {context}."),
        (true, _, false) => format!("WSGI0106: Could not read or compile WSGI script '{script}' for {context}."),
        (false, true, true) => format!("{tag}WSGI0107: SystemExit exception raised when doing exec of Python script file '{script}'."),
        (false, true, false) => format!("WSGI0108: SystemExit exception raised when doing exec of Python script file '{script}'."),
        (false, false, true) => format!("{tag}WSGI0109: Unable to execute Python script file '{script}'."),
        (false, false, false) => format!("WSGI0110: Unable to execute Python script file '{script}'."),
    };
    let mut lines = vec![first];
    if compiling || !system_exit || request {
        lines.push(headline(script, group, request_file));
    }
    (lines, take_traceback())
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
    let own = |p: *mut ffi::PyObject| unsafe {
        if p.is_null() {
            Ok(py::none())
        } else {
            PyObj::from_owned(p)
        }
    };
    let (kind, value, tb) = (own(kind).ok(), own(value).ok(), own(tb).ok());
    // SAFETY: a live type object (or None); SystemExit is static.
    let system_exit = kind.as_ref().is_some_and(|k| unsafe { ffi::PyErr_GivenExceptionMatches(k.as_ptr(), ffi::PyExc_SystemExit) } != 0);
    let formatted = (|| {
        let (kind, value, tb) = (kind.as_ref()?, value.as_ref()?, tb.as_ref()?);
        let lines = py::import("traceback").ok()?.call_method("format_exception", &[kind, value, tb]).ok()?;
        let joined = py::text("").ok()?.call_method("join", &[&lines]).ok()?;
        py::utf8(&joined)
    })();
    let lines = match formatted {
        Some(text) => text.lines().map(str::to_string).collect(),
        None => {
            // SAFETY: under the GIL: whatever failed while formatting is dropped.
            unsafe { ffi::PyErr_Clear() };
            plain_traceback(kind.as_ref(), value.as_ref(), tb.as_ref())
        }
    };
    if system_exit {
        // A SystemExit's value line only, as mod_wsgi 6.1 logs it: its frames say where it
        // was raised, which for the one we raise to interrupt a request (request-timeout, a
        // stop) is wherever the request happened to be, not an error of the application.
        return lines.into_iter().filter(|l| !l.starts_with("Traceback (most recent call last):") && !l.starts_with(' ')).collect();
    }
    lines
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
