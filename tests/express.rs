//! `mod_wsgi-express`: `module-config` prints the lines for an existing Apache, and
//! `start-server` runs a script under Apache in the foreground with a generated config.

mod common;
use common::*;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EXPRESS: &str = env!("CARGO_BIN_EXE_mod_wsgi-express");

#[test]
fn module_config_prints_the_load_module_line() {
    let module = module_path();
    let out = Command::new(EXPRESS).arg("module-config").env("MOD_WSGI_MODULE", &module).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("LoadModule wsgi_module \"{}\"", module.display())), "{text}");
    assert!(!text.contains("WSGIPythonHome"), "{text}");
}

#[test]
fn start_server_serves_a_script_in_the_foreground() {
    let dir = TempDir::new("express");
    let script = dir.write("app.wsgi", "def application(e, s):\n    s('200 OK', [('Content-Type', 'text/plain')])\n    return [b'express says hi ' + e['PATH_INFO'].encode()]\n");
    let port = free_port();
    let root = dir.path().join("root");
    let mut child = Command::new(EXPRESS)
        .args(["start-server", script.to_str().unwrap(), "--port", &port.to_string(), "--server-root", root.to_str().unwrap()])
        // The working directory (the daemons' home) must be reachable by Apache's user, which
        // a checkout need not be (a mode-700 temporary directory): the test's own directory.
        .current_dir(dir.path())
        .env("MOD_WSGI_MODULE", module_path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "express did not come up:\n{}", std::fs::read_to_string(root.join("error_log")).unwrap_or_default());
        assert!(child.try_wait().unwrap().is_none(), "express exited:\n{}", std::fs::read_to_string(root.join("error_log")).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = http(port, "GET", "/x/y", &[], b"");
    // express execs Apache in the foreground: the PID we started is Apache's.
    // SAFETY: signals only the process this test spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    assert_eq!(r.status, 200, "{}", std::fs::read_to_string(root.join("error_log")).unwrap_or_default());
    assert_eq!(r.text(), "express says hi /x/y");
    assert!(root.join("httpd.conf").is_file());
    assert!(std::fs::read_to_string(root.join("httpd.conf")).unwrap().contains(&format!("Listen \"127.0.0.1:{port}\"")));
}

#[test]
fn bad_options_are_usage_errors() {
    let out = Command::new(EXPRESS).args(["start-server", "/nonexistent.wsgi", "--port", "99999"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(EXPRESS).args(["start-server", "--colour", "blue"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--colour"));
}

/// The app of the mode tests: which process serves it, and what mod_wsgi says about it.
const WHO_AM_I: &str = r#"import json, os, mod_wsgi
def application(e, s):
    s('200 OK', [('Content-Type', 'application/json')])
    return [json.dumps({'group': mod_wsgi.process_group, 'pid': os.getpid(), 'ppid': os.getppid(),
        'processes': mod_wsgi.maximum_processes, 'threads': mod_wsgi.threads_per_process,
        'multiprocess': e['wsgi.multiprocess'], 'cwd': os.getcwd()}).encode()]
"#;

/// A running `mod_wsgi-express start-server` (which is Apache itself: express execs it), in
/// its own process group as a shell would start it, stopped with SIGTERM when dropped.
struct Express {
    child: Child,
    port: u16,
    root: PathBuf,
    _dir: TempDir,
}

impl Express {
    fn start(extra: &[&str]) -> Express {
        let dir = TempDir::new("express-mode");
        let script = dir.write("app.wsgi", WHO_AM_I);
        let port = free_port();
        let root = dir.path().join("root");
        let mut child = Command::new(EXPRESS)
            .arg("start-server")
            .arg(&script)
            .args(["--port", &port.to_string(), "--server-root", root.to_str().unwrap()])
            .args(extra)
            .current_dir(dir.path())
            .env("MOD_WSGI_MODULE", module_path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let log = |root: &PathBuf| std::fs::read_to_string(root.join("error_log")).unwrap_or_default();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "express did not come up:\n{}", log(&root));
            assert!(child.try_wait().unwrap().is_none(), "express exited:\n{}", log(&root));
            std::thread::sleep(Duration::from_millis(50));
        }
        Express { child, port, root, _dir: dir }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.root.join("error_log")).unwrap_or_default()
    }

    fn who(&self) -> Json {
        let r = http(self.port, "GET", "/", &[], b"");
        assert_eq!(r.status, 200, "{}\n{}", r.text(), self.error_log());
        Json::parse(&r.text())
    }

    /// Apache's children: (pid, command line), the MPM's and the daemons alike.
    fn children(&self) -> Vec<(i32, String)> {
        children_of(self.pid())
    }

    /// Sends `signal` (to the whole process group for SIGINT, as Ctrl-C in a terminal does)
    /// and waits for Apache to exit.
    fn stop_with(&mut self, signal: i32) {
        let target = if signal == libc::SIGINT { -self.pid() } else { self.pid() };
        // SAFETY: signals only the process (group) this test spawned.
        unsafe { libc::kill(target, signal) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "Apache did not stop on signal {signal}:\n{}", self.error_log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Express {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // SAFETY: signals only the process this test spawned.
            unsafe { libc::kill(self.pid(), libc::SIGTERM) };
            let _ = self.child.wait();
        }
    }
}

/// Live (non-zombie) children of `parent`, with their command lines.
fn children_of(parent: i32) -> Vec<(i32, String)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let mut rest = stat.rsplit_once(')')?.1.split_whitespace();
            let (state, ppid) = (rest.next()?, rest.next()?.parse::<i32>().ok()?);
            (ppid == parent && state != "Z").then(|| (pid, cmdline(pid)))
        })
        .collect()
}

fn cmdline(pid: i32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()).replace('\0', " ")
}

