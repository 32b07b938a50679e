//! Apache's parent: one listening socket per daemon group, and its daemon processes, forked
//! once Apache's scoreboard exists and registered as APR "other children" so that the MPM's
//! reaping loop tells us when one dies and we fork it again.
//!
//! When the daemons are forked: as mod_wsgi does, after the scoreboard exists, so that a
//! daemon inherits its (anonymous, so inherited or never seen) shared memory and
//! `mod_wsgi.server_metrics()` works there from the first start. Core creates the scoreboard
//! in the `pre_mpm` hook, which the MPM runs after `post_config` on the first start and on
//! every non-graceful restart (a graceful one runs none); once created it lives as long as
//! Apache's parent (a non-graceful restart clears it in place). So on the first start
//! `post_config` defers the forks to a `pre_mpm` hook of ours that runs after core's
//! (`APR_HOOK_REALLY_LAST`); on every restart the scoreboard is already there and
//! `post_config` forks them itself. Either way they are forked before the MPM starts its
//! children, and each daemon unmaps or seals its copy at once (`scoreboard.rs`).
//!
//! Restart and stop need no code of ours: clearing `pconf` runs [`Listener`]'s cleanup
//! (close and unlink, in the parent only) and APR's `free_proc_chain` (SIGTERM, at most 3 s,
//! SIGKILL) for every process noted with `apr_pool_note_subprocess`.

