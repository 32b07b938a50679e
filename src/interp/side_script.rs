//! What the scripts that run beside a request have in common (`WSGIDispatchScript`, and the
//! access and auth scripts): each runs in Apache's child, in the application group its
//! directive names (the main interpreter by default), under that group's admission slot and
//! GIL as a request would be, is loaded and reloaded as a WSGI script is, and gets the
//! request's environ without what only an application has (mod_wsgi's).

use super::busy::Busy;
use super::exchange::Exchange;
use super::py::{self, PyObj};
use super::script::{self, LoadError};
use super::{environ, error, group};
use crate::abi::{self, level};
use crate::gil::{scheduler, GilGuard};
use std::ffi::c_int;

/// Why a side script did not run, or did not finish.
pub enum Failure {
    /// Logged; the request is a 500.
    Error,
    /// No Python slot could be had, or the process is stopping (logged); a 503.
    NoSlot,
}

/// Runs `body` with the loaded script of `request` (its `script`, in its `group`), holding
/// the group's slot and GIL. `what` names the script in log lines ("Dispatch script").
///
/// The slot is given back "unused": a side script is not a request for the tuner of
/// `WSGIPythonConcurrency auto`.
pub fn run<T>(ex: &Exchange, request: &abi::Request, what: &str, body: impl FnOnce(&Loaded) -> Result<T, Failure>) -> Result<T, Failure> {
    // SAFETY: byte strings valid for the call.
    let (script, group_name) = unsafe { (request.script.to_text(), request.group.to_text()) };
    let gil_mode = ex.environ_value(abi::gil_mode::ENVIRON_KEY).map_or(abi::gil_mode::SHARED, abi::gil_mode::from_environ_value);
    let options = ex.environ_value(abi::interpreter_options::ENVIRON_KEY).unwrap_or_default();
    let no_slot = || {
        ex.log(
            level::ERR,
            &format!("{what} '{script}' got no Python slot (WSGIPythonQueueTimeout, or this process is shutting down); returning 503."),
        );
        Failure::NoSlot
    };
    // As for a request: a shared-GIL slot before the group is looked up or created, else a
    // slot of the group's own GIL once it exists.
    let own_gil = group::lookup(&group_name).map_or_else(|| group::wants_own_gil(&group_name, gil_mode), |g| g.own_gil);
    let mut ticket = if own_gil { None } else { Some(scheduler::enter().map_err(|_| no_slot())?) };
    let group = match group::get_or_create(&group_name, 0, gil_mode, options) {
        Ok(group) => group,
        Err(message) => {
            message.lines().for_each(|line| ex.log(level::ERR, line));
            ticket.into_iter().for_each(scheduler::Ticket::unused);
            return Err(Failure::Error);
        }
    };
    if group.own_gil {
        ticket.take().into_iter().for_each(scheduler::Ticket::unused);
        ticket = Some(scheduler::enter_gate(group.gate).map_err(|_| no_slot())?);
    } else if ticket.is_none() {
        ticket = Some(scheduler::enter().map_err(|_| no_slot())?);
    }
    let result = {
        let _gil = GilGuard::acquire(group.index);
        match Busy::enter(group.index) {
            // Interruptible like a request (a non-graceful stop, request-timeout).
            Ok(_busy) => load(ex, group, &group_name, &script, what).and_then(|loaded| body(&loaded)),
            Err(_) => {
                crate::gil::outside(|| ex.log(level::ERR, &format!("{what} '{script}' not run: this process is shutting down.")));
                Err(Failure::NoSlot)
            }
        }
    };
    ticket.into_iter().for_each(scheduler::Ticket::unused);
    result
}

/// A side script loaded in its group, with the environ its functions are called with.
pub struct Loaded<'a> {
    pub ex: &'a Exchange<'a>,
    pub module: PyObj,
    pub environ: PyObj,
    pub script: &'a str,
    pub what: &'a str,
    /// The application group the script runs in (`""`: the main interpreter).
    pub group_name: String,
    /// The environ's `wsgi.errors`, ended (its last partial line, and this thread's on
    /// `sys.stdout` and `sys.stderr`, logged) when this goes, with the GIL held.
    _errors: group::ErrorsStream<'a>,
}

