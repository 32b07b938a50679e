//! Main-server directives of mod_wsgi that set how Python starts and ends in each process
//! (`WSGIPythonHashSeed`, `WSGIPythonEggs`, `WSGIDestroyInterpreter`) or that mean nothing to
//! this implementation and are accepted so that configurations written for mod_wsgi start
//! (`WSGIVerboseDebugging`, `WSGICaseSensitivity`), and mod_wsgi 6's telemetry
//! (`WSGITelemetryService`, `WSGITelemetryOptions`, `WSGISlowRequests`). Each checks its value
//! with mod_wsgi's message; the accepted-only ones that ask for something say at config time
//! that it is not done, rather than appear to work.

use super::*;

/// `random` or an integer in [0; 4294967295], as mod_wsgi checks it before Python would (a bad
/// seed makes Python abort the process); empty, as in mod_wsgi, leaves Python's own.
pub fn parse_hash_seed(value: &str) -> Result<Option<String>, String> {
    if value.is_empty() {
        Ok(None)
    } else if value == "random" || value.parse::<u32>().is_ok() {
        Ok(Some(value.to_string()))
    } else {
        Err("WSGIPythonHashSeed must be \"random\" or an integer in range [0; 4294967295]".into())
    }
}

/// `WSGIPythonHashSeed`: the hash seed of Python in Apache's children and the daemons, given
/// to Python as it starts (`abi::EngineConfig::hash_seed`), not left in the environment.
pub(super) unsafe extern "C" fn python_hash_seed(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.global_only()?;
        let seed = parse_hash_seed(&d.arg)?;
        d.server().python_hash_seed = seed;
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

/// `WSGIVerboseDebugging On|Off`: mod_wsgi's extra internal logging, deprecated in mod_wsgi
/// 6 with the same info line as here.
pub(super) unsafe extern "C" fn verbose_debugging(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.global_only()?;
        parse_on_off("WSGIVerboseDebugging", &d.arg)?;
        // SAFETY: cmd is the live cmd_parms of this directive call.
        let server = unsafe { (*d.cmd).server };
        log::server(
            apache::APLOG_INFO as c_int,
            server,
            "WSGIVerboseDebugging is deprecated and has no effect. Use 'LogLevel info wsgi:debug' for the engine's lifecycle messages.",
        );
        Ok(())
    })
}

/// `WSGICaseSensitivity On|Off`: whether script paths are compared case-sensitively when they
/// name modules (mod_wsgi's setting for Windows and macOS file systems). Linux file systems
/// are case-sensitive: accepted, with no effect.
pub(super) unsafe extern "C" fn case_sensitivity(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    global_flag(cmd, mconfig, arg, "WSGICaseSensitivity", |_, _| {})
}

/// One warning, with the directive's file and line, that a mod_wsgi 6 feature is not done.
fn not_implemented(d: &Directive, name: &str, what: &str) {
    let place = match where_is(d.cmd) {
        place if place.is_empty() => place,
        place => format!(" ({place})"),
    };
    // SAFETY: cmd is the live cmd_parms of this directive call.
    let server = unsafe { (*d.cmd).server };
    log::server(
        apache::APLOG_WARNING as c_int,
        server,
        &format!("{name}{place}: {what} is not implemented by mod_wsgi-rs; the directive is accepted and ignored."),
    );
}

/// `WSGITelemetryService unix:/path [interval=N]` (mod_wsgi 6.1): where each process sends
/// its telemetry datagrams (`metrics::reporter`); the last line wins, and keeps an earlier
/// line's interval when it has none, as in mod_wsgi.
pub(super) unsafe extern "C" fn telemetry_service(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.global_only()?;
        let words = split_words(&d.arg)?;
        let (target, interval) = match words.as_slice() {
            [] => return Err("WSGITelemetryService target required".into()),
            [target, ..] if !target.starts_with("unix:") => {
                return Err("WSGITelemetryService target must be 'unix:/path' (remote 'udp:host:port' targets are no longer supported)".into())
            }
            [target] => (target, None),
            [target, second] => match second.strip_prefix("interval=") {
                Some(v) => match v.parse::<f64>() {
                    Ok(v) if v >= 0.5 && v.is_finite() => (target, Some(v)),
                    _ => return Err("WSGITelemetryService interval must be at least 0.5 seconds".into()),
                },
                None => return Err("WSGITelemetryService second argument must be 'interval=N'".into()),
            },
            _ => return Err("WSGITelemetryService takes one or two arguments".into()),
        };
        let path = &target["unix:".len()..];
        if !path.starts_with('/') {
            return Err(format!("WSGITelemetryService target 'unix:{path}' must be an absolute path"));
        }
        // sockaddr_un's sun_path: 108 bytes with the NUL (mod_wsgi finds out only at run time).
        if path.len() >= 108 {
            return Err(format!("WSGITelemetryService target path is {} bytes long; a Unix socket path must be shorter than 108", path.len()));
        }
        let telemetry = &mut d.server().telemetry;
        telemetry.target = Some(path.to_string());
        if interval.is_some() {
            telemetry.interval = interval;
        }
        Ok(())
    })
}