use super::super::apache;
use super::super::config::{pool_owned, ServerConfig};
use super::super::log;
use super::super::record::server_config;
use super::super::scoreboard;
use super::super::trampoline::trampoline;
use super::inherited;
use super::options::DaemonSpec;
use super::process;
use crate::abi::level;
use std::ffi::{c_int, c_void, CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// One daemon group, as the parent set it up for this generation.
pub struct Group {
    pub spec: DaemonSpec,
    /// The server (main or virtual host) whose configuration defined the group.
    pub server: *mut apache::server_rec,
    pub path: PathBuf,
    /// The listening socket (non-blocking, close-on-exec); -1 once closed in this process.
    pub listener: c_int,
    pub uid: u32,
    pub gid: u32,
    /// The account name for `initgroups`, when known.
    pub user_name: Option<CString>,
    /// Where the daemon changes directory to: `home=`, else the home of a `user=` that is
    /// not Apache's.
    pub home: Option<(PathBuf, bool)>,
    /// `python-home=`, else `WSGIPythonHome`.
    pub python_home: Option<String>,
}

/// Every group of this generation; Apache's children and the daemons inherit it by fork.
pub struct Registry {
    pub groups: Vec<Group>,
    pub main: *mut apache::server_rec,
    pub pconf: *mut apache::apr_pool_t,
}

// SAFETY: the server records and pconf are Apache's configuration of this generation,
// read-only after post_config; the registry is replaced (not mutated) on each generation.
unsafe impl Send for Registry {}
// SAFETY: as above.
unsafe impl Sync for Registry {}

static REGISTRY: RwLock<Option<Arc<Registry>>> = RwLock::new(None);
/// Each group's per-generation secret, by group index: the child sends it first, so a
/// process that can reach a socket but was not forked from this parent is refused. Kept
/// apart from the registry so that a daemon can wipe the other groups' secrets.
static TOKENS: Mutex<Vec<[u8; 16]>> = Mutex::new(Vec::new());
/// Group names seen while this configuration is read, with the address of the server record
/// that defines each: for mod_wsgi's duplicate check, and for the directives that name a
/// group defined earlier (`WSGIImportScript`).
static NAMES: Mutex<Vec<(String, usize)>> = Mutex::new(Vec::new());
/// Set by `post_config` when it found no scoreboard yet (the first start): [`pre_mpm`] forks
/// this generation's daemons once core has created it.
static FORKS_DEFERRED: AtomicBool = AtomicBool::new(false);

/// The groups of this generation, if any.
pub fn registry() -> Option<Arc<Registry>> {
    REGISTRY.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Removes the registry from this process (a daemon keeps its own copy).
pub fn take_registry() -> Option<Arc<Registry>> {
    REGISTRY.write().unwrap_or_else(|e| e.into_inner()).take()
}

/// The secret of group `index`.
pub fn token(index: usize) -> Option<[u8; 16]> {
    TOKENS.lock().unwrap_or_else(|e| e.into_inner()).get(index).copied()
}

/// Wipes every group's secret from this process (a daemon, once it has copied its own).
pub fn forget_tokens() {
    let mut tokens = TOKENS.lock().unwrap_or_else(|e| e.into_inner());
    tokens.iter_mut().for_each(|t| t.fill(0));
    tokens.clear();
}

/// Records a group name, defined by `server`, while the configuration is read; a second
/// definition is an error.
pub fn claim_name(name: &str, server: *mut apache::server_rec) -> Result<(), String> {
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if names.iter().any(|(n, _)| n == name) {
        return Err("Name duplicates previous WSGI daemon definition.".into());
    }
    names.push((name.to_string(), server as usize));
    Ok(())
}

/// The server that defined group `name`, if a `WSGIDaemonProcess` read so far did.
pub fn defined_by(name: &str) -> Option<*mut apache::server_rec> {
    NAMES.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|(n, _)| n == name).map(|(_, s)| *s as *mut apache::server_rec)
}

/// Forgets the previous generation before the configuration is read again.
pub unsafe extern "C" fn pre_config(_pconf: *mut apache::apr_pool_t, _plog: *mut apache::apr_pool_t, _ptemp: *mut apache::apr_pool_t) -> c_int {
    trampoline("pre_config", apache::OK as c_int, || {
        NAMES.lock().unwrap_or_else(|e| e.into_inner()).clear();
        super::super::imports::clear();
        super::super::dispatch::reset();
        forget_tokens();
        take_registry();
        FORKS_DEFERRED.store(false, Ordering::Relaxed);
        apache::OK as c_int
    })
}

/// Creates the listeners and forks the daemons (or has [`pre_mpm`] fork them, see the top of
/// this file). Skipped on the first of the two start-up runs (before Apache detaches), whose
/// `pconf` is cleared at once, and never reached by `apache2 -t`, which exits before
/// `post_config`. Also records `WSGIServerMetrics` for the children forked from now on.
pub unsafe extern "C" fn post_config(
    pconf: *mut apache::apr_pool_t,
    _plog: *mut apache::apr_pool_t,
    _ptemp: *mut apache::apr_pool_t,
    s: *mut apache::server_rec,
) -> c_int {
    trampoline("post_config", apache::HTTP_INTERNAL_SERVER_ERROR as c_int, || {
        // SAFETY: s is the main server, its configuration read-only by now.
        scoreboard::set_enabled(unsafe { server_config(s) }.server_metrics == Some(true));
        // SAFETY: ap_state_query has no preconditions.
        if unsafe { apache::ap_state_query(apache::AP_SQ_MAIN_STATE as c_int) } == apache::AP_SQ_MS_CREATE_PRE_CONFIG as c_int {
            return apache::OK as c_int;
        }
        match start(pconf, s) {
            Ok(()) => apache::OK as c_int,
            Err(message) => {
                log::server(log::ERR, s, &message);
                apache::HTTP_INTERNAL_SERVER_ERROR as c_int
            }
        }
    })
}

fn start(pconf: *mut apache::apr_pool_t, main: *mut apache::server_rec) -> Result<(), String> {
    let mut specs = Vec::new();
    // A virtual host without a directive of ours has no record of its own: Apache gives it
    // the main server's (merge_server_configs copies the pointer), whose groups must not be
    // started a second time for it.
    let mut seen: Vec<*const ServerConfig> = Vec::new();
    let mut server = main;
    while !server.is_null() {
        // SAFETY: the server list is Apache's, complete and read-only after the config is read.
        let config = unsafe { server_config(server) };
        if !seen.contains(&(config as *const ServerConfig)) {
            seen.push(config);
            specs.extend(config.daemons.iter().map(|spec| (spec.clone(), server)));
        }
        // SAFETY: as above.
        server = unsafe { (*server).next };
    }
    let boards: Vec<(String, usize)> = specs.iter().map(|(spec, _)| (spec.name.clone(), spec.processes as usize)).collect();
    if let Err(message) = super::super::metrics::board::create_daemon_boards(&boards) {
        // Only the daemons' rows of the status page are lost.
        log::server(log::WARNING, main, &message);
    }
    if specs.is_empty() {
        return Ok(());
    }
    // SAFETY: main is the live main server.
    let main_config = unsafe { server_config(main) };
    let prefix = match &main_config.socket_prefix {
        Some(prefix) => prefix.clone(),
        // SAFETY: pconf is live; the result is a pool string (DefaultRuntimeDir + "/wsgi").
        None => unsafe { CStr::from_ptr(apache::ap_runtime_dir_relative(pconf, c"wsgi".as_ptr())) }.to_string_lossy().into_owned(),
    };
    let generation = mpm_query(apache::AP_MPMQ_GENERATION);
    let rotation = main_config.socket_rotation.unwrap_or(true);
    let mut groups = Vec::new();
    let mut tokens = Vec::new();
    for (index, (spec, server)) in specs.into_iter().enumerate() {
        let mut group = group(spec, server, main_config.python_home.clone());
        group.path = socket_path(&prefix, rotation, generation, group.uid, index + 1);
        let listener = Listener::open(&group.path, &group.spec, group.server)?;
        group.listener = listener.fd;
        pool_owned(pconf, listener);
        groups.push(group);
        tokens.push(random_token()?);
    }
    *TOKENS.lock().unwrap_or_else(|e| e.into_inner()) = tokens;
    let registry = Arc::new(Registry { groups, main, pconf });
    *REGISTRY.write().unwrap_or_else(|e| e.into_inner()) = Some(registry.clone());
    if scoreboard::exists() {
        fork_all(&registry);
    } else {
        FORKS_DEFERRED.store(true, Ordering::Relaxed);
        // Registered now, as mod_wsgi does, rather than with the other hooks: it is needed
        // once, on the first start, and a hook added after Apache sorted its hooks runs after
        // those of its list (core's scoreboard creation included), as REALLY_LAST asks.
        // SAFETY: registers a static function; the parent is single-threaded here.
        unsafe { apache::ap_hook_pre_mpm(Some(pre_mpm), std::ptr::null(), std::ptr::null(), apache::APR_HOOK_REALLY_LAST as c_int) };
    }
    Ok(())
}

/// Forks the daemons deferred by `post_config`, now that core's `pre_mpm` (which runs before
/// this one) has created the scoreboard.
unsafe extern "C" fn pre_mpm(_pglobal: *mut apache::apr_pool_t, _sb_type: apache::ap_scoreboard_e) -> c_int {
    trampoline("pre_mpm", apache::OK as c_int, || {
        if FORKS_DEFERRED.swap(false, Ordering::Relaxed) {
            if let Some(registry) = registry() {
                fork_all(&registry);
            }
        }
        apache::OK as c_int
    })
}

/// Forks every process of every group, each in its own slot of `pconf`.
fn fork_all(registry: &Arc<Registry>) {
    for (index, group) in registry.groups.iter().enumerate() {
        for n in 0..group.spec.processes {
            // SAFETY: memory of pconf, which outlives the process records APR keeps for it.
            let instance = unsafe { apache::apr_palloc(registry.pconf, std::mem::size_of::<Instance>()) }.cast::<Instance>();
            // SAFETY: fresh, suitably aligned pool memory; apr_proc_t is plain old data.
            unsafe { instance.write(Instance { process: std::mem::zeroed(), group: index, n }) };
            fork(registry, instance);
        }
    }
}

/// Group `id`'s socket, named as mod_wsgi names it. `WSGISocketRotation On` (the default):
/// a new name each generation (`prefix.PID.GENERATION.ID.sock`), so that a restart never
/// reuses a path. `Off`: the same name across restarts (`prefix.PID.uUID.ID.sock`, the
/// daemon's uid in place of the generation).
fn socket_path(prefix: &str, rotation: bool, generation: c_int, uid: u32, id: usize) -> PathBuf {
    let pid = std::process::id();
    if rotation {
        PathBuf::from(format!("{prefix}.{pid}.{generation}.{id}.sock"))
    } else {
        PathBuf::from(format!("{prefix}.{pid}.u{uid}.{id}.sock"))
    }
}

/// Resolves who a group runs as (defaults: Apache's `User` and `Group`, known by now); its
/// socket is opened afterwards (its name may hold the uid).
fn group(spec: DaemonSpec, server: *mut apache::server_rec, python_home: Option<String>) -> Group {
    // SAFETY: ap_unixd_config is set by mod_unixd's directives and read-only afterwards.
    let apache_user = unsafe { std::ptr::addr_of!(apache::ap_unixd_config).read() };
    let (uid, user_name) = match &spec.user {
        Some(user) => (user.uid, CString::new(user.name.clone()).ok()),
        None if apache_user.user_name.is_null() => (apache_user.user_id, None),
        // SAFETY: a NUL-terminated string of the configuration.
        None => (apache_user.user_id, Some(unsafe { CStr::from_ptr(apache_user.user_name) }.to_owned())),
    };
    let home = match (&spec.home, &spec.user) {
        (Some(home), _) => Some((PathBuf::from(home), true)),
        (None, Some(user)) if user.uid != apache_user.user_id => Some((PathBuf::from(&user.home), false)),
        _ => None,
    };
    Group {
        gid: spec.gid.unwrap_or(apache_user.group_id),
        python_home: spec.python_home.clone().or(python_home),
        spec,
        server,
        path: PathBuf::new(),
        listener: -1,
        uid,
        user_name,
        home,
    }
}

fn random_token() -> Result<[u8; 16], String> {
    let mut token = [0u8; 16];
    // SAFETY: getrandom writes at most 16 bytes into the array.
    let n = unsafe { libc::getrandom(token.as_mut_ptr().cast(), token.len(), 0) };
    if n != 16 {
        return Err(format!("cannot read random bytes for a daemon token: {}", std::io::Error::last_os_error()));
    }
    Ok(token)
}

fn mpm_query(code: u32) -> c_int {
    let mut value: c_int = 0;
    // SAFETY: ap_mpm_query writes one int.
    unsafe { apache::ap_mpm_query(code as c_int, &mut value) };
    value
}

/// A group's listening socket, owned by `pconf`: dropped (closed and unlinked) when the
/// generation ends, in the parent only (a child's copy of the pool never runs this, but a
/// forked daemon must never unlink the parent's socket either).
struct Listener {
    fd: c_int,
    path: PathBuf,
    parent: u32,
}

impl Listener {
    /// `socket` (with `send-buffer-size=` and `receive-buffer-size=`), `bind` under umask
    /// 077 (mode 0700), `listen` with the group's `listen-backlog=`, then (as root) `chown` to
    /// Apache's `User`, or to `socket-user=` (for an MPM whose children switch to other
    /// users, such as ITK): only they and root can connect.
    fn open(path: &Path, spec: &DaemonSpec, server: *mut apache::server_rec) -> Result<Listener, String> {
        let fail = |what: &str| format!("cannot {what} the daemon socket {}: {}", path.display(), std::io::Error::last_os_error());
        warn_if_others_can_replace(path, server);
        // SAFETY: sockaddr_un is plain old data.
        let mut address: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        let bytes = path.as_os_str().as_bytes();
        if bytes.len() >= address.sun_path.len() {
            return Err(format!(
                "daemon socket path {} is {} bytes, over the limit of {}: set WSGISocketPrefix to a shorter path",
                path.display(),
                bytes.len(),
                address.sun_path.len() - 1
            ));
        }
        address.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (to, from) in address.sun_path.iter_mut().zip(bytes) {
            *to = *from as libc::c_char;
        }
        // SAFETY: plain socket creation.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0) };
        if fd < 0 {
            return Err(fail("create"));
        }
        let listener = Listener { fd, path: path.to_path_buf(), parent: std::process::id() };
        set_buffer_size(fd, libc::SO_SNDBUF, spec.send_buffer_size, "send", server);
        set_buffer_size(fd, libc::SO_RCVBUF, spec.receive_buffer_size, "receive", server);
        let size = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        let bind = || {
            // SAFETY: the parent is single-threaded here; the umask is restored at once.
            let old = unsafe { libc::umask(0o077) };
            // SAFETY: address is a valid sockaddr_un of `size` bytes.
            let rc = unsafe { libc::bind(fd, (&address as *const libc::sockaddr_un).cast(), size) };
            // SAFETY: as above.
            unsafe { libc::umask(old) };
            rc
        };
        if bind() != 0 {
            if std::io::Error::last_os_error().raw_os_error() != Some(libc::EADDRINUSE) {
                return Err(fail("bind"));
            }
            log::server(level::NOTICE, std::ptr::null(), &format!("Removing stale unix domain socket '{}'.", path.display()));
            let _ = std::fs::remove_file(path);
            if bind() != 0 {
                return Err(fail("bind"));
            }
        }
        // SAFETY: fd is a bound socket.
        if unsafe { libc::listen(fd, spec.listen_backlog) } != 0 {
            return Err(fail("listen on"));
        }
        // SAFETY: geteuid has no preconditions; ap_unixd_config is read-only by now.
        if unsafe { libc::geteuid() } == 0 {
            let c_path = CString::new(bytes).map_err(|_| "socket path has a NUL byte".to_string())?;
            // SAFETY: as above.
            let owner = spec.socket_user.as_ref().map_or(unsafe { apache::ap_unixd_config.user_id }, |user| user.uid);
            // lchown: should the name have been swapped for a symbolic link since the bind
            // (a directory others can write), the link's owner changes, never its target's.
            // SAFETY: c_path is a valid C string; -1 leaves the group unchanged.
            if unsafe { libc::lchown(c_path.as_ptr(), owner, u32::MAX) } != 0 {
                return Err(fail(&format!("change the owner (to uid={owner}) of")));
            }
        }
        Ok(listener)
    }
}

/// Warns when a user other than root and Apache's `User` could replace the socket's name
/// (`WSGISocketPrefix` in a directory such a user owns, or that its group or everyone may
/// write without the sticky bit): Apache's children connect by name and would then send
/// requests, and the group's token, to whoever listens there. mod_wsgi does not check;
/// refusing would break configurations it accepts, so this is a warning at every start.
fn warn_if_others_can_replace(path: &Path, server: *mut apache::server_rec) {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: ap_unixd_config is read-only by now.
    let apache_user = unsafe { apache::ap_unixd_config.user_id };
    // Its directory, and every directory above: renaming any component of the path replaces
    // the socket as well.
    for dir in path.ancestors().skip(1) {
        let Ok(meta) = std::fs::metadata(dir) else { return };
        let sticky = meta.mode() & libc::S_ISVTX != 0;
        let why = if meta.uid() != 0 && meta.uid() != apache_user {
            format!("is owned by uid {}", meta.uid())
        } else if meta.mode() & 0o002 != 0 && !sticky {
            "is writable by every user without the sticky bit".to_string()
        } else if meta.mode() & 0o020 != 0 && meta.gid() != 0 && !sticky {
            format!("is writable by group {} without the sticky bit", meta.gid())
        } else {
            continue;
        };
        let which = if Some(dir) == path.parent() { String::new() } else { format!(" ({} above it)", dir.display()) };
        return log::server(
            level::WARNING,
            server,
            &format!(
                "The directory of the daemon socket {}{which} {why}: a local user who can replace the socket could receive this group's requests. \
                 Set WSGISocketPrefix to a directory only root can write, such as /var/run/wsgi.",
                path.display()
            ),
        );
    }
}

/// `SO_SNDBUF` / `SO_RCVBUF` of the listening socket, as mod_wsgi sets them (0: the system's);
/// a failure is mod_wsgi's warning.
fn set_buffer_size(fd: c_int, option: c_int, size: u32, what: &str, server: *mut apache::server_rec) {
    if size == 0 {
        return;
    }
    let value = size as c_int;
    // SAFETY: fd is our socket; the option value is one int, of the size given.
    let rc =
        unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, option, (&value as *const c_int).cast(), std::mem::size_of::<c_int>() as libc::socklen_t) };
    if rc != 0 {
        log::server(
            level::WARNING,
            server,
            &format!("Unable to set {what} buffer size on daemon process socket; default size will be used: {}", std::io::Error::last_os_error()),
        );
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if std::process::id() == self.parent {
            // SAFETY: our own descriptor, closed once.
            unsafe { libc::close(self.fd) };
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// One daemon process slot: APR's process record (which APR reads after our cleanups ran,
/// and after our module may have been unloaded) lives in `pconf`, never in a Box or static.
#[repr(C)]
struct Instance {
    process: apache::apr_proc_t,
    group: usize,
    n: u32,
}

fn fork(registry: &Arc<Registry>, instance: *mut Instance) {
    // SAFETY: instance is live pconf memory; the parent is single-threaded.
    let (process, index, n) = unsafe { (&mut (*instance).process as *mut apache::apr_proc_t, (*instance).group, (*instance).n) };
    let group = &registry.groups[index];
    // SAFETY: forks the parent; the child never returns into Apache (process::run exits).
    let status = unsafe { apache::apr_proc_fork(process, registry.pconf) };
    if status == apache::APR_INCHILD as apache::apr_status_t {
        // The status boards, before anything else runs here: the children's and the other
        // groups' are unmapped, this group's kept (the unmapping of inherited shared memory
        // below is told to leave it).
        let own_board = super::super::metrics::board::enter_daemon(index, n as usize);
        // First of all, while nothing but Apache's code has run: the scoreboard is unmapped,
        // or read-only with server-metrics=On (see scoreboard.rs).
        let metrics = match scoreboard::confine_in_daemon(group.spec.server_metrics) {
            Ok(scoreboard::Confined::Unsealable(reason)) => {
                log::server(
                    crate::abi::level::WARNING,
                    group.server,
                    &format!(
                        "Daemon process '{}': server-metrics=On but Apache's scoreboard cannot be mapped read-only for good ({reason}): \
                     it is unmapped, and mod_wsgi.server_metrics() returns None in this group.",
                        group.spec.name
                    ),
                );
                false
            }
            Ok(_) => group.spec.server_metrics,
            Err(message) => {
                let kept = if group.spec.server_metrics { "Apache's scoreboard writable" } else { "Apache's scoreboard mapped" };
                refuse_to_start(group, &message, kept)
            }
        };
        scoreboard::set_enabled(metrics);
        // Then every other shared memory it could write: its modules' and its MPM's (see
        // inherited.rs); the scoreboard kept for server-metrics=On is read-only by now.
        if let Err(message) = inherited::unmap_shared_writable(group, own_board) {
            refuse_to_start(group, &message, "the shared memory of Apache's parent writable");
        }
        process::run(index, n);
    }
    if status != apache::APR_INPARENT as apache::apr_status_t {
        return log::server(log::ERR, group.server, &format!("Unable to fork daemon process '{}' (APR status {status}).", group.spec.name));
    }
    // SAFETY: process and instance live in pconf, as APR requires for both calls.
    unsafe {
        apache::apr_pool_note_subprocess(registry.pconf, process, apache::APR_KILL_AFTER_TIMEOUT);
        apache::apr_proc_other_child_register(process, Some(maintenance), instance.cast(), std::ptr::null_mut(), registry.pconf);
    }
    // SAFETY: apr_proc_fork filled in the pid.
    let pid = unsafe { (*process).pid };
    log::server(
        level::INFO,
        group.server,
        &format!("Starting process '{}' with uid={}, gid={} and threads={}; pid {pid}.", group.spec.name, group.uid, group.gid, group.spec.threads),
    );
}

/// How long a daemon that cannot confine the scoreboard or unmap the parent's shared memory
/// waits before exiting, as one that cannot start for another reason does (process.rs): not
/// a fork loop.
const CONFINE_FAILURE_DELAY: std::time::Duration = std::time::Duration::from_secs(20);

/// In a freshly forked daemon whose scoreboard could not be confined, or which could not
/// unmap the shared memory it inherited: logs why and what it would have `kept`, and exits
/// without running the application. Apache's signal handlers, inherited from its parent, are
/// put back to the default first, so that a stop or restart ends the wait.
fn refuse_to_start(group: &Group, message: &str, kept: &str) -> ! {
    log::server(
        log::ERR,
        group.server,
        &format!("Daemon process '{}' cannot start: {message}; it will not run the application with {kept}.", group.spec.name),
    );
    // SAFETY: single-threaded right after fork; plain sigaction/sigprocmask calls with
    // initialised structures.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        libc::sigemptyset(&mut action.sa_mask);
        action.sa_sigaction = libc::SIG_DFL;
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR1, libc::SIGWINCH] {
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
    std::thread::sleep(CONFINE_FAILURE_DELAY);
    // SAFETY: ends this process without running the parent's atexit handlers or pool
    // cleanups, as process::run does.
    unsafe { libc::_exit(1) }
}

/// APR's call when a registered daemon dies (or on restart and unregistration).
unsafe extern "C" fn maintenance(reason: c_int, data: *mut c_void, status: c_int) {
    trampoline("daemon maintenance", (), || {
        let instance = data.cast::<Instance>();
        // SAFETY: data is the Instance registered with this callback, in pconf.
        let process = unsafe { &mut (*instance).process as *mut apache::apr_proc_t };
        let reason = reason as u32;
        if reason == apache::APR_OC_REASON_UNREGISTER {
            return;
        }
        // SAFETY: the record registered above; unregistering it once is APR's contract here.
        unsafe { apache::apr_proc_other_child_unregister(data) };
        let Some(registry) = registry() else { return };
        // SAFETY: as above.
        let (group, pid) = unsafe { (&registry.groups[(*instance).group], (*process).pid) };
        let stopping = mpm_query(apache::AP_MPMQ_MPM_STATE) == apache::AP_MPMQ_STOPPING as c_int;
        match reason {
            apache::APR_OC_REASON_DEATH if !stopping => {
                let level = if status > 1 { log::ERR } else { level::INFO };
                log::server(
                    level,
                    group.server,
                    &format!(
                        "Process '{}' (pid {pid}) has died, deregister and restart it (status {status}{}).",
                        group.spec.name,
                        death_cause(status)
                    ),
                );
                fork(&registry, instance);
            }
            apache::APR_OC_REASON_LOST if !stopping => {
                log::server(
                    level::INFO,
                    group.server,
                    &format!("Process '{}' (pid {pid}) has been lost, deregister and restart it.", group.spec.name),
                );
                fork(&registry, instance);
            }
            _ => {}
        }
    })
}

/// In Apache's children: the daemons' listeners are the parent's and the daemons' business.
pub fn close_listeners() {
    if let Some(registry) = registry() {
        for group in &registry.groups {
            // SAFETY: this process's inherited copy of the descriptor, closed once here.
            unsafe { libc::close(group.listener) };
        }
    }
}

/// What a daemon's status says about its death. The MPM hands over the exit code of a process
/// that exited and the signal number of one that was killed, without saying which; ours exit
/// with 0 (a stop or recycle) or 1 (a failed start), so anything else is most likely a signal
/// (an application's own `os._exit(N)` would read the same).
fn death_cause(status: c_int) -> &'static str {
    match status {
        0 => ": stopped",
        1 => ": exited after a failure logged above",
        libc::SIGKILL => ": killed by SIGKILL, from the kernel's out-of-memory killer (see dmesg), a cpu-time-limit's hard limit, or by hand",
        libc::SIGSEGV | libc::SIGBUS => ": crashed (a fault in native code)",
        libc::SIGABRT => ": aborted (a fatal Python or C library error, logged above if it could be)",
        libc::SIGXCPU => ": over its CPU time limit",
        _ => ": killed by a signal",
    }
}

#[cfg(test)]
mod tests {
    use super::socket_path;

    #[test]
    fn socket_names_rotate_by_generation_or_stay_by_uid() {
        let pid = std::process::id();
        assert_eq!(socket_path("/run/wsgi", true, 3, 33, 2).to_str().unwrap(), format!("/run/wsgi.{pid}.3.2.sock"));
        assert_eq!(socket_path("/run/wsgi", false, 3, 33, 2), socket_path("/run/wsgi", false, 4, 33, 2));
        assert_eq!(socket_path("/run/wsgi", false, 3, 33, 2).to_str().unwrap(), format!("/run/wsgi.{pid}.u33.2.sock"));
    }
}
