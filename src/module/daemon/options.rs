//! `WSGIDaemonProcess name option=value ...`, parsed into a [`DaemonSpec`].
//!
//! Plain Rust: account look-ups go through [`Accounts`], so the unit tests drive the parser
//! with made-up users. Every option mod_wsgi 4.9 and 6.1 document is recognised and honoured
//! (only the New Relic ones, [`IGNORED`], are accepted with a warning); an unknown option or a
//! bad value is mod_wsgi's error at `apache2 -t`.

use super::super::args::{split_option, split_words};
use std::time::Duration;

/// mod_wsgi's wording for an option it does not know (or a word that is not `key=value`).
const INVALID: &str = "Invalid option to WSGI daemon process definition.";

/// Options of mod_wsgi 4.x that only configured its New Relic agent hook (importing
/// `newrelic.agent` and wrapping each application), which this build does not have: accepted
/// so that old configurations still load, with a warning (see [`DaemonSpec::ignored`]).
pub const IGNORED: &[&str] = &["newrelic-config-file", "newrelic-environment"];

/// The daemon's timeouts, in seconds as configured (0: off, except where a default says).
/// mod_wsgi's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// A process whose application has not loaded after this long is restarted.
    pub startup: u64,
    /// How long a stopping process may take before it is killed (default 5).
    pub shutdown: u64,
    /// How long the GIL may stay held without any thread making progress (default 300).
    pub deadlock: u64,
    /// A process with no request (and no request activity) for this long restarts.
    pub inactivity: u64,
    /// A request running longer than this recycles the process (its stack is logged).
    pub request: u64,
    /// After a request-timeout, how long requests get to finish once interrupted.
    pub interrupt: u64,
    /// How long a process recycled for maximum-requests or restart-interval lets its running
    /// requests finish (default 15).
    pub graceful: u64,
    /// As `graceful`, for an eviction (`SIGUSR1`/graceful restart); 0: use `graceful`.
    pub eviction: u64,
    /// A process restarts after running this long, gracefully.
    pub restart_interval: u64,
    /// How long an Apache child tries to connect to the daemon (default 15).
    pub connect: u64,
    /// I/O timeout between child and daemon; 0: Apache's `Timeout`.
    pub socket: u64,
    /// A request that waited this long for a daemon thread gets a 504 instead of running.
    pub queue: u64,
    /// `response-socket-timeout=`: the client connection's timeout while the response is
    /// passed on to it by an Apache child; 0: `socket-timeout`, and if that is 0 too, the
    /// connection's own (`Timeout`).
    pub response_socket: u64,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            startup: 0,
            shutdown: 5,
            deadlock: 300,
            inactivity: 0,
            request: 0,
            interrupt: 0,
            graceful: 15,
            eviction: 0,
            restart_interval: 0,
            connect: 15,
            socket: 0,
            queue: 0,
            response_socket: 0,
        }
    }
}

/// A Unix account, resolved when the directive is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// User and group look-ups (`getpwnam`, `getgrnam`); the tests substitute their own.
pub trait Accounts {
    fn user_by_name(&self, name: &str) -> Option<Account>;
    fn user_by_id(&self, uid: u32) -> Option<Account>;
    fn group_by_name(&self, name: &str) -> Option<u32>;
    /// The name of group `gid` (`getgrgid`).
    fn group_by_id(&self, gid: u32) -> Option<String>;
}

/// `script-user=` / `script-group=`: whom a WSGI script file (and its directory) must belong
/// to for this group to run it (checked in the Apache child, see `script_owner.rs`). By name,
/// as mod_wsgi compares them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptOwner {
    User(String),
    Group(String),
}

