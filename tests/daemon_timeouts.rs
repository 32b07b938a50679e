//! Daemon-mode timeouts (`WSGIDaemonProcess request-timeout= inactivity-timeout=
//! restart-interval= graceful-timeout= shutdown-timeout= queue-timeout=`) against a real
//! Apache started as root (the daemons run as `www-data`). The limits are set to a few
//! seconds; pass/fail bounds are generous multiples of them.

mod common;

use common::*;
use std::time::{Duration, Instant};

const USER: &str = "www-data";

const APP: &str = r#"
import ctypes, json, os, time

def stuck_in_recognisable_function(seconds):
    # Short sleeps: an interrupt (SystemExit raised in this thread) gets through.
    end = time.time() + seconds
    while time.time() < end:
        time.sleep(0.05)

def blocked_in_a_c_call(seconds):
    # One long sleep: no interrupt reaches it before it returns.
    time.sleep(seconds)

def holding_the_gil_in_a_c_call(seconds):
    # PyDLL keeps the GIL across the call: no other thread runs Python meanwhile.
    ctypes.PyDLL(None).sleep(seconds)

def spinning_in_python(seconds):
    # Pure Python: the interpreter hands the GIL over every switch interval.
    end = time.time() + seconds
    n = 0
    while time.time() < end:
        n += 1
    return n

def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/id':
        body = json.dumps({'pid': os.getpid()}).encode()
    elif path == '/stuck':
        stuck_in_recognisable_function(60)
        body = b'finished'
    elif path == '/blocked':
        blocked_in_a_c_call(60)
        body = b'finished'
    elif path == '/gil':
        holding_the_gil_in_a_c_call(60)
        body = b'finished'
    elif path == '/spin':
        spinning_in_python(float(environ.get('QUERY_STRING') or '3'))
        body = b'spun'
    elif path == '/slow':
        stuck_in_recognisable_function(float(environ.get('QUERY_STRING') or '3'))
        body = b'slow done'
    else:
        body = b'?'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
"#;

const CRASH_LINES: [&str; 4] = ["Segmentation fault", "Fatal Python error", "AH00052", "panicked"];

fn assert_no_crash(apache: &Apache) {
    let log = apache.error_log();
    for marker in CRASH_LINES {
        assert!(!log.contains(marker), "crash line '{marker}' in the error log:\n{log}");
    }
}

fn start_site(options: &str) -> Apache {
    let dir = TempDir::new("daemon-timeouts");
    dir.write("app.wsgi", APP);
    dir.write("run/.keep", "");
    let config = format!(
        "WSGIRestrictEmbedded On\nWSGISocketPrefix {{dir}}/run/wsgi\n\
         WSGIDaemonProcess site user={USER} {options}\n\
         WSGIScriptAlias / {{dir}}/app.wsgi process-group=site application-group=%{{GLOBAL}}\n"
    );
    Apache::start_in(dir, Mpm::Event, &config)
}

fn daemon_pid(apache: &Apache) -> i32 {
    let response = apache.get("/id");
    assert_eq!(response.status, 200, "/id: {}\n{}", response.text(), apache.error_log());
    Json::parse(&response.text()).get("pid").parse().unwrap()
}

