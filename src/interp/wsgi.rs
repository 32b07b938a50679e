//! One WSGI request, from the group's interpreter to the last body byte: load the script,
//! call the application, send each chunk as it is produced, always call `close()`.

use super::busy::Busy;
use super::exchange::{Current, Exchange, SendError};
use super::group::Subscribers;
use super::py::{self, PyObj};
use super::script::{self, LoadError};
use super::{environ, error, fallback, figures, group, replicas, request_objects, settings, start_response};
use crate::abi::{self, level, Outcome};
use crate::gil::scheduler;
use crate::gil::{GilGuard, Refused};
use crate::pyffi as ffi;
use std::os::fd::{AsRawFd, FromRawFd};

/// Requests that found their script loaded (see `abi::Progress::scripts_ready`).
static SCRIPTS_READY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Requests so far whose WSGI script was loaded (by them or before): a daemon's
/// `startup-timeout` ends with the first, as mod_wsgi's does when a request gets its module.
pub fn scripts_ready() -> u64 {
    SCRIPTS_READY.load(std::sync::atomic::Ordering::SeqCst)
}

pub fn handle(request: &abi::Request) -> Outcome {
    // Only this request's waits for Python are reported; a request handled inside another on
    // this thread (a subrequest from an output filter) leaves the outer one's waits as they were.
    let outer = crate::gil::wait::take();
    let (outcome, interpreter) = handle_request(request);
    let (nanos, count) = crate::gil::wait::take();
    crate::gil::wait::add(outer);
    if !request.python_wait.is_null() {
        // SAFETY: the module's PythonWait, valid for the handle call.
        unsafe { *request.python_wait = abi::PythonWait { nanos, count } };
    }
    if let (Some((index, replica)), false) = (interpreter, request.figures.is_null()) {
        // SAFETY: the module's GroupFigures, valid for the handle call.
        unsafe { *request.figures = figures::of(index, replica) };
    }
    outcome
}

/// Serves the request; the outcome, and the interpreter that served it when one was reached.
fn handle_request(request: &abi::Request) -> (Outcome, Option<(crate::gil::InterpIndex, u32)>) {
    let ex = Exchange::new(request);
    let _current = Current::set(request);
    // A panic after part of the response reached Apache must not become a 500 that Apache
    // would append to a response whose headers are out: the connection is aborted instead.
    let attempt = || {
        let mut moved = None;
        let outcome = serve(&ex, true, &mut moved);
        match moved {
            // WSGIPerInterpreterGIL Auto: the group moves to the shared GIL (the GIL and the
            // slot are free again here) and the request is served there, once.
            Some(FallBack { group, refused, traceback }) => {
                fallback::fall_back(&group, &refused, &traceback);
                serve(&ex, false, &mut None)
            }
            None => outcome,
        }
    };
    let outcome = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(attempt)) {
        Ok(outcome) => outcome,
        Err(_) => {
            ex.log(level::ERR, "internal error in mod_wsgi-rs while serving this request (a Rust panic)");
            return (if ex.output_passed() { Outcome::ABORTED } else { Outcome::SERVER_ERROR }, None);
        }
    };
    // What is still gathered goes to Apache now that the GIL and the Python slot are given
    // back: this write can block on a slow client.
    ex.finish();
    let interpreter = ex.state.borrow().interpreter;
    (outcome, interpreter)
}

/// Why a group's import failed in its own-GIL interpreter under `WSGIPerInterpreterGIL Auto`.
struct FallBack {
    group: String,
    refused: Vec<String>,
    traceback: Vec<String>,
}