/// One daemon process group as configured.
#[derive(Clone, Debug, PartialEq)]
pub struct DaemonSpec {
    pub name: String,
    pub processes: u32,
    /// `processes=` was given (even `processes=1`): `wsgi.multiprocess` is then true, as in
    /// mod_wsgi.
    pub multiprocess: bool,
    pub threads: u32,
    /// `user=`; `None` runs the daemons as Apache's `User`.
    pub user: Option<Account>,
    /// `group=` (a gid); else the user's primary group, else Apache's `Group`.
    pub gid: Option<u32>,
    pub home: Option<String>,
    pub python_home: Option<String>,
    /// `python-path=`: replaces `WSGIPythonPath` for this group.
    pub python_path: Option<Vec<String>>,
    /// `display-name=`, with `%{GROUP}` already expanded to `(wsgi:NAME)`.
    pub display_name: Option<String>,
    /// `maximum-requests=`: a process exits after this many requests (0: never).
    pub maximum_requests: u64,
    /// `maximum-requests-jitter=` (ours): each process's limit is `maximum-requests` plus a
    /// random 0..=jitter, so that the processes of a group do not all recycle at once.
    pub maximum_requests_jitter: u64,
    /// `supplementary-groups=a,b`: gids. As mod_wsgi, the daemon's groups are then its `gid`
    /// and these (`setgroups`), instead of the user's groups from `/etc/group`.
    pub supplementary_groups: Vec<u32>,
    /// `umask=` (octal).
    pub umask: Option<u32>,
    /// `lang=`: `LANG` in the daemon's environment.
    pub lang: Option<String>,
    /// `locale=`: `LC_ALL` in the daemon's environment, and `setlocale(LC_ALL, ...)` before
    /// Python starts.
    pub locale: Option<String>,
    /// `listen-backlog=` of the daemon's socket (default 100).
    pub listen_backlog: i32,
    /// `header-buffer-size=`: the largest response head (status and headers) a daemon may
    /// send (default 32768; mod_wsgi's minimum 8192).
    pub header_buffer_size: usize,
    pub timeouts: Timeouts,
    /// `python-eggs=`: `PYTHON_EGG_CACHE` in the daemon's environment.
    pub python_eggs: Option<String>,
    /// `stack-size=`: the worker threads' stack size in bytes; `None`: our default.
    pub stack_size: Option<usize>,
    /// `cpu-time-limit=` in seconds (`RLIMIT_CPU`; 0: none).
    pub cpu_time_limit: u64,
    /// `cpu-priority=`: the daemon's nice value (`setpriority`; 0: unchanged).
    pub cpu_priority: i32,
    /// `memory-limit=` in bytes (`RLIMIT_DATA`; 0: none).
    pub memory_limit: u64,
    /// `virtual-memory-limit=` in bytes (`RLIMIT_AS`; 0: none).
    pub virtual_memory_limit: u64,
    /// `socket-user=`: the uid the daemon socket is given instead of Apache's `User` (for an
    /// MPM whose children switch user, such as ITK).
    pub socket_user: Option<Account>,
    /// `send-buffer-size=` / `receive-buffer-size=`: `SO_SNDBUF` / `SO_RCVBUF` of the daemon
    /// socket (0: the system's).
    pub send_buffer_size: u32,
    pub receive_buffer_size: u32,
    /// `response-buffer-size=`: an Apache child flushes the response it passes on at least
    /// every this many bytes (default 8 MiB; mod_wsgi's minimum 65536).
    pub response_buffer_size: usize,
    /// `response-flush-delay=` (milliseconds, mod_wsgi 6's): how long an Apache child waits
    /// for more of the response before it acts on a flush, so that a response sent in bursts
    /// is not written in small pieces (which defeats pacing filters such as mod_ratelimit).
    /// 0: every flush at once.
    pub response_flush_delay: Duration,
    /// `script-user=` / `script-group=`.
    pub script_owner: Option<ScriptOwner>,
    /// Options given that have no effect here ([`IGNORED`]), for the one warning.
    pub ignored: Vec<String>,
    /// `switch-interval=` (seconds, fractional), in microseconds: `sys.setswitchinterval` in
    /// the group's interpreters; 0: Python's own (5 ms).
    pub switch_interval_us: u64,
    /// `server-metrics=On`: `mod_wsgi.server_metrics()` reports Apache's scoreboard in this
    /// group's processes (default Off, as in mod_wsgi).
    pub server_metrics: bool,
    /// `chroot=`: the directory the daemon makes its root (while still root, before it drops
    /// to its user); an absolute path, without trailing slashes ("/" stays "/"). Its
    /// `python-home=`, `python-path=`, `home=` and Python's own files are then paths inside
    /// it (see `environment.rs`).
    pub chroot: Option<String>,
}

