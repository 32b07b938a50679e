//! A daemon process's start-up environment, set while it is still single-threaded and free of
//! Python: its name in `ps`, `cpu-priority=`, its user and groups, working directory, account
//! variables, `umask=`, the resource limits, `lang=`, `locale=` and `python-eggs=`, in
//! mod_wsgi's order (`wsgi_setup_daemon_process`: the priority while still root, so that a
//! negative one is allowed; the limits once the user is switched; then the language settings
//! just before Python starts), so that Python's own start-up (which reads the locale from the
//! environment, and opens files as this user) sees them.
//!
//! `chroot=`: as mod_wsgi (`wsgi_setup_access`), the `chroot` comes first, while the process
//! is still root, then the credentials; the working directory (`home=`, or the user's home)
//! and the account's variables are then looked up inside the jail. The engine was mapped
//! before (see `engine_loader::load`); Python starts after all this, inside the jail, so
//! `python-home=`, `python-path=`, the standard library and the WSGI scripts are paths in it.
//! Requests name their script by its path outside (Apache's children see that one): the
//! daemon strips the root from it ([`jail_request`]), as mod_wsgi does.

use super::super::log;
use super::options::{Accounts, SystemAccounts};
use super::supervisor::{Group, Registry};
use super::wire::Hello;
use crate::abi::level;
use std::ffi::CString;
use std::sync::OnceLock;

/// The `chroot=` directory this daemon process is in, once the `chroot` succeeded.
static JAIL: OnceLock<String> = OnceLock::new();

/// Everything before the engine loads; `Err` stops the daemon (see `process::fail`).
pub fn prepare(registry: &Registry, group: &Group) -> Result<(), String> {
    set_display_name(registry, group);
    set_priority(group);
    drop_privileges(group)?;
    set_limits(group);
    set_language(group);
    // mod_wsgi sets it in `os.environ` of each interpreter; the process environment, set
    // before Python starts (no other thread runs yet here), is what every interpreter's
    // `os.environ` starts from.
    super::super::hooks::set_egg_cache(group.spec.python_eggs.as_deref());
    Ok(())
}

/// `display-name=`: written over `argv[0]` in place (its length is all the room there is),
/// as mod_wsgi does, and as the thread name `ps -L` and `top` show.
fn set_display_name(registry: &Registry, group: &Group) {
    let Some(name) = &group.spec.display_name else { return };
    // SAFETY: the main server's process record and argv are Apache's for the whole process;
    // argv[0] is writable memory of strlen(argv[0]) bytes, and we write no more.
    unsafe {
        let process = (*registry.main).process;
        if !process.is_null() && !(*process).argv.is_null() {
            let argv0 = (*(*process).argv).cast_mut();
            if !argv0.is_null() {
                let room = libc::strlen(argv0);
                let bytes = name.as_bytes();
                let n = bytes.len().min(room);
                std::ptr::copy_nonoverlapping(bytes.as_ptr().cast(), argv0, n);
                std::ptr::write_bytes(argv0.add(n), 0, room - n);
            }
        }
        let short: Vec<u8> = name.bytes().filter(|b| *b != 0).take(15).collect();
        if let Ok(short) = CString::new(short) {
            libc::prctl(libc::PR_SET_NAME, short.as_ptr());
        }
    }
}

/// `cpu-priority=`: the nice value of the daemon (and of the threads it starts later). A
/// failure is mod_wsgi's warning, not a failure to start.
fn set_priority(group: &Group) {
    let priority = group.spec.cpu_priority;
    if priority == 0 {
        return;
    }
    // SAFETY: setpriority has no memory preconditions; `who` 0 is this process.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, priority) } != 0 {
        log::server(
            level::WARNING,
            group.server,
            &format!(
                "Unable to set CPU priority of {priority} for daemon process '{}'; daemon will run with default priority: {}",
                group.spec.name,
                std::io::Error::last_os_error()
            ),
        );
    }
}

/// One resource limit as mod_wsgi sets it: `(resource, soft, hard, what failed)`.
type Limit = (libc::__rlimit_resource_t, u64, u64, String);

