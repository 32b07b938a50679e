//! The directive table, in one place, and one small parser per directive.
//!
//! Each handler runs through [`directive`], which catches panics and turns an `Err(String)` into
//! the message Apache prints with the config file and line (`apache2 -t` then fails).

use super::apache::{self, cmd_func, cmd_parms, command_rec};
use super::args::{split_option, split_words};
use super::config::{AppOptions, DirConfig, DispatchScript, GilMode, HandlerScript, InterpreterOptions, MapHead, ScriptAlias, UrlMatch};
use super::proxy::{environ_name, Network};
use super::daemon::{self, options::{DaemonSpec, SystemAccounts}};
use super::engine_loader;
use super::log;
use super::group_name::GroupSpec;
use super::imports::{self, ImportScript};
use super::record::server_config_mut;
use super::trampoline::trampoline;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;

mod auth_scripts;
mod interpreter_options;
mod process_settings;
use auth_scripts::{access_script, auth_group_script, auth_user_script, group_authoritative};
use interpreter_options::{free_threading, interpreter_options, per_interpreter_gil, scoped, switch_interval};
use process_settings::{
    case_sensitivity, destroy_interpreter, new_relic, python_eggs, python_hash_seed, slow_requests, telemetry_options,
    telemetry_service, verbose_debugging,
};
pub use process_settings::apply_telemetry_options;

/// Apache reads this array up to the entry with a null name.
#[repr(transparent)]
pub struct CommandTable<const N: usize>([command_rec; N]);

// SAFETY: the table is immutable and only holds pointers to static strings and functions.
unsafe impl<const N: usize> Sync for CommandTable<N> {}

impl<const N: usize> CommandTable<N> {
    pub const fn as_ptr(&self) -> *const command_rec {
        self.0.as_ptr()
    }
}

type RawFn = unsafe extern "C" fn(*mut cmd_parms, *mut c_void, *const c_char) -> *const c_char;

const fn raw_args(name: &'static CStr, func: RawFn, req_override: u32, errmsg: &'static CStr) -> command_rec {
    command_rec {
        name: name.as_ptr(),
        func: cmd_func { raw_args: Some(func) },
        cmd_data: std::ptr::null_mut(),
        req_override: req_override as i32,
        args_how: apache::RAW_ARGS,
        errmsg: errmsg.as_ptr(),
    }
}

const fn take1(name: &'static CStr, func: RawFn, req_override: u32, errmsg: &'static CStr) -> command_rec {
    command_rec { args_how: apache::TAKE1, ..raw_args(name, func, req_override, errmsg) }
}

const END: command_rec = command_rec {
    name: std::ptr::null(),
    func: cmd_func { raw_args: None },
    cmd_data: std::ptr::null_mut(),
    req_override: 0,
    args_how: 0,
    errmsg: std::ptr::null(),
};

// Each directive's context is mod_wsgi's (its AP_INIT table, the same in 4.9 and 6.x): on a
// shared host every `.htaccess` is written by a customer, so what may appear there decides
// what a customer can change.
/// Server config and virtual hosts (`GLOBAL_ONLY` handlers refuse virtual hosts themselves).
const SERVER: u32 = apache::RSRC_CONF;
/// Also `<Directory>`, `<Location>` and `<Files>`, but never `.htaccess`: which interpreter runs
/// a script is the administrator's choice, or a customer could join another site's group.
const DIRECTORY: u32 = apache::RSRC_CONF | apache::ACCESS_CONF;
/// Anywhere, `.htaccess` included where `AllowOverride FileInfo` allows it.
const FILEINFO: u32 = apache::OR_FILEINFO;
/// `<Directory>`, `<Location>`, `<Files>`, and `.htaccess` where `AllowOverride AuthConfig`
/// allows it (never the server level).
const AUTHCFG: u32 = apache::OR_AUTHCFG;

