//! Daemon mode (`WSGIDaemonProcess`, `WSGIProcessGroup`, `WSGISocketPrefix`) against a real
//! Apache started as root, so that the switch to the daemon's user is real: Apache's
//! children run as `nobody`, the daemons as `www-data`.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The daemons' user: an unprivileged account every Debian system has.
const USER: &str = "www-data";

const APP: &str = r#"
import atexit, hashlib, json, os, time
import mod_wsgi

def _record_exit():
    with open(os.path.join(os.path.dirname(__file__), 'atexit-%d' % os.getpid()), 'w') as f:
        f.write('ran')
atexit.register(_record_exit)

def _rss_kib():
    with open('/proc/self/status') as f:
        return int(next(l for l in f if l.startswith('VmRSS:')).split()[1])

def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/id':
        body = json.dumps({'pid': os.getpid(), 'ppid': os.getppid(), 'uid': os.getuid(),
                           'group': mod_wsgi.process_group, 'environ_group': environ['mod_wsgi.process_group'],
                           'multiprocess': environ['wsgi.multiprocess'], 'multithread': environ['wsgi.multithread'],
                           'home': os.environ.get('HOME')}).encode()
    elif path == '/echo':
        data = environ['wsgi.input'].read()
        body = ('%s %d' % (hashlib.sha256(data).hexdigest(), len(data))).encode()
    elif path == '/stream':
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return (bytes([i % 251]) * 65536 for i in range(160))
    elif path == '/file':
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return environ['wsgi.file_wrapper'](open(os.path.join(os.path.dirname(__file__), 'big.txt'), 'rb'))
    elif path == '/kill':
        os.kill(os.getpid(), 9)
    elif path == '/slow-start':
        # Time for the test to stop (SIGSTOP) the Apache child that waits for this response.
        open(os.path.join(os.path.dirname(__file__), 'slow-start'), 'w').close()
        time.sleep(2)
        body = b'started late'
    elif path == '/flood':
        errors = environ['wsgi.errors']
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        def chunks():
            for i in range(3200):
                errors.write('flood chunk %d\n' % i)
                yield b'x' * 65536
        return chunks()
    elif path == '/chatty':
        # 16 MiB of wsgi.errors lines before the response starts; what the daemon held
        # on to meanwhile shows in its resident memory.
        before = _rss_kib()
        line = 'chatty ' + 'y' * 4089 + '\n'
        for i in range(4096):
            environ['wsgi.errors'].write(line)
        body = json.dumps({'grown_kib': _rss_kib() - before}).encode()
    elif path == '/die-mid-response':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        def die():
            yield b'first chunk\n'
            os.kill(os.getpid(), 9)
            yield b'never sent\n'
        return die()
    elif path.endswith('/not-found'):
        body = b'the application says not found'
        start_response('404 Not Found', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
        return [body]
    elif path == '/log':
        environ['wsgi.errors'].write('daemon says hello\n')
        body = b'logged'
    else:
        body = b'?'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
"#;

/// Lines that mean a process crashed: any of them fails a test.
const CRASH_LINES: [&str; 5] = ["Segmentation fault", "Fatal Python error", "exit signal", "AH00052", "panicked"];

fn assert_no_crash(apache: &Apache) {
    let log = apache.error_log();
    for marker in CRASH_LINES {
        assert!(!log.contains(marker), "crash line '{marker}' in the error log:\n{log}");
    }
}

fn uid_of(user: &str) -> u32 {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The directives of a site served by daemon group `site` (extra `options` appended).
fn site_config(options: &str) -> String {
    format!(
        "WSGIRestrictEmbedded On\nWSGIChunkedRequest On\nWSGISocketPrefix {{dir}}/run/wsgi\n\
         WSGIDaemonProcess site user={USER} display-name=%{{GROUP}} {options}\n\
         WSGIScriptAlias /missing {{dir}}/app.wsgi process-group=nope\n\
         WSGIScriptAlias / {{dir}}/app.wsgi process-group=site application-group=%{{GLOBAL}}\n"
    )
}

fn site_dir(mpm: Mpm) -> TempDir {
    let dir = TempDir::new(&format!("daemon-{}", mpm.name()));
    dir.write("app.wsgi", APP);
    dir.write("run/.keep", "");
    dir
}

fn start_site(mpm: Mpm, options: &str) -> Apache {
    Apache::start_in(site_dir(mpm), mpm, &site_config(options))
}

fn json(apache: &Apache, path: &str) -> Json {
    let response = apache.get(path);
    assert_eq!(response.status, 200, "{path}: {}\n{}", response.text(), apache.error_log());
    Json::parse(&response.text())
}

fn daemon_pid(apache: &Apache) -> i32 {
    json(apache, "/id").get("pid").parse().unwrap()
}

/// Every file under `dir` whose name ends in `.sock`.
fn sockets(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(sockets(&path));
        } else if path.to_string_lossy().ends_with(".sock") {
            found.push(path);
        }
    }
    found
}

fn proc_file(pid: i32, name: &str) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/{name}")).unwrap_or_default()).into_owned()
}

fn process_uid(pid: i32) -> Option<u32> {
    proc_file(pid, "status").lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().next()?.parse().ok())
}

fn is_gone(pid: i32) -> bool {
    // A zombie still has a /proc entry, but its state is Z.
    let stat = proc_file(pid, "stat");
    stat.is_empty() || stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
}

#[test]
fn daemon_runs_as_its_user_in_its_own_process() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    for mpm in [Mpm::Event, Mpm::Prefork] {
        let apache = start_site(mpm, "");
        let id = json(&apache, "/id");
        let pid: i32 = id.get("pid").parse().unwrap();
        assert_eq!(id.get("uid").parse::<u32>().unwrap(), uid_of(USER));
        assert_eq!(id.get("ppid").parse::<i32>().unwrap(), apache.pid(), "forked by Apache's parent");
        assert_eq!((id.get("group").as_str(), id.get("environ_group").as_str()), ("site", "site"));
        assert_eq!((id.get("multiprocess").as_str(), id.get("multithread").as_str()), ("false", "true"));
        assert_eq!(id.get("home"), "/var/www", "the account's HOME");
        assert!(proc_file(pid, "cmdline").starts_with("(wsgi:site)"), "display-name: {:?}", proc_file(pid, "cmdline"));
        // Apache's own children run as nobody, and WSGIRestrictEmbedded keeps Python out of them.
        let workers: Vec<i32> = apache.children().into_iter().filter(|c| *c != pid).collect();
        assert!(!workers.is_empty());
        for worker in workers {
            assert_eq!(process_uid(worker), Some(uid_of("nobody")), "worker {worker}");
            assert!(!proc_file(worker, "maps").contains("libpython"), "worker {worker} maps libpython");
        }
        // One socket, reachable by Apache's children only.
        let found = sockets(&apache.dir.path().join("run"));
        assert_eq!(found.len(), 1, "{found:?}");
        let meta = std::fs::metadata(&found[0]).unwrap();
        assert_eq!((meta.permissions().mode() & 0o777, meta.uid()), (0o700, uid_of("nobody")));
        // An unknown group is a 500 with mod_wsgi's line.
        assert_eq!(apache.get("/missing").status, 500);
        apache.wait_for_log("No WSGI daemon process called 'nope' has been configured");
        assert!(apache.error_log().contains("No WSGI daemon process called 'nope' has been configured"));
        assert_no_crash(&apache);
    }
}