/// The limits of `cpu-time-limit=` (`RLIMIT_CPU`: the hard limit 1 s + `shutdown-timeout`
/// beyond the soft one, which sends `SIGXCPU`, so that the daemon can stop before the kernel
/// kills it), `memory-limit=` (`RLIMIT_DATA`) and `virtual-memory-limit=` (`RLIMIT_AS`), with
/// mod_wsgi's warnings.
fn limits(group: &Group) -> Vec<Limit> {
    let spec = &group.spec;
    let name = &spec.name;
    let mut limits = Vec::new();
    if spec.cpu_time_limit > 0 {
        let soft = spec.cpu_time_limit;
        let message =
            format!("Unable to set CPU time limit of {soft} seconds for daemon process '{name}'; daemon will run without the configured limit.");
        limits.push((libc::RLIMIT_CPU, soft, soft + 1 + spec.timeouts.shutdown, message));
    }
    if spec.memory_limit > 0 {
        let limit = spec.memory_limit;
        let message = format!("Unable to set memory limit of {limit} for daemon process '{name}'; daemon will run without the configured limit.");
        limits.push((libc::RLIMIT_DATA, limit, limit, message));
    }
    if spec.virtual_memory_limit > 0 {
        let limit = spec.virtual_memory_limit;
        let message =
            format!("Unable to set virtual memory limit of {limit} for daemon process '{name}'; daemon will run without the configured limit.");
        limits.push((libc::RLIMIT_AS, limit, limit, message));
    }
    limits
}

fn set_limits(group: &Group) {
    for (resource, soft, hard, message) in limits(group) {
        let limit = libc::rlimit { rlim_cur: soft, rlim_max: hard };
        // SAFETY: setrlimit reads the one struct it is given.
        if unsafe { libc::setrlimit(resource, &limit) } != 0 {
            log::server(level::WARNING, group.server, &format!("{message} ({})", std::io::Error::last_os_error()));
        }
    }
}

/// The supplementary groups `setgroups` gets for `supplementary-groups=`: as mod_wsgi, the
/// group's own gid and then the listed ones, instead of the user's groups from
/// `/etc/group` (which `initgroups` sets when the option is absent).
fn supplementary_groups(group: &Group) -> Vec<libc::gid_t> {
    std::iter::once(group.gid).chain(group.spec.supplementary_groups.iter().copied()).collect()
}

/// The groups `initgroups(name, gid)` would set: `gid` and every group of `/etc/group` (or
/// NSS) that lists `name`.
fn user_groups(name: &std::ffi::CStr, gid: libc::gid_t) -> Result<Vec<libc::gid_t>, String> {
    let mut gids: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut n = gids.len() as std::ffi::c_int;
        // SAFETY: name is NUL-terminated; gids has room for n entries, and n says how many
        // there are (or how many are needed, when -1 is returned).
        let found = unsafe { libc::getgrouplist(name.as_ptr(), gid, gids.as_mut_ptr(), &mut n) };
        if found >= 0 {
            gids.truncate(n.max(0) as usize);
            return Ok(gids);
        }
        if n as usize <= gids.len() || gids.len() >= 1 << 16 {
            return Err(format!("cannot list the groups of user '{}'", name.to_string_lossy()));
        }
        gids.resize(n as usize, 0);
    }
}

/// `chroot=`, then `chdir("/")` so that no directory outside stays reachable through the
/// working directory. mod_wsgi's message (and its refusal when not root, which the
/// configuration already checked: this one is for a daemon that somehow is not).
fn change_root(group: &Group) -> Result<(), String> {
    let Some(root) = &group.spec.chroot else { return Ok(()) };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(format!("Cannot chroot WSGI daemon process when not root (chroot '{root}'). Daemon process will exit."));
    }
    let c_root = CString::new(root.as_bytes()).map_err(|_| format!("chroot directory '{root}' has a NUL byte"))?;
    // SAFETY: c_root is a valid C string; chroot and chdir have no memory preconditions, and
    // the process is single-threaded here.
    if unsafe { libc::chroot(c_root.as_ptr()) } != 0 {
        return Err(format!("Unable to change root directory to '{root}': {}. Daemon process will exit.", std::io::Error::last_os_error()));
    }
    // SAFETY: as above, with a static C string.
    if unsafe { libc::chdir(c"/".as_ptr()) } != 0 {
        return Err(format!(
            "Unable to change working directory to '/' in chroot '{root}': {}. Daemon process will exit.",
            std::io::Error::last_os_error()
        ));
    }
    let _ = JAIL.set(root.clone());
    Ok(())
}

/// What a path outside the jail is inside it: `None` when it is not under `root`.
fn inside(root: &str, path: &[u8]) -> Option<Vec<u8>> {
    if root == "/" {
        return Some(path.to_vec());
    }
    let rest = path.strip_prefix(root.as_bytes())?;
    rest.starts_with(b"/").then(|| rest.to_vec())
}

/// A `WSGIImportScript` (or preloaded `WSGIScriptAlias`) path for a chrooted daemon: one
/// under `root` (Apache's view, as `WSGIScriptAlias` names it) becomes the path inside, so
/// that the first request finds the module already loaded under the same name; any other is
/// taken as a path inside the jail already, as mod_wsgi takes it.
pub fn import_path(root: Option<&str>, script: &str) -> String {
    match root {
        Some(root) => inside(root, script.as_bytes()).map_or_else(|| script.to_string(), |p| String::from_utf8_lossy(&p).into_owned()),
        None => script.to_string(),
    }
}