/// Whether `pid` still runs (a zombie waiting for its reaper does not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next().map(|st| st != "Z")))
        .unwrap_or(false)
}

#[test]
fn start_server_runs_the_app_in_a_daemon_process_by_default() {
    let express = Express::start(&[]);
    let who = express.who();
    // The original names the group HOST:PORT, with "localhost" when --host is not given.
    assert_eq!(who.get("group"), format!("localhost:{}", express.port));
    assert_eq!(who.get("multiprocess"), "false", "processes= is passed only when --processes is given");
    assert_eq!((who.get("processes").as_str(), who.get("threads").as_str()), ("1", "5"));
    let pid: i32 = who.get("pid").parse().unwrap();
    assert_eq!(who.get("ppid").parse::<i32>().unwrap(), express.pid(), "the daemon is forked by Apache's parent");
    let children = express.children();
    let mpm: Vec<i32> = children.iter().filter(|(_, c)| c.starts_with("apache2 (mod_wsgi-express)")).map(|(p, _)| *p).collect();
    assert!(!mpm.is_empty(), "no Apache child process among {children:?}");
    assert!(!mpm.contains(&pid), "the app ran in an Apache child ({pid}), not a daemon: {children:?}");
    let daemon = children.iter().find(|(p, _)| *p == pid).map(|(_, c)| c.clone()).unwrap_or_default();
    assert!(daemon.starts_with(&format!("(wsgi:localhost:{}:", express.port)), "daemon's title: {daemon:?}");
    // The working directory (default: the current one) is the daemon's home.
    assert_eq!(who.get("cwd"), std::fs::canonicalize(express.root.parent().unwrap()).unwrap().to_str().unwrap());
    // The daemon's socket is under the server root, owned by the child user, for it alone.
    let conf = std::fs::read_to_string(express.root.join("httpd.conf")).unwrap();
    assert!(conf.contains(&format!("WSGISocketPrefix \"{}/wsgi\"", express.root.display())), "{conf}");
    let sockets: Vec<_> = std::fs::read_dir(&express.root).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".sock")).collect();
    assert_eq!(sockets.len(), 1, "{sockets:?}");
    if is_root() {
        use std::os::unix::fs::MetadataExt;
        let meta = sockets[0].metadata().unwrap();
        assert_eq!((meta.mode() & 0o777, meta.uid()), (0o700, 65534), "socket should belong to nobody, the default child user");
    }
}

#[test]
fn processes_and_threads_size_the_daemon_group() {
    let express = Express::start(&["--processes", "2", "--threads", "3"]);
    let who = express.who();
    assert_eq!((who.get("processes").as_str(), who.get("threads").as_str()), ("2", "3"));
    assert_eq!(who.get("multiprocess"), "true");
    let daemons = express.children().into_iter().filter(|(_, c)| c.starts_with("(wsgi:")).count();
    assert_eq!(daemons, 2, "{:?}", express.children());
}

#[test]
fn embedded_mode_runs_the_app_in_apache_children() {
    let express = Express::start(&["--embedded-mode"]);
    let who = express.who();
    assert_eq!(who.get("group"), "");
    let pid: i32 = who.get("pid").parse().unwrap();
    let children = express.children();
    assert!(children.iter().any(|(p, c)| *p == pid && c.starts_with("apache2 (mod_wsgi-express)")), "{pid} in {children:?}");
    assert!(!children.iter().any(|(_, c)| c.starts_with("(wsgi:")), "no daemon expected: {children:?}");
    let conf = std::fs::read_to_string(express.root.join("httpd.conf")).unwrap();
    assert!(!conf.contains("WSGIDaemonProcess"), "{conf}");
}

