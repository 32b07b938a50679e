//! `WSGIPerInterpreterGIL` and the `<WSGIInterpreterOptions>` container (mod_wsgi 6, plus
//! our `Auto` and `replicas=`): the directives that choose, per application group, whether its
//! interpreter gets its own GIL and how many interpreters serve it; and the other directives
//! mod_wsgi 6 lets a container scope to the groups it selects (`WSGIPythonPath`,
//! `WSGISwitchInterval`, `WSGIRestrictStdin`, `WSGIRestrictStdout`, `WSGIRestrictSignal`,
//! `WSGIFreeThreading`), through [`scoped`].

use super::*;

/// The container's name, as Apache gives it to the section handler and to its children.
const INTERPRETER_OPTIONS: &str = "<WSGIInterpreterOptions";

extern "C" {
    /// Runs the directives of a section (bindgen does not list it; see http_config.h).
    fn ap_walk_config(current: *mut apache::ap_directive_t, parms: *mut cmd_parms, section_vector: *mut apache::ap_conf_vector_t) -> *const c_char;
}

/// `Off`, `On` or `Auto` (ours: `On`, falling back to the shared GIL; see the engine's
/// `fallback.rs`), case-insensitive.
pub fn parse_gil_mode(value: &str) -> Result<GilMode, String> {
    match value.to_ascii_lowercase().as_str() {
        "off" => Ok(GilMode::Shared),
        "on" => Ok(GilMode::Own),
        "auto" => Ok(GilMode::Auto),
        _ => Err("WSGIPerInterpreterGIL must be one of: Off | On | Auto".into()),
    }
}

/// Whether a Python version ("3.11") has per-interpreter GILs (3.12 and later).
pub fn has_per_interpreter_gil(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (3, 12)
}

/// Whether the directive being read sits directly inside a `<WSGIInterpreterOptions>`.
fn in_interpreter_options(cmd: *mut cmd_parms) -> bool {
    // SAFETY: cmd, its directive and the parent chain are live during the directive's call.
    unsafe {
        let directive = (*cmd).directive;
        if directive.is_null() || (*directive).parent.is_null() || (*(*directive).parent).directive.is_null() {
            return false;
        }
        CStr::from_ptr((*(*directive).parent).directive).to_string_lossy().eq_ignore_ascii_case(INTERPRETER_OPTIONS)
    }
}

/// The directives a `<WSGIInterpreterOptions>` may hold (mod_wsgi 6's list).
const ALLOWED_INSIDE: [&str; 7] = [
    "WSGIPerInterpreterGIL",
    "WSGIPythonPath",
    "WSGISwitchInterval",
    "WSGIRestrictStdin",
    "WSGIRestrictStdout",
    "WSGIRestrictSignal",
    "WSGIFreeThreading",
];

/// A directive allowed both in the main server (`GLOBAL_ONLY`) and inside a
/// `<WSGIInterpreterOptions>`: `parse` reads the value, `in_block` stores it in the container
/// being read, `at_server` in the main server's record.
pub(in crate::module) fn scoped<T>(
    cmd: *mut cmd_parms,
    mconfig: *mut c_void,
    arg: *const c_char,
    parse: impl FnOnce(&str) -> Result<T, String>,
    in_block: impl FnOnce(&mut InterpreterOptions, T),
    at_server: impl FnOnce(&mut super::super::config::ServerConfig, T),
) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        let nested = in_interpreter_options(d.cmd);
        if !nested {
            d.global_only()?;
        }
        let value = parse(&d.arg)?;
        let server = d.server();
        if nested {
            in_block(current_block(server)?, value);
        } else {
            at_server(server, value);
        }
        Ok(())
    })
}

/// The container being read: the last one pushed (its children are walked right after).
fn current_block(server: &mut super::super::config::ServerConfig) -> Result<&mut InterpreterOptions, String> {
    server.interpreter_options.last_mut().ok_or_else(|| "internal error: no <WSGIInterpreterOptions> block".to_string())
}

/// The longest switch interval accepted: CPython turns it into microseconds in an unsigned
/// long, which a huge value would overflow.
const MAX_SWITCH_INTERVAL: f64 = 3600.0;

/// A positive number of seconds, as mod_wsgi 6 says it (and at most an hour).
pub fn parse_switch_interval(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > MAX_SWITCH_INTERVAL => {
            Err(format!("WSGISwitchInterval must be at most {MAX_SWITCH_INTERVAL} seconds."))
        }
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 => Ok(seconds),
        _ => Err("WSGISwitchInterval must be a positive number of seconds.".into()),
    }
}

