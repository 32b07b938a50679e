//! Main-server directives of mod_wsgi that set how Python starts and ends in each process
//! (`WSGIPythonHashSeed`, `WSGIPythonEggs`, `WSGIDestroyInterpreter`) or that mean nothing to
//! this implementation and are accepted so that configurations written for mod_wsgi start
//! (`WSGIVerboseDebugging`, `WSGICaseSensitivity`, and mod_wsgi 6's telemetry:
//! `WSGITelemetryService`, `WSGITelemetryOptions`, `WSGISlowRequests`). Each checks its value
//! with mod_wsgi's message; the accepted-only ones that ask for something say at config time
//! that it is not done, rather than appear to work.

use super::*;

/// `random` or an integer in [0; 4294967295], as mod_wsgi checks it before Python would (a bad
/// `PYTHONHASHSEED` makes Python abort the process).
pub fn parse_hash_seed(value: &str) -> Result<String, String> {
    if value == "random" || value.parse::<u32>().is_ok() {
        Ok(value.to_string())
    } else {
        Err("WSGIPythonHashSeed must be \"random\" or an integer in range [0; 4294967295]".into())
    }
}

/// `WSGIPythonHashSeed`: `PYTHONHASHSEED` for Python in Apache's children and the daemons,
/// set before Python starts there, as mod_wsgi does.
pub(super) unsafe extern "C" fn python_hash_seed(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.global_only()?;
        let seed = parse_hash_seed(&d.arg)?;
        d.server().python_hash_seed = Some(seed);
        Ok(())
    })
}

/// `WSGIPythonEggs`: `PYTHON_EGG_CACHE` in Apache's children (a daemon group has its own
/// `python-eggs=`).
pub(super) unsafe extern "C" fn python_eggs(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.global_only()?;
        d.server().python_eggs = Some(d.arg.clone());
        Ok(())
    })
}

/// `WSGIDestroyInterpreter On|Off` (default On): `Off` leaves Python as it is when a process
/// exits, without finalising it (no `atexit` callbacks, no waiting for threads), for
/// applications whose shutdown hangs.
pub(super) unsafe extern "C" fn destroy_interpreter(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    global_flag(cmd, mconfig, arg, "WSGIDestroyInterpreter", |c, on| c.destroy_interpreter = Some(on))
}

/// `WSGIVerboseDebugging On|Off`: mod_wsgi's extra internal logging; accepted (the debug
/// lines here come with `LogLevel wsgi:debug`).
pub(super) unsafe extern "C" fn verbose_debugging(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    global_flag(cmd, mconfig, arg, "WSGIVerboseDebugging", |_, _| {})
}

/// `WSGICaseSensitivity On|Off`: whether script paths are compared case-sensitively when they
/// name modules (mod_wsgi's setting for Windows and macOS file systems). Linux file systems
/// are case-sensitive: accepted, with no effect.
pub(super) unsafe extern "C" fn case_sensitivity(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    global_flag(cmd, mconfig, arg, "WSGICaseSensitivity", |_, _| {})
}

/// One warning, with the directive's file and line, that a mod_wsgi 6 feature is not done.
fn not_implemented(d: &Directive, name: &str, what: &str) {
    // SAFETY: cmd and its directive are live during the directive's call.
    let (server, place) = unsafe {
        let directive = (*d.cmd).directive;
        let place = if directive.is_null() || (*directive).filename.is_null() {
            String::new()
        } else {
            format!(" ({}:{})", CStr::from_ptr((*directive).filename).to_string_lossy(), (*directive).line_num)
        };
        ((*d.cmd).server, place)
    };
    log::server(apache::APLOG_WARNING as c_int, server, &format!("{name}{place}: {what} is not implemented by mod_wsgi-rs; the directive is accepted and ignored."));
}

/// `WSGITelemetryService unix:/path [interval=N]` (mod_wsgi 6.1): checked as mod_wsgi checks
/// it, then ignored with a warning.
pub(super) unsafe extern "C" fn telemetry_service(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.global_only()?;
        let words = split_words(&d.arg)?;
        match words.as_slice() {
            [] => return Err("WSGITelemetryService target required".into()),
            [target, ..] if !target.starts_with("unix:") => return Err("WSGITelemetryService target must be 'unix:/path'".into()),
            [_] => {}
            [_, interval] if interval.strip_prefix("interval=").and_then(|v| v.parse::<f64>().ok()).is_some_and(|v| v > 0.0) => {}
            [_, other] => return Err(format!("WSGITelemetryService: unexpected argument '{other}', expected interval=SECONDS")),
            _ => return Err("WSGITelemetryService takes one or two arguments".into()),
        }
        not_implemented(d, "WSGITelemetryService", "mod_wsgi 6's telemetry");
        Ok(())
    })
}

/// `WSGITelemetryOptions [+|-]flag ...` (mod_wsgi 6.1): accepted with a warning.
pub(super) unsafe extern "C" fn telemetry_options(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.global_only()?;
        if split_words(&d.arg)?.is_empty() {
            return Err("WSGITelemetryOptions: at least one flag required".into());
        }
        not_implemented(d, "WSGITelemetryOptions", "mod_wsgi 6's telemetry");
        Ok(())
    })
}

/// `WSGISlowRequests SECONDS` (mod_wsgi 6.1, reported through its telemetry): accepted with
/// a warning.
pub(super) unsafe extern "C" fn slow_requests(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.global_only()?;
        match d.arg.trim().parse::<f64>() {
            _ if d.arg.trim().is_empty() => return Err("WSGISlowRequests threshold (seconds) required".into()),
            Ok(v) if v >= 0.0 => {}
            _ => return Err("WSGISlowRequests threshold must be non-negative".into()),
        }
        not_implemented(d, "WSGISlowRequests", "slow-request reporting (part of mod_wsgi 6's telemetry)");
        Ok(())
    })
}

/// `WSGINewRelicConfigFile` and `WSGINewRelicEnvironment` (Debian's mod_wsgi 4.9): the New
/// Relic agent is initialised by the application itself here; accepted with a warning.
pub(super) unsafe extern "C" fn new_relic(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.global_only()?;
        not_implemented(d, "WSGINewRelicConfigFile/WSGINewRelicEnvironment", "starting the New Relic agent from the configuration (initialise it in the WSGI script)");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_seed_values_are_mod_wsgis() {
        for good in ["random", "0", "42", "4294967295"] {
            assert_eq!(parse_hash_seed(good).as_deref(), Ok(good));
        }
        for bad in ["", "-1", "4294967296", "x", "random "] {
            assert!(parse_hash_seed(bad).unwrap_err().contains("[0; 4294967295]"), "{bad}");
        }
    }
}
