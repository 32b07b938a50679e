//! The request path on the Apache side: mapping URLs to scripts (translate_name), then the
//! handler that describes the request to the engine and serves its callbacks.

use super::alias::prefix_match;
use super::apache;
use super::daemon;
use super::config::{AppOptions, MapHead, Merge, UrlMatch};
use super::proxy;
use super::group_name::{expand_callable, GroupSpec, RequestFacts};
use super::hooks::engine;
use super::log;
use super::record::{dir_config, server_config};
use super::request::Request;
use super::trampoline::guard;
use crate::abi;
use std::ffi::{c_int, c_void, CStr, CString};

/// The handler names that select us, as in mod_wsgi.
const HANDLERS: [&str; 2] = ["wsgi-script", "application/x-httpd-wsgi"];
/// Request note naming the alias that mapped the request (its index in the server's list).
const ALIAS_NOTE: &str = "mod_wsgi.alias";

pub unsafe extern "C" fn translate_name(r: *mut apache::request_rec) -> c_int {
    guard("translate_name", apache::DECLINED, || {
        // SAFETY: Apache passes the live request.
        let request = unsafe { Request::from_raw(r) };
        translate(request).unwrap_or(apache::DECLINED)
    })
}

fn translate(r: &mut Request) -> Option<c_int> {
    // Bytes, not text: Apache has decoded the URI, and `/app/caf%E9` (latin-1) must reach the
    // application as surely as `/app/caf%C3%A9`.
    let uri = r.uri_bytes().to_vec();
    if !uri.starts_with(b"/") {
        return None;
    }
    // SAFETY: every request has a live server_rec with our config.
    let config = unsafe { server_config(r.server()) };
    for (index, alias) in config.aliases.iter().enumerate() {
        let (target, matched) = match &alias.url {
            UrlMatch::Prefix(prefix) => match prefix_match(&uri, prefix) {
                // A prefix ending in '/' (such as a mount at '/') consumed the slash that starts
                // PATH_INFO: give it back, so '/x' under '/' maps to 'app.wsgi/x', not 'app.wsgix'.
                Some(matched) if prefix.ends_with('/') => (alias.target.clone().into_bytes(), matched - 1),
                Some(matched) => (alias.target.clone().into_bytes(), matched),
                None => continue,
            },
            UrlMatch::Regex { compiled, .. } => match regex_target(r, *compiled, &alias.target, &uri) {
                Some(found) => found,
                None => continue,
            },
        };
        // The first alias that matches wins, as in mod_wsgi.
        r.set_filename(&[&target[..], &uri[matched..]].concat());
        r.set_handler("wsgi-script");
        r.notes().set(ALIAS_NOTE, index.to_string().as_bytes());
        return Some(apache::OK as c_int);
    }
    None
}

fn regex_target(r: &Request, regex: *mut apache::ap_regex_t, target: &str, uri: &[u8]) -> Option<(Vec<u8>, usize)> {
    const N: usize = apache::AP_MAX_REG_MATCH as usize;
    let mut matches = [apache::ap_regmatch_t { rm_so: 0, rm_eo: 0 }; N];
    let c_uri = CString::new(uri).ok()?;
    let c_target = CString::new(target).ok()?;
    // SAFETY: regex was compiled by ap_pregcomp; matches has room for N entries.
    if unsafe { apache::ap_regexec(regex, c_uri.as_ptr(), N, matches.as_mut_ptr(), 0) } != 0 {
        return None;
    }
    // SAFETY: the same live uri and match array; ap_pregsub allocates in the request pool.
    let expanded = unsafe { apache::ap_pregsub(r.pool(), c_target.as_ptr(), c_uri.as_ptr(), N, matches.as_mut_ptr()) };
    if expanded.is_null() {
        return None;
    }
    // SAFETY: ap_pregsub returns a NUL-terminated pool string.
    let expanded = unsafe { CStr::from_ptr(expanded) }.to_bytes().to_vec();
    Some((expanded, usize::try_from(matches[0].rm_eo).ok()?))
}

pub unsafe extern "C" fn handler(r: *mut apache::request_rec) -> c_int {
    guard("the request handler", apache::HTTP_INTERNAL_SERVER_ERROR as c_int, || {
        // SAFETY: Apache passes the live request.
        let request = unsafe { Request::from_raw(r) };
        if !request.handler().is_some_and(|h| HANDLERS.contains(&h)) {
            return apache::DECLINED;
        }
        serve(request)
    })
}

