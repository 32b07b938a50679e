//! The connections between Apache's children and a daemon group, against a real Apache
//! started as root: a child keeps its connection open between requests (the daemon parks it
//! rather than close it), a kept connection whose daemon died is replaced without failing a
//! request, and `response-flush-delay=` merges a burst of flushes while a paused
//! application's output still goes out.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const APP: &str = r#"
import json, os, time

def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/burst':
        # Many small blocks at once: each one is a flush for the child.
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return (('line %d\n' % i).encode() for i in range(200))
    if path == '/paused':
        # One block, then nothing until the client has seen it (it creates the file named
        # by the query string): the block must reach it without the rest.
        start_response('200 OK', [('Content-Type', 'text/plain')])
        flag = environ['QUERY_STRING']
        def blocks():
            yield b'before the pause\n'
            deadline = time.time() + 30
            while not os.path.exists(flag) and time.time() < deadline:
                time.sleep(0.01)
            yield b'after the pause\n'
        return blocks()
    if path == '/prompt':
        # write() flushes: the client answers only what it has seen.
        write = start_response('200 OK', [('Content-Type', 'text/plain')])
        write(b'prompt\n')
        data = environ['wsgi.input'].read(5)
        return [b'got ' + data + b'\n']
    if path == '/ticking':
        # A first line, then a byte every 2 ms (closer together than the flush delay) until
        # the client has seen the first line: a deferred flush must not wait for a pause.
        start_response('200 OK', [('Content-Type', 'text/plain')])
        flag = environ['QUERY_STRING']
        def blocks():
            yield b'first line\n'
            deadline = time.time() + 60
            while not os.path.exists(flag) and time.time() < deadline:
                time.sleep(0.002)
                yield b'.'
            yield b'\ndone\n'
        return blocks()
    body = json.dumps({'pid': os.getpid()}).encode()
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]
"#;

fn start(options: &str) -> Apache {
    let dir = TempDir::new("daemon-connections");
    dir.write("app.wsgi", APP);
    dir.write("run/.keep", "");
    let config = format!(
        "WSGIRestrictEmbedded On\nWSGISocketPrefix {{dir}}/run/wsgi\n\
         WSGIDaemonProcess site user=www-data threads=4 {options}\n\
         WSGIDaemonProcess nodelay user=www-data threads=2 response-flush-delay=0\n\
         WSGIDaemonProcess longdelay user=www-data threads=2 response-flush-delay=10000\n\
         WSGIScriptAlias /nodelay {{dir}}/app.wsgi process-group=nodelay application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /longdelay {{dir}}/app.wsgi process-group=longdelay application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias / {{dir}}/app.wsgi process-group=site application-group=%{{GLOBAL}}\n"
    );
    Apache::start_in(dir, Mpm::Event, &config)
}

fn pid_of(apache: &Apache, path: &str) -> i32 {
    let response = apache.get(path);
    assert_eq!(response.status, 200, "{path}: {}\n{}", response.text(), apache.error_log());
    Json::parse(&response.text()).get("pid").parse().unwrap()
}

/// The inodes of the connected Unix sockets `pid` has open (its listening socket excluded):
/// the connections from Apache's children it holds.
fn connections(pid: i32) -> BTreeSet<u64> {
    // /proc/net/unix: "Num RefCount Protocol Flags Type St Inode Path"; St 03 is connected.
    let table = std::fs::read_to_string("/proc/net/unix").unwrap();
    let connected: BTreeSet<u64> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(5) == Some(&"03")).then(|| fields.get(6)?.parse().ok()).flatten()
        })
        .collect();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|fd| {
            let target = std::fs::read_link(fd.path()).ok()?;
            target.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .filter(|inode| connected.contains(inode))
        .collect()
}

fn assert_no_crash(apache: &Apache) {
    let log = apache.error_log();
    let crashes = crash_lines(&log);
    assert!(crashes.is_empty(), "crash lines {crashes:?} in the error log:\n{log}");
}

#[test]
fn a_childs_requests_go_over_one_kept_connection() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start("");
    let pid = pid_of(&apache, "/id");
    let first = connections(pid);
    assert_eq!(first.len(), 1, "the daemon holds the connection its request came on:\n{}", apache.error_log());
    for _ in 0..20 {
        assert_eq!(pid_of(&apache, "/id"), pid);
    }
    assert_eq!(connections(pid), first, "twenty more requests, one after another, on the same connection");
    assert_no_crash(&apache);
}

#[test]
fn a_daemon_keeps_no_more_connections_than_it_has_threads() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start("");
    let pid = pid_of(&apache, "/id");
    // 12 clients at once on a daemon of 4 threads: it parks at most 4 connections, so
    // that load beyond them connects anew and can reach the group's other processes.
    std::thread::scope(|s| {
        for _ in 0..12 {
            s.spawn(|| {
                for _ in 0..10 {
                    assert_eq!(pid_of(&apache, "/id"), pid);
                }
            });
        }
    });
    let kept = connections(pid);
    assert!(!kept.is_empty() && kept.len() <= 4, "{} connections kept by a daemon of 4 threads", kept.len());
    assert_no_crash(&apache);
}