#[test]
fn bodies_stream_both_ways() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_site(Mpm::Event, "threads=4");
    let body: Vec<u8> = (0..10 << 20).map(|i: u32| (i % 253) as u8).collect();
    let response = apache.request("POST", "/echo", &[], &body);
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), format!("{} {}", sha256_hex(&body), body.len()));

    let piece = &body[..1 << 20];
    let mut chunked = Vec::new();
    for chunk in piece.chunks(65536) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let response = apache.request("POST", "/echo", &[("Transfer-Encoding", "chunked")], &chunked);
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), format!("{} {}", sha256_hex(piece), piece.len()));

    let response = apache.get("/stream");
    assert_eq!(response.status, 200);
    let expected: Vec<u8> = (0..160u32).flat_map(|i| std::iter::repeat((i % 251) as u8).take(65536)).collect();
    assert_eq!(response.body.len(), expected.len());
    assert_eq!(sha256_hex(&response.body), sha256_hex(&expected));

    let big: String = (0..5 << 20).map(|i: u32| char::from(b'a' + (i % 26) as u8)).collect();
    apache.dir.write("big.txt", &big);
    let response = apache.get("/file");
    assert_eq!(response.status, 200);
    assert_eq!(sha256_hex(&response.body), sha256_hex(big.as_bytes()), "wsgi.file_wrapper, {} bytes", response.body.len());

    assert_eq!(apache.get("/log").status, 200);
    let log = apache.wait_for_log("daemon says hello");
    let line = log.lines().find(|l| l.contains("daemon says hello")).expect("the wsgi.errors line");
    assert!(line.contains("[client 127.0.0.1:"), "attributed to the request: {line}");
    assert_no_crash(&apache);
}

#[test]
fn a_killed_daemon_fails_its_request_and_is_forked_again() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_site(Mpm::Event, "threads=2");
    let first = daemon_pid(&apache);
    let response = apache.get("/kill");
    assert_eq!(response.status, 500);
    let log = apache.wait_for_log("Truncated or oversized response headers received from daemon process 'site'");
    assert!(log.contains("Truncated or oversized response headers received from daemon process 'site'"), "{log}");
    // The next request waits in the socket's backlog for the new daemon.
    let second = daemon_pid(&apache);
    assert_ne!(first, second);
    assert!(is_gone(first));
    let needle = "has died, deregister and restart it (status 9: killed by SIGKILL";
    assert!(apache.wait_for_log(needle).contains(needle), "the cause is named: {}", apache.error_log());
    assert_no_crash(&apache);
}

#[test]
fn maximum_requests_recycles_without_failing_a_request() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_site(Mpm::Event, "threads=2 maximum-requests=3");
    let pids: Vec<i32> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..3).map(|_| scope.spawn(|| (0..5).map(|_| daemon_pid(&apache)).collect::<Vec<_>>())).collect();
        clients.into_iter().flat_map(|c| c.join().unwrap()).collect()
    });
    assert_eq!(pids.len(), 15);
    let mut distinct = pids.clone();
    distinct.sort();
    distinct.dedup();
    // mod_wsgi's rule: the process recycles once 3 requests have ended; requests its other
    // thread had already taken then still finish: at most 3 + (threads - 1) each.
    assert!(distinct.len() >= 4, "each process serves at most 4 requests: {pids:?}");
    for pid in &distinct {
        assert!(pids.iter().filter(|p| *p == pid).count() <= 4, "{pid} served more than 4: {pids:?}");
    }
    assert_no_crash(&apache);
}