/// mod_wsgi's precedence: the alias's options, then the directory's, then the server's.
fn effective_options(r: &Request) -> AppOptions {
    // SAFETY: live request; both config vectors hold our records.
    let (server, dir) = unsafe { (server_config(r.server()), dir_config(r.per_dir_config())) };
    let mut options = AppOptions::merge(&server.options, &dir.options);
    let alias = r.notes().get(ALIAS_NOTE).and_then(|i| i.parse::<usize>().ok()).and_then(|i| server.aliases.get(i));
    if let Some(alias) = alias {
        options = AppOptions::merge(&options, &alias.options);
    }
    options
}

/// Whether a `WSGIScriptAlias` (which only the administrator can write) mapped the request,
/// rather than a handler directive (`AddHandler`, `SetHandler`, which `.htaccess` can hold).
fn is_script_aliased(r: &Request) -> bool {
    r.notes().get(ALIAS_NOTE).is_some()
}

fn serve(r: &mut Request) -> c_int {
    let script_path = r.filename().to_vec();
    let script = String::from_utf8_lossy(&script_path).into_owned();
    // As mod_wsgi, which reads ExecCGI as "may run scripts" though no process is started: on a
    // shared host a customer's `.htaccess` may say `AddHandler wsgi-script .wsgi`, but runs
    // the file only where the administrator allowed scripts.
    if !is_script_aliased(r) && !r.allows_exec_cgi() {
        log::request(log::ERR, r.as_ptr(), &format!("Options ExecCGI is off in this directory: {script}"));
        return apache::HTTP_FORBIDDEN as c_int;
    }
    match r.file_type() {
        apache::APR_NOFILE => {
            log::request(log::ERR, r.as_ptr(), &format!("Target WSGI script not found or unable to stat: {script}"));
            return apache::HTTP_NOT_FOUND as c_int;
        }
        apache::APR_DIR => {
            log::request(log::ERR, r.as_ptr(), &format!("Attempt to invoke directory as WSGI application: {script}"));
            return apache::HTTP_FORBIDDEN as c_int;
        }
        _ => {}
    }
    // SAFETY: live request.
    let options = effective_options(r);
    // Without WSGIChunkedRequest, a chunked body is Apache's 411 (as in mod_wsgi): many WSGI
    // applications misread a body without CONTENT_LENGTH.
    let chunked = if options.chunked_request == Some(true) { apache::REQUEST_CHUNKED_DECHUNK } else { apache::REQUEST_CHUNKED_ERROR };
    // SAFETY: live request.
    let status = unsafe { apache::ap_setup_client_block(r.as_ptr(), chunked as c_int) };
    if status != apache::OK as c_int {
        return status;
    }
    let mapped = MappedPath::of(r);
    let environ = build_environ(r, &options, &mapped);
    // The group comes from the request as Apache mapped it: never from a proxy header, which
    // a client can send (WSGITrustedProxies may be unset, and X-Script-Name rewrites SCRIPT_NAME).
    let facts = Facts { r, script_name: &mapped.script_name };
    let group = GroupSpec::expand(options.group.as_ref(), &facts);
    let callable = expand_callable(options.callable.as_deref(), &facts);
    // No WSGIProcessGroup (or %{GLOBAL}) is embedded mode: the empty name.
    let process_group = options.process_group.as_ref().map(|spec| GroupSpec::expand(Some(spec), &facts)).unwrap_or_default();
    let mut environ = environ;
    if let Some(entry) = environ.iter_mut().find(|(k, _)| k == b"mod_wsgi.process_group") {
        entry.1 = process_group.clone().into_bytes();
    }
    environ.push((b"mod_wsgi.application_group".to_vec(), group.clone().into_bytes()));
    environ.push((b"mod_wsgi.callable_object".to_vec(), callable.clone().into_bytes()));
    let pairs: Vec<abi::Pair> =
        environ.iter().map(|(k, v)| abi::Pair { name: abi::Bytes::new(k), value: abi::Bytes::new(v) }).collect();

    let mut ctx = Exchange {
        r: r.as_ptr(),
        body_checked: false,
        has_body: false,
        error_override: options.error_override == Some(true),
        override_status: None,
    };
    let request = abi::Request {
        ctx: (&mut ctx as *mut Exchange).cast(),
        environ: pairs.as_ptr(),
        environ_len: pairs.len(),
        script: abi::Bytes::new(&script_path),
        callable: abi::Bytes::new(callable.as_bytes()),
        group: abi::Bytes::new(group.as_bytes()),
        read: read_body,
        start: start_response,
        write: write_body,
        send_file,
        log: log_line,
    };
    let outcome = if process_group.is_empty() {
        // SAFETY: every request has a live server_rec with our config.
        if unsafe { server_config(r.server()) }.restrict_embedded == Some(true) {
            log::request(log::ERR, r.as_ptr(), &format!("Embedded mode of mod_wsgi disabled by runtime configuration: {script}"));
            return apache::HTTP_INTERNAL_SERVER_ERROR as c_int;
        }
        let Some(engine) = engine() else {
            log::request(log::ERR, r.as_ptr(), "no Python engine is running in this process; see the child start-up lines in the error log");
            return apache::HTTP_INTERNAL_SERVER_ERROR as c_int;
        };
        // SAFETY: request and everything it points to outlive the call.
        unsafe { (engine.handle)(&request) }
    } else {
        match daemon::client::serve(r.as_ptr(), &process_group, &request) {
            Ok(outcome) => outcome,
            Err(status) => return status,
        }
    };
    match outcome {
        abi::Outcome::DONE => apache::OK as c_int,
        abi::Outcome::OVERRIDE => ctx.override_status.unwrap_or(apache::HTTP_INTERNAL_SERVER_ERROR as c_int),
        // TODO(issue 9): abort the connection (c->aborted, no EOS) so the client sees a truncated response.
        abi::Outcome::ABORTED => apache::OK as c_int,
        abi::Outcome::NOT_FOUND => apache::HTTP_NOT_FOUND as c_int,
        abi::Outcome::UNAVAILABLE => apache::HTTP_SERVICE_UNAVAILABLE as c_int,
        // SERVER_ERROR, and any value an engine should not have returned.
        _ => apache::HTTP_INTERNAL_SERVER_ERROR as c_int,
    }
}