/// Everything that needs Python: the index, the group, the GIL, the script, the application.
/// When `may_fall_back` and the script's import failed for a refused single-phase extension
/// under `Auto`, `fall_back` is filled and the outcome is to be ignored: the caller moves the
/// group and serves again (without `may_fall_back`).
fn serve(ex: &Exchange, may_fall_back: bool, fall_back: &mut Option<FallBack>) -> Outcome {
    let request = ex.request;
    // Not the interpreter a first attempt reached (see `State::interpreter`).
    ex.state.borrow_mut().interpreter = None;
    // SAFETY: byte strings valid for the call.
    let (script, callable, group_name) = unsafe { (request.script.to_text(), request.callable.to_text(), request.group.to_text()) };
    let gil_mode = ex.environ_value(abi::gil_mode::ENVIRON_KEY).map_or(abi::gil_mode::SHARED, abi::gil_mode::from_environ_value);
    // Its other container settings, read only if this request creates the interpreter.
    let options = ex.environ_value(abi::interpreter_options::ENVIRON_KEY).unwrap_or_default();
    // The shared GIL's slot is taken before the group is looked up or created; a group with
    // its own GIL (existing, or to be created so) takes a slot of its own gate once it exists.
    let own_gil = group::lookup(&group_name).map_or_else(|| group::wants_own_gil(&group_name, gil_mode), |g| g.own_gil);
    // Which of the group's interpreters, when it has several (each with its own GIL; see
    // `replicas.rs`); counted there until the request ends.
    let replicas = abi::replicas::from_environ_value(ex.environ_value(abi::replicas::ENVIRON_KEY));
    let (replica, _active) = if replicas > 1 && own_gil {
        let (replica, active) = replicas::choose(&group_name, replicas);
        (replica, Some(active))
    } else {
        if replicas > 1 {
            replicas::warn_shared(&group_name, replicas);
        }
        (0, None)
    };
    // The slot first, without the GIL: at most WSGIPythonConcurrency threads go further.
    let entered = if own_gil { Ok(None) } else { scheduler::enter().map(Some) };
    let mut ticket = match entered {
        Ok(ticket) => ticket,
        Err(refused) => {
            let m = scheduler::metrics();
            ex.log(level::ERR, &match refused {
                Refused::TimedOut => format!(
                    "Request for '{script}' waited {} s for one of the {} Python slots ({} requests queued); returning 503. Raise WSGIPythonConcurrency or WSGIPythonQueueTimeout, or find what holds the slots.",
                    m.queue_timeout.as_secs_f64(), m.counts.limit, m.counts.queued
                ),
                Refused::Closing => format!("Request for '{script}' refused with 503: this process is shutting down."),
            });
            return Outcome::UNAVAILABLE;
        }
    };
    let created = group::get_or_create(&group_name, replica, gil_mode, options).or_else(|message| {
        if replica == 0 {
            return Err(message);
        }
        // A replica that cannot be created is not asked again; the request goes to the
        // first one (whose own failure is the request's).
        for line in message.lines() {
            ex.log(level::ERR, line);
        }
        ex.log(
            level::ERR,
            &format!("Replica {} of application group '{group_name}' could not be created; its requests go to the others.", replica + 1),
        );
        replicas::retire(&group_name, replica);
        group::get_or_create(&group_name, 0, gil_mode, options)
    });
    let group = match created {
        Ok(group) => group,
        Err(message) => {
            for line in message.lines() {
                ex.log(level::ERR, line);
            }
            return Outcome::SERVER_ERROR;
        }
    };
    // The group as it exists decides (another request may have created it meanwhile with
    // another mode): a slot of the shared GIL, or of the group's own.
    if group.own_gil {
        // A shared slot taken before the group existed goes back first, unused.
        if let Some(shared) = ticket.take() {
            shared.unused();
        }
        match scheduler::enter_gate(group.gate) {
            Ok(entered) => ticket = Some(entered),
            Err(Refused::Closing) => {
                ex.log(level::ERR, &format!("Request for '{script}' refused with 503: this process is shutting down."));
                return Outcome::UNAVAILABLE;
            }
            Err(Refused::TimedOut) => {
                let m = scheduler::metrics();
                ex.log(level::ERR, &format!(
                    "Request for '{script}' waited {} s for one of the Python slots of application group '{group_name}''s own GIL; returning 503. Raise WSGIPythonConcurrency or WSGIPythonQueueTimeout, or find what holds the slots.",
                    m.queue_timeout.as_secs_f64()
                ));
                return Outcome::UNAVAILABLE;
            }
        }
    } else if ticket.is_none() {
        match scheduler::enter() {
            Ok(entered) => ticket = Some(entered),
            Err(_) => {
                ex.log(level::ERR, &format!("Request for '{script}' refused with 503: no Python slot for its application group."));
                return Outcome::UNAVAILABLE;
            }
        }
    }
    let _ticket = ticket;
    let _gil = GilGuard::acquire(group.index);
    let Ok(_busy) = Busy::enter(group.index) else {
        ex.log(level::ERR, &format!("Request for '{script}' refused with 503: this process is shutting down."));
        return Outcome::UNAVAILABLE;
    };
    ex.state.borrow_mut().interpreter = Some((group.index, group.replica));

    // In a daemon process, a changed script restarts the process (the daemon checks before the
    // request reaches Python, as mod_wsgi's process reloading): re-running just the script in
    // place there would mix it with the application's old modules.
    let in_daemon = !settings::get().process_group.is_empty();
    // The module's reload_required() is asked about the file the request maps to (the script
    // itself, or the file a WSGIHandlerScript handles), as mod_wsgi passes r->filename.
    let resource = ex.environ_value(b"SCRIPT_FILENAME").unwrap_or(script.as_bytes());
    let reloading = if !in_daemon && ex.environ_value(b"mod_wsgi.script_reloading") != Some(b"0") {
        script::Reloading::On { resource: Some(resource) }
    } else {
        script::Reloading::Off
    };
    // Auto: only a first import that itself ran into a refused extension moves the group
    // (a later failure, a failed reload among them, or a refusal the application got past
    // earlier, does not).
    let refused_before =
        (may_fall_back && gil_mode == abi::gil_mode::AUTO && group.own_gil && !group.ever_loaded.load(std::sync::atomic::Ordering::Acquire))
            .then(|| fallback::refused_extensions().len());
    let module = match script::load(group, &script, reloading) {
        Ok(module) => {
            SCRIPTS_READY.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            module
        }
        Err(LoadError::Unreadable(e)) => {
            ex.log(level::ERR, &format!("Target WSGI script '{script}' cannot be read: {e}"));
            return Outcome::NOT_FOUND;
        }
        Err(failure @ (LoadError::Raised | LoadError::Uncompiled)) => {
            // The exception first: nothing else may run while it is set.
            let file = String::from_utf8_lossy(resource).into_owned();
            let (lines, traceback) = error::load_failure(&script, &group_name, Some(&file), matches!(failure, LoadError::Uncompiled));
            if let Some(before) = refused_before {
                let refused = fallback::refused_extensions();
                if refused.len() > before {
                    *fall_back = Some(FallBack { group: group_name.clone(), refused, traceback });
                    return Outcome::SERVER_ERROR;
                }
            }
            let advice = fallback::advise(&group_name, &traceback);
            crate::gil::outside(|| {
                for line in lines.iter().chain(&traceback) {
                    ex.log(level::ERR, line);
                }
                if let Some(advice) = &advice {
                    ex.log(level::ERR, advice);
                }
            });
            return Outcome::SERVER_ERROR;
        }
    };
    let Ok(app) = module.getattr(&callable) else {
        // The AttributeError (or whatever a module-level __getattr__ raised) is not left set
        // on this thread.
        error::take_traceback();
        ex.log(
            level::ERR,
            &format!(
                "[script {}] WSGI0089: Target WSGI script '{script}' does not contain WSGI application '{callable}'.",
                request_file(ex, &script)
            ),
        );
        return Outcome::NOT_FOUND;
    };
    let outcome = run(ex, group, &app, &script);
    // The response is complete (its iterable closed), the GIL still held through this
    // thread's state in the group's interpreter: the moment to count its objects, now and
    // then (see `figures`). A panic there costs the figure, never the response.
    let index = group.index;
    let _ = std::panic::catch_unwind(move || figures::sample(index));
    outcome
}