/// `response-buffer-size=0`: mod_wsgi's default.
pub const DEFAULT_RESPONSE_BUFFER_SIZE: usize = 8 << 20;
/// mod_wsgi 6's default `response-flush-delay=` (4.9 has no such option and flushes at once).
pub const DEFAULT_RESPONSE_FLUSH_DELAY: Duration = Duration::from_millis(5);

impl DaemonSpec {
    fn new(name: &str) -> DaemonSpec {
        DaemonSpec {
            name: name.to_string(),
            switch_interval_us: 0,
            server_metrics: false,
            processes: 1,
            multiprocess: false,
            threads: 15,
            user: None,
            gid: None,
            home: None,
            python_home: None,
            python_path: None,
            display_name: None,
            maximum_requests: 0,
            maximum_requests_jitter: 0,
            supplementary_groups: Vec::new(),
            umask: None,
            lang: None,
            locale: None,
            listen_backlog: 100,
            header_buffer_size: 32768,
            timeouts: Timeouts::default(),
            python_eggs: None,
            stack_size: None,
            cpu_time_limit: 0,
            cpu_priority: 0,
            memory_limit: 0,
            virtual_memory_limit: 0,
            socket_user: None,
            send_buffer_size: 0,
            receive_buffer_size: 0,
            response_buffer_size: DEFAULT_RESPONSE_BUFFER_SIZE,
            response_flush_delay: DEFAULT_RESPONSE_FLUSH_DELAY,
            script_owner: None,
            ignored: Vec::new(),
            chroot: None,
        }
    }

    /// Parses the directive's arguments.
    pub fn parse(line: &str, accounts: &dyn Accounts) -> Result<DaemonSpec, String> {
        let words = split_words(line)?;
        let Some((name, options)) = words.split_first() else {
            return Err("Name of WSGI daemon process not supplied.".into());
        };
        if name.is_empty() || name.starts_with("%{") || name.contains(['/', '\0']) {
            return Err(format!("WSGIDaemonProcess: invalid name '{name}' for a daemon process group"));
        }
        let mut spec = DaemonSpec::new(name);
        for word in options {
            let Some((key, value)) = split_option(word) else {
                return Err(format!("{INVALID} '{word}' is not option=value."));
            };
            spec.parse_option(key, value, accounts)?;
        }
        if spec.gid.is_none() {
            spec.gid = spec.user.as_ref().map(|user| user.gid);
        }
        Ok(spec)
    }