pub static COMMANDS: CommandTable<55> = CommandTable([
    raw_args(c"WSGIScriptAlias", script_alias, SERVER, c"Map location to target WSGI script file or directory."),
    raw_args(c"WSGIScriptAliasMatch", script_alias_match, SERVER, c"Map location pattern to target WSGI script file."),
    raw_args(c"WSGIApplicationGroup", application_group, DIRECTORY, c"Application interpreter group [replicas=N]."),
    take1(c"WSGICallableObject", callable_object, FILEINFO, c"Name of entry point in WSGI script file."),
    take1(c"WSGIPythonHome", python_home, SERVER, c"Python prefix or virtual environment for the engine."),
    take1(c"WSGIPythonPath", python_path, SERVER, c"Python module search path (':'-separated)."),
    take1(c"WSGIPassAuthorization", pass_authorization, FILEINFO, c"Enable/Disable passing of authorization headers."),
    take1(c"WSGIPythonConcurrency", python_concurrency, SERVER, c"How many threads may run Python at once: off, auto or a number."),
    take1(c"WSGIPythonQueueTimeout", queue_timeout, SERVER, c"Seconds a request may wait for a Python slot before a 503."),
    raw_args(c"WSGIDispatchScript", dispatch_script, DIRECTORY, c"Location of WSGI dispatch script."),
    raw_args(c"WSGIAccessScript", access_script, AUTHCFG, c"Location of WSGI host access script file."),
    raw_args(c"WSGIAuthUserScript", auth_user_script, AUTHCFG, c"Location of WSGI user auth script file."),
    raw_args(c"WSGIAuthGroupScript", auth_group_script, AUTHCFG, c"Location of WSGI group auth script file."),
    take1(c"WSGIGroupAuthoritative", group_authoritative, AUTHCFG, c"Enable/Disable as being authoritative on groups."),
    raw_args(c"WSGIHandlerScript", handler_script, DIRECTORY, c"Location of WSGI handler script file."),
    raw_args(c"WSGIImportScript", import_script, SERVER, c"Location of WSGI import script."),
    take1(c"WSGIPythonOptimize", python_optimize, SERVER, c"Python optimisation level (0, 1 or 2)."),
    take1(c"WSGIDontWriteBytecode", dont_write_bytecode, SERVER, c"Do not write .pyc files."),
    take1(c"WSGIPythonWarnings", python_warnings, SERVER, c"Python warning options (as python -W)."),
    take1(c"WSGIRestrictEmbedded", restrict_embedded, SERVER, c"Do not run Python in Apache's child processes."),
    take1(c"WSGILazyInitialization", lazy_initialization, SERVER, c"Accepted: Python always starts in the child."),
    take1(c"WSGIRestrictStdin", restrict_stdin, SERVER, c"Refuse access to sys.stdin."),
    take1(c"WSGIRestrictStdout", restrict_stdout, SERVER, c"Refuse access to sys.stdout."),
    take1(c"WSGIRestrictSignal", restrict_signal, SERVER, c"Ignore signal handler registration by applications."),
    take1(c"WSGIChunkedRequest", chunked_request, FILEINFO, c"Accept chunked request bodies."),
    take1(c"WSGIMapHEADToGET", map_head, FILEINFO, c"Present HEAD requests to the application as GET: Off, On or Auto."),
    take1(c"WSGIErrorOverride", error_override, FILEINFO, c"Let Apache's error pages replace the application's error responses."),
    // RAW_ARGS, as in mod_wsgi: a line without a word is allowed (an empty list).
    raw_args(c"WSGITrustedProxyHeaders", trusted_proxy_headers, FILEINFO, c"Proxy headers the application may believe."),
    raw_args(c"WSGITrustedProxies", trusted_proxies, FILEINFO, c"Addresses of the proxies those headers are believed from."),
    take1(c"WSGIScriptReloading", script_reloading, FILEINFO, c"Enable/Disable script reloading mechanism."),
    raw_args(c"WSGIDaemonProcess", daemon_process, SERVER, c"Specify details of daemon processes to start."),
    take1(c"WSGIProcessGroup", process_group, DIRECTORY, c"Name of the WSGI daemon process group (%{GLOBAL}: embedded)."),
    take1(c"WSGISocketPrefix", socket_prefix, SERVER, c"Path prefix for the daemon process sockets."),
    take1(c"WSGISocketRotation", socket_rotation, SERVER, c"Enable/Disable rotation of daemon process sockets."),
    take1(c"WSGIAcceptMutex", accept_mutex, SERVER, c"Set accept mutex type for daemon processes (accepted; not needed)."),
    raw_args(c"WSGIRestrictProcess", restrict_process, DIRECTORY, c"Limit selectable WSGI process groups."),
    take1(c"WSGIServerMetrics", server_metrics, SERVER, c"Enabled/Disable access to server metrics."),
    take1(c"WSGIPerInterpreterGIL", per_interpreter_gil, SERVER, c"Enable/Disable per-interpreter GIL for sub-interpreters (Python 3.12+): Off, On or Auto."),
    take1(c"WSGISwitchInterval", switch_interval, SERVER, c"Override Python GIL switch interval (seconds)."),
    take1(c"WSGIFreeThreading", free_threading, SERVER, c"Accepted: no engine runs a free-threaded Python (no effect)."),
    take1(c"WSGIPythonHashSeed", python_hash_seed, SERVER, c"Python hash seed (PYTHONHASHSEED): random or a number."),
    take1(c"WSGIPythonEggs", python_eggs, SERVER, c"Python eggs cache directory (PYTHON_EGG_CACHE)."),
    take1(c"WSGIDestroyInterpreter", destroy_interpreter, SERVER, c"Enable/Disable destruction of Python interpreter."),
    take1(c"WSGIVerboseDebugging", verbose_debugging, SERVER, c"Accepted: mod_wsgi's verbose debugging (see LogLevel wsgi:debug)."),
    take1(c"WSGICaseSensitivity", case_sensitivity, SERVER, c"Accepted: whether file system is case sensitive (it is on Linux)."),
    take1(c"WSGIEnableSendfile", enable_sendfile, FILEINFO, c"Enable/Disable support for kernel sendfile."),
    take1(c"WSGIPassApacheRequest", pass_apache_request, DIRECTORY, c"Enable/Disable Apache request object."),
    take1(c"WSGIIgnoreActivity", ignore_activity, FILEINFO, c"Enable/Disable reset of inactivity timeout."),
    raw_args(c"WSGITelemetryService", telemetry_service, SERVER, c"Push telemetry to a metrics service. Args: unix:/path [interval=N]"),
    raw_args(c"WSGITelemetryOptions", telemetry_options, SERVER, c"Telemetry flags: [+|-]CaptureUserAgent, [+|-]SlowRequestStacks, None, All."),
    take1(c"WSGISlowRequests", slow_requests, SERVER, c"Enable slow-request reporting. Arg: threshold in seconds."),
    take1(c"WSGINewRelicConfigFile", new_relic, SERVER, c"Accepted and ignored: New Relic agent configuration file."),
    take1(c"WSGINewRelicEnvironment", new_relic, SERVER, c"Accepted and ignored: New Relic agent environment."),
    raw_args(c"<WSGIInterpreterOptions", interpreter_options, SERVER, c"Container scoping per-interpreter options to a named process-group and/or application-group."),
    END,
]);

/// What a directive handler works on.
struct Directive {
    cmd: *mut cmd_parms,
    dir: *mut DirConfig,
    arg: String,
}

impl Directive {
    /// True inside `<Directory>`, `<Location>`, `<Files>` or `.htaccess`.
    fn in_directory(&self) -> bool {
        // SAFETY: cmd is the live cmd_parms of this directive call.
        unsafe { !(*self.cmd).path.is_null() }
    }

