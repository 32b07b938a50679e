//! `WSGIDispatchScript`: before a request is served, a Python script chooses where it runs.
//! Its optional `process_group(environ)`, `application_group(environ)` and
//! `callable_object(environ)` each return a name (or `None`: keep the configured one), as in
//! mod_wsgi, which documents it as the way to spread one application over several groups.
//!
//! The script runs in Apache's child, in the application group the directive names (the main
//! interpreter by default), under that group's GIL and admission slot, and is reloaded when it
//! changes, as a WSGI script is. The environ it gets is the request's, with
//! `mod_wsgi.process_group` empty and `mod_wsgi.application_group` naming the dispatch group,
//! and no `mod_wsgi.callable_object` or `wsgi.input` (mod_wsgi's).

use super::busy::Busy;
use super::exchange::{Current, Exchange};
use super::py::{self, PyObj};
use super::script::{self, LoadError};
use super::{environ, error, group};
use crate::abi::{self, level};
use crate::gil::{scheduler, GilGuard};
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
pub fn dispatch(request: &abi::Request, ctx: *mut c_void, set: abi::DispatchSetFn) -> c_int {
    let ex = Exchange::new(request);
    // The script's own output (print, mod_wsgi.log) goes to this request's log lines.
    let _current = Current::set(request);
    // SAFETY: byte strings valid for the call.
    let (script, group_name) = unsafe { (request.script.to_text(), request.group.to_text()) };
    let gil_mode = ex.environ_value(abi::gil_mode::ENVIRON_KEY).map_or(abi::gil_mode::SHARED, abi::gil_mode::from_environ_value);
    let options = ex.environ_value(abi::interpreter_options::ENVIRON_KEY).unwrap_or_default();
    // As for a request: a shared-GIL slot before the group is looked up or created, else a
    // slot of the group's own GIL once it exists. The slot is given back "unused": a dispatch
    // is not a request for the tuner of `WSGIPythonConcurrency auto`.
    let own_gil = group::lookup(&group_name).map_or_else(|| group::wants_own_gil(&group_name, gil_mode), |g| g.own_gil);
    let mut ticket = if own_gil {
        None
    } else {
        match scheduler::enter() {
            Ok(ticket) => Some(ticket),
            Err(_) => return no_slot(&ex, &script),
        }
    };
    let group = match group::get_or_create(&group_name, 0, gil_mode, options) {
        Ok(group) => group,
        Err(message) => {
            message.lines().for_each(|line| ex.log(level::ERR, line));
            ticket.into_iter().for_each(scheduler::Ticket::unused);
            return -1;
        }
    };
    if group.own_gil {
        ticket.take().into_iter().for_each(scheduler::Ticket::unused);
        match scheduler::enter_gate(group.gate) {
            Ok(entered) => ticket = Some(entered),
            Err(_) => return no_slot(&ex, &script),
        }
    } else if ticket.is_none() {
        match scheduler::enter() {
            Ok(entered) => ticket = Some(entered),
            Err(_) => return no_slot(&ex, &script),
        }
    }
    let status = {
        let _gil = GilGuard::acquire(group.index);
        match Busy::enter(group.index) {
            // Interruptible like a request (a non-graceful stop, request-timeout).
            Ok(_busy) => run(&ex, group, &group_name, &script, ctx, set),
            Err(_) => {
                ex.log(level::ERR, &format!("Dispatch script '{script}' not run: this process is shutting down."));
                -2
            }
        }
    };
    ticket.into_iter().for_each(scheduler::Ticket::unused);
    status
}

fn no_slot(ex: &Exchange, script: &str) -> c_int {
    ex.log(level::ERR, &format!("Dispatch script '{script}' got no Python slot (WSGIPythonQueueTimeout, or this process is shutting down); returning 503."));
    -2
}

/// Loads the script (GIL held) and asks its functions.
fn run(ex: &Exchange, group: &group::Group, group_name: &str, script: &str, ctx: *mut c_void, set: abi::DispatchSetFn) -> c_int {
    // As WSGIScriptReloading says for the request's directory (default On).
    let reloading = ex.environ_value(b"mod_wsgi.script_reloading") != Some(b"0");
    let module = match script::load(group, script, reloading) {
        Ok(module) => module,
        Err(LoadError::Unreadable(e)) => {
            let message = format!("Dispatch script '{script}' cannot be read: {e}");
            crate::gil::outside(|| ex.log(level::ERR, &message));
            return -1;
        }
        Err(LoadError::Raised) => return failed(ex, &format!("Failed to exec Python dispatch script '{script}'.")),
    };
    let environ = match dispatch_environ(ex, group, group_name) {
        Ok(environ) => environ,
        Err(_) => return failed(ex, &format!("Cannot build the environ for dispatch script '{script}'.")),
    };
    for (function, which, what) in QUESTIONS {
        if !module.hasattr(function) {
            continue;
        }
        let answer = module.getattr(function).and_then(|f| f.call(&[&environ]));
        let Ok(answer) = answer else {
            return failed(ex, &format!("Exception occurred processing dispatch script '{script}' ({function})."));
        };
        if answer.is_none() {
            continue;
        }
        let value = py::as_bytes(&answer).map(<[u8]>::to_vec).or_else(|| py::latin1_bytes(&answer));
        let Some(value) = value else {
            let message = format!("Dispatch script '{script}': {what} must be a string object, {function}() returned something else.");
            crate::gil::outside(|| ex.log(level::ERR, &message));
            return -1;
        };
        // SAFETY: the module's callback copies the bytes, which live for the call.
        unsafe { set(ctx, which, abi::Bytes::new(&value)) };
    }
    0
}

/// The request's environ as the dispatch script sees it (mod_wsgi's).
fn dispatch_environ(ex: &Exchange, group: &group::Group, group_name: &str) -> py::PyResult<PyObj> {
    let environ = environ::build(ex, group, &py::none())?;
    py::dict_set(&environ, "mod_wsgi.process_group", &py::text("")?)?;
    py::dict_set(&environ, "mod_wsgi.application_group", &py::latin1(group_name.as_bytes())?)?;
    for key in ["mod_wsgi.callable_object", "wsgi.input", "wsgi.input_terminated"] {
        environ.call_method("pop", &[&py::text(key)?, &py::none()])?;
    }
    Ok(environ)
}

/// Logs the pending exception's traceback after `what`, without the GIL; -1.
fn failed(ex: &Exchange, what: &str) -> c_int {
    let traceback = error::take_traceback();
    crate::gil::outside(|| {
        ex.log(level::ERR, what);
        traceback.iter().for_each(|line| ex.log(level::ERR, line));
    });
    -1
}