#[test]
fn config_test_makes_no_socket_and_stop_leaves_nothing_behind() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let dir = site_dir(Mpm::Event);
    let mut conf = base_config(dir.path(), free_port(), Mpm::Event, &module_path());
    conf.push_str(&site_config("").replace("{dir}", &dir.path().display().to_string()));
    let path = dir.write("httpd.conf", &conf);
    let out = Command::new(APACHE).args(["-t", "-f", path.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Syntax OK"));
    assert_eq!(sockets(dir.path()), Vec::<PathBuf>::new(), "apache2 -t forks no daemon and makes no socket");

    let mut apache = Apache::start_in(dir, Mpm::Event, &site_config(""));
    let pid = daemon_pid(&apache);
    assert_eq!(sockets(apache.dir.path()).len(), 1);
    apache.stop();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !is_gone(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(is_gone(pid), "daemon {pid} outlived Apache");
    assert_eq!(sockets(apache.dir.path()), Vec::<PathBuf>::new(), "the socket is removed");
    assert!(apache.dir.path().join(format!("atexit-{pid}")).is_file(), "Python was finalised (atexit ran)\n{}", apache.error_log());
    assert_no_crash(&apache);
}

#[test]
fn option_errors_stop_the_config_test_with_file_and_line() {
    let cases = [
        ("WSGIDaemonProcess a\nWSGIDaemonProcess a\n", "Name duplicates previous WSGI daemon definition."),
        ("WSGIDaemonProcess a user=root\n", "WSGI process blocked from running as root."),
        ("WSGIDaemonProcess a chroot=/nonexistent/jail\n", "WSGIDaemonProcess a: chroot directory '/nonexistent/jail' does not exist or is not a directory"),
        ("WSGIDaemonProcess a colour=blue\n", "Invalid option to WSGI daemon process definition. Unknown option 'colour'"),
        ("WSGIDaemonProcess a python-home=/nonexistent/python\n", "is not a directory"),
        ("WSGIDaemonProcess a processes=0\n", "Invalid process count for WSGI daemon process."),
        ("<VirtualHost *:80>\nWSGISocketPrefix /tmp/x\n</VirtualHost>\n", "cannot occur within <VirtualHost> section"),
    ];
    for (body, expected) in cases {
        let (ok, output) = config_test(body);
        assert!(!ok, "{body} was accepted");
        assert!(output.contains(expected), "{body}: {output}");
        assert!(output.contains("Syntax error on line") && output.contains("{dir}/httpd.conf"), "file and line: {output}");
    }
}

#[test]
fn graceful_restart_replaces_daemons_and_sockets() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_site(Mpm::Event, "");
    let before = daemon_pid(&apache);
    let old_sockets = sockets(apache.dir.path());
    assert_eq!(old_sockets.len(), 1);
    // SAFETY: signals only the Apache parent this test started.
    unsafe { libc::kill(apache.pid(), libc::SIGUSR1) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut after = before;
    while after == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        after = apache.request("GET", "/id", &[], b"").text().split("\"pid\": ").nth(1).and_then(|s| s.split(',').next()?.parse().ok()).unwrap_or(before);
    }
    assert_ne!(before, after, "a new daemon serves after the restart\n{}", apache.error_log());
    assert!(is_gone(before));
    let new_sockets = sockets(apache.dir.path());
    assert_eq!(new_sockets.len(), 1, "{new_sockets:?}");
    assert_ne!(new_sockets, old_sockets, "each generation has its own socket");
    assert!(apache.dir.path().join(format!("atexit-{before}")).is_file(), "the old daemon finalised Python");
    assert_no_crash(&apache);
}

#[test]
fn an_idle_daemon_ends_at_once_on_a_restart_whatever_its_timeouts() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    // mod_wsgi 4.9's daemons wait out their shutdown-timeout (here a minute) before exiting,
    // and APR SIGKILLs them 3 s after the restart's SIGTERM, so atexit never runs. An idle
    // daemon of ours has nothing to wait for: it finalises Python and exits at once.
    let apache = start_site(Mpm::Event, "shutdown-timeout=60 graceful-timeout=60 eviction-timeout=60");
    let before = daemon_pid(&apache);
    // SAFETY: signals only the Apache parent this test started (a non-graceful restart).
    unsafe { libc::kill(apache.pid(), libc::SIGHUP) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !is_gone(before) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(is_gone(before), "the old daemon is still there\n{}", apache.error_log());
    assert!(apache.dir.path().join(format!("atexit-{before}")).is_file(), "the old daemon finalised Python before APR's SIGKILL\n{}", apache.error_log());
    let log = apache.error_log();
    assert!(!log.contains("still did not exit"), "APR had to kill a daemon:\n{log}");
    assert_ne!(daemon_pid(&apache), before);
    assert_no_crash(&apache);
}

/// The bound on each request that must not be held up: a liveness limit, not a timing.
const LIVENESS: Duration = Duration::from_secs(10);

/// Opens a connection and sends `head` (a whole request head), leaving the response unread.
fn send_head(apache: &Apache, head: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream
}

/// Reads until the server closes the connection; an error if that takes over [`LIVENESS`].
fn read_to_close(stream: &mut TcpStream) -> Result<Vec<u8>, String> {
    stream.set_read_timeout(Some(LIVENESS)).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| format!("{e} after {} bytes", raw.len()))?;
    Ok(raw)
}

/// GET `path`, answered within [`LIVENESS`] or an error.
fn get_live(apache: &Apache, path: &str) -> Result<Response, String> {
    let mut stream = send_head(apache, &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
    let raw = read_to_close(&mut stream)?;
    if !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        return Err(format!("no response ({} bytes)", raw.len()));
    }
    Ok(parse_response(&raw, false))
}

/// 20 requests for `/id`, 4 at a time, each answered within [`LIVENESS`]: the daemon's other
/// threads are not frozen.
fn assert_daemon_answers(apache: &Apache) {
    let outcomes: Vec<Result<Response, String>> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..4).map(|_| scope.spawn(|| (0..5).map(|_| get_live(apache, "/id")).collect::<Vec<_>>())).collect();
        clients.into_iter().flat_map(|c| c.join().unwrap()).collect()
    });
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|o| match o {
            Ok(r) if r.status == 200 => None,
            Ok(r) => Some(format!("status {}", r.status)),
            Err(e) => Some(e.clone()),
        })
        .collect();
    assert!(failed.is_empty(), "{} of 20 requests failed: {failed:?}\n{}", failed.len(), apache.error_log());
}

/// The Apache child that holds the server side of `client`'s connection (from the socket's
/// inode in /proc/net/tcp).
fn child_serving(apache: &Apache, client: &TcpStream) -> i32 {
    let port_of = |address: &str| address.rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
    let client_port = client.local_addr().unwrap().port();
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let inode = tcp
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 9 && port_of(f[1]) == Some(apache.port) && port_of(f[2]) == Some(client_port))
        .map(|f| f[9].to_string())
        .expect("the server side of the connection");
    let link = format!("socket:[{inode}]");
    apache
        .children()
        .into_iter()
        .find(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .into_iter()
                .flatten()
                .flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target.to_string_lossy() == link))
        })
        .expect("the child serving the connection")
}

/// A process stopped with SIGSTOP until this is dropped (also when the test fails).
struct Stopped(i32);

