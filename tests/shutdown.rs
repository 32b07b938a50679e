//! The end of a child: stopping Apache right after its last connections closed crashes no
//! child.

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