    fn parse_option(&mut self, key: &str, value: &str, accounts: &dyn Accounts) -> Result<(), String> {
        let number = |message: &str, min: u64| value.parse::<u64>().ok().filter(|n| *n >= min).ok_or_else(|| message.to_string());
        // mod_wsgi's "Invalid <what> for WSGI daemon process." for a timeout in seconds.
        let seconds = |what: &str| number(&format!("Invalid {what} for WSGI daemon process."), 0);
        let t = &mut self.timeouts;
        match key {
            "startup-timeout" => t.startup = seconds("startup timeout")?,
            "shutdown-timeout" => t.shutdown = seconds("shutdown timeout")?,
            "deadlock-timeout" => t.deadlock = seconds("deadlock timeout")?,
            "inactivity-timeout" => t.inactivity = seconds("inactivity timeout")?,
            "request-timeout" => t.request = seconds("request timeout")?,
            "interrupt-timeout" => t.interrupt = seconds("interrupt timeout")?,
            "graceful-timeout" => t.graceful = seconds("graceful timeout")?,
            "eviction-timeout" => t.eviction = seconds("eviction timeout")?,
            "restart-interval" => t.restart_interval = seconds("restart interval")?,
            "connect-timeout" => t.connect = seconds("connect timeout")?,
            "socket-timeout" => t.socket = seconds("socket timeout")?,
            "queue-timeout" => t.queue = seconds("queue timeout")?,
            "maximum-requests-jitter" => self.maximum_requests_jitter = number("Invalid request count jitter for WSGI daemon process.", 0)?,
            "listen-backlog" => {
                let backlog = number("Invalid listen backlog for WSGI daemon process.", 0)?;
                self.listen_backlog = backlog.min(i32::MAX as u64) as i32;
            }
            "switch-interval" => {
                // mod_wsgi: a positive number of seconds, fractions allowed.
                let seconds = value.parse::<f64>().ok().filter(|s| s.is_finite() && *s > 0.0 && *s <= 3600.0);
                let seconds = seconds.ok_or("Invalid switch interval for WSGI daemon process.")?;
                self.switch_interval_us = ((seconds * 1e6).round() as u64).max(1);
            }
            "umask" => {
                let umask = u32::from_str_radix(value, 8).ok().filter(|m| *m <= 0o777);
                self.umask = Some(umask.ok_or("Invalid umask for WSGI daemon process.")?);
            }
            "server-metrics" => {
                self.server_metrics = match value.to_ascii_lowercase().as_str() {
                    "on" => true,
                    "off" => false,
                    _ => return Err("Invalid server metrics flag for WSGI daemon process.".into()),
                }
            }
            "lang" => self.lang = Some(value.to_string()),
            "locale" => self.locale = Some(value.to_string()),
            "supplementary-groups" => {
                let mut gids = Vec::new();
                for name in value.split(',').filter(|n| !n.is_empty()) {
                    let gid = match name.strip_prefix('#') {
                        Some(id) => id.parse().ok(),
                        None => accounts.group_by_name(name),
                    };
                    gids.push(gid.ok_or_else(|| format!("Invalid supplementary group '{name}' for WSGI daemon process."))?);
                }
                self.supplementary_groups = gids;
            }
            "header-buffer-size" => {
                let size = number("Invalid header buffer size for WSGI daemon process.", 0)?;
                if size != 0 && size < 8192 {
                    return Err("Header buffer size must be >= 8192 bytes, or 0 for default.".into());
                }
                self.header_buffer_size = if size == 0 { 32768 } else { size.min(1 << 30) as usize };
            }
            "processes" => {
                self.processes =
                    number("Invalid process count for WSGI daemon process.", 1)?.try_into().map_err(|_| "processes= is too large".to_string())?;
                self.multiprocess = true;
            }
            "threads" => {
                let threads = number("Invalid thread count for WSGI daemon process (1 or more in mod_wsgi-rs).", 1)?;
                self.threads = threads.min(10_000) as u32;
            }
            "user" => {
                let user = match value.strip_prefix('#') {
                    Some(id) => id.parse().ok().and_then(|uid| accounts.user_by_id(uid)),
                    None => accounts.user_by_name(value),
                };
                let user = user.ok_or("Invalid user for WSGI daemon process.")?;
                if user.uid == 0 {
                    return Err("WSGI process blocked from running as root.".into());
                }
                self.user = Some(user);
            }
            "group" => {
                let gid = match value.strip_prefix('#') {
                    Some(id) => id.parse().ok(),
                    None => accounts.group_by_name(value),
                };
                self.gid = Some(gid.ok_or("Invalid group for WSGI daemon process.")?);
            }
            "home" => {
                if !value.starts_with('/') {
                    return Err("Invalid home directory for WSGI daemon process.".into());
                }
                self.home = Some(value.to_string());
            }
            "python-home" => {
                if !value.starts_with('/') {
                    return Err(format!("WSGIDaemonProcess {}: python-home '{value}' must be an absolute path", self.name));
                }
                self.python_home = Some(value.trim_end_matches('/').to_string());
            }
            "chroot" => {
                // mod_wsgi's message for a relative path; ours for one that is not there, so
                // that `apache2 -t` says it instead of every daemon failing to start.
                if !value.starts_with('/') {
                    return Err("Invalid chroot directory for WSGI daemon process.".into());
                }
                if !std::path::Path::new(value).is_dir() {
                    return Err(format!("WSGIDaemonProcess {}: chroot directory '{value}' does not exist or is not a directory", self.name));
                }
                let root = value.trim_end_matches('/');
                self.chroot = Some(if root.is_empty() { "/".to_string() } else { root.to_string() });
            }
            "python-path" => self.python_path = Some(value.split(':').filter(|p| !p.is_empty()).map(str::to_string).collect()),
            "display-name" => self.display_name = Some(value.replace("%{GROUP}", &format!("(wsgi:{})", self.name))),
            "maximum-requests" => self.maximum_requests = number("Invalid request count for WSGI daemon process.", 0)?,
            "python-eggs" => self.python_eggs = Some(value.to_string()),
            "stack-size" => {
                let size = number("Invalid stack size for WSGI daemon process.", 1)?;
                self.stack_size = Some(usize::try_from(size).map_err(|_| "Invalid stack size for WSGI daemon process.")?);
            }
            "cpu-time-limit" => self.cpu_time_limit = number("Invalid CPU time limit for WSGI daemon process.", 0)?,
            "cpu-priority" => self.cpu_priority = value.parse().map_err(|_| "Invalid CPU priority for WSGI daemon process.")?,
            "memory-limit" => self.memory_limit = number("Invalid memory limit for WSGI daemon process.", 0)?,
            "virtual-memory-limit" => self.virtual_memory_limit = number("Invalid virtual memory limit for WSGI daemon process.", 0)?,
            "send-buffer-size" => self.send_buffer_size = socket_buffer(value, "send", "Send")?,
            "receive-buffer-size" => self.receive_buffer_size = socket_buffer(value, "receive", "Receive")?,
            "response-buffer-size" => {
                let size = number("Invalid response buffer size for WSGI daemon process.", 0)?;
                if size != 0 && size < 65536 {
                    return Err("Response buffer size must be >= 65536 bytes, or 0 for default.".into());
                }
                self.response_buffer_size = if size == 0 { DEFAULT_RESPONSE_BUFFER_SIZE } else { usize::try_from(size).unwrap_or(usize::MAX) };
            }
            "response-socket-timeout" => t.response_socket = seconds("response socket timeout")?,
            "response-flush-delay" => {
                let ms = number("Invalid response flush delay for WSGI daemon process.", 0)?;
                self.response_flush_delay = Duration::from_millis(ms);
            }
            "socket-user" => {
                let user = match value.strip_prefix('#') {
                    Some(id) => {
                        Some(id.parse().ok().and_then(|uid| accounts.user_by_id(uid)).ok_or("Couldn't determine user name from socket user.")?)
                    }
                    None => accounts.user_by_name(value),
                };
                self.socket_user = Some(user.ok_or("Invalid socket user for WSGI daemon process.")?);
            }
            "script-user" => {
                let name = match value.strip_prefix('#') {
                    Some(id) => {
                        id.parse().ok().and_then(|uid| accounts.user_by_id(uid)).map(|u| u.name).ok_or("Couldn't determine uid from script user.")?
                    }
                    None => accounts.user_by_name(value).map(|u| u.name).ok_or("Invalid script user for WSGI daemon process.")?,
                };
                if matches!(self.script_owner, Some(ScriptOwner::Group(_))) {
                    return Err("Only one of script-user and script-group allowed.".into());
                }
                self.script_owner = Some(ScriptOwner::User(name));
            }
            "script-group" => {
                let name = match value.strip_prefix('#') {
                    Some(id) => id.parse().ok().and_then(|gid| accounts.group_by_id(gid)).ok_or("Couldn't determine gid from script group.")?,
                    None => accounts.group_by_name(value).map(|_| value.to_string()).ok_or("Invalid script group for WSGI daemon process.")?,
                };
                if matches!(self.script_owner, Some(ScriptOwner::User(_))) {
                    return Err("Only one of script-user and script-group allowed.".into());
                }
                self.script_owner = Some(ScriptOwner::Group(name));
            }
            ignored if IGNORED.contains(&ignored) => self.ignored.push(ignored.to_string()),
            unknown => return Err(format!("{INVALID} Unknown option '{unknown}'.")),
        }
        Ok(())
    }
}

