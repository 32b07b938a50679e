//! Thread states over a child's life: a thread that ends takes its cached states with it, and
//! the child's exit leaves the thread running it able to use the `PyGILState` API.
//!
//! mod_http2 runs requests on its own worker threads and retires the idle ones above
//! `H2MinWorkers` after `H2MaxWorkerIdleSeconds`, so a busy h2 site starts and ends threads
//! all day. Each thread that served a group had a state in it; without the thread-exit
//! cleanup they stayed until the child exited, one per retired thread and group.

mod common;
use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const APP: &str = r#"
import atexit, json, sys, threading, time
import mod_wsgi

def _at_exit():
    # An extension's atexit hook taking the GIL the PyGILState way, as many do. During the
    # child's exit this thread already holds it: Ensure must see that (its binding intact).
    if mod_wsgi.application_group == '':
        import ctypes
        ctypes.pythonapi.PyGILState_Ensure.restype = ctypes.c_int
        state = ctypes.pythonapi.PyGILState_Ensure()
        ctypes.pythonapi.PyGILState_Release(state)
        sys.stderr.write('atexit: PyGILState_Ensure returned %d\n' % state)
        sys.stderr.flush()

atexit.register(_at_exit)

def native_id():
    # The kernel's thread id: pthread ids (threading's ident) are reused by new threads.
    try:
        return threading.get_native_id()
    except AttributeError:
        import ctypes
        return ctypes.CDLL(None).syscall(186)  # SYS_gettid on x86_64

def application(environ, start_response):
    path = environ['PATH_INFO']
    if path in ('/slow', '/spawn'):
        if path == '/spawn':
            # A thread of the application's own, outliving the request (and maybe the
            # Apache thread that started it): it does not keep the interpreter's list of
            # thread states non-empty for long.
            threading.Thread(target=time.sleep, args=(1.5,)).start()
        time.sleep(0.3)
        sys.stderr.write('served on thread %d\n' % native_id())
        body = b'ok'
    else:
        states = mod_wsgi.process_metrics()['thread_states']
        body = json.dumps(states.get(environ['mod_wsgi.application_group'], -1)).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;

const MAX_H2_WORKERS: usize = 4;

/// The Pythons to run on: Debian's (the default engine), and the pyenv copies whose
/// thread-state rules differ (2.7: no PyConfig; 3.12+: deleting a bound state unbinds the
/// caller), where installed (`scripts/pythons`).
fn pythons() -> Vec<(String, Option<PathBuf>)> {
    let mut list = vec![("default".to_string(), None)];
    let engines = module_path().parent().unwrap().to_path_buf();
    for v in ["2.7", "3.12", "3.13"] {
        let home = PathBuf::from(format!("/opt/mod_wsgi-rs/python/{v}"));
        if home.is_dir() && engines.join(format!("mod_wsgi-engine-py{v}.so")).is_file() {
            list.push((v.to_string(), Some(home)));
        }
    }
    list
}

fn start(home: &Option<PathBuf>) -> Apache {
    let dir = TempDir::new("thread-states");
    dir.write("app.wsgi", APP);
    let python_home = home.as_ref().map(|h| format!("WSGIPythonHome {}\n", h.display())).unwrap_or_default();
    let body = format!(
        "LoadModule http2_module /usr/lib/apache2/modules/mod_http2.so\nProtocols h2c http/1.1\n\
         H2MinWorkers 1\nH2MaxWorkers {MAX_H2_WORKERS}\nH2MaxWorkerIdleSeconds 1\n{python_home}\
         WSGIScriptAlias /global {{dir}}/app.wsgi application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /site {{dir}}/app.wsgi application-group=site\n"
    );
    Apache::start_in(dir, Mpm::Event, &body)
}

/// `n` h2 requests for `path`, all at once on one connection (so on several h2 workers).
fn h2_burst(port: u16, path: &str, n: usize) {
    let url = format!("http://127.0.0.1:{port}{path}");
    let out = Command::new("curl")
        .args(["-s", "-w", "%{http_code}\n", "--http2-prior-knowledge", "--max-time", "30"])
        .args(["--parallel", "--parallel-immediate", "--parallel-max", "16"])
        .args((0..n).flat_map(|_| ["-o", "/dev/null", url.as_str()]))
        .output()
        .expect("curl");
    let codes = String::from_utf8_lossy(&out.stdout);
    assert_eq!(codes.lines().filter(|c| *c == "200").count(), n, "curl: {codes}");
}

fn states(apache: &Apache, path: &str) -> usize {
    let response = apache.get(path);
    assert_eq!(response.status, 200, "{}", apache.error_log());
    response.text().trim().parse().unwrap_or_else(|_| panic!("{path}: {}", response.text()))
}

#[test]
fn threads_that_end_take_their_thread_states_with_them() {
    for (python, home) in pythons() {
        let mut apache = start(&home);
        for _round in 0..5 {
            for path in ["/global/slow", "/site/slow", "/site/spawn"] {
                h2_burst(apache.port, path, 2 * MAX_H2_WORKERS);
            }
            // Past H2MaxWorkerIdleSeconds: the workers above H2MinWorkers end.
            std::thread::sleep(Duration::from_millis(2500));
        }
        // The h2 workers really were retired and replaced: more threads served than could
        // ever be alive at once.
        let log = apache.error_log();
        let threads: std::collections::HashSet<&str> = log.lines().filter_map(|l| l.split("served on thread ").nth(1)).collect();
        assert!(threads.len() > MAX_H2_WORKERS + 1, "Python {python}: only {} threads served: mod_http2 retired none\n{log}", threads.len());
        // Five rounds had up to MAX_H2_WORKERS h2 threads each; the MPM's 8 worker threads
        // (these requests run on them) and the child's main thread have states too.
        let bound = MAX_H2_WORKERS + 8 + 1;
        for path in ["/global/states", "/site/states"] {
            let n = states(&apache, path);
            assert!(
                n <= bound,
                "Python {python}: {path}: {n} thread states after five rounds of h2 workers (at most {bound} expected)\n{}",
                apache.error_log()
            );
        }
        // The child's exit: its atexit hook's PyGILState_Ensure finds the GIL held.
        apache.stop_gracefully();
        let log = apache.error_log();
        assert!(
            log.contains("atexit: PyGILState_Ensure returned 0"),
            "Python {python}: the atexit hook did not run, or found the GIL not held (not PyGILState_LOCKED)\n{log}"
        );
        assert!(crash_lines(&log).is_empty(), "Python {python}: {:?}\n{log}", crash_lines(&log));
    }
}