#[test]
fn sigterm_and_ctrl_c_stop_apache_and_the_daemons() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut express = Express::start(&["--processes", "2"]);
        express.who();
        let pids: Vec<i32> = express.children().into_iter().map(|(p, _)| p).collect();
        assert!(pids.len() >= 3, "two daemons and an Apache child expected: {:?}", express.children());
        express.stop_with(signal);
        let deadline = Instant::now() + Duration::from_secs(15);
        while pids.iter().any(|p| alive(*p)) {
            let left: Vec<_> = pids.iter().filter(|p| alive(**p)).map(|p| (p, cmdline(*p))).collect();
            assert!(Instant::now() < deadline, "left behind after signal {signal}: {left:?}\n{}", express.error_log());
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = express.error_log();
        assert!(crash_lines(&log).is_empty(), "{log}");
        let sockets = std::fs::read_dir(&express.root).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".sock")).count();
        assert_eq!(sockets, 0, "daemon socket left behind after signal {signal}");
    }
}

#[test]
fn unsupported_daemon_options_are_refused_by_name() {
    let out = Command::new(EXPRESS).args(["start-server", "--switch-interval", "5", "app.wsgi"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("'--switch-interval'") && stderr.contains("not supported"), "{stderr}");
    let out = Command::new(EXPRESS).args(["start-server", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for option in ["--embedded-mode", "--request-timeout SECONDS", "--process-group NAME", "--working-directory DIRECTORY"] {
        assert!(help.contains(option), "{option} missing from\n{help}");
    }
}

/// `setup-server` writes the server root and an `apachectl` that starts Apache in the
/// background, checks its configuration and stops it; `--setenv`, `--include-file` (last, so
/// its `SetEnv` is seen) and `--compress-responses` reach the generated configuration.
#[test]
fn setup_server_writes_an_apachectl_that_starts_and_stops_it() {
    let dir = TempDir::new("express-setup");
    let script = dir.write(
        "app.wsgi",
        "def application(e, s):\n    s('200 OK', [('Content-Type', 'text/plain')])\n    return [('STAGE=%s INCLUDED=%s ' % (e.get('STAGE'), e.get('INCLUDED'))).encode() * 50]\n",
    );
    let extra = dir.write("extra.conf", "SetEnv INCLUDED yes\n");
    let port = free_port();
    let root = dir.path().join("root");
    let out = Command::new(EXPRESS)
        .args(["setup-server", script.to_str().unwrap(), "--port", &port.to_string(), "--server-root", root.to_str().unwrap()])
        .args(["--setenv", "STAGE", "test", "--include-file", extra.to_str().unwrap(), "--compress-responses", "--startup-log"])
        .current_dir(dir.path())
        .env("MOD_WSGI_MODULE", module_path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = String::from_utf8_lossy(&out.stdout);
    let apachectl = root.join("apachectl");
    assert!(summary.contains(&format!("Apache Control   : {} start", apachectl.display())), "{summary}");
    // Nothing runs yet: setup-server only writes.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    let log = || std::fs::read_to_string(root.join("error_log")).unwrap_or_default();

    let ctl = |command: &str| Command::new(&apachectl).arg(command).output().unwrap();
    let checked = ctl("configtest");
    assert!(checked.status.success(), "configtest: {}", String::from_utf8_lossy(&checked.stderr));
    assert!(ctl("start").status.success(), "{}", log());
    let pid_file = root.join("httpd.pid");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() || !pid_file.is_file() {
        assert!(Instant::now() < deadline, "apachectl start did not bring the server up:\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    let plain = http(port, "GET", "/", &[], b"");
    let gzipped = http(port, "GET", "/", &[("Accept-Encoding", "gzip")], b"");
    let stopped = ctl("stop");
    let deadline = Instant::now() + Duration::from_secs(30);
    // SAFETY: probes (signal 0) only the Apache this test started, by its pidfile's PID.
    while unsafe { libc::kill(pid, 0) } == 0 {
        if Instant::now() > deadline {
            // SAFETY: as above; the server did not stop: end it rather than leave it behind.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("apachectl stop did not stop Apache:\n{}", log());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(stopped.status.success(), "{}", String::from_utf8_lossy(&stopped.stderr));
    assert_eq!(plain.status, 200, "{}", log());
    assert_eq!(plain.text(), "STAGE=test INCLUDED=yes ".repeat(50));
    assert_eq!(plain.header("Content-Encoding"), None);
    assert_eq!(gzipped.header("Content-Encoding"), Some("gzip"), "{}", log());
    assert!(gzipped.body.len() < plain.body.len());
    assert!(root.join("startup_log").is_file());
}
