//! The handler: decides whether a request is ours and may run (ExecCGI, embedded mode),
//! expands its application group and callable, and hands it to the engine (the callbacks
//! the engine calls back are in `callbacks.rs`, the environ in `environ.rs`, URL mapping in
//! `translate.rs`).

use super::apache;
use super::callbacks::CallbackContext;
use super::config::{AppOptions, HandlerScript, Merge};
use super::daemon;
use super::environ::{build_environ, MappedPath};
use super::group_name::{expand_callable, GroupSpec, RequestFacts};
use super::hooks::engine;
use super::log;
use super::record::{dir_config, server_config};
use super::request::RequestRec;
use super::trampoline::trampoline;
use super::translate::ALIAS_NOTE;
use crate::abi;
use std::ffi::c_int;

/// The handler names that select us, as in mod_wsgi.
const HANDLERS: [&str; 2] = ["wsgi-script", "application/x-httpd-wsgi"];
/// What a `WSGIHandlerScript` calls, as in mod_wsgi.
const HANDLER_CALLABLE: &str = "handle_request";

pub unsafe extern "C" fn handler(r: *mut apache::request_rec) -> c_int {
    trampoline("the request handler", apache::HTTP_INTERNAL_SERVER_ERROR as c_int, || {
        // SAFETY: Apache passes the live request.
        let request = unsafe { RequestRec::from_raw(r) };
        let Some(name) = request.handler() else { return apache::DECLINED };
        if HANDLERS.contains(&name) {
            return serve(request, None);
        }
        if name == super::metrics::status::HANDLER {
            return super::metrics::status::handle(request);
        }
        // A WSGIHandlerScript of this name, defined here or in an enclosing context (looked
        // for only where some are defined: most requests with another handler are files).
        // SAFETY: live request; both config vectors hold our records.
        let (server, dir) = unsafe { (server_config(request.server()), dir_config(request.per_dir_config())) };
        if server.options.handler_scripts.is_empty() && dir.options.handler_scripts.is_empty() {
            return apache::DECLINED;
        }
        let handler_script = effective_options(request).handler_scripts.into_iter().find(|s| s.name == name);
        match handler_script {
            Some(script) => serve(request, Some(script)),
            None => apache::DECLINED,
        }
    })
}

/// mod_wsgi's precedence: the alias's options, then the directory's, then the server's.
pub(super) fn effective_options(r: &RequestRec) -> AppOptions {
    // SAFETY: live request; both config vectors hold our records.
    let (server, dir) = unsafe { (server_config(r.server()), dir_config(r.per_dir_config())) };
    let mut options = AppOptions::merge(&server.options, &dir.options);
    let alias = r.notes().get(ALIAS_NOTE).and_then(|i| i.parse::<usize>().ok()).and_then(|i| server.aliases.get(i));
    if let Some(alias) = alias {
        options = AppOptions::merge(&options, &alias.options);
    }
    options
}

/// Bytes from Python as latin-1 text (what the engine sends for a `str`), one char per byte:
/// distinct names stay distinct.
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Whether a `WSGIScriptAlias` (which only the administrator can write) mapped the request,
/// rather than a handler directive (`AddHandler`, `SetHandler`, which `.htaccess` can hold).
fn is_script_aliased(r: &RequestRec) -> bool {
    r.notes().get(ALIAS_NOTE).is_some()
}

