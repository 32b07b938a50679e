//! Starting and stopping a real Debian Apache on a free 127.0.0.1 port, with a generated config.
//!
//! Each [`Apache`] gets its own world-readable directory under /tmp (Apache's children run as
//! `nobody` when the tests run as root, and cannot read root's home), writes `httpd.conf` there,
//! starts `/usr/sbin/apache2 -k start`, waits until it answers, and on drop stops it by the PID
//! in its pidfile (never by name) and prints the error log if the test failed. A drop also fails
//! the test when the error log shows a crash ([`CRASH_MARKERS`]), so no test passes over a
//! segfault or a fatal Python error just because the requests it checked happened to succeed.
//! The module and engine come from `target/modules` (built by `scripts/build`). Here too: the
//! MPMs, the base config, and `apache2 -t` of a config ([`config_test`]).

use super::*;
use std::net::TcpStream;
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
            _ => {
                "StartServers 1\nServerLimit 1\nThreadLimit 8\nThreadsPerChild 8\nMaxRequestWorkers 8\nMinSpareThreads 1\nMaxSpareThreads 8\n".into()
            }
        }
    }
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
            assert!(
                crashes.is_empty(),
                "the error log shows a crash ({} MPM, port {}):\n{}\n{banner}",
                self.mpm.name(),
                self.port,
                crashes.join("\n")
            );
        }
    }
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

/// Runs `f` for each MPM, each with its own Apache.
pub fn for_each_mpm(body: &str, f: impl Fn(&Apache)) {
    for mpm in ALL_MPMS {
        let apache = Apache::start(mpm, body);
        f(&apache);
    }
}