#[test]
fn a_kept_connection_to_a_daemon_that_died_is_replaced_without_failing_a_request() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start("");
    let pid = pid_of(&apache, "/id");
    assert_eq!(connections(pid).len(), 1);
    // SAFETY: kill(2) on the daemon this test's Apache forked.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    // SAFETY: as above; signal 0 only checks that the process exists.
    while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // The child's kept connection is now closed: its next request goes on a new one, to the
    // daemon Apache forks again, and is served (not a 503).
    let response = apache.get("/id");
    assert_eq!(response.status, 200, "{}\n{}", response.text(), apache.error_log());
    let replacement: i32 = Json::parse(&response.text()).get("pid").parse().unwrap();
    assert_ne!(replacement, pid);
    let log = apache.error_log();
    assert!(!log.contains("closed the connection before handling the request"), "{log}");
    apache.allow_crash_lines();
}

/// Status, headers and body of one response read off `stream` (HTTP/1.1, chunked or with a
/// Content-Length).
fn read_response(reader: &mut BufReader<TcpStream>) -> (String, String) {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line);
    }
    let mut body = Vec::new();
    reader.read_to_end(&mut body).unwrap();
    (head, String::from_utf8_lossy(&body).into_owned())
}

fn get(apache: &Apache, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    read_response(&mut BufReader::new(stream))
}

#[test]
fn response_flush_delay_merges_a_burst_and_still_sends_a_paused_applications_output() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start("");
    let expected: String = (0..200).map(|i| format!("line {i}\n")).collect();

    // response-flush-delay=0: every block is flushed as it comes, so the response is chunked.
    let (head, body) = get(&apache, "/nodelay/burst");
    assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
    assert!(body.contains("line 199\n"), "{body}");

    // A delay far longer than the burst: no flush happens before the end, so Apache sees the
    // whole body at once and gives it a Content-Length.
    let (head, body) = get(&apache, "/longdelay/burst");
    assert!(head.contains(&format!("Content-Length: {}", expected.len())), "{head}");
    assert_eq!(body, expected);

    // The default delay (5 ms): a block followed by a pause reaches the client during the
    // pause; the application goes on only once the client has it.
    let flag = apache.dir.path().join("seen");
    let mut stream = TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream.write_all(format!("GET /paused?{} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", flag.display()).as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut seen = String::new();
    while !seen.contains("before the pause") {
        let mut line = String::new();
        let n = reader.read_line(&mut line).unwrap_or_else(|e| panic!("the first block never came ({e}): {seen}\n{}", apache.error_log()));
        assert!(n > 0, "closed before the first block: {seen}");
        seen.push_str(&line);
    }
    assert!(!seen.contains("after the pause"), "{seen}");
    std::fs::write(&flag, "").unwrap();
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert!(String::from_utf8_lossy(&rest).contains("after the pause"), "{}", String::from_utf8_lossy(&rest));
    assert_no_crash(&apache);
}

/// Reads lines from `reader` until one contains `needle`; an error after its read timeout.
fn read_until(reader: &mut BufReader<TcpStream>, needle: &str) -> Result<String, String> {
    let mut seen = String::new();
    while !seen.contains(needle) {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return Err(format!("closed before '{needle}': {seen:?}")),
            Ok(_) => seen.push_str(&String::from_utf8_lossy(&line)),
            Err(e) => return Err(format!("'{needle}' never came ({e}): {seen:?}")),
        }
    }
    Ok(seen)
}

#[test]
fn a_deferred_flush_goes_out_before_the_body_is_read_and_within_the_delay() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start("");
    for prefix in ["/nodelay", ""] {
        // The application flushes a prompt, then reads the body, which this client sends only
        // once it has the prompt: the flush cannot wait for more output that never comes.
        let mut stream = TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream
            .write_all(format!("POST {prefix}/prompt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nConnection: close\r\n\r\n").as_bytes())
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        read_until(&mut reader, "prompt").unwrap_or_else(|e| panic!("{prefix}/prompt: {e}\n{}", apache.error_log()));
        stream.write_all(b"hello").unwrap();
        read_until(&mut reader, "got hello").unwrap_or_else(|e| panic!("{prefix}/prompt: {e}\n{}", apache.error_log()));

        // Output that keeps coming closer together than the delay: the first flush still goes
        // out once the delay has passed (else it would wait for Apache's buffers to fill).
        let flag = apache.dir.path().join(format!("seen{}", prefix.replace('/', "-")));
        let mut stream = TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream
            .write_all(format!("GET {prefix}/ticking?{} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", flag.display()).as_bytes())
            .unwrap();
        let mut reader = BufReader::new(stream);
        read_until(&mut reader, "first line").unwrap_or_else(|e| panic!("{prefix}/ticking: {e}\n{}", apache.error_log()));
        std::fs::write(&flag, "").unwrap();
        read_until(&mut reader, "done").unwrap_or_else(|e| panic!("{prefix}/ticking: {e}\n{}", apache.error_log()));
    }
    assert_no_crash(&apache);
}
