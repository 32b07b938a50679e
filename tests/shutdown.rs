//! The end of a child: stopping Apache right after its last connections closed crashes no
//! child, and threads an application started (daemon threads, in a named group and in
//! `%{GLOBAL}`) neither crash the child nor keep the other groups' `atexit` callbacks from
//! running when it exits.

mod common;
use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const HELLO: &str = r#"
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'hello']
"#;

/// Busy threads in the test process for as long as it lives: they perturb the timing of
/// Apache's threads the way a loaded machine does.
struct CpuLoad {
    stop: &'static AtomicBool,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl CpuLoad {
    fn start(threads: usize) -> CpuLoad {
        let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
        let threads = (0..threads)
            .map(|_| {
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        CpuLoad { stop, threads }
    }
}

impl Drop for CpuLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// httpd's event MPM, when a child stops non-gracefully, closes the sockets of the connections
/// its workers hold (`close_worker_sockets`, in the child's main thread) while a worker may be
/// closing one of them and destroying its pool, socket included: the main thread then reads
/// unmapped memory (`apr_os_sock_get`) and the child dies of SIGSEGV before any module's
/// `child_stopping` hook runs. Without this module loaded too: it is Apache's race. The tests'
/// stop hit it when it came right after a test's last response (the client has closed, the
/// worker is finishing the lingering close). Large requests (a big pool to unmap) and eight
/// connections closing at once widen the window, so that before the harness waited for the
/// child to close its connections, a few rounds were enough to see the crash.
#[test]
fn stopping_as_the_last_connections_close_crashes_no_child() {
    let _load = CpuLoad::start(2);
    let padding: Vec<(String, String)> = (0..90).map(|i| (format!("X-Pad-{i}"), "a".repeat(4000))).collect();
    let headers: Vec<(&str, &str)> = padding.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    for round in 0..30 {
        if Instant::now() > deadline {
            break;
        }
        let dir = TempDir::new("stop-race");
        dir.write("app.wsgi", HELLO);
        let mut apache = Apache::start_in(dir, Mpm::Event, "WSGIScriptAlias /app {dir}/app.wsgi\n");
        let port = apache.port;
        std::thread::scope(|scope| {
            for _ in 0..8 {
                let headers = &headers;
                scope.spawn(move || assert_eq!(http(port, "GET", "/app", headers, b"").text(), "hello"));
            }
        });
        apache.stop();
        let log = apache.error_log();
        assert!(crash_lines(&log).is_empty(), "round {round}: a child crashed as Apache stopped:\n{log}");
    }
}

/// Each group registers an atexit callback that leaves a marker; `/thread` also starts a
/// daemon thread that sleeps 10 ms at a time for ever, so that it asks for the GIL again and
/// again while the child exits.
const THREADS: &str = r#"
import atexit, os, threading, time

def mark(path):
    open(path, 'w').close()

def loop():
    while True:
        time.sleep(0.01)

def application(environ, start_response):
    group = environ['mod_wsgi.application_group'] or 'GLOBAL'
    atexit.register(mark, os.path.join(environ['MARKER_DIR'], 'atexit-' + group))
    if environ.get('PATH_INFO') == '/thread':
        thread = threading.Thread(target=loop)
        thread.daemon = True
        thread.start()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [group.encode()]
"#;

/// Starts Apache with three groups of [`THREADS`]: `/named` (group `named`), `/global`
/// (`%{GLOBAL}`) and `/plain` (group `plain`), and requests `paths` in order.
fn threads_server(mpm: Mpm, paths: &[&str]) -> Apache {
    let dir = TempDir::new("daemon-threads");
    dir.write("app.wsgi", THREADS);
    dir.write("markers/.keep", "");
    let apache = Apache::start_in(
        dir,
        mpm,
        "SetEnv MARKER_DIR {dir}/markers\n\
         WSGIScriptAlias /named {dir}/app.wsgi application-group=named\n\
         WSGIScriptAlias /global {dir}/app.wsgi application-group=%{GLOBAL}\n\
         WSGIScriptAlias /plain {dir}/app.wsgi application-group=plain\n",
    );
    for path in paths {
        assert_eq!(apache.get(path).status, 200, "{mpm:?} {path}");
    }
    apache
}

/// The groups whose atexit callbacks left their marker.
fn atexit_markers(apache: &Apache) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(apache.dir.path().join("markers"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("atexit-").map(str::to_string))
        .collect();
    found.sort();
    found
}

/// A daemon thread in a named group and one in `%{GLOBAL}`: deleting their thread states at
/// exit would crash them when they next take the GIL, and `Py_EndInterpreter` refuses an
/// interpreter with other threads. The named group is left running (its atexit callbacks
/// run), and so Python is not finalised (the main interpreter's atexit callbacks run too);
/// the other group ends normally.
#[test]
fn daemon_threads_in_a_group_and_in_global_crash_nothing_at_exit() {
    for mpm in [Mpm::Event, Mpm::Prefork] {
        for round in 0..3 {
            let mut apache = threads_server(mpm, &["/named/thread", "/global/thread", "/plain"]);
            std::thread::sleep(Duration::from_millis(100));
            apache.stop_gracefully();
            let log = apache.error_log();
            assert!(crash_lines(&log).is_empty(), "{mpm:?} round {round}: a crash at exit:\n{log}");
            assert!(log.contains("Interpreter 'named' is left running: 1 thread(s)"), "{mpm:?} round {round}:\n{log}");
            assert_eq!(atexit_markers(&apache), ["GLOBAL", "named", "plain"], "{mpm:?} round {round}:\n{log}");
        }
    }
}

/// A daemon thread in `%{GLOBAL}` only: every group ends, and `Py_FinalizeEx` stops the
/// thread itself (it exits when it next asks for the GIL).
#[test]
fn a_daemon_thread_in_global_alone_lets_python_finalise() {
    for mpm in [Mpm::Event, Mpm::Prefork] {
        for round in 0..3 {
            let mut apache = threads_server(mpm, &["/global/thread", "/named", "/plain"]);
            std::thread::sleep(Duration::from_millis(100));
            apache.stop_gracefully();
            let log = apache.error_log();
            assert!(crash_lines(&log).is_empty(), "{mpm:?} round {round}: a crash at exit:\n{log}");
            assert!(!log.contains("left running") && !log.contains("not finalised"), "{mpm:?} round {round}:\n{log}");
            assert_eq!(atexit_markers(&apache), ["GLOBAL", "named", "plain"], "{mpm:?} round {round}:\n{log}");
        }
    }
}
