//! Test harness: a real Debian Apache on a free 127.0.0.1 port, with a generated config.
//!
//! Each [`Apache`] gets its own world-readable directory under /tmp (Apache's children run as
//! `nobody` when the tests run as root, and cannot read root's home), writes `httpd.conf` there,
//! starts `/usr/sbin/apache2 -k start`, waits until it answers, and on drop stops it by the PID
//! in its pidfile (never by name) and prints the error log if the test failed. A drop also fails
//! the test when the error log shows a crash ([`CRASH_MARKERS`]), so no test passes over a
//! segfault or a fatal Python error just because the requests it checked happened to succeed.
//! The module and engine come from `target/modules` (built by `scripts/build`).
#![allow(dead_code)]

pub mod daemon;
pub mod examples;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const APACHE: &str = "/usr/sbin/apache2";
pub const APACHE_MODULES: &str = "/usr/lib/apache2/modules";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mpm {
    Event,
    Worker,
    Prefork,
}

pub const ALL_MPMS: [Mpm; 3] = [Mpm::Event, Mpm::Worker, Mpm::Prefork];

impl Mpm {
    pub fn name(self) -> &'static str {
        match self {
            Mpm::Event => "event",
            Mpm::Worker => "worker",
            Mpm::Prefork => "prefork",
        }
    }

    /// One child process, so that "the same child" is guaranteed; threads where the MPM has them.
    fn directives(self) -> String {
        match self {
            Mpm::Prefork => "StartServers 1\nMinSpareServers 1\nMaxSpareServers 1\nServerLimit 1\nMaxRequestWorkers 1\n".into(),
            _ => "StartServers 1\nServerLimit 1\nThreadLimit 8\nThreadsPerChild 8\nMaxRequestWorkers 8\nMinSpareThreads 1\nMaxSpareThreads 8\n".into(),
        }
    }
}

/// The repository root (where `target/modules` is).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The module Apache loads, and its engines beside it, copied once per test process to a
/// world-readable directory: Apache's children run as `nobody` and load the engine after
/// dropping privileges, so a checkout under a mode-700 home (root's, here) would be unreadable
/// to them. The tests refuse to run without a build (`scripts/build`; `scripts/test` runs it).
pub fn module_path() -> PathBuf {
    static INSTALLED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let built = repo().join("target/modules");
            assert!(built.join("mod_wsgi.so").is_file(), "{}/mod_wsgi.so is missing: run scripts/build (scripts/test does) first", built.display());
            let dir = std::env::temp_dir().join(format!("mod_wsgi-rs-test-modules-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            for entry in std::fs::read_dir(&built).unwrap().flatten() {
                let target = dir.join(entry.file_name());
                std::fs::copy(entry.path(), &target).unwrap();
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            extern "C" fn remove_copies() {
                let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("mod_wsgi-rs-test-modules-{}", std::process::id())));
            }
            // SAFETY: registers a plain function to run at process exit (every Apache of this
            // process has been stopped by then, by the tests' drops).
            unsafe { libc::atexit(remove_copies) };
            dir.join("mod_wsgi.so")
        })
        .clone()
}

/// A fresh world-readable directory for one server and its apps.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("mod_wsgi-rs-test-{}-{}-{}", tag, std::process::id(), n));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Replaces a file the way a deployment should (write aside, then rename), so that a
    /// reader sees the old or the new content, never a half-written file.
    pub fn replace(&self, name: &str, content: &str) -> PathBuf {
        let aside = self.write(&format!("{name}.new"), content);
        let path = self.0.join(name);
        std::fs::rename(&aside, &path).unwrap();
        path
    }

    /// Writes a world-readable file (and its directories).
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.0.join(name);
        let parent = path.parent().unwrap();
        std::fs::create_dir_all(parent).unwrap();
        let mut dir = parent.to_path_buf();
        while dir.starts_with(&self.0) {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
            if !dir.pop() {
                break;
            }
        }
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