/// `WSGISwitchInterval SECONDS` (mod_wsgi 6): `sys.setswitchinterval` for every interpreter,
/// or inside a container for the groups selected (an application group's only if it has its
/// own GIL: on the shared one it would change every group's; the engine says so once).
pub(super) unsafe extern "C" fn switch_interval(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    scoped(cmd, mconfig, arg, parse_switch_interval, |b, s| b.switch_interval = Some(s), |server, s| server.switch_interval = Some(s))
}

/// `WSGIFreeThreading On|Off` (mod_wsgi 6): accepted for drop-in configurations; no engine
/// here runs a free-threaded (PEP 703) Python, so `On` is a warning, as mod_wsgi 6 gives on a
/// Python built with the GIL. Free threading is per process: a container with
/// `application-group=` gets mod_wsgi 6's warning that it is ignored there.
pub(super) unsafe extern "C" fn free_threading(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        let nested = in_interpreter_options(d.cmd);
        if !nested {
            d.global_only()?;
        }
        let on = parse_on_off("WSGIFreeThreading", &d.arg)?;
        let place = where_is(d.cmd);
        // SAFETY: cmd is the live cmd_parms of this directive call.
        let s = unsafe { (*d.cmd).server };
        let server = d.server();
        if nested {
            let block = current_block(server)?;
            if block.application_group.is_some() {
                log::server(apache::APLOG_WARNING as c_int, s, &format!(
                    "WSGIFreeThreading inside <WSGIInterpreterOptions> with application-group= set is ignored: free-threading is a process-wide setting and cannot be scoped per application group ({place})."
                ));
            }
            block.free_threading = Some(on);
        } else {
            server.free_threading = Some(on);
        }
        if on {
            log::server(
                apache::APLOG_WARNING as c_int,
                s,
                &format!(
                    "WSGIFreeThreading On has no effect: mod_wsgi-rs has no engine for a free-threaded Python (PEP 703); the GIL stays on ({place})."
                ),
            );
        }
        Ok(())
    })
}

/// `WSGIPerInterpreterGIL Off|On|Auto`, in the main server or inside a
/// `<WSGIInterpreterOptions>` (then for the groups it selects). The engine's Python is known
/// here: before 3.12 a value other than `Off` is accepted with a warning and has no effect,
/// as mod_wsgi 6 does.
pub(super) unsafe extern "C" fn per_interpreter_gil(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        let nested = in_interpreter_options(d.cmd);
        if !nested {
            d.global_only()?;
        }
        let mode = parse_gil_mode(&d.arg)?;
        let server = d.server();
        let process_group = if nested { server.interpreter_options.last().and_then(|b| b.process_group.clone()) } else { None };
        if nested {
            current_block(server)?.per_interpreter_gil = Some(mode);
        } else {
            server.per_interpreter_gil = Some(mode);
        }
        if mode != GilMode::Shared {
            // A daemon group defined above with a python-home= of its own runs that Python.
            let home = process_group
                .and_then(|name| server.daemons.iter().find(|spec| spec.name == name).and_then(|spec| spec.python_home.clone()))
                .or_else(|| server.python_home.clone());
            let version = match &home {
                Some(home) => engine_loader::python_home_version(Path::new(home)).unwrap_or_default(),
                None => engine_loader::DEFAULT_PYTHON_VERSION.to_string(),
            };
            if !version.is_empty() && !has_per_interpreter_gil(&version) {
                // SAFETY: cmd is the live cmd_parms of this directive call.
                let s = unsafe { (*d.cmd).server };
                log::server(
                    apache::APLOG_WARNING as c_int,
                    s,
                    &format!(
                        "WSGIPerInterpreterGIL requires Python 3.12 or later; directive has no effect on this build (Python {version}, {}).",
                        where_is(d.cmd)
                    ),
                );
            }
        }
        Ok(())
    })
}