    /// Options of the current level: the directory's, or the (virtual) server's.
    fn options(&mut self) -> &mut AppOptions {
        if self.in_directory() {
            // SAFETY: Apache passes our DirConfig for the current section as mconfig.
            unsafe { &mut (*self.dir).options }
        } else {
            // SAFETY: directive handlers run single-threaded during config reading.
            unsafe { &mut server_config_mut((*self.cmd).server).options }
        }
    }

    fn server(&mut self) -> &mut super::config::ServerConfig {
        // SAFETY: as above.
        unsafe { server_config_mut((*self.cmd).server) }
    }

    /// Refuses the directive outside the main server (`GLOBAL_ONLY`), with Apache's message.
    fn global_only(&self) -> Result<(), String> {
        // SAFETY: cmd is live; ap_check_cmd_context returns null or a static/pool message.
        let message = unsafe { apache::ap_check_cmd_context(self.cmd, apache::GLOBAL_ONLY) };
        if message.is_null() {
            Ok(())
        } else {
            // SAFETY: non-null messages are NUL-terminated strings.
            Err(unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned())
        }
    }

    fn pool(&self) -> *mut apache::apr_pool_t {
        // SAFETY: cmd is live.
        unsafe { (*self.cmd).pool }
    }
}

/// Runs a directive parser; an `Err` becomes the message Apache prints with file and line.
fn directive(
    cmd: *mut cmd_parms,
    mconfig: *mut c_void,
    arg: *const c_char,
    parse: impl FnOnce(&mut Directive) -> Result<(), String>,
) -> *const c_char {
    trampoline("a directive handler", c"mod_wsgi-rs: internal error while reading this directive".as_ptr(), || {
        let arg = if arg.is_null() {
            String::new()
        } else {
            // SAFETY: Apache passes a NUL-terminated argument string.
            unsafe { CStr::from_ptr(arg) }.to_string_lossy().into_owned()
        };
        let mut d = Directive { cmd, dir: mconfig.cast(), arg };
        match parse(&mut d) {
            Ok(()) => std::ptr::null(),
            Err(message) => {
                let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
                // SAFETY: the pool outlives the message's use by Apache's error reporting.
                unsafe { apache::apr_pstrdup(d.pool(), message.as_ptr()) }
            }
        }
    })
}

/// The directive's file and line, for a warning (errors get them from Apache).
pub(super) fn where_is(cmd: *mut cmd_parms) -> String {
    // SAFETY: cmd and its directive are live during the directive's call; the strings are
    // Apache's NUL-terminated configuration text.
    unsafe {
        let directive = (*cmd).directive;
        if directive.is_null() || (*directive).filename.is_null() {
            return String::new();
        }
        format!("{}:{}", CStr::from_ptr((*directive).filename).to_string_lossy(), (*directive).line_num)
    }
}

/// An `On`/`Off` directive of the main server only.
fn global_flag(
    cmd: *mut cmd_parms,
    mconfig: *mut c_void,
    arg: *const c_char,
    name: &str,
    set: impl FnOnce(&mut super::config::ServerConfig, bool),
) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.global_only()?;
        let on = parse_on_off(name, &d.arg)?;
        set(d.server(), on);
        Ok(())
    })
}

/// An `On`/`Off` option of the current level (server, virtual host or directory).
fn option_flag(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char, name: &str, set: impl FnOnce(&mut AppOptions, bool)) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        let on = parse_on_off(name, &d.arg)?;
        set(d.options(), on);
        Ok(())
    })
}

/// Parses `WSGIScriptAlias`-style words: URL, target, then `key=value` options.
pub fn parse_alias_words(name: &str, line: &str) -> Result<(String, String, AppOptions), String> {
    let words = split_words(line)?;
    let [url, target, rest @ ..] = words.as_slice() else {
        return Err(format!("{name} takes a URL, a script file or directory, and options; got '{line}'"));
    };
    let mut options = AppOptions::default();
    for word in rest {
        let Some((key, value)) = split_option(word) else {
            return Err(format!("{name}: invalid option '{word}', expected key=value"));
        };
        match key {
            "application-group" => options.group = Some(GroupSpec::parse(value)?),
            "callable-object" => {
                check_identifier(value)?;
                options.callable = Some(value.to_string());
            }
            "pass-authorization" => options.pass_authorization = Some(parse_on_off(name, value)?),
            "replicas" => options.replicas = Some(parse_replicas(value).map_err(|e| format!("{name}: {e}"))?),
            "process-group" if value.is_empty() => options.process_group = Some(GroupSpec::Global),
            "process-group" => options.process_group = Some(GroupSpec::parse(value).map_err(|e| format!("{name}: process-group: {e}"))?),
            _ => {
                return Err(format!(
                    "{name}: invalid option '{key}'; valid options are application-group, callable-object, pass-authorization, process-group and replicas"
                ))
            }
        }
    }
    if options.replicas.is_some() && options.group.is_none() {
        return Err(format!("{name}: replicas= needs application-group= (the replicas are of that group)"));
    }
    Ok((url.clone(), target.clone(), options))
}

/// `WSGIHandlerScript name script [process-group=...] [application-group=...]
/// [pass-authorization=On|Off]`, with mod_wsgi's messages.
pub fn parse_handler_script(line: &str) -> Result<HandlerScript, String> {
    let words = split_words(line)?;
    let (name, script, rest) = match words.as_slice() {
        [] => return Err("Name for handler script not supplied.".into()),
        [_] => return Err("Location of handler script not supplied.".into()),
        [name, script, rest @ ..] => (name.clone(), script.clone(), rest),
    };
    let mut options = AppOptions::default();
    for word in rest {
        let invalid = || "Invalid option to WSGI handler script definition.".to_string();
        let (key, value) = split_option(word).ok_or_else(invalid)?;
        match key {
            "process-group" if value.is_empty() => return Err("Invalid name for WSGI process group.".into()),
            "process-group" => options.process_group = Some(GroupSpec::parse(value).map_err(|e| format!("WSGIHandlerScript: process-group: {e}"))?),
            "application-group" if value.is_empty() => return Err("Invalid name for WSGI application group.".into()),
            "application-group" => options.group = Some(GroupSpec::parse(value)?),
            "pass-authorization" => {
                options.pass_authorization = Some(parse_on_off("pass-authorization", value).map_err(|_| "Invalid value for authorization flag.".to_string())?)
            }
            _ => return Err(invalid()),
        }
    }
    Ok(HandlerScript { name, script, options: Box::new(options) })
}

