//! Deadlocks and wedged children: Python run while the engine holds a Rust lock (a reload
//! whose old module runs `__del__` and weakref callbacks that release the GIL), a group whose
//! set-up fails (its interpreter must not linger in the thread-state caches), and prefork's
//! SIGTERM and SIGHUP handler (no Python finalisation inside a signal handler).
//!
//! Every request here has a bounded client timeout: a hang fails the test instead of wedging
//! the run.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime};

/// Longest a request may take before the child counts as wedged.
const ANSWER_WITHIN: Duration = Duration::from_secs(20);

/// Log lines that mean a child crashed or had to be killed.
const CRASH_LINES: [&str; 6] = ["Segmentation fault", "Fatal Python error", "exit signal", "AH00052", "panicked", "SIGKILL"];

/// GET `path` with a bounded wait for the answer; `Err` when none came in time.
fn get_within(port: u16, path: &str) -> Result<Response, String> {
    get_within_for(port, path, ANSWER_WITHIN)
}

fn get_within_for(port: u16, path: &str, bound: Duration) -> Result<Response, String> {
    let mut stream = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), bound).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(bound)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(bound)).map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| format!("GET {path}: no answer within {bound:?}: {e}"))?;
    if !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        return Err(format!("GET {path}: connection closed without a response"));
    }
    Ok(parse_response(&raw, false))
}

fn assert_no_crash(apache: &Apache, what: &str) {
    let log = apache.error_log();
    for line in CRASH_LINES {
        assert!(!log.contains(line), "{what}: {line:?} in the error log:\n{log}");
    }
}

/// Version `n` of a script whose module, when it is dropped, runs Python that releases the
/// GIL: a weakref callback on the module and the `__del__` of an object only the module's
/// dict refers to (the code lives in a separate namespace, so the dict is in no reference
/// cycle and goes the moment the module does).
fn dropping_script(n: u32) -> String {
    format!(
        r#"import os, sys, weakref
_ns = {{'DIR': os.path.dirname(__file__)}}
exec('''
import os, time
def mark(what):
    with open(os.path.join(DIR, 'dropped'), 'a') as f:
        f.write(what + chr(10))
    time.sleep(0.05)
class Keeper(object):
    def __del__(self):
        mark('del v{n}')
def gone(ref):
    mark('weakref v{n}')
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'v{n}']
''', _ns)
application = _ns['application']
keeper = _ns['Keeper']()
module_ref = weakref.ref(sys.modules[__name__], _ns['gone'])
del _ns
"#
    )
}

/// Rewrites a script and moves its mtime forward, so that each version has its own mtime
/// even within the file system's timestamp granularity.
fn rewrite(dir: &TempDir, name: &str, content: &str, n: u32) {
    let path = dir.replace(name, content);
    let mtime = SystemTime::now() + Duration::from_secs(u64::from(n) * 10);
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(mtime).unwrap();
}

#[test]
fn reloading_a_script_whose_old_module_runs_python_when_dropped_never_wedges() {
    let dir = TempDir::new("reload-drop");
    dir.write("app.wsgi", &dropping_script(1));
    let apache = Apache::start_in(dir, Mpm::Event, "WSGIScriptAlias /app {dir}/app.wsgi\n");
    assert_eq!(get_within(apache.port, "/app").unwrap().text(), "v1");
    let versions = 8;
    let done = std::sync::atomic::AtomicBool::new(false);
    let results: Vec<Result<Response, String>> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let mut results = Vec::new();
                    while !done.load(std::sync::atomic::Ordering::SeqCst) {
                        let result = get_within(apache.port, "/app");
                        let failed = result.is_err();
                        results.push(result);
                        if failed {
                            break;
                        }
                    }
                    results
                })
            })
            .collect();
        for n in 2..=versions {
            std::thread::sleep(Duration::from_millis(300));
            rewrite(&apache.dir, "app.wsgi", &dropping_script(n), n);
        }
        std::thread::sleep(Duration::from_millis(500));
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        clients.into_iter().flat_map(|c| c.join().unwrap()).collect()
    });
    let failures: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failures.is_empty(), "{} of {} requests got no answer (the child is wedged): {:?}", failures.len(), results.len(), failures);
    for r in results.iter().flatten() {
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // The child still serves, and serves the last version.
    assert_eq!(get_within(apache.port, "/app").unwrap().text(), format!("v{versions}"));
    // The old modules did run Python as they went.
    let dropped = std::fs::read_to_string(apache.dir.path().join("dropped")).unwrap_or_default();
    assert!(dropped.contains("del v1") && dropped.contains("weakref v1"), "old modules dropped without running Python: {dropped:?}");
    assert_no_crash(&apache, "reload");
}