/// The opening tag's selectors: `process-group=NAME` and/or `application-group=NAME`
/// (`%{GLOBAL}`: Apache's own children, or the main interpreter), each at most once, with
/// mod_wsgi 6's messages.
pub fn parse_interpreter_options(arg: &str) -> Result<InterpreterOptions, String> {
    let Some(inner) = arg.trim_end().strip_suffix('>') else {
        return Err("<WSGIInterpreterOptions> directive missing closing '>'".into());
    };
    let mut block = InterpreterOptions::default();
    for word in split_words(inner)? {
        let Some((key, value)) = word.split_once('=') else {
            return Err(format!("<WSGIInterpreterOptions>: argument '{word}' is not of the form key=value"));
        };
        let value = if value == "%{GLOBAL}" { String::new() } else { value.to_string() };
        let (slot, name) = match key.to_ascii_lowercase().as_str() {
            "process-group" => (&mut block.process_group, "process-group"),
            "application-group" => (&mut block.application_group, "application-group"),
            "replicas" if block.replicas.is_none() => {
                block.replicas = Some(parse_replicas(&value).map_err(|e| format!("<WSGIInterpreterOptions>: {e}"))?);
                continue;
            }
            "replicas" => return Err("<WSGIInterpreterOptions>: replicas given more than once".into()),
            _ => return Err(format!("<WSGIInterpreterOptions>: unknown selector '{key}', expected process-group or application-group")),
        };
        if slot.is_some() {
            return Err(format!("<WSGIInterpreterOptions>: {name} given more than once"));
        }
        *slot = Some(value);
    }
    Ok(block)
}

/// `<WSGIInterpreterOptions process-group=... application-group=...>`: main server only. A
/// directive mod_wsgi 6 does not allow inside is a configuration error, as there, with its
/// file and line.
pub(super) unsafe extern "C" fn interpreter_options(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.global_only()?;
        let block = parse_interpreter_options(&d.arg)?;
        // SAFETY: cmd and its directive tree are live while the configuration is read.
        let first = unsafe { (*(*d.cmd).directive).first_child };
        let mut child = first;
        while !child.is_null() {
            // SAFETY: a live node of Apache's configuration tree, NUL-terminated strings.
            let (name, file, line) = unsafe {
                let c = &*child;
                let file = if c.filename.is_null() { String::new() } else { CStr::from_ptr(c.filename).to_string_lossy().into_owned() };
                (CStr::from_ptr(c.directive).to_string_lossy().into_owned(), file, c.line_num)
            };
            if !ALLOWED_INSIDE.iter().any(|allowed| name.eq_ignore_ascii_case(allowed)) {
                return Err(format!(
                    "<WSGIInterpreterOptions>: {name} ({file}:{line}) is not allowed inside this container; it holds only {}",
                    ALLOWED_INSIDE.join(", ")
                ));
            }
            // SAFETY: as above.
            child = unsafe { (*child).next };
        }
        d.server().interpreter_options.push(block);
        // SAFETY: Apache's own walker over the container's directives, with the server's
        // defaults (as mod_wsgi 6 calls it); its message, if any, is a pool string.
        let message = unsafe { ap_walk_config(first, d.cmd, (*(*d.cmd).server).lookup_defaults) };
        if message.is_null() {
            Ok(())
        } else {
            // SAFETY: a NUL-terminated message from Apache.
            Err(unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpreter_options_selectors_and_errors_are_mod_wsgi_6s() {
        let b = parse_interpreter_options("process-group=site application-group=%{GLOBAL}>").unwrap();
        assert_eq!((b.process_group.as_deref(), b.application_group.as_deref()), (Some("site"), Some("")));
        assert_eq!(parse_interpreter_options(">").unwrap(), InterpreterOptions::default());
        assert!(parse_interpreter_options("application-group=a").unwrap_err().contains("missing closing '>'"));
        assert!(parse_interpreter_options("a>").unwrap_err().contains("is not of the form key=value"));
        assert!(parse_interpreter_options("user=a>").unwrap_err().contains("unknown selector 'user'"));
        assert!(parse_interpreter_options("application-group=a application-group=b>").unwrap_err().contains("given more than once"));
        assert_eq!(parse_gil_mode("AUTO"), Ok(GilMode::Auto));
        assert_eq!(parse_gil_mode("off"), Ok(GilMode::Shared));
        assert!(parse_gil_mode("yes").unwrap_err().contains("Off | On | Auto"));
        assert!(!has_per_interpreter_gil("3.11") && !has_per_interpreter_gil("2.7"));
        assert!(has_per_interpreter_gil("3.12") && has_per_interpreter_gil("3.13") && has_per_interpreter_gil("4.0"));
        assert_eq!(parse_switch_interval("0.005"), Ok(0.005));
        for bad in ["0", "-1", "x", "", "inf", "NaN"] {
            assert!(parse_switch_interval(bad).unwrap_err().contains("positive number of seconds"), "{bad}");
        }
        assert!(parse_switch_interval("1e30").unwrap_err().contains("at most 3600 seconds"));
    }
}