impl Stopped {
    fn new(pid: i32) -> Stopped {
        // SAFETY: signals an Apache child of the server this test started.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

#[test]
fn error_override_is_decided_in_the_daemon_as_in_the_child() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let config = site_config("") + "ErrorDocument 404 \"custom page from Apache\"\n<Location /override>\nWSGIErrorOverride On\n</Location>\n";
    let apache = Apache::start_in(site_dir(Mpm::Event), Mpm::Event, &config);
    let r = apache.get("/override/not-found");
    assert_eq!((r.status, r.text().as_str()), (404, "custom page from Apache"));
    let r = apache.get("/not-found");
    assert_eq!((r.status, r.text().as_str()), (404, "the application says not found"));
    assert_eq!(daemon_pid(&apache), daemon_pid(&apache), "the daemon serves on after an override");
    assert_no_crash(&apache);
}

#[test]
fn a_stalled_apache_child_does_not_freeze_the_daemon_when_its_response_starts() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    // Two Apache children: one is stopped, the other serves the requests that must get through.
    let config = site_config("threads=4")
        + "ServerLimit 2\nStartServers 2\nMinSpareThreads 16\nMaxSpareThreads 16\nMaxRequestWorkers 16\n";
    let apache = Apache::start_in(site_dir(Mpm::Event), Mpm::Event, &config);
    let mut held = send_head(&apache, "GET /slow-start HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let marker = apache.dir.path().join("slow-start");
    let deadline = Instant::now() + LIVENESS;
    while !marker.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(marker.exists(), "the application never ran\n{}", apache.error_log());
    // The application starts its response while the child that forwards it is stopped.
    let stopped = Stopped::new(child_serving(&apache, &held));
    // Past the application's 2 s: its headers have been produced (a setup wait: were it too
    // short, the test could only miss the freeze, not fail without one).
    std::thread::sleep(Duration::from_secs(3));
    assert_daemon_answers(&apache);
    drop(stopped);
    let response = parse_response(&read_to_close(&mut held).unwrap(), false);
    assert_eq!((response.status, response.text().as_str()), (200, "started late"));
    assert_no_crash(&apache);
}

#[test]
fn a_client_that_never_reads_while_its_application_logs_stalls_only_its_own_request() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_site(Mpm::Event, "threads=4");
    // 200 MiB, a wsgi.errors line per 64 KiB chunk, to a client that never reads: the
    // daemon's thread soon waits on a full socket.
    let stalled = send_head(&apache, "GET /flood HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    apache.wait_for_log("flood chunk 10\n");
    assert_daemon_answers(&apache);
    drop(stalled);
    assert_no_crash(&apache);
}

#[test]
fn log_lines_waiting_for_the_child_use_bounded_memory() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_site(Mpm::Event, "threads=2");
    let chatty = json(&apache, "/chatty");
    let grown: i64 = chatty.get("grown_kib").parse().unwrap();
    // 16 MiB of lines were written before any frame went to the child.
    assert!(grown < 8 << 10, "the daemon grew by {grown} KiB while its application wrote 16 MiB of log lines");
    let log = apache.wait_for_log("chatty");
    assert_eq!(log.matches("chatty y").count(), 4096, "every line reaches the error log");
    assert_no_crash(&apache);
}

#[test]
fn a_daemon_that_dies_mid_response_cuts_the_response_short() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_site(Mpm::Event, "threads=2");
    let first = daemon_pid(&apache);
    // HTTP/1.1 with keep-alive: only an aborted connection ends without the last chunk.
    let mut stream = send_head(&apache, "GET /die-mid-response HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let raw = read_to_close(&mut stream).expect("the connection is closed");
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200") && text.contains("Transfer-Encoding: chunked"), "{text}");
    assert!(text.contains("first chunk\n"), "{text}");
    assert!(!text.contains("0\r\n\r\n"), "a truncated response has no last chunk: {text:?}");
    let needle = "Daemon process 'site' went away mid-response";
    let log = apache.wait_for_log(needle);
    assert!(log.contains(needle), "{log}");
    let second = daemon_pid(&apache);
    assert_ne!(first, second, "a new daemon serves the next request");
    assert_no_crash(&apache);
}

/// Reports the daemon's start-up environment, and answers with headers as large as asked.
const ENV_APP: &str = r#"
import json, locale, os, resource, sys, threading, time

def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/env':
        mask = os.umask(0)
        os.umask(mask)
        body = json.dumps({'umask': mask, 'lang': os.environ.get('LANG'), 'lc_all': os.environ.get('LC_ALL'),
                           'locale': locale.setlocale(locale.LC_ALL), 'gid': os.getgid(),
                           'groups': sorted(os.getgroups()), 'pid': os.getpid(),
                           'switch_interval': '%.4f' % sys.getswitchinterval()}).encode()
        headers = [('Content-Type', 'application/json')]
    elif path == '/choke':
        # No descriptor can be opened until a thread restores the limit: accept fails with
        # EMFILE meanwhile.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (3, hard))
        def restore():
            time.sleep(float(environ['QUERY_STRING']))
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        threading.Thread(target=restore).start()
        body = b'choked'
        headers = [('Content-Type', 'text/plain')]
    else:
        size = int(environ.get('QUERY_STRING') or '0')
        body = b'big headers'
        headers = [('Content-Type', 'text/plain'), ('X-Big', 'b' * size)]
    start_response('200 OK', headers + [('Content-Length', str(len(body)))])
    return [body]
"#;

fn gid_of(group: &str) -> u32 {
    let out = Command::new("getent").args(["group", group]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split(':').nth(2).and_then(|g| g.trim().parse().ok()).unwrap_or_else(|| panic!("no group {group}"))
}

/// Two groups beside each other: `set` with every environment option, `plain` without.
fn start_env_site(set_options: &str, plain_options: &str) -> Apache {
    let dir = TempDir::new("daemon-env");
    dir.write("env.wsgi", ENV_APP);
    dir.write("run/.keep", "");
    let config = format!(
        "WSGIRestrictEmbedded On\nWSGISocketPrefix {{dir}}/run/wsgi\n\
         WSGIDaemonProcess set {set_options}\nWSGIDaemonProcess plain {plain_options}\n\
         WSGIScriptAlias /set {{dir}}/env.wsgi process-group=set application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /plain {{dir}}/env.wsgi process-group=plain application-group=%{{GLOBAL}}\n"
    );
    Apache::start_in(dir, Mpm::Event, &config)
}

#[test]
fn umask_lang_locale_and_supplementary_groups_reach_the_application() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_env_site(
        "user=nobody umask=0027 lang=C.UTF-8 locale=C.UTF-8 supplementary-groups=staff,users switch-interval=0.002",
        "user=nobody locale=xx_XX.no-such-locale",
    );
    let set = json(&apache, "/set/env");
    assert_eq!(set.get("switch_interval"), "0.0020", "switch-interval=0.002");
    assert_eq!(json(&apache, "/plain/env").get("switch_interval"), "0.0050", "Python's own");
    assert_eq!(set.get("umask"), (0o027).to_string(), "umask=0027");
    assert_eq!((set.get("lang").as_str(), set.get("lc_all").as_str()), ("C.UTF-8", "C.UTF-8"), "LANG and LC_ALL");
    assert_eq!(set.get("locale"), "C.UTF-8", "setlocale(LC_ALL) before Python started");
    let nobody_gid = gid_of("nogroup");
    assert_eq!(set.get("gid"), nobody_gid.to_string());
    let mut expected = [nobody_gid, gid_of("staff"), gid_of("users")];
    expected.sort();
    let groups = format!("[{}]", expected.iter().map(u32::to_string).collect::<Vec<_>>().join(", "));
    assert_eq!(set.get("groups"), groups, "the group's gid and the supplementary groups, as mod_wsgi's setgroups");

    // Without the options: Apache's umask, and the user's groups.
    let plain = json(&apache, "/plain/env");
    assert_ne!(plain.get("umask"), (0o027).to_string());
    assert_eq!(plain.get("groups"), format!("[{nobody_gid}]"), "initgroups for nobody");
    assert_eq!(plain.get("lc_all"), "xx_XX.no-such-locale", "LC_ALL is set as given, as mod_wsgi does");
    // A locale the system lacks: mod_wsgi's warning, and the daemon serves anyway.
    let needle = "Unsupported locale setting 'xx_XX.no-such-locale' specified for daemon process group 'plain'";
    assert!(apache.wait_for_log(needle).contains(needle), "{}", apache.error_log());
    assert_no_crash(&apache);
}