/// Calls the application and streams its response. The Python objects the application got
/// are detached before the Exchange goes away, whatever happens ([`Detach`]).
fn run(ex: &Exchange, group: &group::Group, app: &PyObj, script: &str) -> Outcome {
    // One after another: nothing more is made (Python run) once one failed, its exception set.
    let failed = || {
        log_exception(ex, script, &group.name);
        Outcome::SERVER_ERROR
    };
    let Ok(adapter) = group.types.adapter(ex) else { return failed() };
    let input = match group.types.input(ex) {
        Ok(input) => input,
        Err(_) => {
            let outcome = failed();
            request_objects::detach(&adapter);
            return outcome;
        }
    };
    let _detach = Detach([&adapter, &input]);
    let Ok(errors) = group.new_errors() else { return failed() };
    respond(ex, group, app, &adapter, &input, &errors.stream, script)
}

/// Cuts the request objects (`start_response` and its `write`, `wsgi.input`) off from the
/// Exchange when dropped: also on an early return or a panic, so that an application that
/// kept them gets "request object has expired" instead of a dangling pointer. Dropped with
/// the GIL held (the request's guard outlives it).
struct Detach<'a>([&'a PyObj; 2]);

impl Drop for Detach<'_> {
    fn drop(&mut self) {
        for obj in self.0 {
            request_objects::detach(obj);
        }
    }
}