/// `send-buffer-size=` / `receive-buffer-size=`: mod_wsgi's bounds and wording.
fn socket_buffer(value: &str, what: &str, title: &str) -> Result<u32, String> {
    let size: u32 = value.parse().map_err(|_| format!("Invalid {what} buffer size for WSGI daemon process."))?;
    if size != 0 && size < 512 {
        return Err(format!("{title} buffer size must be >= 512 bytes, or 0 for system default."));
    }
    Ok(size.min(i32::MAX as u32))
}

/// The system's accounts (`getpwnam_r`, `getpwuid_r`, `getgrnam_r`).
pub struct SystemAccounts;

impl SystemAccounts {
    fn passwd(lookup: impl FnOnce(&mut libc::passwd, &mut [libc::c_char], &mut *mut libc::passwd) -> libc::c_int) -> Option<Account> {
        // SAFETY: passwd is a plain C struct; all-zero is a valid (empty) value.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut buffer = vec![0 as libc::c_char; 16384];
        let mut found = std::ptr::null_mut();
        if lookup(&mut entry, &mut buffer, &mut found) != 0 || found.is_null() {
            return None;
        }
        // SAFETY: on success the strings point into `buffer`, NUL-terminated.
        let text = |p: *const libc::c_char| unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned();
        Some(Account { name: text(entry.pw_name), uid: entry.pw_uid, gid: entry.pw_gid, home: text(entry.pw_dir) })
    }
}

