//! The directives of daemon mode: `WSGIDaemonProcess` (a group's definition),
//! `WSGIProcessGroup` and `WSGIRestrictProcess` (which group serves a request),
//! `WSGISocketPrefix`, `WSGISocketRotation` and `WSGIAcceptMutex` (the groups' sockets), and
//! mod_wsgi's checks that a daemon group a directive names is defined above it and reachable
//! from the directive's virtual host.

use super::*;

/// mod_wsgi's checks of a daemon group named by a directive of `server`: a `WSGIDaemonProcess`
/// before it defines the group, and a group of a virtual host serves that host's name only.
pub(super) fn check_daemon_group_reachable(name: &str, server: *mut apache::server_rec) -> Result<(), String> {
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
        (Some(a), Some(b)) if a != b => {
            Err(format!("WSGI process group not accessible. ('{name}' belongs to virtual host {}.)", b.to_string_lossy()))
        }
        (None, Some(_)) | (Some(_), None) => Err(format!("WSGI process group not matchable. ('{name}' belongs to another virtual host.)")),
        _ => Ok(()),
    }
}

/// The New Relic options warning is given once per process, not per group or per reading of
/// the configuration.
static NEW_RELIC_WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A daemon group of this server or virtual host (see `daemon/options.rs`); its sockets and
/// processes are made in `post_config`, never while the configuration is only tested.
pub(super) unsafe extern "C" fn daemon_process(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        let spec = DaemonSpec::parse(&d.arg, &SystemAccounts)?;
        if !spec.ignored.is_empty() && !NEW_RELIC_WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            // SAFETY: cmd is the live cmd_parms of this directive call.
            let server = unsafe { (*d.cmd).server };
            log::server(
                apache::APLOG_WARNING as c_int,
                server,
                &format!(
                    "WSGIDaemonProcess {}: {} ignored: mod_wsgi-rs has no New Relic agent hook (import 'newrelic.agent' and \
                 call newrelic.agent.initialize() in the WSGI script instead).",
                    spec.name,
                    spec.ignored.join(" and ")
                ),
            );
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
pub(super) unsafe extern "C" fn process_group(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        let spec = if d.arg.is_empty() { GroupSpec::Global } else { GroupSpec::parse(&d.arg).map_err(|e| format!("WSGIProcessGroup: {e}"))? };
        d.options().process_group = Some(spec);
        Ok(())
    })
}

/// `WSGIRestrictProcess group ...`: the process groups a `WSGIProcessGroup` or `process-group=`
/// may select for requests here (`%{GLOBAL}`: embedded mode); none listed refuses them all.
pub(super) unsafe extern "C" fn restrict_process(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        let groups = split_words(&d.arg)?.into_iter().map(|g| if g == "%{GLOBAL}" { String::new() } else { g }).collect();
        d.options().restrict_process = Some(groups);
        Ok(())
    })
}

pub(super) unsafe extern "C" fn socket_rotation(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    global_flag(cmd, mconfig, arg, "WSGISocketRotation", |c, on| c.socket_rotation = Some(on))
}

pub(super) unsafe extern "C" fn accept_mutex(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.global_only()?;
        parse_accept_mutex(&d.arg)
    })
}

/// Relative to `ServerRoot`, as in mod_wsgi.
pub(super) unsafe extern "C" fn socket_prefix(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
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
