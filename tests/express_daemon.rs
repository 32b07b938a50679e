//! `mod_wsgi-express start-server` and its processes: the application runs in a daemon process
//! group by default (`--processes`, `--threads` size it) or in Apache's children with
//! `--embedded-mode`; SIGTERM and Ctrl-C stop Apache and its daemons; `--reload-on-changes`
//! replaces a daemon whose modules changed; the daemon sends telemetry to
//! `--telemetry-service`.

mod common;
use common::express::*;
use common::*;
use std::time::{Duration, Instant};

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
    let sockets: Vec<_> =
        std::fs::read_dir(&express.root).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".sock")).collect();
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
        "app.wsgi",
        "--telemetry-service",
        "unix:telemetry.sock",
        "--telemetry-interval",
        "0.5",
        "--slow-requests",
        "0.5",
        "--telemetry-options",
        "+CaptureUserAgent",
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