impl Accounts for SystemAccounts {
    fn user_by_name(&self, name: &str) -> Option<Account> {
        let name = std::ffi::CString::new(name).ok()?;
        // SAFETY: getpwnam_r writes into the caller's entry and buffer, whose sizes it is given.
        Self::passwd(|entry, buffer, found| unsafe { libc::getpwnam_r(name.as_ptr(), entry, buffer.as_mut_ptr(), buffer.len(), found) })
    }

    fn user_by_id(&self, uid: u32) -> Option<Account> {
        // SAFETY: as above.
        Self::passwd(|entry, buffer, found| unsafe { libc::getpwuid_r(uid, entry, buffer.as_mut_ptr(), buffer.len(), found) })
    }

    fn group_by_name(&self, name: &str) -> Option<u32> {
        let name = std::ffi::CString::new(name).ok()?;
        // SAFETY: group is a plain C struct; getgrnam_r fills it from the buffer it is given.
        let mut entry: libc::group = unsafe { std::mem::zeroed() };
        let mut buffer = vec![0 as libc::c_char; 16384];
        let mut found = std::ptr::null_mut();
        // SAFETY: as above.
        let rc = unsafe { libc::getgrnam_r(name.as_ptr(), &mut entry, buffer.as_mut_ptr(), buffer.len(), &mut found) };
        (rc == 0 && !found.is_null()).then_some(entry.gr_gid)
    }

