//! Daemon mode (`WSGIDaemonProcess`, `WSGIProcessGroup`, `WSGISocketPrefix`) against a real
//! Apache started as root, so that the switch to the daemon's user is real: Apache's
//! children run as `nobody`, the daemons as `www-data`.

mod common;

use common::daemon::*;
use common::*;
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

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
    elif path.endswith('/not-found-in-blocks'):
        # An error body in several blocks, each flushed: under WSGIErrorOverride each makes
        # the daemon send the (overridden) start again.
        start_response('404 Not Found', [('Content-Type', 'text/plain')])
        return iter([b'the application says ', b'not found ', b'in blocks'])
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

fn daemon_pid(apache: &Apache) -> i32 {
    json(apache, "/id").get("pid").parse().unwrap()
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
        (
            "WSGIDaemonProcess a chroot=/nonexistent/jail\n",
            "WSGIDaemonProcess a: chroot directory '/nonexistent/jail' does not exist or is not a directory",
        ),
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
        after =
            apache.request("GET", "/id", &[], b"").text().split("\"pid\": ").nth(1).and_then(|s| s.split(',').next()?.parse().ok()).unwrap_or(before);
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
    assert!(
        apache.dir.path().join(format!("atexit-{before}")).is_file(),
        "the old daemon finalised Python before APR's SIGKILL\n{}",
        apache.error_log()
    );
    let log = apache.error_log();
    assert!(!log.contains("still did not exit"), "APR had to kill a daemon:\n{log}");
    assert_ne!(daemon_pid(&apache), before);
    assert_no_crash(&apache);
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
    let r = apache.get("/override/not-found-in-blocks");
    assert_eq!((r.status, r.text().as_str()), (404, "custom page from Apache"), "{}", apache.error_log());
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
    let config = site_config("threads=4") + "ServerLimit 2\nStartServers 2\nMinSpareThreads 16\nMaxSpareThreads 16\nMaxRequestWorkers 16\n";
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
