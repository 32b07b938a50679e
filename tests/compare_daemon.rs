//! Daemon mode side by side with Debian's mod_wsgi 4.9 (`libapache2-mod-wsgi-py3`): the same
//! application served through `WSGIDaemonProcess cmp processes=1 threads=4` and
//! `WSGIProcessGroup cmp` by both modules, Apache started as root (the daemons run as Apache's
//! `User`), the same requests, and the answers compared. Where we differ, the README's "Daemon
//! mode" section says so, and the test checks what each module does, so that the list stays
//! true. (`tests/compare.rs` does the same for embedded mode.)

mod common;
use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

const APP: &str = r#"
import json, os, time

def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    if path.startswith('/environ') or path.startswith('/auth'):
        keys = ['REQUEST_METHOD', 'SCRIPT_NAME', 'PATH_INFO', 'QUERY_STRING', 'CONTENT_LENGTH', 'REMOTE_USER',
                'AUTH_TYPE', 'wsgi.multithread', 'wsgi.multiprocess', 'wsgi.run_once', 'wsgi.url_scheme',
                'wsgi.input_terminated', 'mod_wsgi.process_group', 'mod_wsgi.application_group',
                'mod_wsgi.callable_object', 'mod_wsgi.script_name', 'mod_wsgi.path_info']
        body = json.dumps({k: environ.get(k) for k in keys}, sort_keys=True).encode()
    elif path == '/echo':
        body = environ['wsgi.input'].read()
    elif path == '/pid':
        body = str(os.getpid()).encode()
    elif path == '/nostart':
        return [b'x']
    elif path == '/raise':
        raise RuntimeError('boom')
    elif path == '/big-header':
        # One header line over both modules' header buffer (32768 bytes by default).
        start_response('200 OK', [('Content-Type', 'text/plain'), ('X-Big', 'b' * 40000)])
        return [b'big']
    elif path == '/slow':
        # Tells the test that it runs (and where), then waits to be killed.
        with open(os.path.join(os.path.dirname(__file__), 'slow-running'), 'w') as f:
            f.write(str(os.getpid()))
        time.sleep(30)
        body = b'slow done'
    elif path == '/stuck':
        # Short sleeps, so that an interrupt raised in this thread gets through.
        end = time.time() + 60
        while time.time() < end:
            time.sleep(0.05)
        body = b'finished'
    else:
        body = b'hello'
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;

/// `user:pw`, in the `{SHA}` form that mod_authn_file accepts.
const HTPASSWD: &str = "user:{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=\n";

/// A server loading `module`, whose `/app` runs in daemon group `cmp` (with `options` added).
fn server(module: &Path, options: &str) -> Apache {
    let dir = TempDir::new("compare-daemon");
    dir.write("app.wsgi", APP);
    dir.write("htpasswd", HTPASSWD);
    dir.write("run/.keep", "");
    let m = APACHE_MODULES;
    Apache::start_with_module(
        dir,
        Mpm::Event,
        module,
        &format!(
            "LoadModule auth_basic_module {m}/mod_auth_basic.so\nLoadModule authn_core_module {m}/mod_authn_core.so\n\
             LoadModule authn_file_module {m}/mod_authn_file.so\nLoadModule authz_user_module {m}/mod_authz_user.so\n\
             WSGIChunkedRequest On\nWSGISocketPrefix {{dir}}/run/wsgi\n\
             WSGIDaemonProcess cmp processes=1 threads=4 {options}\nWSGIProcessGroup cmp\n\
             WSGIScriptAlias /app {{dir}}/app.wsgi\n\
             <Location /app/auth>\n  AuthType Basic\n  AuthName cmp\n  AuthUserFile {{dir}}/htpasswd\n  Require valid-user\n</Location>\n"
        ),
    )
}

/// Both servers, ours first, after checking that Debian's module is installed.
fn servers(options: &str) -> (Apache, Apache) {
    let theirs = debian_mod_wsgi();
    (server(&module_path(), options), server(theirs, options))
}

/// What a response looks like with the server's own port and directory taken out.
fn summary(apache: &Apache, r: &Response) -> String {
    common::summary(apache, r, &["content-type", "www-authenticate", "x-big"], |status| status >= 500 || status == 401)
}

