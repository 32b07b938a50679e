//! `mod_wsgi-express`, the command line and its servers: `module-config` prints the lines for
//! an existing Apache, `start-server` runs a script under Apache in the foreground with a
//! generated config, `setup-server` writes a server root and an `apachectl` for it (with a
//! private `httpd.conf`), a bad command line is a usage error, and the examples start with one
//! command each. Also: `express_daemon.rs` (daemon and embedded modes, signals, reloading,
//! telemetry), `express_options.rs` (options refused, ignored, or all at once) and
//! `express_sites.rs` (what a server serves: document root, application types, HTTPS, access).

mod common;
use common::express::*;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    let script = dir.write(
        "app.wsgi",
        "def application(e, s):\n    s('200 OK', [('Content-Type', 'text/plain')])\n    return [b'express says hi ' + e['PATH_INFO'].encode()]\n",
    );
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
    let (plain, gzipped) = common::examples::with_apachectl(&root, port, || {
        (http(port, "GET", "/", &[], b""), http(port, "GET", "/", &[("Accept-Encoding", "gzip")], b""))
    });
    assert_eq!(plain.status, 200, "{}", log());
    assert_eq!(plain.text(), "STAGE=test INCLUDED=yes ".repeat(50));
    assert_eq!(plain.header("Content-Encoding"), None);
    assert_eq!(gzipped.header("Content-Encoding"), Some("gzip"), "{}", log());
    assert!(gzipped.body.len() < plain.body.len());
    assert!(root.join("startup_log").is_file());
}

/// `httpd.conf`, which may hold `--setenv` secrets, is for its owner alone; the scripts the
/// daemons load (as another user, started as root) stay readable by all.
#[test]
fn httpd_conf_is_private_and_the_scripts_are_readable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("express-modes");
    dir.write("app.wsgi", WHERE_AM_I);
    dir.write("page.py", "def application(e, s):\n    s('200 OK', [])\n    return [b'page']\n");
    let root = dir.path().join("root");
    let out = Command::new(EXPRESS)
        .args(["start-server", "app.wsgi", "--setup-only", "--server-root", "root", "--setenv", "API_KEY", "s3cret"])
        .args(["--document-root", ".", "--add-handler", ".page", "page.py"])
        .current_dir(dir.path())
        .env("MOD_WSGI_MODULE", module_path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mode = |name: &str| std::fs::metadata(root.join(name)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("httpd.conf"), 0o600);
    assert_eq!((mode("handler.wsgi"), mode("resource.wsgi")), (0o644, 0o644));
    assert!(std::fs::read_to_string(root.join("httpd.conf")).unwrap().contains("s3cret"));
}

/// The examples (README: "The two commands"), each started with one mod_wsgi-express command
/// as `scripts/run-example` starts it, on Debian's Python with Debian's Flask and Django
/// (`pip_install.rs` does the same from a venv).
#[test]
fn the_examples_start_with_one_command_each() {
    let dir = TempDir::new("examples");
    common::examples::serve_examples(
        &dir,
        || {
            let mut cmd = Command::new(EXPRESS);
            cmd.env("MOD_WSGI_MODULE", module_path());
            cmd
        },
        Some("3.11"),
    );
}