/// A running Apache.
pub struct Apache {
    pub dir: TempDir,
    pub port: u16,
    pub mpm: Mpm,
    pid: Option<i32>,
    /// Set by [`Apache::allow_crash_lines`]: the drop does not check the log for crashes.
    crashes_expected: std::sync::atomic::AtomicBool,
}

/// Error-log text that means a process crashed, whatever the request outcomes were: a signal
/// (Apache's AH00052/AH00051 "child pid N exit signal ..."; a segfault's name; a daemon that
/// crashed or aborted), CPython aborting,
/// or a Rust panic / caught internal error in the module or engine.
pub const CRASH_MARKERS: [&str; 8] = [
    "Segmentation fault",
    "Fatal Python error",
    "exit signal",
    "AH00052",
    "panicked",
    "internal error",
    // A daemon process's death, as the supervisor names it.
    "crashed (a fault in native code)",
    "aborted (a fatal Python or C library error",
];

/// The lines of `log` that contain a [`CRASH_MARKERS`] entry.
pub fn crash_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|line| CRASH_MARKERS.iter().any(|marker| line.contains(marker))).collect()
}

/// The config around `body`: everything a bare Apache needs plus our module.
pub fn base_config(dir: &Path, port: u16, mpm: Mpm, module: &Path) -> String {
    let d = dir.display();
    let user = if is_root() { "User nobody\nGroup nogroup\n" } else { "" };
    format!(
        "ServerRoot {d}\nDefaultRuntimeDir {d}\nPidFile {d}/httpd.pid\nErrorLog {d}/error.log\nLogLevel info\n\
         Listen 127.0.0.1:{port}\nServerName localhost\n{user}\
         LoadModule mpm_{m}_module {APACHE_MODULES}/mod_mpm_{m}.so\n{mpm_directives}\
         LoadModule authz_core_module {APACHE_MODULES}/mod_authz_core.so\n\
         LoadModule alias_module {APACHE_MODULES}/mod_alias.so\n\
         LoadModule env_module {APACHE_MODULES}/mod_env.so\n\
         LoadModule wsgi_module {module}\n\
         GracefulShutdownTimeout 5\n\
         <Directory />\n  Require all denied\n</Directory>\n<Directory {d}>\n  Require all granted\n</Directory>\n",
        m = mpm.name(),
        mpm_directives = mpm.directives(),
        module = module.display(),
    )
}

impl Apache {
    /// Starts Apache with `body` appended to the base config. `{dir}` in `body` is replaced by
    /// the server's directory. Panics (printing the error log) if it does not come up.
    pub fn start(mpm: Mpm, body: &str) -> Apache {
        Apache::start_in(TempDir::new(mpm.name()), mpm, body)
    }

    pub fn start_in(dir: TempDir, mpm: Mpm, body: &str) -> Apache {
        Apache::start_with_module(dir, mpm, &module_path(), body)
    }

    /// As [`Apache::start_in`], loading `module` as `wsgi_module` (Debian's mod_wsgi, for
    /// side-by-side comparisons).
    pub fn start_with_module(dir: TempDir, mpm: Mpm, module: &Path, body: &str) -> Apache {
        let port = free_port();
        let mut apache = Apache { dir, port, mpm, pid: None, crashes_expected: Default::default() };
        let conf = apache.write_config_with(module, body);
        let out = Command::new(APACHE).args(["-f", conf.to_str().unwrap(), "-k", "start"]).output().unwrap();
        assert!(out.status.success(), "apache2 -k start failed:\n{}\n{}", String::from_utf8_lossy(&out.stderr), apache.error_log());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if apache.pid.is_none() {
                apache.pid = std::fs::read_to_string(apache.dir.path().join("httpd.pid")).ok().and_then(|s| s.trim().parse().ok());
            }
            if apache.pid.is_some() && TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return apache;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("Apache did not come up on port {port}:\n{}", apache.error_log());
    }