/// The PID of the daemon that answers `/app/pid`.
fn daemon_pid(apache: &Apache) -> i32 {
    let r = apache.get("/app/pid");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), apache.error_log());
    r.text().parse().unwrap()
}

#[test]
fn same_answers_as_debian_mod_wsgi_in_daemon_mode() {
    if !is_root() {
        return eprintln!("skipped: needs root to start daemons");
    }
    let (ours, theirs) = servers("");
    let chunked = [("Transfer-Encoding", "chunked")];
    let auth = [("Authorization", "Basic dXNlcjpwdw==")];
    let wrong = [("Authorization", "Basic dXNlcjp4")];
    let cases: Vec<Case> = vec![
        ("GET", "/app", &[], b""),
        ("HEAD", "/app", &[], b""),
        ("POST", "/app/echo", &[], b"some body bytes"),
        ("POST", "/app/echo", &chunked, b"5\r\nsome \r\n10\r\nchunked body 16b\r\n0\r\n\r\n"),
        ("POST", "/app/environ", &chunked, b"3\r\nabc\r\n0\r\n\r\n"),
        ("GET", "/app/environ/x/y?a=1&b=2", &[], b""),
        ("GET", "/app/auth/z", &auth, b""),
        ("GET", "/app/auth/z", &wrong, b""),
        ("GET", "/app/auth/z", &[], b""),
        ("GET", "/app/raise", &[], b""),
        ("GET", "/app/nostart", &[], b""),
        ("GET", "/app/big-header", &[], b""),
    ];
    let differences = common::differences(&ours, &theirs, &cases, summary);
    assert!(differences.is_empty(), "differences from Debian's mod_wsgi in daemon mode:\n{}", differences.join("\n"));
    // What the environ says, spelled out (the comparison above only says "the same").
    let environ = Json::parse(&ours.request("GET", "/app/auth/z/w", &auth, b"").text());
    let environ = |key: &str| environ.get(key);
    assert_eq!(environ("mod_wsgi.process_group"), "cmp");
    assert_eq!((environ("wsgi.multithread"), environ("wsgi.multiprocess")), ("true".to_string(), "true".to_string()));
    assert_eq!((environ("SCRIPT_NAME"), environ("PATH_INFO")), ("/app".to_string(), "/auth/z/w".to_string()));
    assert_eq!(environ("REMOTE_USER"), "user");
    // Both log the application's exception, and neither's message is the other's for a
    // header line too long for the buffer: ours names the size needed and the option to raise
    // (README, Daemon mode, "Failures"); mod_wsgi's says only "Truncated or oversized".
    for apache in [&ours, &theirs] {
        let log = apache.wait_for_log("RuntimeError: boom");
        assert!(log.contains("RuntimeError: boom"), "{log}");
    }
    let log = ours.wait_for_log("over its header-buffer-size of 32768 bytes");
    assert!(log.contains("over its header-buffer-size of 32768 bytes") && log.contains("Raise header-buffer-size="), "{log}");
    let log = theirs.wait_for_log("Truncated or oversized response headers received from daemon process 'cmp'");
    assert!(log.contains("Truncated or oversized response headers received from daemon process 'cmp'"), "{log}");
}

/// Sends `/app/slow`, SIGKILLs the daemon once the request runs there, and returns what the
/// client got, with the PIDs of the daemon before and after.
fn kill_mid_request(apache: &Apache) -> (Result<Response, String>, i32, i32) {
    let before = daemon_pid(apache);
    let marker = apache.dir.path().join("slow-running");
    let _ = std::fs::remove_file(&marker);
    let port = apache.port;
    let client = std::thread::spawn(move || try_http(port, "GET", "/app/slow", &[], b""));
    let deadline = Instant::now() + Duration::from_secs(20);
    let running = loop {
        if let Some(pid) = std::fs::read_to_string(&marker).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
            break pid;
        }
        assert!(Instant::now() < deadline, "/app/slow never ran:\n{}", apache.error_log());
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(running, before, "the request runs in the daemon");
    // SAFETY: signals the daemon process of the Apache this test started (the PID it answered with).
    assert_eq!(unsafe { libc::kill(running, libc::SIGKILL) }, 0);
    let outcome = client.join().unwrap();
    (outcome, before, daemon_pid(apache))
}

