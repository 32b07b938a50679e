//! `mod_wsgi-express`: `module-config` prints the lines for an existing Apache, and
//! `start-server` runs a script under Apache in the foreground with a generated config.

mod common;
use common::*;
use std::process::{Command, Stdio};
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