    fn group_by_id(&self, gid: u32) -> Option<String> {
        // SAFETY: as above.
        let mut entry: libc::group = unsafe { std::mem::zeroed() };
        let mut buffer = vec![0 as libc::c_char; 16384];
        let mut found = std::ptr::null_mut();
        // SAFETY: getgrgid_r fills the entry from the buffer it is given.
        let rc = unsafe { libc::getgrgid_r(gid, &mut entry, buffer.as_mut_ptr(), buffer.len(), &mut found) };
        // SAFETY: on success gr_name points into `buffer`, NUL-terminated.
        (rc == 0 && !found.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr(entry.gr_name) }.to_string_lossy().into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;
    impl Accounts for Fake {
        fn user_by_name(&self, name: &str) -> Option<Account> {
            match name {
                "root" => self.user_by_id(0),
                "site" => self.user_by_id(1001),
                _ => None,
            }
        }
        fn user_by_id(&self, uid: u32) -> Option<Account> {
            let name = if uid == 0 { "root" } else { "site" };
            Some(Account { name: name.into(), uid, gid: uid + 1, home: format!("/home/{name}") })
        }
        fn group_by_name(&self, name: &str) -> Option<u32> {
            (name == "staff").then_some(50)
        }
        fn group_by_id(&self, gid: u32) -> Option<String> {
            (gid == 50).then(|| "staff".to_string())
        }
    }

    fn parse(line: &str) -> Result<DaemonSpec, String> {
        DaemonSpec::parse(line, &Fake)
    }

    #[test]
    fn defaults_and_slice_one_options() {
        let spec = parse("site").unwrap();
        assert_eq!((spec.processes, spec.threads, spec.multiprocess, spec.maximum_requests), (1, 15, false, 0));
        let spec =
            parse("site processes=2 threads=4 user=site home=/srv python-path=/a:/b display-name=%{GROUP} maximum-requests=9 python-home=/opt/py/")
                .unwrap();
        assert_eq!((spec.processes, spec.threads, spec.multiprocess, spec.maximum_requests), (2, 4, true, 9));
        assert_eq!(spec.user.as_ref().map(|u| u.uid), Some(1001));
        assert_eq!(spec.gid, Some(1002), "the user's primary group by default");
        assert_eq!(spec.python_path, Some(vec!["/a".to_string(), "/b".to_string()]));
        assert_eq!(spec.display_name.as_deref(), Some("(wsgi:site)"));
        assert_eq!(spec.python_home.as_deref(), Some("/opt/py"));
        assert_eq!(parse("site user=#1001 group=staff").unwrap().gid, Some(50));
    }

    #[test]
    fn errors_use_mod_wsgi_wording() {
        let err = |line| parse(line).unwrap_err();
        assert_eq!(err(""), "Name of WSGI daemon process not supplied.");
        assert_eq!(err("site user=root"), "WSGI process blocked from running as root.");
        assert_eq!(err("site user=nobody-here"), "Invalid user for WSGI daemon process.");
        assert_eq!(err("site group=nogroup-here"), "Invalid group for WSGI daemon process.");
        assert_eq!(err("site processes=0"), "Invalid process count for WSGI daemon process.");
        assert!(err("site threads=x").starts_with("Invalid thread count"));
        assert!(err("site colour=blue").starts_with("Invalid option to WSGI daemon process definition. Unknown option 'colour'"));
        assert!(err("site oops").starts_with("Invalid option to WSGI daemon process definition."));
        assert!(err("%{GLOBAL}").contains("invalid name"));
        assert!(err("site home=relative").starts_with("Invalid home directory"));
    }

    #[test]
    fn slice_two_options_are_validated_as_mod_wsgi_does() {
        let err = |line| parse(line).unwrap_err();
        assert_eq!(err("site request-timeout=-1"), "Invalid request timeout for WSGI daemon process.");
        assert_eq!(err("site inactivity-timeout=x"), "Invalid inactivity timeout for WSGI daemon process.");
        assert_eq!(err("site umask=9"), "Invalid umask for WSGI daemon process.");
        assert_eq!(err("site switch-interval=0"), "Invalid switch interval for WSGI daemon process.");
        assert_eq!(err("site switch-interval=soon"), "Invalid switch interval for WSGI daemon process.");
        assert_eq!(parse("site switch-interval=0.0025").unwrap().switch_interval_us, 2500);
        assert_eq!(err("site server-metrics=yes"), "Invalid server metrics flag for WSGI daemon process.");
        assert_eq!(err("site server-metrics="), "Invalid server metrics flag for WSGI daemon process.");
        assert!(parse("site server-metrics=ON").unwrap().server_metrics);
        assert!(!parse("site server-metrics=off").unwrap().server_metrics);
        assert!(!parse("site").unwrap().server_metrics, "off by default");
        assert_eq!(err("site listen-backlog=-3"), "Invalid listen backlog for WSGI daemon process.");
        assert_eq!(err("site header-buffer-size=100"), "Header buffer size must be >= 8192 bytes, or 0 for default.");
        assert_eq!(err("site supplementary-groups=staff,nogroup-here"), "Invalid supplementary group 'nogroup-here' for WSGI daemon process.");
    }

    #[test]
    fn slice_two_environment_options_are_accepted() {
        let spec = parse(
            "site umask=0027 lang=C.UTF-8 locale=C.UTF-8 supplementary-groups=staff,#7 listen-backlog=0 \
                          maximum-requests=10 maximum-requests-jitter=5 connect-timeout=2 socket-timeout=3 header-buffer-size=65536",
        )
        .unwrap();
        assert_eq!(spec.umask, Some(0o027));
        assert_eq!((spec.lang.as_deref(), spec.locale.as_deref()), (Some("C.UTF-8"), Some("C.UTF-8")));
        assert_eq!(spec.supplementary_groups, vec![50, 7]);
        assert_eq!((spec.listen_backlog, spec.maximum_requests, spec.maximum_requests_jitter), (0, 10, 5));
        assert_eq!((spec.timeouts.connect, spec.timeouts.socket, spec.header_buffer_size), (2, 3, 65536));
        assert_eq!(parse("site header-buffer-size=0").unwrap().header_buffer_size, 32768, "0: the default");
    }

    #[test]
    fn limits_and_socket_options_are_parsed() {
        let spec = parse(
            "site python-eggs=/tmp/eggs stack-size=524288 cpu-time-limit=30 cpu-priority=-5 memory-limit=1000000 \
             virtual-memory-limit=2000000 socket-user=#1001 send-buffer-size=4096 receive-buffer-size=0 \
             response-buffer-size=131072 response-socket-timeout=7 script-user=site",
        )
        .unwrap();
        assert_eq!(spec.python_eggs.as_deref(), Some("/tmp/eggs"));
        assert_eq!((spec.stack_size, spec.cpu_time_limit, spec.cpu_priority), (Some(524288), 30, -5));
        assert_eq!((spec.memory_limit, spec.virtual_memory_limit), (1_000_000, 2_000_000));
        assert_eq!(spec.socket_user.as_ref().map(|u| u.uid), Some(1001));
        assert_eq!((spec.send_buffer_size, spec.receive_buffer_size, spec.response_buffer_size), (4096, 0, 131072));
        assert_eq!(spec.timeouts.response_socket, 7);
        assert_eq!(spec.script_owner, Some(ScriptOwner::User("site".into())));
        assert_eq!(parse("site script-group=#50").unwrap().script_owner, Some(ScriptOwner::Group("staff".into())));
        let spec = parse("site response-buffer-size=0").unwrap();
        assert_eq!((spec.stack_size, spec.response_buffer_size), (None, DEFAULT_RESPONSE_BUFFER_SIZE));
        let spec = parse("site newrelic-config-file=/etc/nr.ini newrelic-environment=prod").unwrap();
        assert_eq!(spec.ignored, vec!["newrelic-config-file".to_string(), "newrelic-environment".to_string()]);
    }

    #[test]
    fn bad_limit_and_socket_values_use_mod_wsgi_wording() {
        let err = |line| parse(line).unwrap_err();
        assert_eq!(err("site stack-size=0"), "Invalid stack size for WSGI daemon process.");
        assert_eq!(err("site stack-size=big"), "Invalid stack size for WSGI daemon process.");
        assert_eq!(err("site cpu-time-limit=-1"), "Invalid CPU time limit for WSGI daemon process.");
        assert_eq!(err("site cpu-priority=high"), "Invalid CPU priority for WSGI daemon process.");
        assert_eq!(err("site memory-limit=-1"), "Invalid memory limit for WSGI daemon process.");
        assert_eq!(err("site virtual-memory-limit=x"), "Invalid virtual memory limit for WSGI daemon process.");
        assert_eq!(err("site send-buffer-size=100"), "Send buffer size must be >= 512 bytes, or 0 for system default.");
        assert_eq!(err("site receive-buffer-size=x"), "Invalid receive buffer size for WSGI daemon process.");
        assert_eq!(err("site response-buffer-size=1024"), "Response buffer size must be >= 65536 bytes, or 0 for default.");
        assert_eq!(err("site response-socket-timeout=-2"), "Invalid response socket timeout for WSGI daemon process.");
        assert_eq!(err("site socket-user=nobody-here"), "Invalid socket user for WSGI daemon process.");
        assert_eq!(err("site script-user=nobody-here"), "Invalid script user for WSGI daemon process.");
        assert_eq!(err("site script-group=nogroup-here"), "Invalid script group for WSGI daemon process.");
        assert_eq!(err("site script-group=#51"), "Couldn't determine gid from script group.");
        assert_eq!(err("site script-user=site script-group=staff"), "Only one of script-user and script-group allowed.");
        assert_eq!(err("site script-group=staff script-user=site"), "Only one of script-user and script-group allowed.");
    }

    #[test]
    fn chroot_is_an_existing_absolute_directory() {
        let err = |line| parse(line).unwrap_err();
        assert_eq!(err("site chroot=jail"), "Invalid chroot directory for WSGI daemon process.");
        assert_eq!(
            err("site chroot=/nonexistent/jail"),
            "WSGIDaemonProcess site: chroot directory '/nonexistent/jail' does not exist or is not a directory"
        );
        let file = std::env::temp_dir().join(format!("mwrs-chroot-file-{}", std::process::id()));
        std::fs::write(&file, "").unwrap();
        assert!(err(&format!("site chroot={}", file.display())).contains("is not a directory"));
        std::fs::remove_file(&file).unwrap();
        let dir = std::env::temp_dir();
        let dir = dir.to_str().unwrap().trim_end_matches('/');
        assert_eq!(parse(&format!("site chroot={dir}//")).unwrap().chroot.as_deref(), Some(dir));
        assert_eq!(parse("site chroot=/").unwrap().chroot.as_deref(), Some("/"));
        assert_eq!(parse("site").unwrap().chroot, None);
    }
}