/// In a chrooted daemon, rewrites a request to the jail's view, as mod_wsgi does: the script
/// (and `SCRIPT_FILENAME`) without the root, `DOCUMENT_ROOT` likewise or removed when it lies
/// outside. A script outside the root is mod_wsgi's error (the request gets a 500). A no-op
/// in a daemon without `chroot=`.
pub fn jail_request(hello: &mut Hello) -> Result<(), String> {
    match JAIL.get() {
        Some(root) => rewrite(root, hello),
        None => Ok(()),
    }
}

fn rewrite(root: &str, hello: &mut Hello) -> Result<(), String> {
    let Some(script) = inside(root, &hello.script) else {
        return Err(format!(
            "WSGI script '{}' is not located within chroot directory '{root}'; rejecting request.",
            String::from_utf8_lossy(&hello.script)
        ));
    };
    hello.environ.retain_mut(|(name, value)| match &name[..] {
        b"SCRIPT_FILENAME" => {
            value.clone_from(&script);
            true
        }
        b"DOCUMENT_ROOT" if &value[..] == root.as_bytes() => {
            *value = b"/".to_vec();
            true
        }
        b"DOCUMENT_ROOT" => match inside(root, value) {
            Some(path) => {
                *value = path;
                true
            }
            None => false,
        },
        _ => true,
    });
    hello.script = script;
    Ok(())
}

/// As root: `chroot=`, then group, supplementary groups, then user; then the working
/// directory, the account's variables and `umask=`.
///
/// The user's groups are looked up before the chroot: a lookup goes through NSS, which may
/// load a library (`libnss_*.so`) not yet loaded, and inside the jail, still as root, that
/// would be a library the site may have put there (the sudo `--chroot` class of hole).
/// Inside the jail only `setgid`, `setgroups` and `setuid` run.
fn drop_privileges(group: &Group) -> Result<(), String> {
    let os_error = |what: &str| format!("{what}: {}", std::io::Error::last_os_error());
    let gids = if !group.spec.supplementary_groups.is_empty() {
        supplementary_groups(group)
    } else {
        match &group.user_name {
            Some(name) => user_groups(name, group.gid)?,
            None => vec![group.gid],
        }
    };
    change_root(group)?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // SAFETY: plain credential calls in a single-threaded process; the gid list outlives
        // the setgroups call that reads it.
        unsafe {
            if libc::setgid(group.gid) != 0 {
                return Err(os_error(&format!("setgid({})", group.gid)));
            }
            if libc::setgroups(gids.len(), gids.as_ptr()) != 0 {
                let what = if group.spec.supplementary_groups.is_empty() { "the user's groups" } else { "supplementary-groups" };
                return Err(os_error(&format!("setgroups({gids:?}) for {what}")));
            }
            if libc::setuid(group.uid) != 0 {
                return Err(os_error(&format!("setuid({})", group.uid)));
            }
        }
    }
    if let Some((home, required)) = &group.home {
        if let Err(e) = std::env::set_current_dir(home) {
            let message = format!("Unable to change working directory to '{}': {e}", home.display());
            if *required {
                return Err(message);
            }
            log::server(level::WARNING, group.server, &message);
        }
    }
    // SAFETY: getuid has no preconditions.
    if let Some(account) = SystemAccounts.user_by_id(unsafe { libc::getuid() }) {
        std::env::set_var("HOME", &account.home);
        for name in ["USER", "LOGNAME", "USERNAME"] {
            if name != "USERNAME" || std::env::var_os(name).is_some() {
                std::env::set_var(name, &account.name);
            }
        }
    }
    if let Some(mask) = group.spec.umask {
        // SAFETY: umask has no preconditions and cannot fail.
        unsafe { libc::umask(mask as libc::mode_t) };
    }
    Ok(())
}