/// Waits (at most `limit`) until the daemon answering `/id` is another than `old`.
fn wait_for_new_daemon(apache: &Apache, old: i32, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        let pid = daemon_pid(apache);
        if pid != old || Instant::now() > deadline {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn request_timeout_logs_the_stack_gives_504_and_recycles() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_site("threads=2 request-timeout=2 shutdown-timeout=2");
    let before = daemon_pid(&apache);
    let started = Instant::now();
    let response = apache.get("/stuck");
    let took = started.elapsed();
    let log = apache.wait_for_log("stuck_in_recognisable_function");
    assert_eq!(response.status, 504, "the stuck request: {}\n{log}", response.text());
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(log.contains("request-timeout of 2 seconds exceeded by a request running for"), "{log}");
    assert!(log.contains("'/stuck' (script '"), "the line names the URL:\n{log}");
    assert!(log.contains("Daemon process request time limit exceeded, stopping daemon process 'site'."), "{log}");
    assert!(log.contains("in stuck_in_recognisable_function"), "the stack names the function:\n{log}");
    let after = wait_for_new_daemon(&apache, before, Duration::from_secs(15));
    assert_ne!(before, after, "a new daemon serves the next request");

    // Stuck where no interrupt reaches (one long C call): the client still gets its 504,
    // from the monitor, when shutdown-timeout ends the process.
    let started = Instant::now();
    let response = apache.get("/blocked");
    let took = started.elapsed();
    let log = apache.wait_for_log("in blocked_in_a_c_call");
    assert_eq!(response.status, 504, "the blocked request: {}\n{log}", response.text());
    assert!(took < Duration::from_secs(30), "bounded by request-timeout + shutdown-timeout: {took:?}");
    assert!(log.contains("in blocked_in_a_c_call"), "{log}");
    assert!(log.contains("Shutdown timeout expired; aborting daemon process 'site'."), "{log}");
    let third = wait_for_new_daemon(&apache, after, Duration::from_secs(15));
    assert_ne!(third, after);
    assert_no_crash(&apache);
}

#[test]
fn interrupt_timeout_delays_the_interrupt() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    // request-timeout=1, then interrupt-timeout=3 before the stuck request is interrupted:
    // it cannot end sooner than 4 s after it began (a lower bound, not a race).
    let apache = start_site("threads=2 request-timeout=1 interrupt-timeout=3");
    let started = Instant::now();
    let response = apache.get("/stuck");
    let took = started.elapsed();
    assert_eq!(response.status, 504, "{}\n{}", response.text(), apache.error_log());
    assert!(took >= Duration::from_secs(4) && took < Duration::from_secs(30), "took {took:?}");
    assert_no_crash(&apache);
}

#[test]
fn inactivity_timeout_restarts_an_idle_daemon() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_site("inactivity-timeout=2");
    let before = daemon_pid(&apache);
    // Requests that keep coming keep it: every one resets the timer.
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(daemon_pid(&apache), before, "busy, so not inactive:\n{}", apache.error_log());
    }
    let log = apache.wait_for_log("Daemon process inactivity timer expired, stopping process 'site'.");
    assert!(log.contains("Daemon process inactivity timer expired, stopping process 'site'."), "{log}");
    let after = wait_for_new_daemon(&apache, before, Duration::from_secs(15));
    assert_ne!(before, after);
    assert_eq!(apache.get("/slow?0.1").text(), "slow done");
    assert_no_crash(&apache);
}

#[test]
fn restart_interval_recycles_under_load_without_failures() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_site("threads=4 restart-interval=2");
    let deadline = Instant::now() + Duration::from_secs(7);
    let mut pids = Vec::new();
    let mut failures = Vec::new();
    while Instant::now() < deadline {
        match try_http(apache.port, "GET", "/id", &[], b"") {
            Ok(r) if r.status == 200 => pids.push(Json::parse(&r.text()).get("pid")),
            Ok(r) => failures.push(format!("{} {}", r.status, r.text())),
            Err(e) => failures.push(e),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = apache.error_log();
    assert!(failures.is_empty(), "failed requests: {failures:?}\n{log}");
    pids.dedup();
    assert!(pids.len() >= 2, "the daemon restarted: {pids:?}\n{log}");
    assert!(log.contains("Application restart timer expired, stopping process 'site' gracefully."), "{log}");
    assert_no_crash(&apache);
}

#[test]
fn graceful_timeout_bounds_a_recycle() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    // restart-interval=3 recycles the process while a slow request runs on; it gets
    // graceful-timeout (2 s, not the default 15) and is then interrupted. (maximum-requests
    // stops accepting at its count and recycles when the last request ended, so it never
    // leaves a request to graceful-timeout.)
    let apache = start_site("threads=3 restart-interval=3 graceful-timeout=2");
    let started = Instant::now();
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| apache.get("/slow?30"));
        std::thread::sleep(Duration::from_millis(500));
        let first = daemon_pid(&apache);
        let response = slow.join().unwrap();
        let took = started.elapsed();
        let log = apache.wait_for_log("Graceful timeout of 2 seconds expired");
        assert_ne!(response.status, 200, "interrupted: {}\n{log}", response.text());
        assert!(took < Duration::from_secs(14), "graceful-timeout=2 bounds it: {took:?}\n{log}");
        assert!(log.contains("Application restart timer expired, stopping process 'site' gracefully."), "{log}");
        assert!(log.contains("Graceful timeout of 2 seconds expired in daemon process 'site'; interrupting 1 request(s)."), "{log}");
        assert_ne!(wait_for_new_daemon(&apache, first, Duration::from_secs(15)), first);
    });
    assert_no_crash(&apache);
}