/// `WSGITelemetryOptions [+|-]flag ...` (mod_wsgi 6.1): `+`/`-` lines add to the current
/// flags, a line of plain names replaces them.
pub(super) unsafe extern "C" fn telemetry_options(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.global_only()?;
        let words = split_words(&d.arg)?;
        let telemetry = &mut d.server().telemetry;
        let current = [telemetry.capture_user_agent, telemetry.slow_request_stacks];
        let [agent, stacks] = apply_telemetry_options(&words, current)?;
        telemetry.capture_user_agent = agent;
        telemetry.slow_request_stacks = stacks;
        Ok(())
    })
}

/// The flags of `WSGITelemetryOptions`: mod_wsgi 6.1's one, and ours.
const TELEMETRY_FLAGS: [&str; 2] = ["CaptureUserAgent", "SlowRequestStacks"];

/// `WSGITelemetryOptions`'s words applied to the `current` flags (in [`TELEMETRY_FLAGS`]
/// order), checked as mod_wsgi 6.1 checks them: `None`, `All`, or flags, all `+`/`-` or none.
pub fn apply_telemetry_options(words: &[String], current: [bool; 2]) -> Result<[bool; 2], String> {
    if words.is_empty() {
        return Err("WSGITelemetryOptions: at least one flag required".into());
    }
    let (mut incremental, mut absolute) = (false, false);
    let mut flags = current;
    let mut replaced = [false; 2];
    for word in words {
        let (sign, name) = match word.strip_prefix(['+', '-']) {
            Some("") => return Err("WSGITelemetryOptions: bare '+' / '-' is not a flag".into()),
            Some(name) => (Some(word.starts_with('+')), name),
            None => (None, word.as_str()),
        };
        incremental |= sign.is_some();
        absolute |= sign.is_none();
        if incremental && absolute {
            return Err("WSGITelemetryOptions: cannot mix +/- form with absolute names in a single directive".into());
        }
        for special in ["None", "All"] {
            if name.eq_ignore_ascii_case(special) && sign.is_some() {
                return Err(format!("WSGITelemetryOptions: '{special}' may not have a +/- prefix"));
            }
        }
        if name.eq_ignore_ascii_case("None") {
            replaced = [false; 2];
            flags = [false; 2];
            continue;
        }
        if name.eq_ignore_ascii_case("All") {
            replaced = [true; 2];
            flags = [true; 2];
            continue;
        }
        let Some(i) = TELEMETRY_FLAGS.iter().position(|f| name.eq_ignore_ascii_case(f)) else {
            return Err(format!("WSGITelemetryOptions: unknown flag '{name}'"));
        };
        match sign {
            Some(on) => flags[i] = on,
            None => {
                if !replaced.iter().any(|&r| r) {
                    flags = [false; 2];
                }
                replaced[i] = true;
                flags[i] = true;
            }
        }
    }
    Ok(flags)
}

/// `WSGISlowRequests SECONDS` (mod_wsgi 6.1): requests running longer are logged and, with
/// `WSGITelemetryService`, reported (`metrics::slow`). 0 is off, as in mod_wsgi's code.
pub(super) unsafe extern "C" fn slow_requests(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.global_only()?;
        let value = match d.arg.trim().parse::<f64>() {
            _ if d.arg.trim().is_empty() => return Err("WSGISlowRequests threshold (seconds) required".into()),
            Ok(v) if v >= 0.0 && v.is_finite() => v,
            _ => return Err("WSGISlowRequests threshold must be non-negative".into()),
        };
        d.server().telemetry.slow_requests = Some(value);
        Ok(())
    })
}

/// `WSGINewRelicConfigFile` and `WSGINewRelicEnvironment` (mod_wsgi 4.x): the New
/// Relic agent is initialised by the application itself here; accepted with a warning.
pub(super) unsafe extern "C" fn new_relic(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.global_only()?;
        not_implemented(
            d,
            "WSGINewRelicConfigFile/WSGINewRelicEnvironment",
            "starting the New Relic agent from the configuration (initialise it in the WSGI script)",
        );
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_seed_values_are_mod_wsgis() {
        for good in ["random", "0", "42", "4294967295"] {
            assert_eq!(parse_hash_seed(good), Ok(Some(good.to_string())));
        }
        assert_eq!(parse_hash_seed(""), Ok(None));
        for bad in ["-1", "4294967296", "x", "random "] {
            assert!(parse_hash_seed(bad).unwrap_err().contains("[0; 4294967295]"), "{bad}");
        }
    }

    #[test]
    fn telemetry_options_are_mod_wsgi_6s() {
        let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        for (line, current, expected) in [
            ("None", [true, true], [false, false]),
            ("All", [false, false], [true, true]),
            ("All None", [false, false], [false, false]),
            ("CaptureUserAgent", [false, true], [true, false]),
            ("+CaptureUserAgent", [false, true], [true, true]),
            ("-captureuseragent", [true, true], [false, true]),
            ("+SlowRequestStacks", [true, false], [true, true]),
            ("CaptureUserAgent SlowRequestStacks", [false, false], [true, true]),
        ] {
            assert_eq!(apply_telemetry_options(&words(line), current), Ok(expected), "{line}");
        }
        for (bad, why) in [
            ("", "at least one flag"),
            ("+", "bare '+'"),
            ("+All", "'All' may not"),
            ("CaptureUserAgent -None", "cannot mix"),
            ("requests", "unknown flag 'requests'"),
        ] {
            assert!(apply_telemetry_options(&words(bad), [false; 2]).unwrap_err().contains(why), "{bad}");
        }
    }
}