/// Serves the request: with the requested file as the WSGI script, or (`handler_script`)
/// with the `handle_request` of the script a `WSGIHandlerScript` names, the requested file
/// being only its `SCRIPT_FILENAME`.
fn serve(r: &mut RequestRec, handler_script: Option<HandlerScript>) -> c_int {
    let script_path = match &handler_script {
        Some(h) => h.script.clone().into_bytes(),
        None => r.filename().to_vec(),
    };
    let script = String::from_utf8_lossy(&script_path).into_owned();
    // As mod_wsgi, which reads ExecCGI as "may run scripts" though no process is started: on a
    // shared host a customer's `.htaccess` may say `AddHandler wsgi-script .wsgi`, but runs
    // the file only where the administrator allowed scripts. A handler script is the
    // administrator's (never defined in `.htaccess`) and the requested file is only its
    // input: as in mod_wsgi, neither check applies.
    if handler_script.is_none() && !is_script_aliased(r) && !r.allows_exec_cgi() {
        log::request(log::ERR, r.as_ptr(), &format!("WSGI0134: Options ExecCGI is off in this directory: {script}"));
        return apache::HTTP_FORBIDDEN as c_int;
    }
    match r.file_type() {
        _ if handler_script.is_some() => {}
        apache::APR_NOFILE => {
            log::request(log::ERR, r.as_ptr(), &format!("WSGI0135: Target WSGI script not found or unable to stat: {script}"));
            return apache::HTTP_NOT_FOUND as c_int;
        }
        apache::APR_DIR => {
            log::request(log::ERR, r.as_ptr(), &format!("WSGI0136: Attempt to invoke directory as WSGI application: {script}"));
            return apache::HTTP_FORBIDDEN as c_int;
        }
        _ => {}
    }
    // AcceptPathInfo Off: a URL with more path than the script is not found (mod_wsgi).
    if r.rejects_path_info() && !r.path_info_bytes().is_empty() {
        log::request(log::ERR, r.as_ptr(), &format!("WSGI0137: AcceptPathInfo off disallows user's path: {script}"));
        return apache::HTTP_NOT_FOUND as c_int;
    }
    let mut options = effective_options(r);
    if let Some(h) = &handler_script {
        options = AppOptions::merge(&options, &h.options);
        options.callable = Some(HANDLER_CALLABLE.to_string());
    }
    // Without WSGIChunkedRequest, a chunked body is Apache's 411 (as in mod_wsgi): many WSGI
    // applications misread a body without CONTENT_LENGTH.
    let chunked = if options.chunked_request == Some(true) { apache::REQUEST_CHUNKED_DECHUNK } else { apache::REQUEST_CHUNKED_ERROR };
    // SAFETY: live request.
    let status = unsafe { apache::ap_setup_client_block(r.as_ptr(), chunked as c_int) };
    if status != apache::OK as c_int {
        return status;
    }
    let mapped = MappedPath::of(r);
    let mut environ = build_environ(r, &options, &mapped);
    if let Some(h) = &handler_script {
        // mod_wsgi's keys for a handler script's request.
        for (key, value) in [(&b"mod_wsgi.handler_script"[..], h.script.as_bytes()), (b"mod_wsgi.request_handler", h.name.as_bytes())] {
            if let Some(entry) = environ.iter_mut().find(|(k, _)| k == key) {
                entry.1 = value.to_vec();
            }
        }
    }
    // The module's words to the engine and the daemons (added below) never come from SetEnv:
    // the group's WSGIPerInterpreterGIL (`abi::gil_mode::ENVIRON_KEY`), its replicas
    // (`abi::replicas`), its other `<WSGIInterpreterOptions>` settings
    // (`abi::interpreter_options`), WSGIIgnoreActivity's and WSGIPassApacheRequest's entries.
    environ.retain(|(k, _)| !super::environ::is_module_word(k));
    // The group comes from the request as Apache mapped it: never from a proxy header, which
    // a client can send (WSGITrustedProxies may be unset, and X-Script-Name rewrites SCRIPT_NAME).
    let facts = Facts { r, script_name: &mapped.script_name };
    let mut group = GroupSpec::expand(options.group.as_ref(), &facts);
    let mut callable = expand_callable(options.callable.as_deref(), &facts);
    // No WSGIProcessGroup (or %{GLOBAL}) is embedded mode: the empty name.
    let mut process_group = options.process_group.as_ref().map(|spec| GroupSpec::expand(Some(spec), &facts)).unwrap_or_default();
    if let Some(dispatch) = &options.dispatch_script {
        let answers = match super::dispatch::run(r, &facts, &environ, dispatch) {
            Ok(answers) => answers,
            Err(status) => return status,
        };
        let expand = |name: &str, value: &[u8]| {
            let text = latin1(value);
            if text.contains('\0') {
                log::request(
                    log::ERR,
                    r.as_ptr(),
                    &format!("WSGIDispatchScript '{}': the {name} it returned holds a NUL character.", dispatch.script),
                );
                return Err(apache::HTTP_INTERNAL_SERVER_ERROR as c_int);
            }
            GroupSpec::parse(&text).map(|spec| GroupSpec::expand(Some(&spec), &facts)).map_err(|e| {
                log::request(log::ERR, r.as_ptr(), &format!("WSGIDispatchScript '{}': {name} '{text}': {e}", dispatch.script));
                apache::HTTP_INTERNAL_SERVER_ERROR as c_int
            })
        };
        for (value, slot, name) in
            [(&answers.process_group, &mut process_group, "process group"), (&answers.application_group, &mut group, "application group")]
        {
            if let Some(value) = value {
                match expand(name, value) {
                    Ok(expanded) => *slot = expanded,
                    Err(status) => return status,
                }
            }
        }
        // Replicas named here (replicas= of the directory or alias) are of the configured
        // group, not of one the script chose.
        if answers.application_group.is_some() {
            options.replicas = None;
        }
        if let Some(value) = &answers.callable_object {
            callable = expand_callable(Some(&latin1(value)), &facts);
        }
    }
    if let Some(entry) = environ.iter_mut().find(|(k, _)| k == b"mod_wsgi.process_group") {
        entry.1 = process_group.clone().into_bytes();
    }
    environ.push((b"mod_wsgi.application_group".to_vec(), group.clone().into_bytes()));
    environ.push((b"mod_wsgi.callable_object".to_vec(), callable.clone().into_bytes()));
    // WSGIPassApacheRequest: the request_rec for the engine's capsule, in embedded mode only.
    if options.pass_apache_request == Some(true) && process_group.is_empty() {
        environ.push((abi::request_rec::ENVIRON_KEY.to_vec(), (r.as_ptr() as usize).to_string().into_bytes()));
    }
    // WSGIIgnoreActivity, for the daemon's inactivity-timeout (embedded mode has none).
    if options.ignore_activity == Some(true) && !process_group.is_empty() {
        environ.push((super::daemon::IGNORE_ACTIVITY_KEY.to_vec(), b"1".to_vec()));
    }
    // SAFETY: every request has a live server_rec with our config.
    let server = unsafe { server_config(r.server()) };
    environ.extend(server.interpreter_entries(&process_group, &group));
    let replicas = server.replicas(options.replicas, &process_group, &group);
    if replicas > 1 {
        environ.push((abi::replicas::ENVIRON_KEY.to_vec(), replicas.to_string().into_bytes()));
    }
    let pairs: Vec<abi::Pair> = environ.iter().map(|(k, v)| abi::Pair { name: abi::Bytes::new(k), value: abi::Bytes::new(v) }).collect();

    let error_override = options.error_override == Some(true);
    if !may_select(options.restrict_process.as_deref(), &process_group) {
        log::request(
            log::ERR,
            r.as_ptr(),
            &format!("Daemon process called '{process_group}' cannot be accessed by this WSGI application as not a member of allowed groups."),
        );
        return apache::HTTP_INTERNAL_SERVER_ERROR as c_int;
    }
    // Written by the engine through the request during its call, read after it.
    let mut python_wait = abi::PythonWait::default();
    // The serving interpreter's figures (embedded mode; a daemon's stay at their defaults).
    let mut figures = abi::GroupFigures::default();
    let mut ctx = CallbackContext::new(r, error_override, options.enable_sendfile == Some(true));
    let request = ctx.engine_request(&pairs, &script_path, callable.as_bytes(), group.as_bytes(), Some(&mut python_wait), Some(&mut figures));
    let began = std::time::Instant::now();
    // On the status board from here; a return without `end` counts as a 500 (its drop).
    let entry = super::metrics::board::begin(&process_group, &group);
    let (outcome, tracker) = if process_group.is_empty() {
        // SAFETY: every request has a live server_rec with our config.
        if unsafe { server_config(r.server()) }.restrict_embedded == Some(true) {
            log::request(log::ERR, r.as_ptr(), &format!("WSGI0143: Embedded mode of mod_wsgi disabled by runtime configuration: {script}"));
            return apache::HTTP_INTERNAL_SERVER_ERROR as c_int;
        }
        let Some(engine) = engine() else {
            log::request(log::ERR, r.as_ptr(), "no Python engine is running in this process; see the child start-up lines in the error log");
            return apache::HTTP_INTERNAL_SERVER_ERROR as c_int;
        };
        let tracker = super::metrics::begin(since_read(r), None, None, || describe(r, &mapped, &process_group, &group));
        // SAFETY: request and everything it points to (ctx, python_wait, figures, pairs, the
        // strings) outlive the call; none of ctx, python_wait and figures is touched during it
        // but through it.
        (unsafe { (engine.handle)(&request) }, tracker)
    } else {
        match daemon::client::serve(r.as_ptr(), &process_group, &request, error_override) {
            Ok(outcome) => (outcome, None),
            Err(status) => {
                if let Some(entry) = entry {
                    entry.end(status, began.elapsed().as_secs_f64(), 0.0);
                }
                return status;
            }
        }
    };
    let status = ctx.status_of(outcome);
    let sent = if status == apache::OK as c_int { r.status() } else { status };
    if let Some(tracker) = tracker {
        tracker.finish(sent, ctx.traffic, ctx.input_time.as_secs_f64(), ctx.output_time.as_secs_f64(), python_wait);
    }
    if let Some(entry) = entry {
        entry.gauges(&figures);
        entry.end(sent, began.elapsed().as_secs_f64(), python_wait.nanos as f64 / 1e9);
    }
    status
}