/// `lang=` sets `LANG`; `locale=` sets `LC_ALL` and calls `setlocale(LC_ALL)`, as mod_wsgi
/// (and as its documentation says: "the same as having set the LC_ALL environment
/// variable"). A locale the system does not have is a warning, not a failure: the daemon runs
/// with the inherited locale, as in mod_wsgi.
fn set_language(group: &Group) {
    let name = &group.spec.name;
    if let Some(lang) = &group.spec.lang {
        log::server(level::DEBUG, group.server, &format!("Setting LANG to '{lang}' for daemon process group '{name}'."));
        std::env::set_var("LANG", lang);
    }
    if let Some(locale) = &group.spec.locale {
        log::server(level::DEBUG, group.server, &format!("Setting locale to '{locale}' for daemon process group '{name}'."));
        std::env::set_var("LC_ALL", locale);
        let set = CString::new(locale.as_bytes()).is_ok_and(|c_locale| {
            // SAFETY: single-threaded start-up; c_locale is a valid C string.
            !unsafe { libc::setlocale(libc::LC_ALL, c_locale.as_ptr()) }.is_null()
        });
        if !set {
            log::server(
                level::WARNING,
                group.server,
                &format!(
                    "Unsupported locale setting '{locale}' specified for daemon process group '{name}'; daemon will run with the \
                 inherited locale. Consider 'C.UTF-8' as a fallback."
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::options::{DaemonSpec, SystemAccounts};
    use super::*;

    fn group(options: &str) -> Group {
        Group {
            spec: DaemonSpec::parse(&format!("site {options}"), &SystemAccounts).unwrap(),
            server: std::ptr::null_mut(),
            path: Default::default(),
            listener: -1,
            uid: 0,
            gid: 0,
            user_name: None,
            home: None,
            python_home: None,
        }
    }

    #[test]
    fn a_user_s_groups_are_listed_as_initgroups_would_set_them() {
        let groups = super::user_groups(c"root", 0).unwrap();
        assert_eq!(groups.first(), Some(&0), "the primary group first: {groups:?}");
        assert!(super::user_groups(c"root", 4242).unwrap().contains(&4242), "the gid given is always in");
    }

    #[test]
    fn paths_inside_the_jail() {
        assert_eq!(inside("/srv/jail", b"/srv/jail/app/app.wsgi").as_deref(), Some(&b"/app/app.wsgi"[..]));
        assert_eq!(inside("/srv/jail", b"/srv/jailbreak/app.wsgi"), None, "a sibling with the same prefix is outside");
        assert_eq!(inside("/srv/jail", b"/srv/jail"), None);
        assert_eq!(inside("/", b"/app.wsgi").as_deref(), Some(&b"/app.wsgi"[..]));
        assert_eq!(import_path(Some("/srv/jail"), "/srv/jail/app.wsgi"), "/app.wsgi");
        assert_eq!(import_path(Some("/srv/jail"), "/app.wsgi"), "/app.wsgi", "already a path inside");
        assert_eq!(import_path(None, "/srv/jail/app.wsgi"), "/srv/jail/app.wsgi");
    }

    #[test]
    fn requests_are_rewritten_to_the_jail_s_view() {
        let pair = |k: &str, v: &str| (k.as_bytes().to_vec(), v.as_bytes().to_vec());
        let hello = |script: &str, document_root: &str| Hello {
            token: [0; 16],
            error_override: false,
            script: script.as_bytes().to_vec(),
            callable: b"application".to_vec(),
            group: Vec::new(),
            environ: vec![pair("SCRIPT_FILENAME", script), pair("DOCUMENT_ROOT", document_root), pair("PATH_INFO", "/x")],
        };
        let mut h = hello("/srv/jail/app/app.wsgi", "/srv/jail/www");
        rewrite("/srv/jail", &mut h).unwrap();
        assert_eq!(h.script, b"/app/app.wsgi");
        assert_eq!(h.environ, vec![pair("SCRIPT_FILENAME", "/app/app.wsgi"), pair("DOCUMENT_ROOT", "/www"), pair("PATH_INFO", "/x")]);
        let mut h = hello("/srv/jail/app.wsgi", "/var/www/html");
        rewrite("/srv/jail", &mut h).unwrap();
        assert_eq!(h.environ, vec![pair("SCRIPT_FILENAME", "/app.wsgi"), pair("PATH_INFO", "/x")], "a DOCUMENT_ROOT outside is removed");
        let mut h = hello("/srv/other/app.wsgi", "/srv/jail");
        assert_eq!(
            rewrite("/srv/jail", &mut h).unwrap_err(),
            "WSGI script '/srv/other/app.wsgi' is not located within chroot directory '/srv/jail'; rejecting request."
        );
    }

    #[test]
    fn limits_are_mod_wsgi_s_resources_and_values() {
        assert!(limits(&group("")).is_empty(), "0: no limit");
        let set: Vec<_> = limits(&group("cpu-time-limit=10 shutdown-timeout=4 memory-limit=1000 virtual-memory-limit=2000"))
            .into_iter()
            .map(|(resource, soft, hard, _)| (resource, soft, hard))
            .collect();
        assert_eq!(set, vec![(libc::RLIMIT_CPU, 10, 15), (libc::RLIMIT_DATA, 1000, 1000), (libc::RLIMIT_AS, 2000, 2000)]);
    }
}
