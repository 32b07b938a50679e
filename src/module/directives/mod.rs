//! The directive table, in one place, and one small parser per directive.
//!
//! Each handler runs through [`directive`], which catches panics and turns an `Err(String)` into
//! the message Apache prints with the config file and line (`apache2 -t` then fails).
//!
//! Here: the table, the contexts each directive is allowed in, and the handlers no submodule
//! holds. Beside it: how a handler runs (`directive_call`), the table's entries
//! (`command_table`), parsers of a value (`values`) and of a line naming a script or group
//! (`script_arguments`), the scripts each process imports at start (`startup_imports`), daemon
//! mode (`daemon_mode`), access control (`auth_scripts`), `<WSGIInterpreterOptions>` and what
//! it scopes (`interpreter_options`), and main-server process settings (`process_settings`).

use super::apache::{self, cmd_func, cmd_parms, command_rec};
use super::args::{split_option, split_words};
use super::config::{AppOptions, DirConfig, DispatchScript, GilMode, HandlerScript, InterpreterOptions, MapHead, ScriptAlias, UrlMatch};
use super::daemon::{
    self,
    options::{DaemonSpec, SystemAccounts},
};
use super::engine_loader;
use super::group_name::GroupSpec;
use super::imports::{self, ImportScript};
use super::log;
use super::proxy::{environ_name, Network};
use super::record::server_config_mut;
use super::trampoline::trampoline;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;

mod auth_scripts;
mod command_table;
mod daemon_mode;
mod directive_call;
mod interpreter_options;
mod process_settings;
mod script_arguments;
mod startup_imports;
mod values;
use auth_scripts::{access_script, auth_group_script, auth_user_script, group_authoritative};
pub use command_table::CommandTable;
use command_table::{raw_args, take1, END};
use daemon_mode::{accept_mutex, check_daemon_group_reachable, daemon_process, process_group, restrict_process, socket_prefix, socket_rotation};
pub(super) use directive_call::where_is;
use directive_call::{directive, global_flag, option_flag, Directive};
use interpreter_options::{free_threading, interpreter_options, per_interpreter_gil, scoped, switch_interval};
pub use process_settings::apply_telemetry_options;
use process_settings::{
    case_sensitivity, destroy_interpreter, new_relic, python_eggs, python_hash_seed, slow_requests, telemetry_options, telemetry_service,
    verbose_debugging,
};
pub use script_arguments::{parse_alias_words, parse_application_group, parse_dispatch_script, parse_handler_script, parse_import_script};
use startup_imports::{import_script, preload};
use values::check_identifier;
pub use values::{parse_accept_mutex, parse_concurrency, parse_map_head, parse_on_off, parse_replicas, parse_timeout};

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
    take1(
        c"WSGIPerInterpreterGIL",
        per_interpreter_gil,
        SERVER,
        c"Enable/Disable per-interpreter GIL for sub-interpreters (Python 3.12+): Off, On or Auto.",
    ),
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
    raw_args(
        c"<WSGIInterpreterOptions",
        interpreter_options,
        SERVER,
        c"Container scoping per-interpreter options to a named process-group and/or application-group.",
    ),
    END,
]);

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

unsafe extern "C" fn application_group(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        let (spec, replicas) = parse_application_group(&d.arg)?;
        let options = d.options();
        options.group = Some(spec);
        options.replicas = replicas;
        Ok(())
    })
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
    scoped(
        cmd,
        mconfig,
        arg,
        |v| Ok(v.to_string()),
        |b, v| b.python_path = Some(v),
        |s, v| s.python_path.extend(v.split(':').filter(|p| !p.is_empty()).map(str::to_string)),
    )
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

/// `mod_wsgi.server_metrics()` in Apache's children (daemons: `server-metrics=`).
unsafe extern "C" fn server_metrics(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    global_flag(cmd, mconfig, arg, "WSGIServerMetrics", |c, on| c.server_metrics = Some(on))
}