/// Whether the pending exception is a `mod_wsgi.RequestTimeout` (or a subclass), which is
/// then cleared; any other stays pending, as it was.
fn take_request_timeout() -> bool {
    let (mut t, mut v, mut tb) = (std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: under the GIL: the exception is taken out (owned references) while the class is
    // looked up, so that a failing look-up cannot replace it.
    #[allow(deprecated)]
    unsafe {
        ffi::PyErr_Fetch(&mut t, &mut v, &mut tb)
    };
    let class = py::import("mod_wsgi").and_then(|m| m.getattr("RequestTimeout"));
    let matches = match class {
        // SAFETY: under the GIL; t is the live exception type (checked non-null).
        Ok(class) => !t.is_null() && unsafe { ffi::PyErr_GivenExceptionMatches(t, class.as_ptr()) } != 0,
        Err(_) => {
            // SAFETY: under the GIL; the failed look-up's own exception is dropped.
            unsafe { ffi::PyErr_Clear() };
            false
        }
    };
    // SAFETY: the references PyErr_Fetch gave: dropped for a RequestTimeout, else restored
    // (PyErr_Restore steals them).
    #[allow(deprecated)]
    unsafe {
        if matches {
            for p in [t, v, tb] {
                if !p.is_null() {
                    ffi::Py_DecRef(p);
                }
            }
        } else {
            ffi::PyErr_Restore(t, v, tb);
        }
    }
    matches
}

/// `mod_wsgi.RequestTimeout` raised by the application (mod_wsgi 6): before any output, an
/// empty 504 and one INFO line, no traceback; after output reached Apache, the response is
/// cut short, as any failure then. `None` when the pending exception is another one.
fn request_timeout(ex: &Exchange, script: &str) -> Option<Outcome> {
    if !take_request_timeout() {
        return None;
    }
    if ex.output_passed() {
        ex.log(
            level::INFO,
            &format!("[script {}] Request interrupted by RequestTimeout after headers sent; response truncated.", request_file(ex, script)),
        );
        return Some(Outcome::ABORTED);
    }
    ex.log(level::INFO, &format!("[script {}] Request interrupted by RequestTimeout; thread recovered.", request_file(ex, script)));
    ex.discard_output();
    let mut state = ex.state.borrow_mut();
    if state.headers_sent {
        // Apache has the application's status already: its own 504 replaces the response.
        return Some(Outcome::GATEWAY_TIMEOUT);
    }
    state.status = Some(b"504 Gateway Timeout".to_vec());
    state.headers = vec![(b"Content-Length".to_vec(), b"0".to_vec())];
    state.content_length = Some(0);
    state.bad_content_length = None;
    drop(state);
    Some(match ex.send_headers() {
        Ok(()) if ex.state.borrow().overridden => Outcome::OVERRIDE,
        Ok(()) => Outcome::DONE,
        Err(_) => Outcome::GATEWAY_TIMEOUT,
    })
}

/// What a response that failed becomes: while none of it reached Apache, a clean 500 (what
/// was gathered is dropped); after that, a response cut short, which the module makes
/// visible to the client (no last chunk, connection closed).
fn abandon(ex: &Exchange) -> Outcome {
    if ex.output_passed() {
        Outcome::ABORTED
    } else {
        ex.discard_output();
        Outcome::SERVER_ERROR
    }
}

fn respond(ex: &Exchange, group: &group::Group, app: &PyObj, adapter: &PyObj, input: &PyObj, errors: &PyObj, script: &str) -> Outcome {
    let started = std::time::Instant::now();
    let events = &group.events;
    let failed = |ex: &Exchange| {
        if let Some(outcome) = request_timeout(ex, script) {
            return outcome;
        }
        fire_exception(events);
        log_exception(ex, script, &group.name);
        abandon(ex)
    };
    let environ = match environ::build(ex, group, input, errors) {
        Ok(environ) => environ,
        Err(_) => return failed(ex),
    };
    let start_response = match adapter.getattr("start_response") {
        Ok(f) => f,
        Err(_) => return failed(ex),
    };
    events.fire(Subscribers::Requests, "request_started", || {
        let kwargs = py::dict()?;
        py::dict_set(&kwargs, "request_environ", &environ)?;
        py::dict_set(&kwargs, "application_object", app)?;
        Ok(kwargs)
    });
    let result = match app.call(&[&environ, &start_response]) {
        Ok(result) => result,
        Err(_) => return failed(ex),
    };
    let mut outcome = stream(ex, group, &result).unwrap_or_else(|()| failed(ex));
    // close() is always called, also after an error or a client that went away (a list or
    // tuple has none: skip the look-up, which would build an AttributeError per request).
    // SAFETY: type checks on a live object.
    let plain = unsafe { ffi::PyList_CheckExact(result.as_ptr()) != 0 || ffi::PyTuple_CheckExact(result.as_ptr()) != 0 };
    if !plain && result.hasattr("close") && result.call_method("close", &[]).is_err() && !take_request_timeout() {
        // (A RequestTimeout from close() is dropped, as mod_wsgi 6 drops it.)
        outcome = failed(ex);
    }
    events.fire(Subscribers::Requests, "request_finished", || {
        let kwargs = py::dict()?;
        py::dict_set(&kwargs, "output_length", &py::int(ex.state.borrow().body_sent as i64)?)?;
        // SAFETY: a new float.
        let elapsed = unsafe { PyObj::from_owned(ffi::PyFloat_FromDouble(started.elapsed().as_secs_f64()))? };
        py::dict_set(&kwargs, "application_time", &elapsed)?;
        Ok(kwargs)
    });
    if ex.state.borrow().overridden {
        return Outcome::OVERRIDE;
    }
    if outcome == Outcome::DONE && !ex.state.borrow().headers_sent {
        // An empty body: the status and headers still go out.
        match ex.send_headers() {
            Ok(()) => {}
            Err(SendError::NoStatus) => {
                let (context, file) = (error::interpreter_context(&group.name), request_file(ex, script));
                ex.log(
                    level::ERR,
                    &format!("WSGI0174: [script {file}] RuntimeError exception raised processing WSGI script '{script}' for {context}."),
                );
                ex.log(level::ERR, "RuntimeError: the application returned without calling start_response()");
                return Outcome::SERVER_ERROR;
            }
            Err(SendError::BadContentLength(value)) => {
                let (context, file) = (error::interpreter_context(&group.name), request_file(ex, script));
                ex.log(
                    level::ERR,
                    &format!("WSGI0174: [script {file}] ValueError exception raised processing WSGI script '{script}' for {context}."),
                );
                ex.log(level::ERR, &format!("ValueError: invalid Content-Length header value: '{}'", String::from_utf8_lossy(&value)));
                return Outcome::SERVER_ERROR;
            }
            Err(SendError::Refused) => return Outcome::SERVER_ERROR,
        }
        if ex.state.borrow().overridden {
            return Outcome::OVERRIDE;
        }
    }
    // A body shorter than the application's own Content-Length is a failed response: the
    // client must not take it for the whole one (Apache would even rewrite the header to the
    // length it saw).
    if let (Outcome::DONE, Some((declared, sent))) = (outcome, ex.shortfall()) {
        ex.log(
            level::ERR,
            &format!("Truncated response from WSGI script '{script}': Content-Length was {declared} but only {sent} bytes were sent."),
        );
        return Outcome::ABORTED;
    }
    outcome
}

/// Iterates the application's result, sending each non-empty chunk. `Err` means a Python
/// exception is set.
fn stream(ex: &Exchange, group: &group::Group, result: &PyObj) -> Result<Outcome, ()> {
    // SAFETY: the type of a live object, compared with the group's FileWrapper class.
    if unsafe { ffi::Py_TYPE(result.as_ptr()) }.cast() == group.file_wrapper {
        if let Some(outcome) = send_file_wrapper(ex, result)? {
            return Ok(outcome);
        }
    }
    // A list or tuple is all there already: Apache may buffer it (and then frame it with
    // Content-Length). Anything else produces blocks over time, each flushed as it comes,
    // as mod_wsgi does.
    // SAFETY: type checks on a live object.
    let flush = unsafe { ffi::PyList_Check(result.as_ptr()) == 0 && ffi::PyTuple_Check(result.as_ptr()) == 0 };
    // SAFETY: live object; a new iterator reference or null with an exception.
    let iter = unsafe { PyObj::from_owned(ffi::PyObject_GetIter(result.as_ptr())) }.map_err(|_| ())?;
    loop {
        if ex.state.borrow().client_gone {
            // Stop producing for a client that is gone; close() still runs.
            return Ok(Outcome::DONE);
        }
        // SAFETY: live iterator; null is the end, or an error when one is set.
        let item = unsafe { ffi::PyIter_Next(iter.as_ptr()) };
        if item.is_null() {
            // SAFETY: checks whether null meant an error.
            return if unsafe { ffi::PyErr_Occurred() }.is_null() { Ok(Outcome::DONE) } else { Err(()) };
        }
        // SAFETY: PyIter_Next returned a new reference.
        let item = unsafe { PyObj::from_owned(item) }.map_err(|_| ())?;
        let Some(data) = py::as_bytes(&item) else {
            let kind = {
                // SAFETY: live object's type name.
                let t = unsafe { PyObj::from_borrowed(ffi::Py_TYPE(item.as_ptr()).cast()) }.map_err(|_| ())?;
                t.getattr("__name__").map(|n| n.to_text()).unwrap_or_default()
            };
            // SAFETY: static exception type.
            py::raise(unsafe { ffi::PyExc_TypeError }, &format!("response iterable must yield bytes, not {kind}"));
            return Err(());
        };
        start_response::send(ex, data, flush).map_err(|_| ())?;
    }
}

/// Tells `request_exception` subscribers about the pending exception, which stays pending.
fn fire_exception(events: &group::Events) {
    if !events.any(Subscribers::Requests) {
        return;
    }
    let (mut t, mut v, mut tb) = (std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: under the GIL: take the exception out (owned references) while the subscribers
    // run, then put the same references back.
    #[allow(deprecated)]
    unsafe {
        ffi::PyErr_Fetch(&mut t, &mut v, &mut tb);
        ffi::PyErr_NormalizeException(&mut t, &mut v, &mut tb);
    }
    let none = py::none();
    // SAFETY: borrowed views of the owned references (null ones shown as None).
    let view = |p: *mut ffi::PyObject| unsafe { PyObj::from_borrowed(if p.is_null() { none.as_ptr() } else { p }) };
    events.fire(Subscribers::Requests, "request_exception", || {
        let kwargs = py::dict()?;
        py::dict_set(&kwargs, "exception_info", &py::tuple(&[&view(t)?, &view(v)?, &view(tb)?])?)?;
        Ok(kwargs)
    });
    // SAFETY: restores the references fetched above.
    #[allow(deprecated)]
    unsafe {
        ffi::PyErr_Restore(t, v, tb)
    };
}

/// `wsgi.file_wrapper` around a real, regular file: sent from its current position to its
/// end through Apache's file bucket. `None` when `result` is anything else (then iterated).
fn send_file_wrapper(ex: &Exchange, result: &PyObj) -> Result<Option<Outcome>, ()> {
    let filelike = result.getattr("_mod_wsgi_filelike").map_err(|_| ())?;
    if !filelike.hasattr("fileno") {
        return Ok(None);
    }
    let Ok(fd) = filelike.call_method("fileno", &[]) else {
        // io.BytesIO and the like raise here: not a real file.
        // SAFETY: under the GIL: the failed fileno() is not an application error.
        unsafe { ffi::PyErr_Clear() };
        return Ok(None);
    };
    // SAFETY: live int object; -1 with an exception set means it was not one.
    let fd = unsafe { ffi::PyLong_AsLong(fd.as_ptr()) };
    // SAFETY: checks for the exception PyLong_AsLong may have set.
    if fd < 0 || unsafe { !ffi::PyErr_Occurred().is_null() } {
        // SAFETY: as above.
        unsafe { ffi::PyErr_Clear() };
        return Ok(None);
    }
    // The application's descriptor is only safe to use while the GIL is held: the file is
    // sent without it, when another Python thread could close the file (and the number be
    // reused for another file). Sent through a duplicate made now, closed when sent.
    let Ok(fd) = i32::try_from(fd) else { return Ok(None) };
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor the application's file object holds open (GIL
    // held).
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Ok(None);
    }
    // SAFETY: dup is a new descriptor nothing else owns.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(dup) };
    // SAFETY: fstat on our open descriptor.
    let size = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd.as_raw_fd(), &mut st) != 0 || (st.st_mode & libc::S_IFMT) != libc::S_IFREG {
            return Ok(None);
        }
        st.st_size as u64
    };
    // The file object's position, not the descriptor's: a buffered file has read ahead of
    // what the application consumed (mod_wsgi asks tell() too).
    let Some(offset) = tell(&filelike) else { return Ok(None) };
    let len = size.saturating_sub(offset);
    ex.default_length(len);
    match ex.send_file(fd.as_raw_fd(), offset, len) {
        Ok(()) => Ok(Some(Outcome::DONE)),
        Err(e) => {
            start_response::raise_send_error(e);
            Err(())
        }
    }
}