/// `WSGIDispatchScript script [application-group=NAME]`, with mod_wsgi's messages.
pub fn parse_dispatch_script(line: &str) -> Result<DispatchScript, String> {
    let words = split_words(line)?;
    let [script, rest @ ..] = words.as_slice() else { return Err("Location of dispatch script not supplied.".into()) };
    let mut group = None;
    for word in rest {
        match split_option(word) {
            Some(("application-group", "")) => return Err("Invalid name for WSGI application group.".into()),
            Some(("application-group", value)) => group = Some(GroupSpec::parse(value)?),
            _ => return Err("Invalid option to WSGI dispatch script definition.".into()),
        }
    }
    Ok(DispatchScript { script: script.clone(), group })
}

/// `WSGIDispatchScript`: server, virtual host or directory (never `.htaccess`).
unsafe extern "C" fn dispatch_script(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.options().dispatch_script = Some(parse_dispatch_script(&d.arg)?);
        super::dispatch::note_configured();
        Ok(())
    })
}

/// `WSGIHandlerScript`: server, virtual host or directory (never `.htaccess`: the script runs
/// with the site's Python, chosen by the administrator).
unsafe extern "C" fn handler_script(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        let script = parse_handler_script(&d.arg)?;
        let scripts = &mut d.options().handler_scripts;
        scripts.retain(|s| s.name != script.name);
        scripts.push(script);
        Ok(())
    })
}

fn check_identifier(name: &str) -> Result<(), String> {
    if let Some(variable) = name.strip_prefix("%{ENV:").and_then(|r| r.strip_suffix('}')) {
        if !variable.is_empty() {
            return Ok(());
        }
    }
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_') && chars.all(|c| c.is_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!("invalid callable object name '{name}': must be a Python identifier or %{{ENV:variable}}"))
    }
}

/// `On`/`Off`, case-insensitive, with mod_wsgi's wording.
pub fn parse_on_off(name: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{name} must be one of: Off | On")),
    }
}

unsafe extern "C" fn script_alias(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        let (url, target, options) = parse_alias_words("WSGIScriptAlias", &d.arg)?;
        if !url.starts_with('/') {
            return Err(format!("WSGIScriptAlias: URL '{url}' must start with '/'"));
        }
        preload(d, &target, &options, false)?;
        d.server().aliases.push(ScriptAlias { url: UrlMatch::Prefix(url), target, options });
        Ok(())
    })
}

unsafe extern "C" fn script_alias_match(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        let (pattern, target, options) = parse_alias_words("WSGIScriptAliasMatch", &d.arg)?;
        let c_pattern = CString::new(pattern.clone()).map_err(|_| "pattern contains a NUL byte".to_string())?;
        // SAFETY: pool and pattern are valid; Apache registers the regex's cleanup on the pool.
        let compiled = unsafe { apache::ap_pregcomp(d.pool(), c_pattern.as_ptr(), apache::AP_REG_EXTENDED as i32) };
        if compiled.is_null() {
            return Err(format!("WSGIScriptAliasMatch: regular expression '{pattern}' could not be compiled"));
        }
        preload(d, &target, &options, true)?;
        d.server().aliases.push(ScriptAlias { url: UrlMatch::Regex { pattern, compiled }, target, options });
        Ok(())
    })
}

/// The import-list entry a `WSGIScriptAlias`/`WSGIScriptAliasMatch` makes, as mod_wsgi's
/// `wsgi_set_script_alias`: when it names both `process-group=` and `application-group=`
/// without `%{...}` (other than `%{GLOBAL}`), and (for `WSGIScriptAliasMatch`) a target
/// without `$` substitutions, each process of that group loads the script when it starts.
/// A target that is a directory (a directory of scripts) has no one script to load (mod_wsgi
/// would fail to import it at every start). `None`: nothing to preload.
pub fn preload_entry(target: &str, options: &AppOptions, is_match: bool) -> Option<ImportScript> {
    let literal = |spec: &Option<GroupSpec>| match spec {
        Some(GroupSpec::Global) => Some(String::new()),
        Some(GroupSpec::Literal(name)) if !name.contains("%{") => Some(name.clone()),
        _ => None,
    };
    let (process_group, application_group) = (literal(&options.process_group)?, literal(&options.group)?);
    if (is_match && target.contains('$')) || target.ends_with('/') || Path::new(target).is_dir() {
        return None;
    }
    Some(ImportScript { script: target.to_string(), process_group, application_group, replicas: options.replicas })
}

/// Adds the alias's script to the import list (see [`preload_entry`]); a named daemon group
/// must be defined above and reachable from here, with mod_wsgi's errors.
fn preload(d: &mut Directive, target: &str, options: &AppOptions, is_match: bool) -> Result<(), String> {
    let Some(entry) = preload_entry(target, options, is_match) else { return Ok(()) };
    if !entry.process_group.is_empty() {
        // SAFETY: cmd is the live cmd_parms of this directive call.
        check_daemon_group_reachable(&entry.process_group, unsafe { (*d.cmd).server })?;
    }
    imports::push(entry);
    Ok(())
}

unsafe extern "C" fn application_group(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        let (spec, replicas) = parse_application_group(&d.arg)?;
        let options = d.options();
        options.group = Some(spec);
        options.replicas = replicas;
        Ok(())
    })
}