#[test]
fn oversized_response_headers_are_a_500_that_names_header_buffer_size() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_env_site("user=nobody header-buffer-size=65536", "user=nobody");
    // 40000 bytes of one header: over the default 32768, under 65536.
    let response = apache.get("/plain/big?40000");
    assert_eq!(response.status, 500, "{}", response.text());
    let needle = "over its header-buffer-size of 32768 bytes";
    let log = apache.wait_for_log(needle);
    let line = log.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("no header-buffer-size line:\n{log}"));
    assert!(line.contains("daemon process 'plain'") && line.contains("Raise header-buffer-size="), "{line}");
    let size: usize = line.split("A response header line of ").nth(1).and_then(|s| s.split(' ').next()?.parse().ok()).expect("the size needed");
    assert!((40000..41000).contains(&size), "{line}");
    assert!(line.contains("[client 127.0.0.1:"), "attributed to the request: {line}");
    // Small headers from the same daemon, and big ones from the group with room for them.
    assert_eq!(apache.get("/plain/big?100").status, 200);
    let response = apache.get("/set/big?40000");
    assert_eq!(response.status, 200, "{}", apache.error_log());
    assert_eq!(response.header("X-Big").map(str::len), Some(40000));
    assert_no_crash(&apache);
}

#[test]
fn a_group_whose_daemons_cannot_start_fails_requests_within_its_timeouts() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    // home= that does not exist: the daemon never accepts. A backlog of 0 queues one
    // connection; the second waits connect-timeout for room, the first socket-timeout for an
    // answer. Apache's Timeout (60 s) and the default connect-timeout (15 s) are both longer
    // than the bound below.
    let apache = start_env_site("user=nobody home=/nonexistent/home listen-backlog=0 connect-timeout=1 socket-timeout=2", "user=nobody");
    let started = Instant::now();
    let statuses: Vec<Result<u16, String>> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..2).map(|_| scope.spawn(|| get_live(&apache, "/set/env").map(|r| r.status))).collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();
    assert_eq!(statuses, vec![Ok(503), Ok(503)], "{}", apache.error_log());
    assert!(elapsed < Duration::from_secs(9), "answered after {elapsed:?}: the timeouts were not applied");
    let needle = "Unable to connect to WSGI daemon process 'set' on '";
    let log = apache.wait_for_log(needle);
    let line = log.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("no connect line:\n{log}"));
    assert!(line.contains("/run/wsgi.") && line.contains("connect-timeout is 1 s"), "{line}");
    assert!(log.contains("Daemon process 'set' did not take the request within 2 s"), "{log}");
    assert!(log.contains("Daemon process 'set' cannot start: Unable to change working directory"), "{log}");
    // The other group is not affected.
    assert_eq!(apache.get("/plain/env").status, 200);
    assert_no_crash(&apache);
}

#[test]
fn maximum_requests_jitter_varies_each_process_limit() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_site(Mpm::Event, "threads=1 maximum-requests=1 maximum-requests-jitter=9");
    let pids: Vec<i32> = (0..40).map(|_| daemon_pid(&apache)).collect();
    // Runs of one pid: each process served its own limit, 1 + 0..=9 (the last run may be cut).
    let mut runs: Vec<usize> = Vec::new();
    for (i, pid) in pids.iter().enumerate() {
        if i > 0 && pids[i - 1] == *pid {
            *runs.last_mut().unwrap() += 1;
        } else {
            runs.push(1);
        }
    }
    let complete = &runs[..runs.len() - 1];
    assert!(complete.len() >= 3, "{pids:?}");
    assert!(complete.iter().all(|n| (1..=10).contains(n)), "each limit within 1..=10: {runs:?}");
    // All at 1 would mean no jitter (odds 1 in 10^n with n processes if the draw were fair).
    assert!(complete.iter().any(|n| *n > 1), "no process served more than maximum-requests: {runs:?}");
    assert_no_crash(&apache);
}

#[test]
fn bad_environment_option_values_stop_the_config_test() {
    let cases = [
        ("WSGIDaemonProcess a header-buffer-size=100\n", "Header buffer size must be >= 8192 bytes, or 0 for default."),
        ("WSGIDaemonProcess a umask=0999\n", "Invalid umask for WSGI daemon process."),
        ("WSGIDaemonProcess a listen-backlog=-1\n", "Invalid listen backlog for WSGI daemon process."),
        ("WSGIDaemonProcess a connect-timeout=soon\n", "Invalid connect timeout for WSGI daemon process."),
        ("WSGIDaemonProcess a socket-timeout=-5\n", "Invalid socket timeout for WSGI daemon process."),
        ("WSGIDaemonProcess a supplementary-groups=no-such-group-here\n", "Invalid supplementary group 'no-such-group-here'"),
        ("WSGIDaemonProcess a maximum-requests-jitter=x\n", "Invalid request count jitter for WSGI daemon process."),
    ];
    for (body, expected) in cases {
        let (ok, output) = config_test(body);
        assert!(!ok, "{body} was accepted");
        assert!(output.contains(expected), "{body}: {output}");
    }
    let (ok, output) = config_test("WSGIDaemonProcess a umask=0027 lang=C.UTF-8 locale=C.UTF-8 listen-backlog=10 header-buffer-size=65536 connect-timeout=3 socket-timeout=4 maximum-requests-jitter=2\n");
    assert!(ok, "the options are accepted: {output}");
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = proc_file(pid, "stat");
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn a_daemon_out_of_descriptors_pauses_its_accept_loop() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_env_site("user=nobody threads=2", "user=nobody");
    let pid: i32 = json(&apache, "/set/env").get("pid").parse().unwrap();
    assert_eq!(apache.get("/set/choke?3").status, 200);
    let before = cpu_ticks(pid);
    // A new connection to each group's socket (Apache's child would send its requests over
    // the connection it kept from the requests above): 'set' cannot accept it for 3 s.
    let raw: Vec<_> = sockets(apache.dir.path()).iter().map(|path| std::os::unix::net::UnixStream::connect(path).unwrap()).collect();
    let log = apache.wait_for_log("Daemon process 'set' accepts connections again.");
    let spent = cpu_ticks(pid) - before;
    drop(raw);
    assert_eq!(json(&apache, "/set/env").get("pid"), pid.to_string(), "the same daemon serves on");
    // A spinning accept loop burns a core for the 3 s (about 300 ticks); the pauses, nothing.
    assert!(spent < 60, "the daemon used {spent} clock ticks while accept failed");
    let needle = "Daemon process 'set' cannot accept connections (Too many open files";
    assert_eq!(log.matches(needle).count(), 1, "logged once for the burst:\n{log}");
    assert!(log.contains("Daemon process 'set' accepts connections again."), "{log}");
    assert_no_crash(&apache);
}

