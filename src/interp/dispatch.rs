//! `WSGIDispatchScript`: before a request is served, a Python script chooses where it runs.
//! Its optional `process_group(environ)`, `application_group(environ)` and
//! `callable_object(environ)` each return a name (or `None`: keep the configured one), as in
//! mod_wsgi, which documents it as the way to spread one application over several groups.
//! How the script is run is `side_script.rs`.

use super::exchange::{Current, Exchange};
use super::py;
use super::side_script::{self, Failure};
use crate::abi;
use std::ffi::{c_int, c_void};

/// The functions asked, in mod_wsgi's order, with what each answers and how a wrong type is
/// reported.
const QUESTIONS: [(&str, c_int, &str); 3] = [
    ("process_group", abi::dispatch::PROCESS_GROUP, "Process group"),
    ("application_group", abi::dispatch::APPLICATION_GROUP, "Application group"),
    ("callable_object", abi::dispatch::CALLABLE_OBJECT, "Callable object"),
];

/// Runs the dispatch script of `request` (its `script` and `group`); each answer goes to
/// `set(ctx, which, value)` as it comes, with the GIL held (the callback only copies it).
/// 0; -1 after logging why (the request is then a 500); -2 when no Python slot could be had
/// (a 503, as for a request).
pub fn dispatch(request: &abi::Request, ctx: *mut c_void, set: abi::AnswerFn) -> c_int {
    let ex = Exchange::new(request);
    // The script's own output (print, mod_wsgi.log) goes to this request's log lines.
    let _current = Current::set(request);
    match side_script::run(&ex, request, "Dispatch script", |loaded| ask(loaded, ctx, set)) {
        Ok(()) => 0,
        Err(failure) => failure.code(),
    }
}

/// Asks the script's functions (GIL held).
fn ask(loaded: &side_script::Loaded, ctx: *mut c_void, set: abi::AnswerFn) -> Result<(), Failure> {
    let script = loaded.script;
    for (function, which, what) in QUESTIONS {
        let Some(f) = loaded.function(function) else { continue };
        let Ok(answer) = f.call(&[&loaded.environ]) else {
            return Err(loaded.raised(&format!("Exception occurred processing dispatch script '{script}' ({function}).")));
        };
        if answer.is_none() {
            continue;
        }
        let value = py::as_bytes(&answer).map(<[u8]>::to_vec).or_else(|| py::latin1_bytes(&answer));
        let Some(value) = value else {
            return Err(loaded.refuse(&format!("Dispatch script '{script}': {what} must be a string object, {function}() returned something else.")));
        };
        // SAFETY: the module's callback copies the bytes, which live for the call.
        unsafe { set(ctx, which, abi::Bytes::new(&value)) };
    }
    Ok(())
}