/// SCRIPT_NAME and PATH_INFO as Apache mapped the request (before any trusted proxy header).
struct MappedPath {
    script_name: Vec<u8>,
    path_info: Vec<u8>,
}

impl MappedPath {
    fn of(r: &Request) -> MappedPath {
        let script_name = &r.uri_bytes()[..r.script_name_len()];
        // A mount at "/" (or any SCRIPT_NAME ending in '/') hands its slash to PATH_INFO, so that
        // SCRIPT_NAME + PATH_INFO is the URL and SCRIPT_NAME never ends in '/' (PEP 3333).
        match script_name.strip_suffix(b"/") {
            Some(trimmed) => MappedPath { script_name: trimmed.to_vec(), path_info: [b"/", r.path_info_bytes()].concat() },
            None => MappedPath { script_name: script_name.to_vec(), path_info: r.path_info_bytes().to_vec() },
        }
    }
}

/// The environ as bytes: Apache's CGI variables, with mod_wsgi's adjustments.
fn build_environ(r: &Request, options: &AppOptions, mapped: &MappedPath) -> Vec<(Vec<u8>, Vec<u8>)> {
    // SAFETY: live request; fills r->subprocess_env with the server and HTTP_* variables.
    unsafe { apache::ap_add_common_vars(r.as_ptr()) };
    let env = r.subprocess_env();
    if options.pass_authorization == Some(true) {
        if let Some(auth) = r.headers_in().get("Authorization") {
            env.set("HTTP_AUTHORIZATION", auth.as_bytes());
        }
    }
    let mut environ = env.entries();
    // What ap_add_cgi_vars adds (its PATH_TRANSLATED by a quieter lookup, see path_translated),
    // and mod_wsgi's record of SCRIPT_NAME and PATH_INFO before proxy headers rewrite them.
    let translated = path_translated(r);
    let mut set = |key: &str, value: &[u8]| {
        environ.retain(|(k, _)| k != key.as_bytes());
        environ.push((key.as_bytes().to_vec(), value.to_vec()));
    };
    set("GATEWAY_INTERFACE", b"CGI/1.1");
    set("SERVER_PROTOCOL", r.protocol());
    set("REQUEST_METHOD", request_method(r, options));
    set("QUERY_STRING", r.args());
    set("REQUEST_URI", r.request_target());
    set("SCRIPT_NAME", &mapped.script_name);
    set("PATH_INFO", &mapped.path_info);
    set("mod_wsgi.script_name", &mapped.script_name);
    set("mod_wsgi.path_info", &mapped.path_info);
    if let Some(translated) = &translated {
        set("PATH_TRANSLATED", translated);
    }
    if let Some(headers) = &options.trusted_proxy_headers {
        proxy::apply(&mut environ, r.client_ip(), headers, options.trusted_proxies.as_deref().unwrap_or(&[]));
    }
    let (listener_host, listener_port) = r.listener();
    environ.push((b"mod_wsgi.listener_host".to_vec(), listener_host.into_bytes()));
    environ.push((b"mod_wsgi.listener_port".to_vec(), listener_port.to_string().into_bytes()));
    environ.push((b"mod_wsgi.request_start".to_vec(), r.request_time().to_string().into_bytes()));
    environ.push((b"mod_wsgi.handler_script".to_vec(), Vec::new()));
    environ.push((b"mod_wsgi.ignore_activity".to_vec(), b"0".to_vec()));
    environ.push((b"mod_wsgi.request_handler".to_vec(), b"wsgi-script".to_vec()));
    let reloading = if options.script_reloading == Some(false) { b"0" } else { b"1" };
    environ.push((b"mod_wsgi.script_reloading".to_vec(), reloading.to_vec()));
    environ.push((b"mod_wsgi.process_group".to_vec(), Vec::new()));
    environ
}