/// Seconds since Apache read the request line (mod_wsgi's "server time" of a request).
fn since_read(r: &RequestRec) -> f64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
    (now - r.request_time()).max(0) as f64 / 1e6
}

/// A request as telemetry's slow-request reports describe it.
fn describe(r: &RequestRec, mapped: &MappedPath, process_group: &str, group: &str) -> super::metrics::Describe {
    let user_agent = r.headers_in().get_bytes(c"User-Agent").unwrap_or_default();
    let path_info = if mapped.path_info.is_empty() && mapped.script_name.is_empty() { r.uri_bytes() } else { &mapped.path_info };
    super::metrics::Describe::new([
        r.method(),
        r.scheme(),
        r.hostname_bytes(),
        &mapped.script_name,
        path_info,
        r.protocol(),
        r.useragent_ip(),
        user_agent,
        r.log_id(),
        process_group.as_bytes(),
        group.as_bytes(),
    ])
}

/// `WSGIRestrictProcess`: whether requests here may go to `process_group` (empty: embedded).
/// Names compare without regard to case, as in mod_wsgi (an APR table).
fn may_select(allowed: Option<&[String]>, process_group: &str) -> bool {
    match allowed {
        None => true,
        Some(allowed) => allowed.iter().any(|g| g.eq_ignore_ascii_case(process_group)),
    }
}

/// Group-name expansion reads the request through this.
pub(super) struct Facts<'a> {
    pub(super) r: &'a RequestRec,
    /// SCRIPT_NAME as Apache mapped the request.
    pub(super) script_name: &'a [u8],
}

impl RequestFacts for Facts<'_> {
    fn server_hostname(&self) -> String {
        self.r.server_hostname()
    }
    fn request_hostname(&self) -> Option<String> {
        self.r.hostname()
    }
    fn server_port(&self) -> u16 {
        self.r.listener().1
    }
    fn script_name(&self) -> String {
        String::from_utf8_lossy(self.script_name).into_owned()
    }
    fn variable(&self, name: &str) -> Option<String> {
        self.r.notes().get(name).or_else(|| self.r.subprocess_env().get(name)).or_else(|| std::env::var(name).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::may_select;

    #[test]
    fn restrict_process() {
        let allowed = ["site".to_string(), String::new()];
        assert!(may_select(None, "any"));
        assert!(may_select(Some(&allowed), "site"));
        assert!(may_select(Some(&allowed), "SITE"));
        assert!(may_select(Some(&allowed), ""));
        assert!(!may_select(Some(&allowed), "other"));
        assert!(!may_select(Some(&[]), ""));
    }
}