impl Loaded<'_> {
    /// The script's function `name`, or `None` when it has none.
    pub fn function(&self, name: &str) -> Option<PyObj> {
        if self.module.hasattr(name) {
            self.module.getattr(name).ok()
        } else {
            None
        }
    }

    /// Logs `message`, mod_wsgi 6's `WSGI0174`/`WSGI0175` line for the pending exception and
    /// its traceback, without the GIL.
    pub fn raised(&self, message: &str) -> Failure {
        let file = super::wsgi::request_file(self.ex, self.script);
        let headline = error::headline(self.script, &self.group_name, Some(&file));
        raised(self.ex, message, Some(headline))
    }

    /// Logs `message` (no exception pending), without the GIL.
    pub fn refuse(&self, message: &str) -> Failure {
        crate::gil::outside(|| self.ex.log(level::ERR, message));
        Failure::Error
    }
}

/// Loads the script (GIL held) and builds its environ.
fn load<'a>(ex: &'a Exchange<'a>, group: &'a group::Group, group_name: &str, script: &'a str, what: &'a str) -> Result<Loaded<'a>, Failure> {
    // As WSGIScriptReloading says for the request's directory (default On).
    // Side scripts are not asked reload_required() (mod_wsgi passes them no resource).
    let reloading =
        if ex.environ_value(b"mod_wsgi.script_reloading") != Some(b"0") { script::Reloading::On { resource: None } } else { script::Reloading::Off };
    let module = match script::load(group, script, reloading) {
        Ok(module) => module,
        Err(LoadError::Unreadable(e)) => {
            let message = format!("{what} '{script}' cannot be read: {e}");
            crate::gil::outside(|| ex.log(level::ERR, &message));
            return Err(Failure::Error);
        }
        Err(failure @ (LoadError::Raised | LoadError::Uncompiled)) => {
            // mod_wsgi 6's lines (WSGI0105/0107/0109, then WSGI0174/0175 naming the request's
            // file and the script's own interpreter), then the traceback.
            let file = super::wsgi::request_file(ex, script);
            let (lines, traceback) = error::load_failure(script, group_name, Some(&file), matches!(failure, LoadError::Uncompiled));
            crate::gil::outside(|| lines.iter().chain(&traceback).for_each(|line| ex.log(level::ERR, line)));
            return Err(Failure::Error);
        }
    };
    let cannot_build = || raised(ex, &format!("Cannot build the environ for {what} '{script}'."), None);
    let errors = group.new_errors().map_err(|_| cannot_build())?;
    let environ = side_environ(ex, group, group_name, &errors.stream).map_err(|_| cannot_build())?;
    Ok(Loaded { ex, module, environ, script, what, group_name: group_name.to_string(), _errors: errors })
}

/// The request's environ as a side script sees it (mod_wsgi's): `mod_wsgi.process_group`
/// empty (it runs in Apache's child), `mod_wsgi.application_group` naming its group, and no
/// `mod_wsgi.callable_object` or `wsgi.input`.
fn side_environ(ex: &Exchange, group: &group::Group, group_name: &str, errors: &PyObj) -> py::PyResult<PyObj> {
    let environ = environ::build(ex, group, &py::none(), errors)?;
    py::dict_set(&environ, "mod_wsgi.process_group", &py::text("")?)?;
    py::dict_set(&environ, "mod_wsgi.application_group", &py::latin1(group_name.as_bytes())?)?;
    for key in ["mod_wsgi.callable_object", "wsgi.input", "wsgi.input_terminated"] {
        environ.call_method("pop", &[&py::text(key)?, &py::none()])?;
    }
    Ok(environ)
}

/// Logs the pending exception's traceback after `message` (and `headline`), without the GIL.
fn raised(ex: &Exchange, message: &str, headline: Option<String>) -> Failure {
    let traceback = error::take_traceback();
    crate::gil::outside(|| {
        ex.log(level::ERR, message);
        headline.iter().for_each(|line| ex.log(level::ERR, line));
        traceback.iter().for_each(|line| ex.log(level::ERR, line));
    });
    Failure::Error
}

impl Failure {
    /// The ABI's number for it: -1 (500) or -2 (503).
    pub fn code(&self) -> c_int {
        match self {
            Failure::Error => -1,
            Failure::NoSlot => -2,
        }
    }
}