/// `filelike.tell()` as a byte offset; `None` (the exception cleared) when the object has no
/// usable position, and the wrapper is then iterated like any other.
fn tell(filelike: &PyObj) -> Option<u64> {
    let position = filelike.call_method("tell", &[]).ok().map(|p| {
        // SAFETY: a live object; -1 with an exception set means it was not an int.
        unsafe { ffi::PyLong_AsLongLong(p.as_ptr()) }
    });
    // SAFETY: under the GIL: a failed tell() or conversion is not an application error.
    if unsafe { !ffi::PyErr_Occurred().is_null() } {
        // SAFETY: as above.
        unsafe { ffi::PyErr_Clear() };
        return None;
    }
    position.and_then(|p| u64::try_from(p).ok())
}

/// The file the request maps to (Apache's `r->filename`, as `SCRIPT_FILENAME` has it), which
/// mod_wsgi 6 names in `[script ...]`; the script when the environ has none.
pub(crate) fn request_file(ex: &Exchange, script: &str) -> String {
    ex.environ_value(b"SCRIPT_FILENAME").map_or_else(|| script.to_string(), |file| String::from_utf8_lossy(file).into_owned())
}

/// The pending exception as mod_wsgi 6 logs it (`WSGI0174` with its type and the
/// interpreter, then the traceback; `WSGI0175` for `SystemExit`), written together with the
/// GIL released once (not once per line).
fn log_exception(ex: &Exchange, script: &str, group: &str) {
    let headline = error::headline(script, group, Some(&request_file(ex, script)));
    let traceback = error::take_traceback();
    crate::gil::outside(|| {
        ex.log(level::ERR, &headline);
        for line in &traceback {
            ex.log(level::ERR, line);
        }
    });
}
