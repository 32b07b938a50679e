//! The environ the module hands to the engine, as bytes: Apache's CGI variables with
//! mod_wsgi's adjustments (SCRIPT_NAME/PATH_INFO split, PATH_TRANSLATED, trusted proxy
//! headers, `mod_wsgi.*` keys).

use super::apache;
use super::config::{AppOptions, MapHead};
use super::proxy;
use super::request::RequestRec;
use super::trampoline::trampoline;
use std::ffi::c_int;

/// SCRIPT_NAME and PATH_INFO as Apache mapped the request (before any trusted proxy header).
pub(super) struct MappedPath {
    pub(super) script_name: Vec<u8>,
    pub(super) path_info: Vec<u8>,
}

impl MappedPath {
    pub(super) fn of(r: &RequestRec) -> MappedPath {
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
pub(super) fn build_environ(r: &RequestRec, options: &AppOptions, mapped: &MappedPath) -> Vec<(Vec<u8>, Vec<u8>)> {
    // SAFETY: live request; fills r->subprocess_env with the server and HTTP_* variables.
    unsafe { apache::ap_add_common_vars(r.as_ptr()) };
    let env = r.subprocess_env();
    if options.pass_authorization == Some(true) {
        // As bytes: a credential in latin-1 (or any non-UTF-8 byte) arrives as it was sent.
        if let Some(auth) = r.headers_in().get_bytes(c"Authorization") {
            env.set("HTTP_AUTHORIZATION", auth);
        }
    }
    let mut environ = env.entries();
    // A `SetEnv` (or `RewriteRule [E=...]`, or an `.htaccess` with FileInfo) must not pass for
    // the module's own values: the application would see a second copy, and a daemon reads
    // some of them (`request_start` for queue-timeout=, `script_reloading`).
    environ.retain(|(k, _)| !MODULE_VALUES.contains(&k.as_slice()));
    // What ap_add_cgi_vars adds (its PATH_TRANSLATED by a quieter lookup, see path_translated),
    // and mod_wsgi's record of SCRIPT_NAME and PATH_INFO before proxy headers rewrite them.
    let translated = path_translated(r);
    let mut set = |key: &str, value: &[u8]| set_var(&mut environ, key, value);
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
    let scheme_from_proxy = match &options.trusted_proxy_headers {
        Some(headers) => proxy::apply(&mut environ, &proxy::Trust { headers, proxies: options.trusted_proxies.as_deref() }),
        None => false,
    };
    // The connection's own scheme, unless a trusted proxy header said what the client's was
    // (mod_wsgi 6.1). mod_ssl's fixups (which set HTTPS=on) have not run yet for an auth script.
    if !scheme_from_proxy && r.scheme() == b"https" {
        set_var(&mut environ, "HTTPS", b"1");
    }
    let (listener_host, listener_port) = r.listener();
    environ.push((b"mod_wsgi.listener_host".to_vec(), listener_host.into_bytes()));
    environ.push((b"mod_wsgi.listener_port".to_vec(), listener_port.to_string().into_bytes()));
    environ.push((b"mod_wsgi.request_start".to_vec(), r.request_time().to_string().into_bytes()));
    environ.push((b"mod_wsgi.handler_script".to_vec(), Vec::new()));
    // What the application sees (mod_wsgi 4.9's key); the daemon reads its own entry
    // (`daemon::IGNORE_ACTIVITY_KEY`), which the handler adds.
    let ignore = if options.ignore_activity == Some(true) { b"1" } else { b"0" };
    environ.push((b"mod_wsgi.ignore_activity".to_vec(), ignore.to_vec()));
    environ.push((b"mod_wsgi.request_handler".to_vec(), b"wsgi-script".to_vec()));
    let reloading = if options.script_reloading == Some(false) { b"0" } else { b"1" };
    environ.push((b"mod_wsgi.script_reloading".to_vec(), reloading.to_vec()));
    environ.push((b"mod_wsgi.process_group".to_vec(), Vec::new()));
    environ
}

/// The `mod_wsgi.*` values the module (or a daemon, or Apache's child on the way to it) sets
/// itself, always: none may come from the request's variables.
const MODULE_VALUES: &[&[u8]] = &[
    b"mod_wsgi.listener_host",
    b"mod_wsgi.listener_port",
    b"mod_wsgi.request_start",
    b"mod_wsgi.queue_start",
    b"mod_wsgi.daemon_start",
    b"mod_wsgi.handler_script",
    b"mod_wsgi.ignore_activity",
    b"mod_wsgi.request_handler",
    b"mod_wsgi.script_reloading",
    b"mod_wsgi.process_group",
    b"mod_wsgi.application_group",
    b"mod_wsgi.callable_object",
    b"mod_wsgi.script_name",
    b"mod_wsgi.path_info",
];

/// Sets `key` to `value`, replacing any value it had.
fn set_var(environ: &mut Vec<(Vec<u8>, Vec<u8>)>, key: &str, value: &[u8]) {
    environ.retain(|(k, _)| k != key.as_bytes());
    environ.push((key.as_bytes().to_vec(), value.to_vec()));
}

/// Whether `key` is one of the module's words to the engine and the daemons, which only the
/// module may write and a `SetEnv` copy must never pass for: the group's
/// `WSGIPerInterpreterGIL`, replicas, other `<WSGIInterpreterOptions>` settings,
/// WSGIIgnoreActivity's and WSGIPassApacheRequest's entries.
pub(super) fn is_module_word(key: &[u8]) -> bool {
    key == crate::abi::gil_mode::ENVIRON_KEY
        || key == crate::abi::replicas::ENVIRON_KEY
        || key == crate::abi::interpreter_options::ENVIRON_KEY
        || key == super::daemon::IGNORE_ACTIVITY_KEY
        || key == crate::abi::request_rec::ENVIRON_KEY
}

/// A note on the request while its PATH_TRANSLATED sub-request runs.
const LOOKUP_NOTE: &str = "mod_wsgi.path_translated_lookup";

/// CGI's PATH_TRANSLATED, as ap_add_cgi_vars computes it: PATH_INFO looked up as a URL, its
/// file name and path info. Only the mapping is wanted, so [`post_perdir_config`] ends the
/// sub-request before its access checks, which would otherwise log an error (AH01630) for
/// every request whose PATH_INFO happens to name a denied URL.
fn path_translated(r: &RequestRec) -> Option<Vec<u8>> {
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
    trampoline("post_perdir_config", apache::DECLINED, || {
        // SAFETY: Apache passes the live request.
        let request = unsafe { RequestRec::from_raw(r) };
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
fn request_method<'a>(r: &'a RequestRec, options: &AppOptions) -> &'a [u8] {
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