#[test]
fn a_daemon_killed_mid_request_fails_that_request_and_serves_the_next_in_both() {
    if !is_root() {
        return eprintln!("skipped: needs root to start daemons");
    }
    let (ours, theirs) = servers("");
    for apache in [&ours, &theirs] {
        let (outcome, before, after) = kill_mid_request(apache);
        let status = outcome.map(|r| r.status);
        assert_eq!(status, Ok(500), "the killed request ({}):\n{}", apache.dir.path().display(), apache.error_log());
        assert_ne!(before, after, "a new daemon serves the next request");
        let needle = "Truncated or oversized response headers received from daemon process 'cmp'";
        assert!(apache.wait_for_log(needle).contains(needle), "{}", apache.error_log());
    }
}

#[test]
fn maximum_requests_recycles_after_two_requests_in_both() {
    if !is_root() {
        return eprintln!("skipped: needs root to start daemons");
    }
    let (ours, theirs) = servers("maximum-requests=2");
    // One request at a time; how many each process served, in order.
    let runs = |apache: &Apache| {
        let pids: Vec<i32> = (0..6).map(|_| daemon_pid(apache)).collect();
        let mut runs: Vec<(i32, usize)> = Vec::new();
        for pid in &pids {
            match runs.last_mut() {
                Some((last, n)) if last == pid => *n += 1,
                _ => {
                    assert!(runs.iter().all(|(p, _)| p != pid), "a PID came back: {pids:?}");
                    runs.push((*pid, 1));
                }
            }
        }
        (pids, runs.into_iter().map(|(_, n)| n).collect::<Vec<usize>>())
    };
    // Ours: exactly two requests per process (it stops accepting before the second one ends).
    let (pids, counts) = runs(&ours);
    assert_eq!(counts, [2, 2, 2], "{pids:?}");
    // mod_wsgi 4.9 recycles after two as well, but its other threads keep accepting during
    // the shutdown that follows (up to its 5 s shutdown-timeout), so a process serves between
    // two and two plus its other three threads' requests (seen: three and four). (Not a
    // difference that the README needs: ours is the stricter.)
    let (pids, counts) = runs(&theirs);
    assert!(counts.len() >= 2 && counts[..counts.len() - 1].iter().all(|n| (2..=5).contains(n)), "{pids:?}");
}

#[test]
fn request_timeout_gives_ours_504_where_mod_wsgi_4_9_gives_500() {
    if !is_root() {
        return eprintln!("skipped: needs root to start daemons");
    }
    let (ours, theirs) = servers("request-timeout=2");
    let stuck = |apache: &Apache| {
        let before = daemon_pid(apache);
        let started = Instant::now();
        let response = apache.get("/app/stuck");
        let took = started.elapsed();
        (response.status, took, before, daemon_pid(apache))
    };
    // A documented difference (README, Daemon mode, "Recycling and timeouts" and "Differences
    // from mod_wsgi"): our limit is per request, and only the stuck request is interrupted; its
    // client gets a 504.
    let (status, took, before, after) = stuck(&ours);
    assert_eq!(status, 504, "{}", ours.error_log());
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert_ne!(before, after, "the process is replaced");
    let needle = "request-timeout of 2 seconds exceeded by a request running for";
    assert!(ours.wait_for_log(needle).contains(needle), "{}", ours.error_log());
    // mod_wsgi 4.9 compares the running time of the requests in flight, averaged over the
    // process's threads (4 here), with the limit: one stuck request trips it only after
    // 4 × 2 s; the process then stops, and after its shutdown-timeout (5 s) exits under the
    // stuck request, whose client gets the 500 of a daemon gone before the headers.
    let (status, took, before, after) = stuck(&theirs);
    assert_eq!(status, 500, "{}", theirs.error_log());
    assert!(took >= Duration::from_secs(7), "the limit is scaled by the thread count: {took:?}");
    assert_ne!(before, after, "the process is replaced");
    let log = theirs.wait_for_log("Truncated or oversized response headers received from daemon process 'cmp'");
    assert!(log.contains("Daemon process request time limit exceeded, stopping process 'cmp'."), "{log}");
    assert!(log.contains("Truncated or oversized response headers received from daemon process 'cmp'"), "{log}");
}
