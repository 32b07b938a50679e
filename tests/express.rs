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
    /// `start-server` of the WHO_AM_I script with `extra` options.
    fn start(extra: &[&str]) -> Express {
        let dir = TempDir::new("express-mode");
        let script = dir.write("app.wsgi", WHO_AM_I);
        Express::start_in(dir, &[&[script.to_str().unwrap()][..], extra].concat())
    }

    /// `start-server ARGS --port PORT --server-root DIR/root`, run in `dir` (the daemons'
    /// working directory), its output in `DIR/express.out`.
    fn start_in(dir: TempDir, args: &[&str]) -> Express {
        let port = free_port();
        Express::start_on(dir, port, args)
    }

    fn start_on(dir: TempDir, port: u16, args: &[&str]) -> Express {
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

    fn get(&self, path: &str) -> Response {
        http(self.port, "GET", path, &[], b"")
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

/// An option of the original that this one cannot honour is refused by name, with the reason,
/// before anything is written: never "unknown", never ignored.
#[test]
fn unsupported_options_are_refused_by_name() {
    let dir = TempDir::new("express-refused");
    for (words, reason) in [
        (&["--debug-mode"][..], "no single-process debug mode"),
        (&["--proxy-mount-point", "/api", "http://127.0.0.1:9/"][..], "mod_proxy"),
        (&["--service-script", "worker", "w.py"][..], "threads=0"),
        (&["--free-threading"][..], "free-threaded"),
        (&["--enable-telemetry"][..], "threads=0"),
        (&["--telemetry-ui-port", "8888"][..], "--enable-telemetry"),
    ] {
        let out = Command::new(EXPRESS)
            .arg("start-server")
            .args(words)
            .args(["app.wsgi", "--server-root", dir.path().join("root").to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let expected = format!("option '{}' of mod_wsgi-express is not supported by mod_wsgi-rs yet: ", words[0]);
        assert!(stderr.contains(&expected) && stderr.contains(reason), "{stderr}");
        assert!(!dir.path().join("root").exists(), "nothing is written for a refused option");
    }
    let out = Command::new(EXPRESS).args(["start-server", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--embedded-mode", "--request-timeout SECONDS", "--process-group NAME", "--working-directory DIRECTORY", "--telemetry-service unix:PATH",
        "--telemetry-interval SECONDS", "--slow-requests SECONDS", "--telemetry-options FLAGS",
    ] {
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

/// An option the original ignores without the one it completes is ignored here too, with a
/// warning, not refused; `--rotate-logs` with `--log-to-terminal` needs no rotatelogs.
#[test]
fn options_ignored_by_the_original_are_ignored_with_a_warning() {
    let dir = TempDir::new("express-ignored");
    dir.write("app.wsgi", WHERE_AM_I);
    let out = Command::new(EXPRESS)
        .args(["start-server", "app.wsgi", "--setup-only", "--server-root", "root", "--server-alias", "a.example"])
        .args(["--embedded-mode", "--max-clients", "50", "--rotate-logs", "--log-to-terminal", "--rotatelogs-executable", "/nonexistent"])
        .current_dir(dir.path())
        .env("MOD_WSGI_MODULE", module_path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for warning in [
        "mod_wsgi-express: warning: --server-alias is ignored without --server-name\n",
        "mod_wsgi-express: warning: --max-clients is ignored with --embedded-mode",
        "mod_wsgi-express: warning: --rotate-logs is ignored with --log-to-terminal",
    ] {
        assert!(stderr.contains(warning), "{warning:?} missing from\n{stderr}");
    }
    let conf = std::fs::read_to_string(dir.path().join("root/httpd.conf")).unwrap();
    assert!(!conf.contains("rotatelogs") && !conf.contains("a.example") && conf.contains("WSGIScriptReloading Off"), "{conf}");
}

/// An app that says where Apache mounted it: `SCRIPT_NAME|PATH_INFO|url_scheme|pid`.
const WHERE_AM_I: &str = r#"import os
def application(e, s):
    s('200 OK', [('Content-Type', 'text/plain')])
    return [('%s|%s|%s|%d' % (e['SCRIPT_NAME'], e['PATH_INFO'], e['wsgi.url_scheme'], os.getpid())).encode()]
"#;

/// `--document-root`: its files are served by Apache, and every other URL under the mount
/// point goes to the application, with SCRIPT_NAME and PATH_INFO as if it were mounted there
/// alone (the original's rewrite fallback to its handler).
#[test]
fn document_root_serves_files_next_to_the_application() {
    let dir = TempDir::new("express-docroot");
    dir.write("app.wsgi", WHERE_AM_I);
    dir.write("www/hello.txt", "static hello\n");
    dir.write("www/app/logo.txt", "a file under the mount point\n");
    let express = Express::start_in(dir, &["app.wsgi", "--document-root", "www", "--mount-point", "/app"]);
    let log = express.error_log();
    let r = express.get("/hello.txt");
    assert_eq!((r.status, r.text().as_str()), (200, "static hello\n"), "{log}");
    assert_eq!(r.header("Content-Type"), Some("text/plain"), "served by Apache with its MIME type");
    let r = express.get("/app/logo.txt");
    assert_eq!((r.status, r.text().as_str()), (200, "a file under the mount point\n"), "{}", express.error_log());
    let r = express.get("/app/users/7?x=1");
    assert_eq!(r.status, 200, "{}", express.error_log());
    assert!(r.text().starts_with("/app|/users/7|http|"), "{}\n{}", r.text(), express.error_log());
    // The mount point is a directory of the document root: Apache adds its slash first, as
    // for the original.
    let r = express.get("/app");
    assert_eq!((r.status, r.header("Location")), (301, Some(format!("http://localhost:{}/app/", express.port).as_str())));
    let r = express.get("/app/");
    assert!(r.status == 200 && r.text().starts_with("/app|/|http|"), "{} {}\n{}", r.status, r.text(), express.error_log());
    // Outside the mount point, what is not a file is Apache's 404.
    assert_eq!(express.get("/elsewhere").status, 404, "{}", express.error_log());
}

/// `--application-type module`: a dotted name imported from the working directory, its
/// `--callable-object` served at the mount point.
#[test]
fn application_type_module_imports_a_dotted_name() {
    let dir = TempDir::new("express-module");
    dir.write("shop/__init__.py", "");
    dir.write(
        "shop/wsgi.py",
        "def app(e, s):\n    s('200 OK', [('Content-Type', 'text/plain')])\n    return [('module %s %s|%s' % (__name__, e['SCRIPT_NAME'], e['PATH_INFO'])).encode()]\n",
    );
    let express = Express::start_in(dir, &["--application-type", "module", "--callable-object", "app", "--mount-point", "/shop", "shop.wsgi"]);
    let r = express.get("/shop/cart");
    assert_eq!((r.status, r.text().as_str()), (200, "module shop.wsgi /shop|/cart"), "{}", express.error_log());
    let handler = std::fs::read_to_string(express.root.join("handler.wsgi")).unwrap();
    assert!(handler.contains("ENTRY_POINT = u'shop.wsgi'"), "{handler}");
}

/// `--application-type static`: only the directory's files (its index for `/`), no Python
/// process at all.
#[test]
fn application_type_static_serves_only_files() {
    let dir = TempDir::new("express-static");
    dir.write("site/index.html", "<p>index</p>\n");
    dir.write("site/docs/a.txt", "doc a\n");
    let express = Express::start_in(dir, &["--application-type", "static", "site", "--directory-listing"]);
    let r = express.get("/");
    assert_eq!((r.status, r.text().as_str()), (200, "<p>index</p>\n"), "{}", express.error_log());
    let r = express.get("/docs/a.txt");
    assert_eq!((r.status, r.text().as_str()), (200, "doc a\n"), "{}", express.error_log());
    let r = express.get("/docs/");
    assert!(r.status == 200 && r.text().contains("a.txt"), "a listing: {} {}\n{}", r.status, r.text(), express.error_log());
    assert_eq!(express.get("/nothing").status, 404);
    let children = express.children();
    assert!(!children.iter().any(|(_, c)| c.starts_with("(wsgi:")), "no daemon for a static site: {children:?}");
}

/// `--application-type static` with `--add-handler`: files ending in the extension are run by
/// the handler script (in a daemon process, as the original), never served as source.
#[test]
fn a_static_sites_add_handler_runs_the_script() {
    let dir = TempDir::new("express-static-handler");
    dir.write("site/index.html", "<p>index</p>\n");
    dir.write("site/hello.page", "the page's own text\n");
    let source = "import os\ndef handle_request(e, s):\n    s('200 OK', [('Content-Type', 'text/plain')])\n    return [('handled %s %d' % (os.path.basename(e['SCRIPT_FILENAME']), os.getpid())).encode()]\n";
    dir.write("page.py", source);
    let express = Express::start_in(dir, &["--application-type", "static", "--add-handler", ".page", "page.py", "site"]);
    let r = express.get("/hello.page");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), express.error_log());
    assert!(r.text().starts_with("handled hello.page "), "the script's source or the file was served: {}\n{}", r.text(), express.error_log());
    let pid: i32 = r.text().rsplit(' ').next().unwrap().parse().unwrap();
    let daemon = express.children().into_iter().find(|(p, _)| *p == pid).map(|(_, c)| c).unwrap_or_default();
    assert!(daemon.starts_with("(wsgi:"), "served by {pid} {daemon:?}, not a daemon: {:?}", express.children());
    let r = express.get("/");
    assert_eq!((r.status, r.text().as_str()), (200, "<p>index</p>\n"), "{}", express.error_log());
}

/// `--reload-on-changes`: the daemon's monitor sees that a module the application imported
/// changed, and the process is replaced, so the new text is served.
#[test]
fn reload_on_changes_restarts_the_daemon_when_an_imported_module_changes() {
    let dir = TempDir::new("express-reload");
    dir.write("app.wsgi", "import os, words\ndef application(e, s):\n    s('200 OK', [('Content-Type', 'text/plain')])\n    return [('%s %d' % (words.TEXT, os.getpid())).encode()]\n");
    let words = dir.write("words.py", "TEXT = 'before'\n");
    let express = Express::start_in(dir, &["app.wsgi", "--reload-on-changes"]);
    let first = express.get("/").text();
    assert!(first.starts_with("before "), "{first}\n{}", express.error_log());
    // The monitor notes the module's time on its first pass (within a second of the start).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !express.error_log().contains("watching the loaded modules for changes") {
        assert!(Instant::now() < deadline, "the monitor did not start:\n{}", express.error_log());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::write(&words, "TEXT = 'after'\n").unwrap();
    // A different time for certain, however coarse the file system's clock.
    std::fs::File::options().write(true).open(&words).unwrap().set_modified(std::time::SystemTime::now() + Duration::from_secs(5)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut now = first.clone();
    while !now.starts_with("after ") {
        assert!(Instant::now() < deadline, "still {now:?} after the edit:\n{}", express.error_log());
        std::thread::sleep(Duration::from_millis(200));
        now = try_http(express.port, "GET", "/", &[], b"").map(|r| r.text()).unwrap_or_default();
    }
    assert_ne!(first.split(' ').nth(1), now.split(' ').nth(1), "a new process serves the new text");
    let log = express.error_log();
    assert!(log.contains("Change detected to") && log.contains("words.py"), "{log}");
}

/// `--https-port` with a self-signed certificate: HTTPS is served by the same application,
/// by one daemon process (the virtual host for HTTPS must not start the group again), and
/// `--https-only` redirects HTTP there with the `--hsts-policy` header on HTTPS.
#[test]
fn https_port_serves_the_application_over_tls() {
    let dir = TempDir::new("express-https");
    dir.write("app.wsgi", WHERE_AM_I);
    let made = Command::new("/usr/bin/openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-keyout", "site.key", "-out", "site.crt"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let (port, https) = two_free_ports();
    let https_text = https.to_string();
    let args = ["app.wsgi", "--https-port", &https_text, "--ssl-certificate", "site", "--https-only", "--hsts-policy", "max-age=600"];
    let express = Express::start_on(dir, port, &args);
    let (status, headers, body) = curl(&["-k", "-i", &format!("https://127.0.0.1:{https}/secure/path")]);
    assert_eq!(status, 200, "{headers}{body}\n{}", express.error_log());
    assert!(body.starts_with("|/secure/path|https|"), "{body}\n{}", express.error_log());
    assert!(headers.to_ascii_lowercase().contains("strict-transport-security: max-age=600"), "{headers}");
    let r = express.get("/plain?q=1");
    assert_eq!(r.status, 302, "{}", express.error_log());
    assert_eq!(r.header("Location"), Some(format!("https://localhost:{https}/plain?q=1").as_str()));
    let daemons = express.children().into_iter().filter(|(_, c)| c.starts_with("(wsgi:")).count();
    assert_eq!(daemons, 1, "one daemon process: {:?}\n{}", express.children(), express.error_log());
}

/// `--host-access-script`: the script's `allow_access` refuses a client with 403, for the
/// application and the document root's files alike.
#[test]
fn host_access_script_refuses_clients() {
    let dir = TempDir::new("express-access");
    dir.write("app.wsgi", WHERE_AM_I);
    dir.write("www/file.txt", "a file\n");
    dir.write("access.py", "def allow_access(environ, host):\n    return environ.get('HTTP_X_LET_ME_IN') == 'yes'\n");
    let express = Express::start_in(dir, &["app.wsgi", "--host-access-script", "access.py", "--document-root", "www"]);
    for path in ["/", "/file.txt"] {
        assert_eq!(express.get(path).status, 403, "{path}\n{}", express.error_log());
        let r = http(express.port, "GET", path, &[("X-Let-Me-In", "yes")], b"");
        assert_eq!(r.status, 200, "{path}\n{}", express.error_log());
    }
    assert!(express.error_log().contains("denied"), "{}", express.error_log());
}

/// The document root's `.ht*` files are never served, an authenticated user's request
/// included (the site's authentication must not replace that denial), and Apache names no
/// version, as the original's `ServerTokens ProductOnly` and `ServerSignature Off`.
#[test]
fn ht_files_are_denied_and_apache_names_no_version() {
    let dir = TempDir::new("express-ht");
    dir.write("app.wsgi", WHERE_AM_I);
    dir.write("www/.htpasswd", "u:secret\n");
    dir.write("www/hello.txt", "hello\n");
    dir.write("users.py", "def check_password(environ, user, password):\n    return password == 'secret'\n");
    let express = Express::start_in(dir, &["app.wsgi", "--document-root", "www", "--auth-user-script", "users.py"]);
    let user = [("Authorization", "Basic dTpzZWNyZXQ=")];
    let r = http(express.port, "GET", "/hello.txt", &user, b"");
    assert_eq!((r.status, r.text().as_str()), (200, "hello\n"), "{}", express.error_log());
    assert_eq!(r.header("Server"), Some("Apache"));
    assert_eq!(express.get("/hello.txt").status, 401);
    let r = http(express.port, "GET", "/.htpasswd", &user, b"");
    assert_eq!(r.status, 403, "{}\n{}", r.text(), express.error_log());
    assert!(!r.text().contains("secret") && !r.text().contains("Server at"), "{}", r.text());
    assert_eq!(express.get("/.htpasswd").status, 403, "denied before any authentication");
}

/// `--application-type paste` loads the file with PasteDeploy (here a stand-in on
/// `--python-path`); without PasteDeploy it is refused before Apache starts.
#[test]
fn application_type_paste_needs_paste_deploy() {
    let dir = TempDir::new("express-paste");
    dir.write("site.ini", "[app:main]\nuse = egg:demo\n");
    dir.write("fake/paste/__init__.py", "");
    dir.write(
        "fake/paste/deploy.py",
        "def loadapp(uri):\n    path = uri.split(':', 1)[1]\n    def app(e, s):\n        s('200 OK', [('Content-Type', 'text/plain')])\n        return [('paste ' + path.rsplit('/', 1)[-1]).encode()]\n    return app\n",
    );
    let installed = Command::new("/usr/bin/python3").args(["-c", "import paste.deploy"]).stderr(Stdio::null()).status().unwrap().success();
    if !installed {
        let out = Command::new(EXPRESS)
            .args(["start-server", "--application-type", "paste", "site.ini", "--server-root", "root", "--setup-only"])
            .current_dir(dir.path())
            .env("MOD_WSGI_MODULE", module_path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("--application-type paste needs PasteDeploy"), "{stderr}");
    }
    let express = Express::start_in(dir, &["--application-type", "paste", "--python-path", "fake", "site.ini"]);
    let r = express.get("/");
    assert_eq!((r.status, r.text().as_str()), (200, "paste site.ini"), "{}", express.error_log());
}

/// Looking for PasteDeploy runs nothing of the project's: express may be run as root, and an
/// import from the working directory (or a `sitecustomize` there) would run its code as root.
#[test]
fn looking_for_paste_deploy_imports_nothing_from_the_project() {
    let dir = TempDir::new("express-paste-safe");
    dir.write("site.ini", "[app:main]\nuse = egg:demo\n");
    let marker = dir.path().join("imported");
    let plant = format!("open({:?}, 'a').write(__name__ + '\\n')\n", marker.to_str().unwrap());
    dir.write("paste/__init__.py", &plant);
    dir.write("paste/deploy.py", &plant);
    dir.write("sitecustomize.py", &plant);
    dir.write("lib/usercustomize.py", &plant);
    let out = Command::new(EXPRESS)
        .args(["start-server", "--application-type", "paste", "site.ini", "--server-root", "root", "--setup-only", "--python-path", "lib"])
        .current_dir(dir.path())
        .env("MOD_WSGI_MODULE", module_path())
        .env("PYTHONPATH", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "PasteDeploy in the working directory is found: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!marker.exists(), "express ran the project's code: {}", std::fs::read_to_string(&marker).unwrap_or_default());
}

/// Every honoured option at once makes a configuration Apache accepts (`apachectl
/// configtest`), with the directives they stand for.
#[test]
fn all_options_together_make_a_valid_configuration() {
    let dir = TempDir::new("express-all");
    dir.write("app.wsgi", WHERE_AM_I);
    dir.write("www/index.html", "index\n");
    dir.write("users.py", "def check_password(environ, user, password):\n    return password == 'secret'\ndef groups_for_user(environ, user):\n    return ['staff']\n");
    dir.write("rules.conf", "RewriteRule ^old$ new [R]\n");
    dir.write("page.py", "def application(e, s):\n    s('200 OK', [])\n    return [b'page']\n");
    let made = Command::new("/usr/bin/openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", "s.key", "-out", "s.crt"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(made.status.success());
    let (port, https) = two_free_ports();
    let root = dir.path().join("root");
    #[rustfmt::skip]
    let options = [
        "--port", &port.to_string(), "--server-root", root.to_str().unwrap(), "--https-port", &https.to_string(),
        "--ssl-certificate", "s", "--ssl-ca-certificate-file", "s.crt", "--ssl-verify-client", "/private", "--ssl-environment",
        "--https-only", "--hsts-policy", "max-age=60", "--server-name", "www.example.com", "--server-alias", "alias.example.com",
        "--allow-localhost", "--http2", "--document-root", "www", "--directory-index", "index.html", "--directory-listing",
        "--allow-override", "AuthConfig", "--rewrite-rules", "rules.conf", "--error-document", "404", "/missing.html",
        "--error-override", "--add-handler", ".page", "page.py", "--with-cgi", "--reload-on-changes", "--application-group", "site",
        "--chunked-request", "--enable-sendfile", "--map-head-to-get", "Off", "--trust-proxy", "10.0.0.1", "--trust-proxy-header",
        "X-Forwarded-For", "--passenv", "HOME", "--python-warnings", "ignore", "--python-eggs", "eggs", "--switch-interval", "0.01",
        "--server-metrics", "--server-status", "--keep-alive-timeout", "3", "--limit-request-body", "1000", "--header-timeout", "20",
        "--body-timeout", "20", "--ignore-activity", "/health", "--auth-user-script", "users.py", "--auth-type", "Digest",
        "--auth-group-script", "users.py", "--auth-group", "staff", "--host-access-script", "users.py", "--access-log",
        "--access-log-format", "%h \"%r\" %>s", "--error-log-format", "[%l] %M", "--log-directory", "logs", "--error-log-name",
        "errors", "--access-log-name", "hits", "--startup-log", "--rotate-logs", "--max-log-size", "2", "--pid-file", "run.pid",
        "--server-mpm", "worker", "--initial-workers", "0.5", "--minimum-spare-workers", "0.2", "--maximum-spare-workers", "0.8",
        "--response-flush-delay", "0", "--orphan-interpreter", "--verbose-debugging", "--process-name", "site-server",
        "--mime-types", "/etc/mime.types", "--modules-directory", APACHE_MODULES, "--httpd-executable", APACHE,
        "--telemetry-service", "unix:telemetry.sock", "--telemetry-interval", "2", "--slow-requests", "1",
        "--telemetry-options", "+CaptureUserAgent", "--telemetry-options", "-CaptureUserAgent +SlowRequestStacks", "app.wsgi",
    ];
    let out = Command::new(EXPRESS).arg("setup-server").args(options).current_dir(dir.path()).env("MOD_WSGI_MODULE", module_path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let checked = Command::new(root.join("apachectl")).arg("configtest").output().unwrap();
    assert!(checked.status.success(), "{}\n{}", String::from_utf8_lossy(&checked.stderr), std::fs::read_to_string(root.join("httpd.conf")).unwrap());
    let conf = std::fs::read_to_string(root.join("httpd.conf")).unwrap();
    let telemetry = format!("WSGITelemetryService \"unix:{}/telemetry.sock\" interval=2.0\n", dir.path().display());
    for want in [
        "LoadModule mpm_worker_module", "SSLVerifyClient require", "AuthDigestProvider wsgi", "WSGIServerMetrics On", "rotatelogs",
        &telemetry, "WSGISlowRequests 1.0\n", "WSGITelemetryOptions +CaptureUserAgent\n", "WSGITelemetryOptions -CaptureUserAgent +SlowRequestStacks\n",
    ] {
        assert!(conf.contains(want), "missing {want:?} in\n{conf}");
    }
    let control = std::fs::read_to_string(root.join("apachectl")).unwrap();
    assert!(control.contains("site-server"), "--process-name is Apache's argv[0]:\n{control}");
}

/// Two distinct free ports.
fn two_free_ports() -> (u16, u16) {
    let first = free_port();
    loop {
        let second = free_port();
        if second != first {
            return (first, second);
        }
    }
}

/// `curl -s ARGS`: the status of the last response, its headers, and the body.
fn curl(args: &[&str]) -> (u16, String, String) {
    let out = Command::new("/usr/bin/curl").args(["-s", "--max-time", "30"]).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, format!("{head}\r\n\r\n"), body.to_string())
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

/// The telemetry options are checked as the original checks them, before anything is
/// written: `--slow-requests` needs `--telemetry-service`, which must be `unix:`; a
/// `--telemetry-options` value is checked as `WSGITelemetryOptions` will check it.
#[test]
fn telemetry_options_are_refused_as_the_original_refuses_them() {
    let dir = TempDir::new("express-telemetry-refused");
    for (words, wanted) in [
        (&["--slow-requests", "2"][..], "--slow-requests requires --telemetry-service"),
        (&["--telemetry-service", "udp:127.0.0.1:9000"][..], "--telemetry-service must be 'unix:/path' (remote 'udp:host:port' targets are no longer supported)"),
        (&["--telemetry-service", "unix:/t.sock", "--slow-requests", "-1"][..], "--slow-requests threshold must be non-negative"),
        (&["--telemetry-service", "unix:/t.sock", "--telemetry-interval", "0.25"][..], "WSGITelemetryService interval must be at least 0.5 seconds"),
        (&["--telemetry-service", "unix:/t.sock", "--telemetry-options", "+Bogus"][..], "WSGITelemetryOptions: unknown flag 'Bogus'"),
    ] {
        let out = Command::new(EXPRESS)
            .arg("setup-server")
            .args(words)
            .args(["app.wsgi", "--server-root", dir.path().join("root").to_str().unwrap()])
            .current_dir(dir.path())
            .env("MOD_WSGI_MODULE", module_path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{words:?}: {stderr}");
        assert!(stderr.contains(wanted), "{words:?}: {stderr}");
        assert!(!dir.path().join("root").exists(), "nothing is written for a refused value");
    }
}

/// `start-server --telemetry-service unix:PATH` (a relative path, from the current
/// directory): the daemon process running the application sends mod_wsgi 6.1's datagrams to
/// the socket, every `--telemetry-interval`, counting the requests it served, and with
/// `--slow-requests` and `--telemetry-options +CaptureUserAgent` a slow request's datagram,
/// with its User-Agent.
#[test]
fn start_server_sends_telemetry_to_the_service() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixDatagram;
    let dir = TempDir::new("express-telemetry");
    dir.write(
        "app.wsgi",
        "import os, time\ndef application(e, s):\n    if e['PATH_INFO'] == '/slow':\n        time.sleep(1.5)\n    s('200 OK', [('Content-Type', 'text/plain')])\n    return [str(os.getpid()).encode()]\n",
    );
    let socket = dir.path().join("telemetry.sock");
    let receiver = UnixDatagram::bind(&socket).unwrap();
    // The daemon runs as another user when the test runs as root.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    receiver.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let args = [
        "app.wsgi", "--telemetry-service", "unix:telemetry.sock", "--telemetry-interval", "0.5", "--slow-requests", "0.5",
        "--telemetry-options", "+CaptureUserAgent",
    ];
    let express = Express::start_in(dir, &args);
    let conf = std::fs::read_to_string(express.root.join("httpd.conf")).unwrap();
    let line = format!("WSGITelemetryService \"unix:{}\" interval=0.5\n", socket.display());
    assert!(conf.contains(&line) && conf.contains("WSGISlowRequests 0.5\n"), "{conf}");
    let r = express.get("/");
    assert_eq!(r.status, 200, "{}", express.error_log());
    let daemon: u32 = r.text().parse().unwrap();
    let r = http(express.port, "GET", "/slow", &[("User-Agent", "express-telemetry-test")], b"");
    assert_eq!(r.status, 200, "{}", express.error_log());
    // Every datagram is mod_wsgi's; the daemon's periodic ones count both requests, and one
    // slow-request datagram names /slow and the User-Agent.
    let (mut requests, mut slow) = (0, false);
    let mut buf = [0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(20);
    while requests < 2 || !slow {
        assert!(Instant::now() < deadline, "from daemon {daemon}: {requests} requests counted, slow datagram {slow}\n{}", express.error_log());
        let Ok(n) = receiver.recv(&mut buf) else { continue };
        let datagram = &buf[..n];
        assert!(datagram.starts_with(b"WSGI") && n >= 24, "not a mod_wsgi datagram: {datagram:?}");
        let (kind, pid) = (datagram[5], u32::from_le_bytes(datagram[8..12].try_into().unwrap()));
        if pid != daemon {
            continue;
        }
        let fields = tlv_fields(&datagram[24..]);
        let field = |id: u16| fields.iter().find(|(i, _)| *i == id).map(|(_, v)| v.as_slice());
        match kind {
            // KIND_REQUEST: field 20 is request_count, a u64.
            2 => requests += field(20).map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap())),
            // KIND_SLOW_REQUEST: 214 path_info, 217 user_agent.
            4 => slow |= field(214) == Some(b"/slow") && field(217) == Some(b"express-telemetry-test"),
            _ => {}
        }
    }
    assert_eq!(requests, 2, "{}", express.error_log());
    assert!(express.error_log().contains("Slow request: GET /slow"), "{}", express.error_log());
}

/// The TLV records of a datagram's body (mod_wsgi 6.1's wire format): (id, value bytes), a
/// BYTES value without its length.
fn tlv_fields(mut body: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut fields = Vec::new();
    while body.len() >= 3 {
        let id = u16::from_le_bytes([body[0], body[1]]);
        let kind = body[2];
        body = &body[3..];
        let count = |b: &[u8]| u16::from_le_bytes([b[0], b[1]]) as usize;
        let (skip, len) = match kind {
            1..=3 => (0, 8),
            4 => (2, count(body)),
            5 => (2, count(body) * 4),
            6 => (2, count(body) * 8),
            other => panic!("unknown TLV type {other}"),
        };
        fields.push((id, body[skip..skip + len].to_vec()));
        body = &body[skip + len..];
    }
    fields
}