/// `WSGIApplicationGroup NAME [replicas=N]`: mod_wsgi's one argument, and our `replicas=`.
/// (The directive is never allowed in `.htaccess`, so no customer sets replicas.)
pub fn parse_application_group(line: &str) -> Result<(GroupSpec, Option<u32>), String> {
    let words = split_words(line)?;
    let [name, rest @ ..] = words.as_slice() else {
        return Err("WSGIApplicationGroup takes an application group name, optionally followed by replicas=N".into());
    };
    let spec = GroupSpec::parse(name).map_err(|e| format!("WSGIApplicationGroup: {e}"))?;
    let mut replicas = None;
    for word in rest {
        match split_option(word) {
            Some(("replicas", value)) if replicas.is_none() => replicas = Some(parse_replicas(value).map_err(|e| format!("WSGIApplicationGroup: {e}"))?),
            _ => return Err(format!("WSGIApplicationGroup: unexpected '{word}' after the group name; the only option is replicas=N")),
        }
    }
    Ok((spec, replicas))
}

/// `replicas=N` (ours): how many interpreters, each with its own GIL, serve one application
/// group in a process; 1 to [`abi::replicas::MAX`].
pub fn parse_replicas(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if (1..=crate::abi::replicas::MAX).contains(&n) => Ok(n),
        _ => Err(format!("replicas={value}: expected a number of interpreters from 1 to {}", crate::abi::replicas::MAX)),
    }
}

unsafe extern "C" fn callable_object(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        check_identifier(&d.arg).map_err(|e| format!("WSGICallableObject: {e}"))?;
        let name = d.arg.clone();
        d.options().callable = Some(name);
        Ok(())
    })
}

unsafe extern "C" fn pass_authorization(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    option_flag(cmd, mconfig, arg, "WSGIPassAuthorization", |o, on| o.pass_authorization = Some(on))
}

unsafe extern "C" fn python_home(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.global_only()?;
        let home = d.arg.trim_end_matches('/').to_string();
        if !home.starts_with('/') {
            return Err(format!("WSGIPythonHome '{home}' must be an absolute path"));
        }
        // Refuse here, with the file and line, rather than fail in every child.
        engine_loader::engine_for(Some(Path::new(&home)))?;
        d.server().python_home = Some(home);
        Ok(())
    })
}

/// `WSGIPythonPath`: at server scope for every interpreter; inside `<WSGIInterpreterOptions>`
/// layered over it for the groups selected (its directories in front: see
/// `abi::interpreter_options`).
unsafe extern "C" fn python_path(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    scoped(cmd, mconfig, arg, |v| Ok(v.to_string()), |b, v| b.python_path = Some(v), |s, v| {
        s.python_path.extend(v.split(':').filter(|p| !p.is_empty()).map(str::to_string))
    })
}

/// `off` (0), `auto` (-1) or a positive number.
pub fn parse_concurrency(value: &str) -> Result<i32, String> {
    match value.to_ascii_lowercase().as_str() {
        "off" => Ok(0),
        "auto" => Ok(-1),
        n => match n.parse::<i32>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(format!("WSGIPythonConcurrency must be off, auto or a number of threads (1 or more), got '{value}'")),
        },
    }
}

/// Seconds, fractions allowed, more than zero.
pub fn parse_timeout(value: &str) -> Result<u64, String> {
    match value.parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() && s < 1e9 => Ok((s * 1000.0).ceil() as u64),
        _ => Err(format!("WSGIPythonQueueTimeout must be a number of seconds greater than 0, got '{value}'")),
    }
}

unsafe extern "C" fn python_concurrency(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.global_only()?;
        let n = parse_concurrency(&d.arg)?;
        d.server().python_concurrency = Some(n);
        Ok(())
    })
}

unsafe extern "C" fn queue_timeout(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.global_only()?;
        let ms = parse_timeout(&d.arg)?;
        d.server().queue_timeout_ms = Some(ms);
        Ok(())
    })
}

/// `WSGIImportScript path process-group=... application-group=...`: both options are required,
/// as in mod_wsgi; `%{GLOBAL}` (or an empty value) is embedded mode for the process group and
/// the main interpreter for the application group; the application group must be a name or
/// `%{GLOBAL}` (the other forms need a request to expand). Whether a named process group
/// exists is checked by the directive itself (it depends on the configuration read so far).
pub fn parse_import_script(line: &str) -> Result<ImportScript, String> {
    let words = split_words(line)?;
    let [script, options @ ..] = words.as_slice() else {
        return Err("WSGIImportScript takes a script file, process-group= and application-group=".into());
    };
    let (mut process_group, mut group) = (None, None);
    for word in options {
        match split_option(word) {
            Some(("process-group", v)) => process_group = Some(v.to_string()),
            Some(("application-group", v)) => group = Some(v.to_string()),
            _ => return Err(format!("WSGIImportScript: invalid option '{word}'; valid options are process-group and application-group")),
        }
    }
    let (Some(process_group), Some(group)) = (process_group, group) else {
        return Err("WSGIImportScript requires both process-group= and application-group=".into());
    };
    let process_group = match process_group.as_str() {
        "" | "%{GLOBAL}" => String::new(),
        name if name.contains("%{") => {
            return Err(format!("WSGIImportScript: process-group={name} needs a request to expand; use a daemon group's name or %{{GLOBAL}}"))
        }
        name => name.to_string(),
    };
    let group = match GroupSpec::parse(&group)? {
        GroupSpec::Global => String::new(),
        GroupSpec::Literal(name) => name,
        _ => return Err(format!("WSGIImportScript: application-group={group} needs a request to expand; use a name or %{{GLOBAL}}")),
    };
    Ok(ImportScript { script: script.clone(), process_group, application_group: group, replicas: None })
}

