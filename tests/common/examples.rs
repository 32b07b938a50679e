//! The examples of `examples/` (README: "The two commands"), each started with one
//! `mod_wsgi-express start-server` command as `scripts/run-example` starts it: hello, Flask
//! (the page, and a POST to a JSON view) and Django (as `--application-type module
//! mysite.wsgi`). Shared by `express.rs` (the repository's build, Debian's Python) and
//! `pip_install.rs` (the `mod_wsgi-express` a `pip install` put into a fresh venv).

use super::*;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One example app's case: name, express arguments, path, request body, expected text.
type Case<'a> = (&'a str, Vec<String>, &'a str, &'a [u8], String);

/// Copies `examples/` into `dir` (world-readable: Apache's children run as nobody) and serves
/// each example in turn with `express` (a `Command` for `mod_wsgi-express` with its
/// environment set), checking the answer. `python`, when given, is the `X.Y` the Flask and
/// Django pages must say they run on.
pub fn serve_examples(dir: &TempDir, express: impl Fn() -> Command, python: Option<&str>) {
    copy_tree(&repo().join("examples"), dir, "examples");
    let run = dir.path().join("examples");
    let on_python = |framework: &str| match python {
        Some(version) => format!("Hello from {framework} under mod_wsgi-rs (Python {version}."),
        None => format!("Hello from {framework} under mod_wsgi-rs"),
    };
    let django = || {
        vec![
            "--application-type".to_string(),
            "module".into(),
            "mysite.wsgi".into(),
            "--working-directory".into(),
            run.join("django").display().to_string(),
        ]
    };
    let cases: [Case; 5] = [
        ("hello", vec![run.join("hello.wsgi").display().to_string()], "/", b"", "Hello World!".into()),
        ("flask", vec![run.join("flask/app.py").display().to_string()], "/", b"", on_python("Flask")),
        ("flask", vec![run.join("flask/app.py").display().to_string()], "/echo", b"12345", "\"received\":5".into()),
        ("django", django(), "/", b"", on_python("Django")),
        ("django", django(), "/info/", b"", "\"script_name\": \"\"".into()),
    ];
    for (name, args, path, body, want) in cases {
        let port = free_port();
        let root = dir.path().join(format!("root-{name}-{port}"));
        let stderr = dir.path().join(format!("express-{name}-{port}.stderr"));
        let child = express()
            .arg("start-server")
            .args(&args)
            .args(["--port", &port.to_string(), "--server-root", root.to_str().unwrap()])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut child = StopOnDrop(child);
        let log = || {
            format!("{}{}", std::fs::read_to_string(&stderr).unwrap_or_default(), std::fs::read_to_string(root.join("error_log")).unwrap_or_default())
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "{name} did not come up:\n{}", log());
            assert!(child.0.try_wait().unwrap().is_none(), "{name}: mod_wsgi-express exited:\n{}", log());
            std::thread::sleep(Duration::from_millis(50));
        }
        let method = if body.is_empty() { "GET" } else { "POST" };
        let r = http(port, method, path, &[], body);
        // Not while a worker still closes the connection: httpd's event MPM can crash a child
        // stopped then (its own race; see Apache::wait_for_closing_connections).
        wait_for_closing_connections_of(child.0.id() as i32, Duration::from_secs(3));
        drop(child);
        assert_eq!(r.status, 200, "{name} {path}: {}\n{}", r.text(), log());
        assert!(r.text().contains(&want), "{name} {path}: {:?} lacks {want:?}\n{}", r.text(), log());
        assert!(crash_lines(&log()).is_empty(), "{name}:\n{}", log());
    }
}

/// Sends SIGTERM to a spawned `mod_wsgi-express` (which execs Apache in place, so the PID is
/// Apache's parent) and waits for it, however the test ends.
pub struct StopOnDrop(pub std::process::Child);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the PID of a child this test spawned and has not reaped yet.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// Starts the server `setup-server` wrote into `root` with its `apachectl start`, runs `f`
/// against it, then `apachectl stop`s it and waits until Apache's parent (by the PID in the
/// pidfile) is gone; `SIGKILL`s it and fails if it does not go.
pub fn with_apachectl<R>(root: &Path, port: u16, f: impl FnOnce() -> R) -> R {
    let apachectl = root.join("apachectl");
    let log = || std::fs::read_to_string(root.join("error_log")).unwrap_or_default();
    let ctl = |command: &str| Command::new(&apachectl).arg(command).output().unwrap();
    let checked = ctl("configtest");
    assert!(checked.status.success(), "configtest: {}", String::from_utf8_lossy(&checked.stderr));
    let started = ctl("start");
    assert!(started.status.success(), "apachectl start: {}\n{}", String::from_utf8_lossy(&started.stderr), log());
    let pid_file = root.join("httpd.pid");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() || !pid_file.is_file() {
        assert!(Instant::now() < deadline, "apachectl start did not bring the server up:\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    let result = f();
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
    assert!(stopped.status.success(), "apachectl stop: {}", String::from_utf8_lossy(&stopped.stderr));
    result
}