    pub fn write_config_with(&self, module: &Path, body: &str) -> PathBuf {
        let dir = self.dir.path();
        let mut conf = base_config(dir, self.port, self.mpm, module);
        conf.push_str(&body.replace("{dir}", &dir.display().to_string()));
        self.dir.write("httpd.conf", &conf)
    }

    pub fn pid(&self) -> i32 {
        self.pid.expect("started")
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Waits until the error log contains `needle` (log lines can trail the response).
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.error_log();
            if log.contains(needle) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        http(self.port, method, path, headers, body)
    }

    /// PIDs of this Apache's children.
    pub fn children(&self) -> Vec<i32> {
        children_of(self.pid())
    }

    /// Stops Apache (SIGTERM to the pidfile's PID) and waits until it is gone.
    ///
    /// First it lets the children finish closing the connections whose clients are done (see
    /// [`Apache::wait_for_closing_connections`]): httpd's event MPM can segfault a child that
    /// is stopped while one of its workers closes a connection (tests/shutdown.rs).
    /// SIGWINCH (graceful stop: the child exits outside any signal handler, also under
    /// prefork, so that Python's shutdown runs), waits until the Apache parent is gone, then
    /// [`Apache::stop`] (which finds nothing left to stop).
    pub fn stop_gracefully(&mut self) {
        self.wait_for_closing_connections(Duration::from_secs(3));
        let parent = self.pid();
        // SAFETY: signals the Apache parent this harness started.
        unsafe { libc::kill(parent, libc::SIGWINCH) };
        let deadline = Instant::now() + Duration::from_secs(15);
        // SAFETY: signal 0 only checks that the process exists.
        while unsafe { libc::kill(parent, 0) } == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
    }

    pub fn stop(&mut self) {
        let Some(pid) = self.pid else { return };
        self.wait_for_closing_connections(Duration::from_secs(3));
        self.pid = None;
        // SAFETY: signals only the Apache parent this harness started.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        // SAFETY: signal 0 only checks that the process exists.
        while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above.
        if unsafe { libc::kill(pid, 0) } == 0 {
            eprintln!("Apache {pid} did not stop in 15 s; sending SIGKILL");
            // SAFETY: our own Apache parent.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    /// Waits, at most `limit`, until no child holds a connection that is being closed: one
    /// whose client has gone (or is going) while the child's descriptor is still open.
    ///
    /// On a non-graceful stop, httpd's event MPM closes its workers' sockets from the child's
    /// main thread (`close_worker_sockets`) without any lock, while a worker may be closing
    /// that same connection and destroying its pool: the main thread then reads freed memory,
    /// and the child dies of SIGSEGV before any module's `child_stopping` hook runs (Apache's
    /// race, with or without this module). A test's last response leaves exactly that: the
    /// client read to the end and closed, and the worker is still finishing the lingering
    /// close. Connections still exchanging data are not waited for (stopping busy children is
    /// what some tests do); half-closed ones end within Apache's 2 s lingering time.
    pub fn wait_for_closing_connections(&self, limit: Duration) {
        wait_for_closing_connections_of(self.pid(), limit);
    }

    /// For a test that crashes or kills children on purpose: its drop does not fail on
    /// [`CRASH_MARKERS`] in the error log.
    pub fn allow_crash_lines(&self) {
        self.crashes_expected.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for Apache {
    /// Stops Apache (so the log is complete), then prints the log if the test failed, or fails
    /// the test if the log shows a crash.
    fn drop(&mut self) {
        self.stop();
        let log = self.error_log();
        let banner = format!("---- Apache error log ({}) ----\n{log}\n---- end of error log ----", self.dir.path().display());
        if std::thread::panicking() {
            eprintln!("{banner}");
        } else if !self.crashes_expected.load(std::sync::atomic::Ordering::Relaxed) {
            let crashes = crash_lines(&log);
            assert!(crashes.is_empty(), "the error log shows a crash ({} MPM, port {}):\n{}\n{banner}", self.mpm.name(), self.port, crashes.join("\n"));
        }
    }
}

/// The processes whose parent is `parent`.
pub fn children_of(parent: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_string)))
                .flatten()
                .and_then(|ppid| ppid.parse::<i32>().ok())
                == Some(parent)
        })
        .collect()
}