/// mod_wsgi's checks of a daemon group named by a directive of `server`: a `WSGIDaemonProcess`
/// before it defines the group, and a group of a virtual host serves that host's name only.
fn check_daemon_group_reachable(name: &str, server: *mut apache::server_rec) -> Result<(), String> {
    let Some(owner) = daemon::supervisor::defined_by(name) else {
        return Err(format!("WSGI process group not yet configured. (No WSGIDaemonProcess named '{name}' comes before this line.)"));
    };
    // SAFETY: both are live server records of the configuration being read; server_hostname
    // is null (not set yet) or a NUL-terminated string.
    let (here, there, virtual_owner) = unsafe {
        let hostname = |s: *mut apache::server_rec| (!(*s).server_hostname.is_null()).then(|| CStr::from_ptr((*s).server_hostname));
        (hostname(server), hostname(owner), (*owner).is_virtual != 0)
    };
    if !virtual_owner {
        return Ok(());
    }
    match (here, there) {
        (Some(a), Some(b)) if a != b => Err(format!("WSGI process group not accessible. ('{name}' belongs to virtual host {}.)", b.to_string_lossy())),
        (None, Some(_)) | (Some(_), None) => Err(format!("WSGI process group not matchable. ('{name}' belongs to another virtual host.)")),
        _ => Ok(()),
    }
}

/// Also in a virtual host, as mod_wsgi: the list is one for the whole configuration.
unsafe extern "C" fn import_script(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        let entry = parse_import_script(&d.arg)?;
        if !entry.process_group.is_empty() {
            // SAFETY: cmd is the live cmd_parms of this directive call.
            check_daemon_group_reachable(&entry.process_group, unsafe { (*d.cmd).server })?;
        }
        imports::push(entry);
        Ok(())
    })
}

unsafe extern "C" fn python_optimize(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.global_only()?;
        let level = match d.arg.parse::<i32>() {
            Ok(n @ 0..=2) => n,
            _ => return Err(format!("WSGIPythonOptimize must be 0, 1 or 2, got '{}'", d.arg)),
        };
        d.server().python_optimize = Some(level);
        Ok(())
    })
}

unsafe extern "C" fn dont_write_bytecode(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    global_flag(cmd, mconfig, arg, "WSGIDontWriteBytecode", |c, on| c.dont_write_bytecode = Some(on))
}

unsafe extern "C" fn python_warnings(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.global_only()?;
        // The -W syntax: action[:message[:category[:module[:lineno]]]].
        let action = d.arg.split(':').next().unwrap_or("");
        if !["default", "error", "ignore", "always", "module", "once", "d", "e", "i", "a", "m", "o"].contains(&action) {
            return Err(format!("WSGIPythonWarnings: '{}' is not a Python warning option (action[:message[:category[:module[:lineno]]]])", d.arg));
        }
        let option = d.arg.clone();
        d.server().python_warnings.push(option);
        Ok(())
    })
}

unsafe extern "C" fn restrict_embedded(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    global_flag(cmd, mconfig, arg, "WSGIRestrictEmbedded", |c, on| c.restrict_embedded = Some(on))
}

/// mod_wsgi's `Off` starts Python in Apache's parent, which this module never does: both
/// values are accepted and Python always starts in each child.
unsafe extern "C" fn lazy_initialization(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.global_only()?;
        parse_on_off("WSGILazyInitialization", &d.arg).map(|_| ())
    })
}

unsafe extern "C" fn restrict_stdin(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    scoped(cmd, mconfig, arg, |v| parse_on_off("WSGIRestrictStdin", v), |b, on| b.restrict_stdin = Some(on), |s, on| s.restrict_stdin = Some(on))
}

unsafe extern "C" fn restrict_signal(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    scoped(cmd, mconfig, arg, |v| parse_on_off("WSGIRestrictSignal", v), |b, on| b.restrict_signal = Some(on), |s, on| s.restrict_signal = Some(on))
}

unsafe extern "C" fn restrict_stdout(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    scoped(cmd, mconfig, arg, |v| parse_on_off("WSGIRestrictStdout", v), |b, on| b.restrict_stdout = Some(on), |s, on| s.restrict_stdout = Some(on))
}

/// `WSGIEnableSendfile On|Off` (default Off, as mod_wsgi): whether `wsgi.file_wrapper` hands
/// Apache a file it may send with the kernel's sendfile (Apache's `EnableSendfile` decides too).
unsafe extern "C" fn enable_sendfile(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    option_flag(cmd, mconfig, arg, "WSGIEnableSendfile", |o, on| o.enable_sendfile = Some(on))
}

/// `WSGIPassApacheRequest On|Off` (default Off): `environ['apache.request_rec']` in embedded
/// mode (see `abi::request_rec`). Never in `.htaccess`, as in mod_wsgi: it hands C code a
/// pointer into Apache.
unsafe extern "C" fn pass_apache_request(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    option_flag(cmd, mconfig, arg, "WSGIPassApacheRequest", |o, on| o.pass_apache_request = Some(on))
}

/// `WSGIIgnoreActivity On|Off` (default Off): requests here do not reset a daemon's
/// `inactivity-timeout` (a monitoring URL that should not keep an idle daemon alive).
unsafe extern "C" fn ignore_activity(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    option_flag(cmd, mconfig, arg, "WSGIIgnoreActivity", |o, on| o.ignore_activity = Some(on))
}

unsafe extern "C" fn chunked_request(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    option_flag(cmd, mconfig, arg, "WSGIChunkedRequest", |o, on| o.chunked_request = Some(on))
}

/// `Off`, `On` or `Auto`, with mod_wsgi's wording.
pub fn parse_map_head(value: &str) -> Result<MapHead, String> {
    match value.to_ascii_lowercase().as_str() {
        "off" => Ok(MapHead::Off),
        "on" => Ok(MapHead::On),
        "auto" => Ok(MapHead::Auto),
        _ => Err("WSGIMapHEADToGET must be one of: Off | On | Auto".into()),
    }
}

unsafe extern "C" fn map_head(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        let value = parse_map_head(&d.arg)?;
        d.options().map_head = Some(value);
        Ok(())
    })
}