/// A site hook, as a package might install one: `WSGIPythonPath` names the directory, whose
/// `.pth` file imports this module in every new interpreter while `bootstrap.py` sets it up.
/// It refuses application groups whose name starts with `broken` by raising `SystemExit`
/// (which `site` does not catch), so that the group's set-up fails.
const SITE_HOOK: &str = r#"import sys
frame = sys._getframe()
while frame is not None and frame.f_code.co_name != 'setup':
    frame = frame.f_back
group = frame.f_locals.get('group', '') if frame is not None else ''
if group.startswith('broken'):
    raise SystemExit('site hook: application group %r is refused' % group)
"#;

/// Answers with the group as the request, the running interpreter's `mod_wsgi` module and the
/// script's module in the running interpreter see it. `import sys` inside the function finds
/// the `sys` of the interpreter the thread is running in, not the one the script was loaded
/// into: a thread in the wrong interpreter shows it.
const GROUP_APP: &str = r#"import mod_wsgi
LOADED_IN = mod_wsgi.application_group
def application(environ, start_response):
    import sys as running
    mod = running.modules.get('mod_wsgi')
    script = running.modules.get(__name__)
    seen = [environ['mod_wsgi.application_group'], getattr(mod, 'application_group', None), getattr(script, 'LOADED_IN', None)]
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [' '.join(str(s) for s in seen).encode()]
"#;

/// `clients` threads each sending `rounds` requests to `path` at once, so that most of the
/// child's worker threads serve it.
fn burst(apache: &Apache, path: &str, clients: usize, rounds: usize) -> Vec<Response> {
    std::thread::scope(|scope| {
        let workers: Vec<_> =
            (0..clients).map(|_| scope.spawn(|| (0..rounds).map(|_| get_within(apache.port, path).unwrap()).collect::<Vec<_>>())).collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    })
}

#[test]
fn a_group_whose_set_up_fails_leaves_no_interpreter_behind() {
    let dir = TempDir::new("group-fails");
    dir.write("app.wsgi", GROUP_APP);
    dir.write("site/hook.pth", "import group_hook\n");
    dir.write("site/group_hook.py", SITE_HOOK);
    let rounds = 3;
    let groups = (1..=rounds).flat_map(|round| [format!("good-{round}-a"), format!("good-{round}-b")]).chain(["broken".to_string()]);
    let aliases: String = groups.map(|g| format!("WSGIScriptAlias /{g} {{dir}}/app.wsgi application-group={g}\n")).collect();
    let mut apache = Apache::start_in(dir, Mpm::Event, &format!("WSGIPythonPath {{dir}}/site\n{aliases}"));
    for round in 1..=rounds {
        // Every worker thread tries (and fails) to create the broken group...
        for r in burst(&apache, "/broken", 8, 3) {
            assert_eq!(r.status, 500, "round {round}: {}", r.text());
        }
        let log = apache.wait_for_log("application group 'broken' is refused");
        assert!(log.contains("Failed to set up interpreter for application group 'broken'"), "round {round}: no clear log line:\n{log}");
        // ...then groups created afterwards run in their own interpreter on every thread.
        for good in [format!("good-{round}-a"), format!("good-{round}-b")] {
            for r in burst(&apache, &format!("/{good}"), 8, 3) {
                assert_eq!((r.status, r.text()), (200, format!("{good} {good} {good}")), "round {round}");
            }
        }
    }
    // The child ends cleanly too: no interpreter was left behind for Python's finalisation.
    apache.stop();
    assert_no_crash(&apache, "failed group set-up");
}

/// For prefork's stops. `/hold-gil` leaves a thread behind that, half a second after the
/// response, blocks for 30 s in a C call that keeps the GIL (as a badly behaved extension
/// may): from then on nothing that needs the GIL can run. Every interpreter registers an
/// atexit callback that leaves a marker, to tell whether Python was finalised.
const PREFORK_APP: &str = r#"import atexit, ctypes, os, threading, time
atexit.register(lambda: open(os.path.join(os.path.dirname(__file__), 'markers', 'atexit-%d' % os.getpid()), 'w').close())