/// A note on the request while its PATH_TRANSLATED sub-request runs.
const LOOKUP_NOTE: &str = "mod_wsgi.path_translated_lookup";

/// CGI's PATH_TRANSLATED, as ap_add_cgi_vars computes it: PATH_INFO looked up as a URL, its
/// file name and path info. Only the mapping is wanted, so [`post_perdir_config`] ends the
/// sub-request before its access checks, which would otherwise log an error (AH01630) for
/// every request whose PATH_INFO happens to name a denied URL.
fn path_translated(r: &Request) -> Option<Vec<u8>> {
    let path_info = r.path_info_bytes();
    if path_info.is_empty() {
        return None;
    }
    r.notes().set(LOOKUP_NOTE, b"1");
    let found = r.lookup_path(path_info);
    r.notes().unset(LOOKUP_NOTE);
    found
}

/// Ends our PATH_TRANSLATED sub-request once Apache has mapped it (see [`path_translated`]);
/// declines for every other request.
pub unsafe extern "C" fn post_perdir_config(r: *mut apache::request_rec) -> c_int {
    guard("post_perdir_config", apache::DECLINED, || {
        // SAFETY: Apache passes the live request.
        let request = unsafe { Request::from_raw(r) };
        if request.main().is_some_and(|main| main.notes().get(LOOKUP_NOTE).is_some()) {
            apache::DONE
        } else {
            apache::DECLINED
        }
    })
}

/// HEAD is shown to the application as GET where `WSGIMapHEADToGET` says so (Apache drops the
/// body either way), so that applications that skip the body for HEAD cannot get the
/// headers wrong (Content-Length, ETag) — or a filter such as mod_deflate, which needs the
/// body to compute them, gets one.
fn request_method<'a>(r: &'a Request, options: &AppOptions) -> &'a [u8] {
    let method = r.method();
    let map = match options.map_head.unwrap_or(MapHead::Auto) {
        MapHead::On => true,
        MapHead::Off => false,
        MapHead::Auto => r.has_content_filters(),
    };
    if method == b"HEAD" && map {
        b"GET"
    } else {
        method
    }
}

/// Group-name expansion reads the request through this.
struct Facts<'a> {
    r: &'a Request,
    /// SCRIPT_NAME as Apache mapped the request.
    script_name: &'a [u8],
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

/// The handler's side of one request, passed to the engine as the opaque context.
struct Exchange {
    r: *mut apache::request_rec,
    body_checked: bool,
    has_body: bool,
    /// `WSGIErrorOverride On`: an error status from the application is handed to Apache.
    error_override: bool,
    override_status: Option<c_int>,
}

/// # Safety
/// `ctx` must be the `Exchange` of the request being handled.
unsafe fn exchange<'a>(ctx: *mut c_void) -> &'a mut Exchange {
    // SAFETY: the engine passes back the ctx we gave it, during the handle call.
    unsafe { &mut *ctx.cast::<Exchange>() }
}

unsafe extern "C" fn read_body(ctx: *mut c_void, buf: *mut u8, len: usize) -> isize {
    guard("wsgi.input read", -1, || {
        // SAFETY: see exchange().
        let x = unsafe { exchange(ctx) };
        if !x.body_checked {
            x.body_checked = true;
            // SAFETY: live request; tells Apache we will read the body (sends 100-continue).
            x.has_body = unsafe { apache::ap_should_client_block(x.r) } != 0;
        }
        if !x.has_body || len == 0 {
            return 0;
        }
        // SAFETY: buf has room for len bytes (engine contract).
        let n = unsafe { apache::ap_get_client_block(x.r, buf.cast(), len as apache::apr_size_t) };
        if n < 0 {
            -1
        } else {
            n as isize
        }
    })
}