const LIMITS_APP: &str = r#"
import ctypes, json, os, resource, socket, time

def _stack_size():
    # The worker thread's own stack, as pthread reports it (threading.stack_size() only
    # shows what Python would give the threads it starts).
    libc = ctypes.CDLL(None)
    libc.pthread_self.restype = ctypes.c_ulong
    libc.pthread_getattr_np.argtypes = [ctypes.c_ulong, ctypes.c_void_p]
    attr = ctypes.create_string_buffer(256)
    if libc.pthread_getattr_np(libc.pthread_self(), attr) != 0:
        return -1
    size = ctypes.c_size_t()
    libc.pthread_attr_getstacksize(attr, ctypes.byref(size))
    libc.pthread_attr_destroy(attr)
    return size.value

def _listener_buffers():
    for fd in os.listdir('/proc/self/fd'):
        try:
            if not os.readlink('/proc/self/fd/' + fd).startswith('socket:'):
                continue
        except OSError:
            continue
        s = socket.fromfd(int(fd), socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                return [s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF), s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)]
        finally:
            s.close()
    return None

def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/limits':
        body = json.dumps({'pid': os.getpid(), 'cpu': list(resource.getrlimit(resource.RLIMIT_CPU)),
                           'data': list(resource.getrlimit(resource.RLIMIT_DATA)),
                           'as': list(resource.getrlimit(resource.RLIMIT_AS)),
                           'nice': os.getpriority(os.PRIO_PROCESS, 0),
                           'eggs': os.environ.get('PYTHON_EGG_CACHE'), 'stack': _stack_size(),
                           'buffers': _listener_buffers()}).encode()
    elif path == '/big':
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return (b'z' * (1 << 20) for i in range(64))
    elif path == '/burn':
        end = time.process_time() + float(environ.get('QUERY_STRING') or '3')
        while time.process_time() < end:
            pass
        body = json.dumps({'pid': os.getpid()}).encode()
    else:
        body = b'script ran'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
"#;

/// Groups `set` (with `set_options`) and `plain` (with `plain_options`) beside each other,
/// serving LIMITS_APP.
fn start_limits_site(set_options: &str, plain_options: &str) -> Apache {
    let dir = TempDir::new("daemon-limits");
    dir.write("limits.wsgi", LIMITS_APP);
    dir.write("run/.keep", "");
    let config = format!(
        "WSGIRestrictEmbedded On\nWSGISocketPrefix {{dir}}/run/wsgi\n\
         WSGIDaemonProcess set {set_options}\nWSGIDaemonProcess plain {plain_options}\n\
         WSGIScriptAlias /set {{dir}}/limits.wsgi process-group=set application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /plain {{dir}}/limits.wsgi process-group=plain application-group=%{{GLOBAL}}\n"
    );
    Apache::start_in(dir, Mpm::Event, &config)
}

#[test]
fn resource_limits_priority_eggs_stack_and_socket_buffers_reach_the_daemon() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_limits_site(
        "user=nobody threads=3 python-eggs=/tmp/eggs-here stack-size=1048576 cpu-time-limit=600 shutdown-timeout=3 \
         cpu-priority=5 memory-limit=8589934592 virtual-memory-limit=17179869184 send-buffer-size=65536 receive-buffer-size=32768",
        "user=nobody threads=3",
    );
    let set = json(&apache, "/set/limits");
    let plain = json(&apache, "/plain/limits");
    assert_eq!(set.get("cpu"), "[600, 604]", "RLIMIT_CPU: the hard limit is 1 s + shutdown-timeout above, as mod_wsgi");
    assert_eq!(set.get("data"), "[8589934592, 8589934592]", "memory-limit= is RLIMIT_DATA");
    assert_eq!(set.get("as"), "[17179869184, 17179869184]", "virtual-memory-limit= is RLIMIT_AS");
    assert_eq!(set.get("nice"), "5", "cpu-priority=");
    assert_eq!(set.get("eggs"), "/tmp/eggs-here", "python-eggs= is PYTHON_EGG_CACHE");
    // Linux doubles what SO_SNDBUF/SO_RCVBUF are given, for its bookkeeping.
    assert_eq!(set.get("buffers"), "[131072, 65536]", "send-buffer-size= and receive-buffer-size= on the daemon socket");
    let stack: u64 = set.get("stack").parse().unwrap();
    assert!((1 << 20..=(1 << 20) + (64 << 10)).contains(&stack), "stack-size=1048576: the worker's stack is {stack} bytes");

    assert_eq!(plain.get("cpu"), "[-1, -1]", "no limit without the option");
    assert_eq!(plain.get("as"), "[-1, -1]");
    assert_eq!(plain.get("nice"), "0");
    assert_eq!(plain.get("eggs"), "null");
    assert_ne!(plain.get("buffers"), "[131072, 65536]");
    let stack: u64 = plain.get("stack").parse().unwrap();
    assert!(stack >= 8 << 20, "the default worker stack is 8 MiB: {stack}");
    assert_no_crash(&apache);
}

#[test]
fn cpu_time_limit_recycles_the_daemon_gracefully_after_its_request() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_limits_site("user=nobody threads=2 cpu-time-limit=1", "user=nobody");
    let first: i32 = json(&apache, "/set/limits").get("pid").parse().unwrap();
    // The soft limit (SIGXCPU) comes mid-request: the request finishes, then the process goes.
    let burned: i32 = json(&apache, "/set/burn?2").get("pid").parse().unwrap();
    assert_eq!(burned, first);
    let needle = "Exceeded CPU time limit; waiting for in-flight requests to complete in daemon process 'set'.";
    let log = apache.wait_for_log(needle);
    assert!(log.contains(needle), "{log}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut next = first;
    while next == first && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        if let Ok(response) = get_live(&apache, "/set/limits") {
            if response.status == 200 {
                next = Json::parse(&response.text()).get("pid").parse().unwrap();
            }
        }
    }
    assert_ne!(next, first, "a new daemon serves after the limit");
    assert_no_crash(&apache);
}

