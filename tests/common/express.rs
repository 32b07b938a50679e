//! Helpers of the `mod_wsgi-express` tests (`tests/express*.rs`): the command, a running
//! `start-server` ([`Express`]), the test applications, its children read through `/proc`,
//! two free ports and curl for HTTPS.

use super::daemon::{is_gone, proc_file};
use super::*;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub const EXPRESS: &str = env!("CARGO_BIN_EXE_mod_wsgi-express");

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
pub struct Express {
    child: Child,
    pub port: u16,
    pub root: PathBuf,
    _dir: TempDir,
}

impl Express {
    /// `start-server` of the WHO_AM_I script with `extra` options.
    pub fn start(extra: &[&str]) -> Express {
        let dir = TempDir::new("express-mode");
        let script = dir.write("app.wsgi", WHO_AM_I);
        Express::start_in(dir, &[&[script.to_str().unwrap()][..], extra].concat())
    }

    /// `start-server ARGS --port PORT --server-root DIR/root`, run in `dir` (the daemons'
    /// working directory), its output in `DIR/express.out`.
    pub fn start_in(dir: TempDir, args: &[&str]) -> Express {
        let port = free_port();
        Express::start_on(dir, port, args)
    }

    pub fn start_on(dir: TempDir, port: u16, args: &[&str]) -> Express {
        let root = dir.path().join("root");
        let out = std::fs::File::create(dir.path().join("express.out")).unwrap();
        let mut child = Command::new(EXPRESS)
            .arg("start-server")
            .args(args)
            .args(["--port", &port.to_string(), "--server-root", root.to_str().unwrap()])
            .current_dir(dir.path())
            .env("MOD_WSGI_MODULE", module_path())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let log = || {
            let out = std::fs::read_to_string(dir.path().join("express.out")).unwrap_or_default();
            format!("{out}\n{}", std::fs::read_to_string(root.join("error_log")).unwrap_or_default())
        };
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
                // SAFETY: signals only the process this test spawned.
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
                let _ = child.wait();
                panic!("express did not come up:\n{}", log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Express { child, port, root, _dir: dir }
    }

    pub fn get(&self, path: &str) -> Response {
        http(self.port, "GET", path, &[], b"")
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.root.join("error_log")).unwrap_or_default()
    }

    pub fn who(&self) -> Json {
        let r = http(self.port, "GET", "/", &[], b"");
        assert_eq!(r.status, 200, "{}\n{}", r.text(), self.error_log());
        Json::parse(&r.text())
    }

    /// Apache's live (non-zombie) children: (pid, command line), the MPM's and the daemons
    /// alike.
    pub fn children(&self) -> Vec<(i32, String)> {
        children_of(self.pid()).into_iter().filter(|pid| alive(*pid)).map(|pid| (pid, cmdline(pid))).collect()
    }

    /// Sends `signal` (to the whole process group for SIGINT, as Ctrl-C in a terminal does)
    /// and waits for Apache to exit.
    pub fn stop_with(&mut self, signal: i32) {
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

/// An app that says where Apache mounted it: `SCRIPT_NAME|PATH_INFO|url_scheme|pid`.
pub const WHERE_AM_I: &str = r#"import os
def application(e, s):
    s('200 OK', [('Content-Type', 'text/plain')])
    return [('%s|%s|%s|%d' % (e['SCRIPT_NAME'], e['PATH_INFO'], e['wsgi.url_scheme'], os.getpid())).encode()]
"#;

/// The command line of `pid`, its arguments separated by spaces (empty once it has gone).
pub fn cmdline(pid: i32) -> String {
    proc_file(pid, "cmdline").replace('\0', " ")
}

/// Whether `pid` still runs (a zombie waiting for its reaper does not).
pub fn alive(pid: i32) -> bool {
    !is_gone(pid)
}

/// Two distinct free ports.
pub fn two_free_ports() -> (u16, u16) {
    let first = free_port();
    loop {
        let second = free_port();
        if second != first {
            return (first, second);
        }
    }
}

/// `curl -s ARGS`: the status of the last response, its headers, and the body.
pub fn curl(args: &[&str]) -> (u16, String, String) {
    let out = Command::new("/usr/bin/curl").args(["-s", "--max-time", "30"]).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, format!("{head}\r\n\r\n"), body.to_string())
}