unsafe extern "C" fn error_override(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    option_flag(cmd, mconfig, arg, "WSGIErrorOverride", |o, on| o.error_override = Some(on))
}

/// `WSGITrustedProxyHeaders name...`: each line adds to the list of its context (a line
/// without names makes it empty), which replaces an enclosing context's list.
unsafe extern "C" fn trusted_proxy_headers(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        let names = split_words(&d.arg)?.iter().map(|w| environ_name(w)).collect::<Result<Vec<_>, _>>()?;
        d.options().trusted_proxy_headers.get_or_insert_with(Vec::new).extend(names);
        Ok(())
    })
}

/// `WSGITrustedProxies address...`, added up and replaced as `WSGITrustedProxyHeaders`.
unsafe extern "C" fn trusted_proxies(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        let networks = split_words(&d.arg)?.iter().map(|w| Network::parse(w)).collect::<Result<Vec<_>, _>>()?;
        d.options().trusted_proxies.get_or_insert_with(Vec::new).extend(networks);
        Ok(())
    })
}

unsafe extern "C" fn script_reloading(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    option_flag(cmd, mconfig, arg, "WSGIScriptReloading", |o, on| o.script_reloading = Some(on))
}

/// The New Relic options warning is given once per process, not per group or per reading of
/// the configuration.
static NEW_RELIC_WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A daemon group of this server or virtual host (see `daemon/options.rs`); its sockets and
/// processes are made in `post_config`, never while the configuration is only tested.
unsafe extern "C" fn daemon_process(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        let spec = DaemonSpec::parse(&d.arg, &SystemAccounts)?;
        if !spec.ignored.is_empty() && !NEW_RELIC_WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            // SAFETY: cmd is the live cmd_parms of this directive call.
            let server = unsafe { (*d.cmd).server };
            log::server(apache::APLOG_WARNING as c_int, server, &format!(
                "WSGIDaemonProcess {}: {} ignored: mod_wsgi-rs has no New Relic agent hook (import 'newrelic.agent' and \
                 call newrelic.agent.initialize() in the WSGI script instead).",
                spec.name,
                spec.ignored.join(" and ")
            ));
        }
        // SAFETY: geteuid has no preconditions.
        if spec.chroot.is_some() && unsafe { libc::geteuid() } != 0 {
            // mod_wsgi's refusal: only root can chroot, and Apache's parent (which forks the
            // daemons) is not root.
            return Err("Cannot chroot WSGI daemon process when not root.".into());
        }
        if let Some(home) = &spec.python_home {
            // Refuse here, with the file and line, rather than fail in every daemon. Under
            // chroot= the daemon's python-home is a path inside the jail.
            let found = engine_loader::jailed(spec.chroot.as_deref(), home);
            engine_loader::engine_for(Some(&found)).map_err(|e| match &spec.chroot {
                Some(root) => format!("WSGIDaemonProcess {}: python-home '{home}' inside chroot '{root}': {e}", spec.name),
                None => format!("WSGIDaemonProcess {}: {e}", spec.name),
            })?;
        }
        // SAFETY: cmd is the live cmd_parms of this directive call.
        daemon::supervisor::claim_name(&spec.name, unsafe { (*d.cmd).server })?;
        d.server().daemons.push(spec);
        Ok(())
    })
}

/// Any name (expanded per request like an application group); `%{GLOBAL}` is embedded mode.
unsafe extern "C" fn process_group(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        let spec = if d.arg.is_empty() { GroupSpec::Global } else { GroupSpec::parse(&d.arg).map_err(|e| format!("WSGIProcessGroup: {e}"))? };
        d.options().process_group = Some(spec);
        Ok(())
    })
}

/// `WSGIRestrictProcess group ...`: the process groups a `WSGIProcessGroup` or `process-group=`
/// may select for requests here (`%{GLOBAL}`: embedded mode); none listed refuses them all.
unsafe extern "C" fn restrict_process(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        let groups = split_words(&d.arg)?.into_iter().map(|g| if g == "%{GLOBAL}" { String::new() } else { g }).collect();
        d.options().restrict_process = Some(groups);
        Ok(())
    })
}

/// `mod_wsgi.server_metrics()` in Apache's children (daemons: `server-metrics=`).
unsafe extern "C" fn server_metrics(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    global_flag(cmd, mconfig, arg, "WSGIServerMetrics", |c, on| c.server_metrics = Some(on))
}

unsafe extern "C" fn socket_rotation(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    global_flag(cmd, mconfig, arg, "WSGISocketRotation", |c, on| c.socket_rotation = Some(on))
}

/// The mechanisms mod_wsgi accepts on Linux (APR has them all there).
const ACCEPT_MUTEXES: [&str; 6] = ["default", "flock", "fcntl", "sysvsem", "posixsem", "pthread"];

/// `WSGIAcceptMutex`: checked as mod_wsgi checks it (same values and message), then not used:
/// mod_wsgi serialises `accept` between a group's processes with a lock of this kind; the
/// daemons here poll a non-blocking socket, where the kernel hands each connection to one
/// process, and need no lock. mod_wsgi logs nothing for it either.
pub fn parse_accept_mutex(value: &str) -> Result<(), String> {
    if ACCEPT_MUTEXES.iter().any(|m| m.eq_ignore_ascii_case(value)) {
        return Ok(());
    }
    Err(format!("Accept mutex lock mechanism '{value}' is invalid. Valid accept mutex mechanisms for this platform are: {}.", ACCEPT_MUTEXES.join(", ")))
}

unsafe extern "C" fn accept_mutex(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.global_only()?;
        parse_accept_mutex(&d.arg)
    })
}