#[test]
fn socket_user_owns_the_daemon_socket_instead_of_apaches_user() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_limits_site(&format!("user=nobody socket-user={USER}"), "user=nobody");
    let run = apache.dir.path().join("run");
    let owner_of = |id: usize| {
        let entry = std::fs::read_dir(&run)
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().ends_with(&format!(".{id}.sock")))
            .unwrap_or_else(|| panic!("no socket {id} in {}", run.display()));
        entry.metadata().unwrap().uid()
    };
    assert_eq!(owner_of(1), uid_of(USER), "socket-user= of the first group");
    assert_eq!(owner_of(2), uid_of("nobody"), "Apache's User owns the other group's socket");
    // As in mod_wsgi, an Apache child running as another user (here: not an ITK child) cannot
    // connect to it.
    let response = apache.get("/set/limits");
    assert_eq!(response.status, 503, "{}", response.text());
    assert!(apache.wait_for_log("Permission denied").contains("Unable to connect to WSGI daemon process 'set'"), "{}", apache.error_log());
    assert_eq!(apache.get("/plain/limits").status, 200);
    assert_no_crash(&apache);
}

#[test]
fn script_user_refuses_scripts_owned_by_others_with_mod_wsgi_s_line() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let dir = TempDir::new("daemon-script-user");
    dir.write("run/.keep", "");
    let theirs = dir.write("theirs/app.wsgi", LIMITS_APP);
    let mine = dir.write("mine/app.wsgi", LIMITS_APP);
    let (uid, gid) = (uid_of(USER), gid_of("nogroup"));
    std::os::unix::fs::chown(&mine, Some(uid), Some(gid)).unwrap();
    std::os::unix::fs::chown(mine.parent().unwrap(), Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(mine.parent().unwrap(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let _ = theirs;
    let config = format!(
        "WSGIRestrictEmbedded On\nWSGISocketPrefix {{dir}}/run/wsgi\n\
         WSGIDaemonProcess owned user=nobody script-user={USER}\n\
         WSGIScriptAlias /mine {{dir}}/mine/app.wsgi process-group=owned application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /theirs {{dir}}/theirs/app.wsgi process-group=owned application-group=%{{GLOBAL}}\n"
    );
    let apache = Apache::start_in(dir, Mpm::Event, &config);
    let response = apache.get("/theirs/x");
    assert_eq!(response.status, 403, "{}", response.text());
    let needle = "WSGI script file owner 'root' does not match user required for daemon process.";
    assert!(apache.wait_for_log(needle).contains(needle), "{}", apache.error_log());
    let response = apache.get("/mine/x");
    assert_eq!((response.status, response.text().as_str()), (200, "script ran"), "{}", apache.error_log());
    assert_no_crash(&apache);
}

/// Reads a 64 MiB response only after `pause`: what arrives in all.
fn read_big_after(apache: &Apache, path: &str, pause: Duration) -> usize {
    let mut stream = send_head(apache, &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
    std::thread::sleep(pause);
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut total = 0;
    let mut buffer = vec![0u8; 1 << 16];
    while let Ok(n) = stream.read(&mut buffer) {
        if n == 0 {
            break;
        }
        total += n;
    }
    total
}

#[test]
fn response_socket_timeout_bounds_writes_to_a_client_that_does_not_read() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_limits_site("user=nobody response-socket-timeout=1 response-buffer-size=65536", "user=nobody");
    let full = read_big_after(&apache, "/plain/big", Duration::from_secs(4));
    assert!(full > 64 << 20, "without the option the whole response arrives: {full}");
    let cut = read_big_after(&apache, "/set/big", Duration::from_secs(4));
    assert!(cut < 64 << 20, "the Apache child gave up writing after response-socket-timeout: {cut} bytes arrived");
    // The connection's own timeout is back for what follows.
    assert_eq!(json(&apache, "/set/limits").get("eggs"), "null");
    assert_no_crash(&apache);
}

#[test]
fn bad_limit_and_socket_option_values_stop_the_config_test() {
    let cases = [
        ("WSGIDaemonProcess a stack-size=0\n", "Invalid stack size for WSGI daemon process."),
        ("WSGIDaemonProcess a cpu-time-limit=-1\n", "Invalid CPU time limit for WSGI daemon process."),
        ("WSGIDaemonProcess a cpu-priority=high\n", "Invalid CPU priority for WSGI daemon process."),
        ("WSGIDaemonProcess a memory-limit=lots\n", "Invalid memory limit for WSGI daemon process."),
        ("WSGIDaemonProcess a virtual-memory-limit=-5\n", "Invalid virtual memory limit for WSGI daemon process."),
        ("WSGIDaemonProcess a send-buffer-size=100\n", "Send buffer size must be >= 512 bytes, or 0 for system default."),
        ("WSGIDaemonProcess a receive-buffer-size=x\n", "Invalid receive buffer size for WSGI daemon process."),
        ("WSGIDaemonProcess a response-buffer-size=4096\n", "Response buffer size must be >= 65536 bytes, or 0 for default."),
        ("WSGIDaemonProcess a response-socket-timeout=x\n", "Invalid response socket timeout for WSGI daemon process."),
        ("WSGIDaemonProcess a socket-user=no-such-user-here\n", "Invalid socket user for WSGI daemon process."),
        ("WSGIDaemonProcess a script-user=no-such-user-here\n", "Invalid script user for WSGI daemon process."),
        ("WSGIDaemonProcess a script-user=nobody script-group=nogroup\n", "Only one of script-user and script-group allowed."),
        ("WSGIDaemonProcess a chroot=srv\n", "Invalid chroot directory for WSGI daemon process."),
    ];
    for (body, expected) in cases {
        let (ok, output) = config_test(body);
        assert!(!ok, "{body} was accepted");
        assert!(output.contains(expected), "{body}: {output}");
    }
    let (ok, output) = config_test(
        "WSGIDaemonProcess a python-eggs=/tmp/e stack-size=524288 cpu-time-limit=5 cpu-priority=-2 memory-limit=0 \
         virtual-memory-limit=1000000000 socket-user=nobody send-buffer-size=0 receive-buffer-size=4096 response-buffer-size=0 \
         response-socket-timeout=9 script-group=nogroup newrelic-config-file=/etc/newrelic.ini newrelic-environment=prod\n",
    );
    assert!(ok, "the options are accepted: {output}");
    assert!(output.contains("newrelic-config-file and newrelic-environment ignored"), "one warning for the New Relic options: {output}");
}

/// A daemon application whose value comes from a second module, as Django's settings and
/// views do: only a new process sees that module change.
const RELOAD_APP: &str = "import os, time\nimport helper\nVALUE = helper.VALUE\n\
def application(environ, start_response):\n    read = len(environ['wsgi.input'].read())\n    time.sleep(0.01)\n    body = ('%s|%d|%d' % (VALUE, read, os.getpid())).encode()\n    \
start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])\n    return [body]\n";

/// A site of `reload.wsgi` in daemon group `site` (one process, four threads), with
/// `WSGIScriptReloading` as `reloading` says, and `helper.py` beside it on `python-path`.
fn start_reload_site(reloading: &str) -> Apache {
    let dir = TempDir::new("daemon-reload");
    dir.write("reload.wsgi", RELOAD_APP);
    dir.write("helper.py", "VALUE = 'first'\n");
    dir.write("run/.keep", "");
    Apache::start_in(
        dir,
        Mpm::Event,
        &format!(
            "WSGIRestrictEmbedded On\nWSGISocketPrefix {{dir}}/run/wsgi\nWSGIScriptReloading {reloading}\n\
             WSGIDaemonProcess site user={USER} threads=4 python-path={{dir}}\n\
             WSGIScriptAlias / {{dir}}/reload.wsgi process-group=site application-group=%{{GLOBAL}}\n"
        ),
    )
}

/// `(value, pid)` from the reload application's answer.
fn value_and_pid(response: &Response) -> (String, i32) {
    let (value, _, pid) = reload_answer(response);
    (value, pid)
}

/// `(value, body bytes read, pid)` from the reload application's answer.
fn reload_answer(response: &Response) -> (String, usize, i32) {
    let text = response.text();
    let parts: Vec<&str> = text.split('|').collect();
    let [value, read, pid] = parts[..] else { panic!("not a reload answer: {text:?}") };
    (value.to_string(), read.parse().unwrap(), pid.parse().unwrap())
}

/// What a deployment does: the other module changes (a different length, so that a
/// bytecode cache written in the same second is not taken for current), then the script is
/// touched.
fn deploy_and_touch(apache: &Apache, value: &str, ahead: u64) {
    apache.dir.replace("helper.py", &format!("VALUE = '{value}'\n"));
    let script = std::fs::File::options().write(true).open(apache.dir.path().join("reload.wsgi")).unwrap();
    script.set_modified(std::time::SystemTime::now() + Duration::from_secs(ahead)).unwrap();
}

#[test]
fn touching_the_script_restarts_the_daemon_process_without_failing_a_request() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_reload_site("On");
    let first = apache.get("/");
    assert_eq!(first.status, 200, "{}", apache.error_log());
    let (value, old_pid) = value_and_pid(&first);
    assert_eq!(value, "first");
    // A light load across the touch: 4 clients, 100 requests each (at least 1 s of them),
    // every other one a POST, whose body the retry must still carry whole.
    let body = |n: usize| vec![b'x'; 1000 + n * 37];
    let results = std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            deploy_and_touch(&apache, "second value", 2);
        });
        hammer(apache.port, 4, 100, |n| if n % 2 == 0 { Request::get("/") } else { Request::post("/", body(n)) })
    });
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(_, outcome)| match outcome {
            Ok(r) if r.status == 200 => None,
            Ok(r) => Some(format!("{} {}", r.status, r.text())),
            Err(e) => Some(e.clone()),
        })
        .collect();
    assert!(failed.is_empty(), "{} failed requests, e.g. {:?}\n{}", failed.len(), &failed[..failed.len().min(5)], apache.error_log());
    for (request, outcome) in &results {
        let read = reload_answer(outcome.as_ref().unwrap()).1;
        assert_eq!(read, request.body.len(), "the body of {} {} bytes reached the application whole", request.method, request.body.len());
    }
    let answers: Vec<(String, i32)> = results.iter().filter_map(|(_, r)| r.as_ref().ok()).map(value_and_pid).collect();
    assert!(answers.iter().any(|(v, _)| v == "second value"), "the load never reached the new process");
    // Every answer is the old process with the old value, or a new one with the new value.
    for (value, pid) in &answers {
        assert_eq!(value == "first", *pid == old_pid, "{value} from {pid} (old process {old_pid})");
    }
    let (value, new_pid) = value_and_pid(&apache.get("/"));
    assert_eq!(value, "second value", "the helper module was loaded afresh");
    assert_ne!(new_pid, old_pid, "a new daemon process serves");
    assert!(is_gone(old_pid) || !proc_file(old_pid, "cmdline").contains("wsgi"), "the old process ended");
    let log = apache.wait_for_log("Forcing restart of daemon process 'site' due to modification of script");
    assert!(log.contains("Forcing restart of daemon process 'site' due to modification of script"), "{log}");
    assert!(log.contains("Reconnecting after WSGI daemon process 'site' restart, attempt #1."), "{log}");
    assert!(!log.contains("restart attempts reached"), "{log}");
    // The request that finds the change is sent again whole, body included.
    deploy_and_touch(&apache, "third", 4);
    let posted = vec![b'y'; 300_000];
    let response = apache.request("POST", "/", &[], &posted);
    assert_eq!(response.status, 200, "{}", apache.error_log());
    let (value, read, third_pid) = reload_answer(&response);
    assert_eq!((value.as_str(), read), ("third", posted.len()));
    assert!(third_pid != new_pid && third_pid != old_pid, "a third process");
    let log = apache.error_log();
    assert_eq!(log.matches("Forcing restart of daemon process 'site'").count(), 2, "once per process:\n{log}");
    assert_no_crash(&apache);
}

#[test]
fn with_script_reloading_off_touching_the_script_changes_nothing() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_reload_site("Off");
    let (value, old_pid) = value_and_pid(&apache.get("/"));
    assert_eq!(value, "first");
    deploy_and_touch(&apache, "second value", 2);
    for _ in 0..5 {
        let response = apache.get("/");
        assert_eq!(response.status, 200, "{}", apache.error_log());
        assert_eq!(value_and_pid(&response), ("first".to_string(), old_pid), "the same process, the module as first loaded");
    }
    let log = apache.error_log();
    assert!(!log.contains("Forcing restart"), "{log}");
    assert_no_crash(&apache);
}