unsafe extern "C" fn start_response(ctx: *mut c_void, status: abi::Bytes, headers: *const abi::Pair, len: usize) -> c_int {
    guard("start_response", -1, || {
        // SAFETY: see exchange(); the engine's byte strings are valid for the call.
        let (x, status) = unsafe { (exchange(ctx), status.as_slice()) };
        // SAFETY: x.r is the live request.
        let r = unsafe { Request::from_raw(x.r) };
        let status = String::from_utf8_lossy(status).into_owned();
        let Some(code) = status.get(..3).and_then(|c| c.parse::<i32>().ok()) else { return -1 };
        if x.error_override && code >= 400 {
            // Apache's ErrorDocument machinery produces the response instead.
            x.override_status = Some(code);
            return 1;
        }
        r.set_status(code, &status);
        let headers = if headers.is_null() || len == 0 {
            &[][..]
        } else {
            // SAFETY: the engine passes `len` pairs.
            unsafe { std::slice::from_raw_parts(headers, len) }
        };
        for pair in headers {
            // SAFETY: pair strings are valid for the call.
            let (name, value) = unsafe { (pair.name.as_slice(), pair.value.as_slice()) };
            let name = String::from_utf8_lossy(name);
            if name.eq_ignore_ascii_case("Content-Type") {
                let v = CString::new(value.to_vec()).unwrap_or_default();
                // SAFETY: the type is copied into the request pool before Apache keeps it.
                unsafe { apache::ap_set_content_type(x.r, apache::apr_pstrdup(r.pool(), v.as_ptr())) };
            } else if name.eq_ignore_ascii_case("Content-Length") {
                let Some(length) = std::str::from_utf8(value).ok().and_then(|v| v.trim().parse::<i64>().ok()) else { return -1 };
                // SAFETY: live request.
                unsafe { apache::ap_set_content_length(x.r, length) };
            } else {
                r.headers_out().add(&name, value);
            }
        }
        0
    })
}

unsafe extern "C" fn write_body(ctx: *mut c_void, data: abi::Bytes) -> c_int {
    guard("response write", -1, || {
        // SAFETY: see exchange(); data is valid for the call.
        let (x, data) = unsafe { (exchange(ctx), data.as_slice()) };
        // SAFETY: live request; Apache copies or sends the bytes before returning.
        let n = unsafe {
            if data.is_empty() {
                apache::ap_rflush(x.r)
            } else {
                apache::ap_rwrite(data.as_ptr().cast(), data.len() as c_int, x.r)
            }
        };
        if n < 0 {
            -1
        } else {
            0
        }
    })
}

unsafe extern "C" fn send_file(ctx: *mut c_void, fd: c_int, offset: u64, len: u64) -> c_int {
    guard("wsgi.file_wrapper", -1, || {
        // SAFETY: see exchange().
        let x = unsafe { exchange(ctx) };
        // SAFETY: x.r is the live request.
        let r = unsafe { Request::from_raw(x.r) };
        let (Ok(offset), Ok(len)) = (apache::apr_off_t::try_from(offset), apache::apr_off_t::try_from(len)) else { return -1 };
        let mut file: *mut apache::apr_file_t = std::ptr::null_mut();
        let mut os_fd = fd;
        // SAFETY: wraps the engine's open descriptor without taking ownership (no cleanup that
        // would close it); the pool outlives the send.
        let status = unsafe { apache::apr_os_file_put(&mut file, &mut os_fd, (apache::APR_FOPEN_READ | apache::APR_FOPEN_SENDFILE_ENABLED) as i32, r.pool()) };
        if status != 0 {
            return -1;
        }
        // SAFETY: a brigade from the request pool; the file bucket(s) refer to `file`.
        let rc = unsafe {
            let bb = apache::apr_brigade_create(r.pool(), r.bucket_alloc());
            apache::apr_brigade_insert_file(bb, file, offset, len, r.pool());
            let rc = apache::ap_pass_brigade(r.output_filters(), bb);
            apache::apr_brigade_destroy(bb);
            // The engine may close the file as soon as we return: make Apache write all of it
            // now rather than keep the file bucket set aside.
            if rc == 0 {
                apache::ap_rflush(x.r)
            } else {
                -1
            }
        };
        if rc < 0 {
            -1
        } else {
            0
        }
    })
}

unsafe extern "C" fn log_line(ctx: *mut c_void, level: c_int, message: abi::Bytes) {
    guard("request log", (), || {
        // SAFETY: see exchange(); message is valid for the call.
        let (x, message) = unsafe { (exchange(ctx), message.as_slice()) };
        log::request(level, x.r, &String::from_utf8_lossy(message));
    })
}