/// [`Apache::wait_for_closing_connections`] for an Apache whose parent is `parent` (one that
/// `mod_wsgi-express` started).
pub fn wait_for_closing_connections_of(parent: i32, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline && children_of(parent).into_iter().any(closing_connection) {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether process `pid` has a TCP connection being closed open: a socket descriptor that the
/// kernel lists in a closing state, or no longer lists at all (closed by the peer after our
/// shutdown, while the descriptor is still open). Listening sockets and other socket families
/// do not count. A process whose descriptors cannot be read has none.
fn closing_connection(pid: i32) -> bool {
    // TCP states in /proc/net/tcp: FIN_WAIT1, FIN_WAIT2, TIME_WAIT, CLOSE, CLOSE_WAIT,
    // LAST_ACK, CLOSING.
    const CLOSING: [u8; 7] = [0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0B];
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    let sockets: Vec<u64> = fds
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| target.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok())
        .collect();
    if sockets.is_empty() {
        return false;
    }
    // (inode, state) of each row of a /proc/net table, given the column of its inode; the
    // state is only meaningful for TCP.
    let table = |name: &str, inode_field: usize| -> Vec<(u64, u8)> {
        std::fs::read_to_string(format!("/proc/net/{name}"))
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                Some((fields.get(inode_field)?.parse().ok()?, u8::from_str_radix(fields.get(3)?, 16).unwrap_or(0)))
            })
            .collect()
    };
    let tcp: Vec<(u64, u8)> = [table("tcp", 9), table("tcp6", 9)].concat();
    let others: Vec<u64> = [table("unix", 6), table("udp", 9), table("udp6", 9), table("netlink", 9)].concat().into_iter().map(|(inode, _)| inode).collect();
    sockets.iter().any(|inode| match tcp.iter().find(|(i, _)| i == inode) {
        Some((_, state)) => CLOSING.contains(state),
        None => !others.contains(inode),
    })
}

/// Runs `apache2 -t` on a config made of the base config and `body`; returns (ok, output).
pub fn config_test(body: &str) -> (bool, String) {
    config_test_with(&module_path(), body)
}

/// As [`config_test`], loading `module` as `wsgi_module` (a reference mod_wsgi).
pub fn config_test_with(module: &Path, body: &str) -> (bool, String) {
    let dir = TempDir::new("configtest");
    let mut conf = base_config(dir.path(), free_port(), Mpm::Event, module);
    conf.push_str(&body.replace("{dir}", &dir.path().display().to_string()));
    let path = dir.write("httpd.conf", &conf);
    let out = Command::new(APACHE).args(["-t", "-f", path.to_str().unwrap()]).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text.replace(&dir.path().display().to_string(), "{dir}"))
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A small HTTP/1.1 client (one request per connection), enough for these tests; it
/// de-chunks chunked responses.
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    try_http(port, method, path, headers, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// As [`http`], but a connection that fails or closes without a response is an `Err`.
pub fn try_http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Response, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| e.to_string())?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding")) && (!body.is_empty() || method == "POST") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    stream.write_all(body).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    if !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        return Err(format!("no response ({} bytes)", raw.len()));
    }
    Ok(parse_response(&raw, method == "HEAD"))
}

/// One request of a load (see [`hammer`]).
#[derive(Clone, Debug)]
pub struct Request {
    pub method: &'static str,
    pub path: String,
    pub body: Vec<u8>,
}

impl Request {
    pub fn get(path: impl Into<String>) -> Request {
        Request { method: "GET", path: path.into(), body: Vec::new() }
    }

    pub fn post(path: impl Into<String>, body: Vec<u8>) -> Request {
        Request { method: "POST", path: path.into(), body }
    }
}