def hold_gil():
    time.sleep(0.5)
    ctypes.PyDLL(None).sleep(30)

def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    if path == '/sleep':
        time.sleep(30)
    elif path == '/hold-gil':
        threading.Thread(target=hold_gil, daemon=True).start()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'done']
"#;

fn prefork_server(extra: &str) -> Apache {
    let dir = TempDir::new("prefork-stop");
    dir.write("app.wsgi", PREFORK_APP);
    dir.write("markers/.keep", "");
    Apache::start_in(dir, Mpm::Prefork, &format!("WSGIScriptAlias /app {{dir}}/app.wsgi\n{extra}"))
}

fn atexit_markers(apache: &Apache) -> usize {
    std::fs::read_dir(apache.dir.path().join("markers")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with("atexit-")).count()
}

/// Stops Apache with SIGTERM (`apache2 -k stop`) and checks that every child it stopped or
/// restarted went at once: Apache logs `still did not exit` from 3 s on, and kills it at 9 s.
fn stop_and_check(apache: &mut Apache, what: &str) {
    apache.stop();
    let log = apache.error_log();
    assert!(!log.contains("still did not exit"), "{what}: a child did not exit at once (Apache had to signal it again):\n{log}");
    assert_no_crash(apache, what);
}

#[test]
fn prefork_sigterm_and_sighup_end_idle_and_busy_children_at_once() {
    // Idle. Python is left as it is, by design: no atexit.
    let mut apache = prefork_server("");
    assert_eq!(get_within(apache.port, "/app").unwrap().text(), "done");
    stop_and_check(&mut apache, "idle");
    assert_eq!(atexit_markers(&apache), 0, "Python was finalised inside the SIGTERM handler");

    // A request running Python (the signal arrives in the middle of it).
    let mut apache = prefork_server("");
    assert_eq!(get_within(apache.port, "/app").unwrap().text(), "done");
    let port = apache.port;
    let running = std::thread::spawn(move || get_within(port, "/app/sleep"));
    std::thread::sleep(Duration::from_millis(500));
    stop_and_check(&mut apache, "request running");
    assert!(running.join().unwrap().is_err(), "the interrupted request was answered");

    // Idle, with the GIL held by a thread stuck in C: finalising would wait for it.
    let mut apache = prefork_server("");
    assert_eq!(get_within(apache.port, "/app/hold-gil").unwrap().text(), "done");
    std::thread::sleep(Duration::from_secs(1));
    stop_and_check(&mut apache, "GIL held elsewhere");

    // The same on a non-graceful restart (SIGHUP, `apache2 -k restart`): the old child goes at
    // once and a new one serves.
    let mut apache = prefork_server("");
    assert_eq!(get_within(apache.port, "/app/hold-gil").unwrap().text(), "done");
    std::thread::sleep(Duration::from_secs(1));
    // SAFETY: SIGHUP (restart) to the Apache parent this test started.
    unsafe { libc::kill(apache.pid(), libc::SIGHUP) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while apache.error_log().matches("resuming normal operations").count() < 2 {
        assert!(Instant::now() < deadline, "Apache did not restart:\n{}", apache.error_log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get_within(apache.port, "/app").unwrap().text(), "done");
    stop_and_check(&mut apache, "restart with the GIL held elsewhere");
}

/// A prefork child that leaves its loop normally still finalises Python (graceful stops: see
/// tests/lifecycle.rs).
#[test]
fn prefork_child_at_max_connections_still_finalises_python() {
    let apache = prefork_server("MaxConnectionsPerChild 1\n");
    assert_eq!(get_within(apache.port, "/app").unwrap().text(), "done");
    let deadline = Instant::now() + Duration::from_secs(10);
    while atexit_markers(&apache) == 0 {
        assert!(Instant::now() < deadline, "atexit did not run when the child reached MaxConnectionsPerChild:\n{}", apache.error_log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_no_crash(&apache, "MaxConnectionsPerChild");
}

/// An application thread that writes to `sys.stderr` faster than Apache's error log can take
/// it (here: a piped logger that never reads) blocks in the write. It must do so without the
/// GIL: with it, every request of the child would wait for the logger.
const STALLED_LOG_APP: &str = r#"import sys, threading

written = [0]

def flood():
    for i in range(3000):
        sys.stderr.write('flood line %d %s\n' % (i, 'x' * 200))
        sys.stderr.flush()
        written[0] += 1

def application(environ, start_response):
    if environ['PATH_INFO'] == '/start':
        threading.Thread(target=flood, daemon=True).start()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'pong %d' % written[0]]
"#;

#[test]
fn an_application_thread_blocked_on_the_error_log_does_not_hold_the_gil() {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = TempDir::new("stalled-log");
    dir.write("app.wsgi", STALLED_LOG_APP);
    // The error log is a FIFO this test holds open and does not read until the pings are
    // done: Apache's writes to it block once its 64 KiB are full, as with a stalled logger.
    let fifo = dir.path().join("log.fifo");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid path; mkfifo creates the node.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0, "mkfifo: {}", std::io::Error::last_os_error());
    let mut reader = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&fifo).unwrap();
    // The base config's ErrorLog comes first; this one, later, wins for the main server.
    // LogLevel warn: the pings themselves log nothing (a line of theirs would wait too).
    let mut apache =
        Apache::start_in(dir, Mpm::Event, "ErrorLog {dir}/log.fifo\nLogLevel warn\nWSGIScriptAlias / {dir}/app.wsgi application-group=site\n");
    assert_eq!(get_within(apache.port, "/ping").expect("first ping").text(), "pong 0");
    assert!(get_within_for(apache.port, "/start", Duration::from_secs(5)).expect("/start").text().starts_with("pong"));
    // The flood fills the FIFO within milliseconds and then blocks.
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..3 {
        // A child whose GIL the blocked writer holds would answer only once the log drains.
        let answer =
            get_within_for(apache.port, "/ping", Duration::from_secs(5)).unwrap_or_else(|e| panic!("ping {i} while the log is stalled: {e}"));
        let written: usize = answer.text().trim_start_matches("pong ").parse().unwrap();
        // The premise: the flood is stuck on the full FIFO (3000 lines are about 640 KiB).
        assert!(written < 3000, "the log never stalled ({written} lines written)");
    }
    // Drain the log while Apache stops (its writers then close the FIFO: end of file).
    let drain = std::thread::spawn(move || {
        let (mut log, mut buf) = (Vec::new(), vec![0u8; 65536]);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => log.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("reading the log FIFO: {e}"),
            }
        }
        String::from_utf8_lossy(&log).into_owned()
    });
    apache.stop();
    // The writers came back while the child was ending: nothing crashed on the way.
    let log = drain.join().unwrap();
    for line in CRASH_LINES {
        let found: Vec<&str> = log.lines().filter(|l| l.contains(line)).collect();
        assert!(found.is_empty(), "{line:?} in the error log: {found:?}");
    }
    assert!(log.contains("flood line"), "the flood reached the log");
}