/// Relative to `ServerRoot`, as in mod_wsgi.
unsafe extern "C" fn socket_prefix(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.global_only()?;
        let c_arg = CString::new(d.arg.clone()).map_err(|_| "WSGISocketPrefix contains a NUL byte".to_string())?;
        // SAFETY: pool and argument are valid; the result is a pool string or null.
        let path = unsafe { apache::ap_server_root_relative(d.pool(), c_arg.as_ptr()) };
        if path.is_null() {
            return Err(format!("WSGISocketPrefix: invalid path '{}'", d.arg));
        }
        // SAFETY: non-null results are NUL-terminated pool strings.
        let path = unsafe { CStr::from_ptr(path) }.to_string_lossy().into_owned();
        d.server().socket_prefix = Some(path);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_words_and_options() {
        let (url, target, o) =
            parse_alias_words("WSGIScriptAlias", "/app /srv/app.wsgi application-group=%{GLOBAL} callable-object=app").unwrap();
        assert_eq!((url.as_str(), target.as_str()), ("/app", "/srv/app.wsgi"));
        assert_eq!(o.group, Some(GroupSpec::Global));
        assert_eq!(o.callable.as_deref(), Some("app"));
    }

    #[test]
    fn bad_aliases_say_why() {
        let err = |line| parse_alias_words("WSGIScriptAlias", line).unwrap_err();
        assert!(err("/app").contains("takes a URL"));
        assert!(err("/app /x.wsgi colour=blue").contains("invalid option 'colour'"));
        assert!(err("/app /x.wsgi oops").contains("expected key=value"));
        assert!(err("/app /x.wsgi callable-object=1abc").contains("Python identifier"));
        assert!(err("/app /x.wsgi application-group=%{NOPE}").contains("invalid application group"));
        assert_eq!(parse_alias_words("WSGIScriptAlias", "/a /x.wsgi process-group=site1").unwrap().2.process_group, Some(GroupSpec::Literal("site1".into())));
        assert_eq!(parse_alias_words("WSGIScriptAlias", "/a /x.wsgi process-group=%{GLOBAL}").unwrap().2.process_group, Some(GroupSpec::Global));
    }

    #[test]
    fn concurrency_and_timeout() {
        assert_eq!(parse_concurrency("auto"), Ok(-1));
        assert_eq!(parse_concurrency("Off"), Ok(0));
        assert_eq!(parse_concurrency("4"), Ok(4));
        assert!(parse_concurrency("0").is_err());
        assert!(parse_concurrency("many").is_err());
        assert_eq!(parse_timeout("2.5"), Ok(2500));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("-1").is_err());
    }

    #[test]
    fn import_script() {
        assert_eq!(
            parse_import_script("/srv/a.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL}"),
            Ok(ImportScript { script: "/srv/a.wsgi".into(), process_group: String::new(), application_group: String::new(), replicas: None })
        );
        assert_eq!(parse_import_script("/a.wsgi application-group=site process-group=").unwrap().application_group, "site");
        assert!(parse_import_script("/a.wsgi application-group=x").unwrap_err().contains("requires both"));
        assert_eq!(parse_import_script("/a.wsgi process-group=d application-group=x").unwrap().process_group, "d");
        assert!(parse_import_script("/a.wsgi process-group=%{SERVER} application-group=x").unwrap_err().contains("needs a request"));
        assert!(parse_import_script("/a.wsgi process-group= application-group=%{RESOURCE}").unwrap_err().contains("needs a request"));
    }

    #[test]
    fn script_aliases_that_preload() {
        let entry = |kind: &str, line: &str| {
            let (_, target, options) = parse_alias_words(kind, line).unwrap();
            preload_entry(&target, &options, kind == "WSGIScriptAliasMatch")
        };
        let alias = |line| entry("WSGIScriptAlias", line);
        assert_eq!(
            alias("/a /srv/a.wsgi process-group=site application-group=%{GLOBAL}"),
            Some(ImportScript { script: "/srv/a.wsgi".into(), process_group: "site".into(), application_group: String::new(), replicas: None })
        );
        assert_eq!(
            alias("/a /srv/a.wsgi application-group=app process-group=%{GLOBAL}"),
            Some(ImportScript { script: "/srv/a.wsgi".into(), process_group: String::new(), application_group: "app".into(), replicas: None })
        );
        // Both options, literal, or nothing: as mod_wsgi.
        assert_eq!(alias("/a /srv/a.wsgi process-group=site"), None);
        assert_eq!(alias("/a /srv/a.wsgi application-group=%{GLOBAL}"), None);
        assert_eq!(alias("/a /srv/a.wsgi process-group=site application-group=%{RESOURCE}"), None);
        assert_eq!(alias("/a /srv/a.wsgi process-group=%{ENV:G} application-group=x"), None);
        assert_eq!(alias("/a /srv/a.wsgi process-group=site application-group=a%{SERVER}"), None);
        assert_eq!(alias("/a /srv/ process-group=site application-group=x"), None, "a directory of scripts");
        assert_eq!(alias("/a / process-group=site application-group=x"), None, "a directory of scripts");
        let matching = |line| entry("WSGIScriptAliasMatch", line);
        assert_eq!(matching("^/(\\w+) /srv/$1.wsgi process-group=site application-group=x"), None);
        assert!(matching("^/x /srv/x.wsgi process-group=site application-group=x").is_some());
    }

    #[test]
    fn accept_mutex() {
        assert!(parse_accept_mutex("fcntl").is_ok());
        assert!(parse_accept_mutex("Default").is_ok());
        assert_eq!(
            parse_accept_mutex("spin").unwrap_err(),
            "Accept mutex lock mechanism 'spin' is invalid. Valid accept mutex mechanisms for this platform are: default, flock, fcntl, sysvsem, posixsem, pthread."
        );
    }

    #[test]
    fn on_off() {
        assert_eq!(parse_on_off("X", "ON"), Ok(true));
        assert_eq!(parse_on_off("X", "off"), Ok(false));
        assert!(parse_on_off("X", "yes").is_err());
    }


}