#[test]
fn shutdown_timeout_bounds_a_stop_that_an_interrupt_cannot_reach() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    // The blocked request ignores the interrupt after graceful-timeout; shutdown-timeout then
    // ends the process.
    let apache = start_site("threads=3 restart-interval=2 graceful-timeout=1 shutdown-timeout=1");
    let started = Instant::now();
    std::thread::scope(|scope| {
        let blocked = scope.spawn(|| try_http(apache.port, "GET", "/blocked", &[], b""));
        std::thread::sleep(Duration::from_millis(500));
        let first = daemon_pid(&apache);
        let response = blocked.join().unwrap();
        let took = started.elapsed();
        let log = apache.wait_for_log("Shutdown timeout expired; aborting daemon process 'site'.");
        assert!(response.as_ref().map_or(true, |r| r.status != 200), "cut off: {response:?}");
        assert!(took < Duration::from_secs(12), "bounded: {took:?}\n{log}");
        assert!(log.contains("Shutdown timeout expired; aborting daemon process 'site'."), "{log}");
        assert_ne!(wait_for_new_daemon(&apache, first, Duration::from_secs(15)), first);
    });
    assert_no_crash(&apache);
}

#[test]
fn queue_timeout_answers_504_without_running_the_request() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_site("threads=1 queue-timeout=1");
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| apache.get("/slow?3"));
        std::thread::sleep(Duration::from_millis(300));
        let queued = apache.get("/id");
        let log = apache.wait_for_log("Queue timeout expired for WSGI daemon process 'site'");
        assert_eq!(queued.status, 504, "{}\n{log}", queued.text());
        assert!(log.contains("Queue timeout expired for WSGI daemon process 'site': '/id'"), "{log}");
        assert_eq!(slow.join().unwrap().text(), "slow done");
    });
    assert_eq!(apache.get("/slow?0.1").text(), "slow done", "a request that did not wait runs");
    assert_no_crash(&apache);
}

#[test]
fn timeouts_are_accepted_by_the_configuration() {
    let options = "request-timeout=5 interrupt-timeout=2 inactivity-timeout=60 restart-interval=3600 \
                   graceful-timeout=10 eviction-timeout=5 shutdown-timeout=3 queue-timeout=30";
    let (ok, out) = config_test(&format!("WSGIDaemonProcess site {options}\n"));
    assert!(ok, "{out}");
    let (ok, out) = config_test("WSGIDaemonProcess site deadlock-timeout=10 startup-timeout=15\n");
    assert!(ok, "{out}");
}

#[test]
fn deadlock_timeout_restarts_a_process_whose_gil_is_stuck() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_site("threads=2 deadlock-timeout=2 shutdown-timeout=1");
    let before = daemon_pid(&apache);
    // Long-running Python that switches normally is no deadlock: the heartbeat gets its turns.
    let spun = apache.get("/spin?5");
    assert_eq!(spun.text(), "spun", "{}", apache.error_log());
    assert_eq!(daemon_pid(&apache), before, "not restarted:\n{}", apache.error_log());
    assert!(!apache.error_log().contains("deadlock timer expired"), "{}", apache.error_log());

    // A C call that keeps the GIL: nothing else can run Python; the process restarts.
    let started = Instant::now();
    let response = try_http(apache.port, "GET", "/gil", &[], b"");
    let took = started.elapsed();
    let log = apache.wait_for_log("in holding_the_gil_in_a_c_call");
    assert!(response.as_ref().map_or(true, |r| r.status != 200), "cut off: {response:?}");
    assert!(took < Duration::from_secs(30), "bounded by deadlock-timeout + shutdown-timeout: {took:?}\n{log}");
    assert!(log.contains("Daemon process deadlock timer expired, stopping daemon process 'site'."), "{log}");
    assert!(log.contains("Daemon process 'site' was serving a request in thread"), "{log}");
    assert!(log.contains("'/gil' (script '"), "the line names the URL:\n{log}");
    assert!(log.contains("in holding_the_gil_in_a_c_call"), "the stacks show who holds the GIL:\n{log}");
    let after = wait_for_new_daemon(&apache, before, Duration::from_secs(15));
    assert_ne!(before, after, "a new daemon serves the next request");
    assert_eq!(apache.get("/slow?0.1").text(), "slow done");
    assert_no_crash(&apache);
}

const FAILING_APP: &str = r#"
import json, os
if os.path.exists(os.path.join(os.path.dirname(__file__), 'database-down')):
    raise RuntimeError('database down in pid %d' % os.getpid())

def application(environ, start_response):
    body = json.dumps({'pid': os.getpid()}).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]
"#;