/// At the child's exit the engine deletes the states it made for Apache's threads. Clearing
/// one runs its `threading.local` values' finalisers, which may release the GIL: here one
/// waits for an application thread to end, whose own state Python then frees. The deletion
/// must not walk on from that freed state (it did, and crashed in some runs).
const EXIT_JOIN_APP: &str = r#"import threading, time

stop = threading.Event()

def loop():
    while not stop.is_set():
        time.sleep(0.001)

worker = threading.Thread(target=loop)
worker.start()
local = threading.local()

class JoinOnDel:
    def __del__(self):
        stop.set()
        worker.join()

def application(environ, start_response):
    if environ['PATH_INFO'] == '/keep':
        local.value = JoinOnDel()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok']
"#;

#[test]
fn states_deleted_at_exit_whose_finalisers_end_threads_crash_nothing() {
    for round in 0..4 {
        let dir = TempDir::new("exit-join");
        dir.write("app.wsgi", EXIT_JOIN_APP);
        let mut apache = Apache::start_in(
            dir,
            Mpm::Event,
            "ServerLimit 1\nThreadsPerChild 2\nMaxRequestWorkers 2\nWSGIScriptAlias / {dir}/app.wsgi application-group=x\n",
        );
        assert_eq!(get_within(apache.port, "/").expect("first request").text(), "ok");
        for _ in 0..3 {
            let a = std::thread::spawn({
                let port = apache.port;
                move || get_within(port, "/keep")
            });
            let b = get_within(apache.port, "/");
            assert_eq!(a.join().unwrap().expect("/keep").text(), "ok");
            assert_eq!(b.expect("/").text(), "ok");
        }
        apache.stop();
        assert_no_crash(&apache, &format!("round {round}"));
    }
}