/// Concurrent load: `clients` threads start together and each sends `requests_per_client`
/// requests one after the other, request `n` (`client * requests_per_client + i`) being
/// `make_request(n)`. Returns every request with its outcome, in the order of `n`; a connection
/// that fails or closes without a response is an `Err` rather than a panic, so the caller can
/// report all failures (and the error log) together.
pub fn hammer(
    port: u16,
    clients: usize,
    requests_per_client: usize,
    make_request: impl Fn(usize) -> Request + Sync,
) -> Vec<(Request, Result<Response, String>)> {
    let start = std::sync::Barrier::new(clients);
    let (make_request, start) = (&make_request, &start);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..clients)
            .map(|client| {
                scope.spawn(move || {
                    start.wait();
                    (0..requests_per_client)
                        .map(|i| {
                            let request = make_request(client * requests_per_client + i);
                            let outcome = try_http(port, request.method, &request.path, &[], &request.body);
                            (request, outcome)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads.into_iter().flat_map(|thread| thread.join().expect("a load client panicked")).collect()
    })
}

pub fn parse_response(raw: &[u8], head_only: bool) -> Response {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked && !head_only {
        body = dechunk(&body);
    }
    Response { status, headers, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else { return out };
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).split(';').next().unwrap().trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
}

/// Runs `f` for each MPM, each with its own Apache.
pub fn for_each_mpm(body: &str, f: impl Fn(&Apache)) {
    for mpm in ALL_MPMS {
        let apache = Apache::start(mpm, body);
        f(&apache);
    }
}

/// Copies a directory of test apps into a server directory, world-readable.
pub fn copy_tree(src: &Path, dir: &TempDir, under: &str) {
    for entry in std::fs::read_dir(src).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "__pycache__" {
            continue;
        }
        let rel = if under.is_empty() { name.clone() } else { format!("{under}/{name}") };
        if entry.path().is_dir() {
            copy_tree(&entry.path(), dir, &rel);
        } else {
            dir.write(&rel, &std::fs::read_to_string(entry.path()).unwrap());
        }
    }
}

/// Just enough JSON reading for the flat objects test apps answer with: Python's own json
/// module (Debian's /usr/bin/python3) flattens it to `key<TAB>value`, strings raw and
/// everything else as JSON text.
pub struct Json(Vec<(String, String)>);

impl Json {
    pub fn parse(text: &str) -> Json {
        let out = Command::new("/usr/bin/python3")
            .args(["-c", "import json,sys\nfor k,v in json.loads(sys.argv[1]).items(): print(k + '\\t' + (v if isinstance(v, str) else json.dumps(v)))", text])
            .output()
            .unwrap();
        assert!(out.status.success(), "not JSON: {text}");
        Json(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split_once('\t'))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> String {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_else(|| panic!("no key {key}"))
    }
}

/// SHA-256 through the system's sha256sum, so the tests need no crypto crate.
pub fn sha256_hex(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

/// One request of a side-by-side comparison: method, path, headers, body.
pub type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a [u8]);

/// What two servers' answers are compared on: the status, the `headers` named (lower-cased,
/// sorted; framing headers are left out, since a list body gets a Content-Length from us where
/// mod_wsgi chunks), and the body, except for statuses where `error_page` holds (each
/// server's own error page). This server's port and directory are written generically.
pub fn summary(apache: &Apache, r: &Response, headers: &[&str], error_page: impl Fn(u16) -> bool) -> String {
    let mut kept: Vec<String> = r
        .headers
        .iter()
        .filter(|(k, _)| headers.contains(&k.to_ascii_lowercase().as_str()))
        .map(|(k, v)| format!("{}: {v}", k.to_ascii_lowercase()))
        .collect();
    kept.sort();
    let body = if error_page(r.status) { "<error page>".to_string() } else { r.text() };
    format!("{} [{}] {}", r.status, kept.join(", "), body)
        .replace(&apache.port.to_string(), "PORT")
        .replace(&apache.dir.path().display().to_string(), "{dir}")
}

/// The `cases` whose summaries (see [`summary`]) differ between `ours` and `theirs`, each
/// described with both answers.
pub fn differences(ours: &Apache, theirs: &Apache, cases: &[Case], summarize: impl Fn(&Apache, &Response) -> String) -> Vec<String> {
    let mut found = Vec::new();
    for &(method, path, headers, body) in cases {
        let a = summarize(ours, &ours.request(method, path, headers, body));
        let b = summarize(theirs, &theirs.request(method, path, headers, body));
        if a != b {
            found.push(format!("{method} {path}\n  mod_wsgi-rs: {a}\n  mod_wsgi:    {b}"));
        }
    }
    found
}

/// An answer of `key=value` lines, from a test application that reports what it saw.
pub struct Report(pub String);

impl Report {
    /// GET `path`, which must answer 200.
    pub fn get(apache: &Apache, path: &str) -> Report {
        let r = apache.get(path);
        assert_eq!(r.status, 200, "{path}: {}\n{}", r.text(), apache.error_log());
        Report(r.text())
    }

    pub fn field(&self, key: &str) -> &str {
        let prefix = format!("{key}=");
        self.0.lines().find_map(|l| l.strip_prefix(prefix.as_str())).unwrap_or_else(|| panic!("no {key} in {}", self.0))
    }

    pub fn pid(&self) -> i32 {
        self.field("pid").parse().unwrap()
    }
}

/// GET `path`, which must answer 200 with JSON.
pub fn json(apache: &Apache, path: &str) -> Json {
    let response = apache.get(path);
    assert_eq!(response.status, 200, "{path}: {}\n{}", response.text(), apache.error_log());
    Json::parse(&response.text())
}

/// The `WSGIPythonHome` of Python `version`, or `None` (skipped) when it is not installed and
/// neither `MOD_WSGI_TEST_PYTHONS` nor `CI` says it must be.
pub fn python_home(version: &str) -> Option<String> {
    let home = format!("/opt/mod_wsgi-rs/python/{version}");
    let engine = module_path().parent().unwrap().join(format!("mod_wsgi-engine-py{version}.so"));
    if std::path::Path::new(&home).is_dir() && engine.is_file() {
        return Some(home);
    }
    let expected = std::env::var("MOD_WSGI_TEST_PYTHONS").unwrap_or_default();
    let required = std::env::var_os("CI").is_some() || expected.split_whitespace().any(|v| v == version);
    assert!(!required, "Python {version} is required here, but {home} or {} is missing: run scripts/pythons {version}", engine.display());
    eprintln!("SKIPPED: Python {version} is not installed (scripts/pythons {version})");
    None
}

/// Installs `packages` from PyPI as wheels for CPython `version` (manylinux x86_64) into
/// `target`, with whichever `python3` on PATH has pip, and makes them readable by Apache's
/// user. Panics with pip's output when that fails (PyPI must be reachable).
pub fn pip_install_for(version: &str, target: &Path, packages: &[&str]) {
    let abi = format!("cp{}", version.replace('.', ""));
    let out = std::process::Command::new("python3")
        .args(["-m", "pip", "install", "-q", "--disable-pip-version-check", "--target"])
        .arg(target)
        .args(["--only-binary=:all:", "--python-version", version, "--implementation", "cp", "--abi", &abi, "--platform", "manylinux_2_17_x86_64"])
        .args(packages)
        .output()
        .expect("python3 -m pip");
    assert!(out.status.success(), "pip install {packages:?} for Python {version} (PyPI) failed: {}", String::from_utf8_lossy(&out.stderr));
    let _ = std::process::Command::new("chmod").args(["-R", "a+rX"]).arg(target).status();
}

/// Python for the GIL races of `own_gil.rs` and `replicas.rs`, to put before an app's own code:
/// `spin(path, bound)` turns this GIL's switch interval up to 1000 s and spins in bytecode
/// (reading a shared `mmap`, which never releases the GIL) until `poke(path)`, in another
/// request, writes byte 0, or `bound` seconds pass; it returns `seen` or `timeout`. On one GIL
/// the poke cannot run until the spin gives up, so `seen` proves two GILs ran at once.
pub const GIL_RACE_PY: &str = r#"
import mmap as _race_mmap, sys as _race_sys, time as _race_time

def spin(path, bound):
    with open(path, 'r+b') as f:
        m = _race_mmap.mmap(f.fileno(), 2)
    old = _race_sys.getswitchinterval()
    _race_sys.setswitchinterval(1000.0)
    try:
        m[1] = 1
        deadline = _race_time.monotonic() + bound
        while m[0] == 0:
            if _race_time.monotonic() > deadline:
                return 'timeout'
        return 'seen'
    finally:
        _race_sys.setswitchinterval(old)
        m.close()

def poke(path):
    with open(path, 'r+b') as f:
        m = _race_mmap.mmap(f.fileno(), 2)
    m[0] = 1
    m.close()
"#;

/// Runs a [`GIL_RACE_PY`] race: `GET {spin_path}?FILE,BOUND` (which must call `spin`), and
/// once it spins (byte 1 of the shared file set), `GET {poke_path}?FILE` (which must call
/// `poke`). Returns the texts of both responses (spin, poke), each asserted a 200.
pub fn gil_race(apache: &Apache, spin_path: &str, poke_path: &str, bound: u32) -> (String, String) {
    let tag: String = format!("{spin_path}-{poke_path}").chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    let file = apache.dir.write(&format!("race-{tag}"), "\0\0");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let file = file.display().to_string();
    std::thread::scope(|scope| {
        let spinning = scope.spawn(|| apache.get(&format!("{spin_path}?{file},{bound}")));
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::fs::read(&file).unwrap()[1] == 0 {
            assert!(Instant::now() < deadline, "the spin at {spin_path} never began\n{}", apache.error_log());
            std::thread::sleep(Duration::from_millis(5));
        }
        let poked = apache.get(&format!("{poke_path}?{file}"));
        assert_eq!(poked.status, 200, "{poke_path}: {}\n{}", poked.text(), apache.error_log());
        let spun = spinning.join().unwrap();
        assert_eq!(spun.status, 200, "{spin_path}: {}\n{}", spun.text(), apache.error_log());
        (spun.text(), poked.text())
    })
}

/// A directory for what tests install and keep between runs (Django from PyPI, pip's venvs),
/// under the system's temporary directory rather than the checkout: Apache's children run as
/// `nobody`, who cannot reach into a checkout under a mode-700 directory.
pub fn cache_dir(name: &str) -> PathBuf {
    let base = std::env::temp_dir().join("mod_wsgi-rs-test-cache");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
    base.join(name)
}

/// A venv of Debian's Python 3.11 with `requirements` from PyPI, made once into the test cache
/// under `name` and kept. Its console scripts name the directory it was built in: run
/// modules with its `bin/python` instead.
pub fn pypi_venv(name: &str, requirements: &[&str]) -> PathBuf {
    let venv = cache_dir(name);
    if venv.join("bin/python").exists() && venv.join(".complete").is_file() {
        return venv;
    }
    // Built aside and renamed into place, so that test binaries running at once never see
    // half a venv.
    let aside = venv.with_extension(format!("building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&aside);
    let run = |program: &Path, args: &[&str]| {
        let out = std::process::Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{}: {e}", program.display()));
        assert!(out.status.success(), "{} {args:?} failed (PyPI must be reachable):\n{}", program.display(), String::from_utf8_lossy(&out.stderr));
    };
    run(Path::new("/usr/bin/python3"), &["-m", "venv", aside.to_str().unwrap()]);
    let mut args = vec!["-m", "pip", "install", "-q", "--disable-pip-version-check"];
    args.extend_from_slice(requirements);
    run(&aside.join("bin/python"), &args);
    std::fs::write(aside.join(".complete"), requirements.join("\n")).unwrap();
    if std::fs::rename(&aside, &venv).is_err() {
        // Another test binary got there first.
        let _ = std::fs::remove_dir_all(&aside);
    }
    venv
}

/// The telemetry tests' tools from PyPI: mod_wsgi 6.1's ingester (`mod-wsgi-telemetry`, whose
/// parser is the wire format's specification) and Prometheus's own text-format parser.
pub fn telemetry_tools() -> PathBuf {
    pypi_venv("telemetry-tools-1", &["mod-wsgi-telemetry==1.1.0", "prometheus_client==0.26.0"])
}

/// Where Debian's mod_wsgi 4.9 (`libapache2-mod-wsgi-py3`, installed by scripts/setup) is.
/// Our own Debian package installs the same path: load it through [`debian_mod_wsgi`].
pub const DEBIAN_MOD_WSGI: &str = "/usr/lib/apache2/modules/mod_wsgi.so";

/// Debian's mod_wsgi 4.9, checked to be Debian's: `dpkg -S` must name
/// `libapache2-mod-wsgi-py3` as its owner. mod-wsgi-rs's own package installs the same
/// path (tests/debian_package.rs swaps it in), and a comparison with it would compare ours
/// with ours.
pub fn debian_mod_wsgi() -> &'static Path {
    let path = Path::new(DEBIAN_MOD_WSGI);
    assert!(path.is_file(), "Debian's mod_wsgi is missing: scripts/setup installs libapache2-mod-wsgi-py3");
    let out = std::process::Command::new("dpkg").args(["-S", DEBIAN_MOD_WSGI]).output().expect("dpkg -S");
    let text = String::from_utf8_lossy(&out.stdout);
    let owner = text.split(':').next().unwrap_or("").trim();
    assert!(
        out.status.success() && owner == "libapache2-mod-wsgi-py3",
        "{DEBIAN_MOD_WSGI} is not Debian's mod_wsgi: it belongs to {owner:?} ({}). If that is mod-wsgi-rs \
         (an interrupted tests/debian_package.rs leaves it installed), `apt install libapache2-mod-wsgi-py3` puts Debian's back",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    path
}

/// The version of mod_wsgi from PyPI the tests compare with.
pub const MOD_WSGI_6: &str = "6.1.1";

/// mod_wsgi 6.1 from PyPI, built here against Debian's Apache for Debian's Python 3.11 (what
/// `pip install mod_wsgi` in a venv gives a new user), made once into the test cache and kept:
/// the path of its module (`mod_wsgi-express module-config` names the same file).
pub fn mod_wsgi_6_module() -> PathBuf {
    let venv = cache_dir(&format!("mod_wsgi-{MOD_WSGI_6}-py3.11"));
    let find = |venv: &Path| -> Option<PathBuf> {
        let server = venv.join("lib/python3.11/site-packages/mod_wsgi/server");
        std::fs::read_dir(server).ok()?.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("mod_wsgi-py311") && n.ends_with(".so"))
        })
    };
    if let Some(module) = find(&venv) {
        return module;
    }
    // Built aside and renamed into place, so that test binaries running at once never see
    // half a venv.
    let aside = venv.with_extension(format!("building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&aside);
    let run = |program: &Path, args: &[&str]| {
        let out = std::process::Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{}: {e}", program.display()));
        assert!(out.status.success(), "{} {args:?} failed (PyPI, apache2-dev and python3-dev are needed):\n{}", program.display(), String::from_utf8_lossy(&out.stderr));
    };
    run(Path::new("/usr/bin/python3"), &["-m", "venv", aside.to_str().unwrap()]);
    run(&aside.join("bin/pip"), &["install", "-q", "--disable-pip-version-check", &format!("mod_wsgi=={MOD_WSGI_6}")]);
    let _ = std::process::Command::new("chmod").args(["-R", "a+rX"]).arg(&aside).status();
    if std::fs::rename(&aside, &venv).is_err() {
        // Another test binary got there first.
        let _ = std::fs::remove_dir_all(&aside);
    }
    find(&venv).unwrap_or_else(|| panic!("no mod_wsgi module in {}", venv.display()))
}