/// The pids named by the import failures logged so far, in order.
fn failed_pids(log: &str) -> Vec<i32> {
    let mut pids: Vec<i32> =
        log.split("database down in pid ").skip(1).filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()).collect();
    pids.dedup();
    pids
}

#[test]
fn startup_timeout_restarts_a_process_whose_application_fails_to_load() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let dir = TempDir::new("daemon-startup");
    dir.write("app.wsgi", FAILING_APP);
    dir.write("run/.keep", "");
    let flag = dir.write("database-down", "");
    let config = format!(
        "WSGIRestrictEmbedded On\nWSGISocketPrefix {{dir}}/run/wsgi\n\
         WSGIDaemonProcess site user={USER} startup-timeout=2\n\
         WSGIScriptAlias / {{dir}}/app.wsgi process-group=site application-group=%{{GLOBAL}}\n"
    );
    let apache = Apache::start_in(dir, Mpm::Event, &config);
    let started = Instant::now();
    let response = apache.get("/");
    assert_eq!(response.status, 500, "{}", apache.error_log());
    let log = apache.wait_for_log("Application startup timer expired, stopping daemon process 'site'.");
    let took = started.elapsed();
    assert!(log.contains("Application startup timer started for daemon process 'site'."), "{log}");
    assert!(log.contains("Application startup timer expired, stopping daemon process 'site'."), "{log}");
    assert!(took >= Duration::from_secs(2), "not before startup-timeout: {took:?}");
    let first = failed_pids(&log)[0];

    // The replacement fails too while the flag is there (and restarts in turn, later).
    let deadline = Instant::now() + Duration::from_secs(20);
    let second = loop {
        let response = apache.get("/");
        let log = apache.error_log();
        if let Some(&pid) = failed_pids(&log).iter().find(|&&pid| pid != first) {
            assert_eq!(response.status, 500, "{log}");
            break pid;
        }
        assert!(Instant::now() < deadline, "no new daemon process:\n{log}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_ne!(first, second);

    // The database is back: the application loads and the timer is cancelled for good.
    std::fs::remove_file(&flag).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let serving = loop {
        let response = apache.get("/");
        if response.status == 200 {
            break Json::parse(&response.text()).get("pid").parse::<i32>().unwrap();
        }
        assert!(Instant::now() < deadline, "never served:\n{}", apache.error_log());
        std::thread::sleep(Duration::from_millis(200));
    };
    let log = apache.wait_for_log("Application startup timer cancelled for daemon process 'site'.");
    assert!(log.contains("Application startup timer cancelled for daemon process 'site'."), "{log}");
    std::thread::sleep(Duration::from_secs(3));
    let response = apache.get("/");
    assert_eq!(response.status, 200, "{}", apache.error_log());
    assert_eq!(Json::parse(&response.text()).get("pid").parse::<i32>().unwrap(), serving, "a loaded application is not restarted");
    assert_no_crash(&apache);
}

/// An application group with its own GIL (Python 3.13) that holds that GIL for good stops the
/// heartbeat too: every beat takes each own GIL after the main one.
#[test]
fn deadlock_timeout_watches_own_gils() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let Some(home) = python_home("3.13") else { return };
    let dir = TempDir::new("daemon-timeouts-own-gil");
    dir.write("app.wsgi", APP);
    dir.write("run/.keep", "");
    let config = format!(
        "WSGIRestrictEmbedded On\nWSGISocketPrefix {{dir}}/run/wsgi\n\
         WSGIPerInterpreterGIL On\n\
         WSGIDaemonProcess site user={USER} python-home={home} threads=2 deadlock-timeout=2 shutdown-timeout=1\n\
         WSGIScriptAlias / {{dir}}/app.wsgi process-group=site application-group=own\n"
    );
    let apache = Apache::start_in(dir, Mpm::Event, &config);
    let before = daemon_pid(&apache);
    assert!(apache.error_log().contains("Create interpreter 'own' with own GIL."), "{}", apache.error_log());
    let response = try_http(apache.port, "GET", "/gil", &[], b"");
    assert!(response.as_ref().map_or(true, |r| r.status != 200), "cut off: {response:?}");
    let log = apache.wait_for_log("Daemon process deadlock timer expired");
    assert!(log.contains("Daemon process deadlock timer expired, stopping daemon process 'site'."), "{log}");
    let after = wait_for_new_daemon(&apache, before, Duration::from_secs(15));
    assert_ne!(before, after, "a new daemon serves the next request");
    assert_eq!(apache.get("/slow?0.1").text(), "slow done");
    assert_no_crash(&apache);
}
