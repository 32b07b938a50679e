//! The error-log streams as mod_wsgi 6 makes them: `wsgi.errors` (one per request),
//! `sys.stdout` and `sys.stderr` are `io.TextIOWrapper`s (utf-8, errors='replace', line
//! buffered, write-through) over a `mod_wsgi.Log` whose `write` and `writelines` take bytes,
//! bytearray and memoryview; each line reaches Apache's error log attributed to its request;
//! a request's `wsgi.errors` refuses writes once the request ended. With `WSGIRestrictStdin
//! On`, `sys.stdin` is a `mod_wsgi.Restricted` whose every use raises `OSError` naming it.
//! Checked side by side with mod_wsgi 6.1 from PyPI, and under concurrent load on the event
//! and worker MPMs.

mod common;
use common::*;

/// Reports what the streams are and how they refuse misuse, one `key=value` line each, and
/// writes marker lines through every path.
const APP: &str = r#"
import sys

saved = []

def attempt(f):
    try:
        f()
        return 'ok'
    except BaseException as e:
        return '%s: %s' % (type(e).__name__, e)

def report(environ, start_response):
    e = environ['wsgi.errors']
    out = []
    for label, s in (('errors', e), ('stdout', sys.stdout), ('stderr', sys.stderr)):
        out.append('%s=%s.%s name=%r encoding=%r errors=%r line_buffering=%r write_through=%r buffer=%s.%s' % (
            label, type(s).__module__, type(s).__name__, s.name, s.encoding, s.errors, s.line_buffering,
            s.write_through, type(s.buffer).__module__, type(s.buffer).__name__))
    out.append('buffer_closed=%r readable=%r writable=%r seekable=%r isatty=%r' % (
        e.buffer.closed, e.buffer.readable(), e.buffer.writable(), e.buffer.seekable(), e.buffer.isatty()))
    out.append('write_int=%s' % attempt(lambda: e.buffer.write(12)))
    out.append('writelines_int=%s' % attempt(lambda: e.buffer.writelines(12)))
    out.append('fileno=%s' % attempt(e.fileno))
    out.append('same_errors=%r' % (saved and saved[-1] is e))
    if saved:
        out.append('late_write=%s' % attempt(lambda: saved[-1].write('late line\n')))
        out.append('late_buffer_write=%s' % attempt(lambda: saved[-1].buffer.write(b'late bytes\n')))
    saved.append(e)
    stdin = sys.stdin
    out.append('stdin=%s.%s' % (type(stdin).__module__, type(stdin).__name__))
    if type(stdin).__name__ == 'Restricted':
        out.append('stdin_read=%s' % attempt(lambda: stdin.read()))
        out.append('stdin_readline=%s' % attempt(lambda: stdin.readline()))
        out.append('stdin_encoding=%s' % attempt(lambda: stdin.encoding))
        out.append('stdin_isatty=%s' % attempt(lambda: stdin.isatty()))
        out.append('stdin_iter=%s' % attempt(lambda: iter(stdin)))
        out.append('input=%s' % attempt(lambda: input()))
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return ['\n'.join(out).encode()]

def write(environ, start_response):
    e = environ['wsgi.errors']
    e.buffer.write(b'marker bytes\n')
    e.buffer.write(bytearray(b'marker bytearray\n'))
    e.buffer.write(memoryview(b'marker memoryview\n'))
    e.buffer.writelines([b'marker lines 1\n', bytearray(b'marker lines 2\n'), memoryview(b'marker lines 3\n')])
    e.write('marker text ')
    e.write('joined\n')
    e.writelines(['marker ', 'text lines\n'])
    sys.stderr.buffer.write(memoryview(b'marker stderr buffer\n'))
    sys.stderr.write('marker stderr text\n')
    print('marker', 'printed')
    e.write('marker unfinished')
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'written']

def restricted(environ, start_response):
    import mod_wsgi
    body = 'exposed=%r isinstance=%r' % (hasattr(mod_wsgi, 'Restricted'),
                                       hasattr(mod_wsgi, 'Restricted') and isinstance(sys.stdin, mod_wsgi.Restricted))
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;

fn start(module: &std::path::Path, extra: &str) -> Apache {
    let dir = TempDir::new("streams");
    dir.write("app.wsgi", APP);
    Apache::start_with_module(
        dir,
        Mpm::Event,
        module,
        &format!(
            "{extra}WSGIScriptAlias /report {{dir}}/app.wsgi callable-object=report\n\
             WSGIScriptAlias /write {{dir}}/app.wsgi callable-object=write\n\
             WSGIScriptAlias /restricted {{dir}}/app.wsgi callable-object=restricted\n"
        ),
    )
}

fn get(apache: &Apache, path: &str) -> String {
    let r = apache.get(path);
    assert_eq!(r.status, 200, "{path}: {}\n{}", r.text(), apache.error_log());
    r.text()
}

/// The log line that carries `text`, if any.
fn log_line<'a>(log: &'a str, text: &str) -> Option<&'a str> {
    log.lines().find(|line| line.ends_with(text))
}

#[test]
fn streams_are_text_wrappers_over_the_log_as_in_mod_wsgi_6() {
    let module_6 = mod_wsgi_6_module();
    for extra in ["", "WSGIRestrictStdin On\n"] {
        let (ours, theirs) = std::thread::scope(|s| {
            let theirs = s.spawn(|| start(&module_6, extra));
            (start(&module_path(), extra), theirs.join().unwrap())
        });
        // Twice each: the second request sees the first one's wsgi.errors, ended (one child).
        let ours_reports = [get(&ours, "/report"), get(&ours, "/report")];
        let theirs_reports = [get(&theirs, "/report"), get(&theirs, "/report")];
        // One chosen difference: iterating a restricted stream raises OSError naming it (every
        // use does, with us), where mod_wsgi 6's type has no __iter__ (a TypeError).
        const OURS_ITER: &str = "stdin_iter=OSError: sys.stdin access restricted by mod_wsgi";
        const THEIRS_ITER: &str = "stdin_iter=TypeError: 'mod_wsgi.Restricted' object is not iterable";
        if !extra.is_empty() {
            assert!(ours_reports.iter().all(|r| r.contains(OURS_ITER)), "{ours_reports:?}");
            assert!(theirs_reports.iter().all(|r| r.contains(THEIRS_ITER)), "{theirs_reports:?}");
        }
        let theirs_reports = theirs_reports.map(|r| r.replace(THEIRS_ITER, OURS_ITER));
        assert_eq!(ours_reports, theirs_reports, "with '{extra}': mod_wsgi-rs (left) and mod_wsgi {MOD_WSGI_6} (right) differ");
        let first = &ours_reports[0];
        assert!(first.contains("errors=_io.TextIOWrapper name='<wsgi.errors>' encoding='utf-8' errors='replace' line_buffering=True write_through=True buffer=mod_wsgi.Log"), "{first}");
        assert!(first.contains("stderr=_io.TextIOWrapper name='<stderr>'"), "{first}");
        assert!(first.contains("write_int=TypeError: a bytes-like object is required, not 'int'"), "{first}");
        let second = &ours_reports[1];
        assert!(second.contains("same_errors=False"), "{second}");
        assert!(second.contains("late_write=RuntimeError: write() called on wsgi.errors after request completed"), "{second}");
        if extra.is_empty() {
            assert!(first.contains("stdin=_io.TextIOWrapper"), "stdin restricted by default: {first}");
        } else {
            for key in ["stdin_read", "stdin_readline", "stdin_encoding", "stdin_isatty", "input"] {
                assert!(first.contains(&format!("{key}=OSError: sys.stdin access restricted by mod_wsgi")), "{key}: {first}");
            }
            assert!(first.contains("stdin=mod_wsgi.Restricted"), "{first}");
            // Ours only: the class is reachable, so that an application can recognise it.
            assert_eq!(get(&ours, "/restricted"), "exposed=True isinstance=True");
        }

        // Every path's lines reach the log whole, attributed to the request, in both.
        assert_eq!(get(&ours, "/write"), "written");
        assert_eq!(get(&theirs, "/write"), "written");
        for apache in [&ours, &theirs] {
            let log = apache.wait_for_log("marker unfinished");
            for marker in [
                "marker bytes",
                "marker bytearray",
                "marker memoryview",
                "marker lines 1",
                "marker lines 2",
                "marker lines 3",
                "marker text joined",
                "marker text lines",
                "marker stderr buffer",
                "marker stderr text",
                "marker printed",
                // What was left of a line is logged when the request's stream ends.
                "marker unfinished",
            ] {
                let line = log_line(&log, marker).unwrap_or_else(|| panic!("no '{marker}' line in\n{log}"));
                assert!(line.contains("[client 127.0.0.1:"), "not attributed to the request: {line}");
            }
            assert!(crash_lines(&log).is_empty(), "{log}");
        }
        assert!(!ours.error_log().contains("late line"), "a write after the request ended was logged");
    }
}

/// Many threads write through wsgi.errors (in pieces, giving the GIL away between them),
/// print() and sys.stderr.buffer at once: every line comes out whole, once, attributed to a
/// request, and nothing crashes.
#[test]
fn concurrent_requests_keep_their_lines_whole_on_threaded_mpms() {
    const LOAD_APP: &str = r#"
import sys, time

def application(environ, start_response):
    n = environ['QUERY_STRING']
    e = environ['wsgi.errors']
    e.write('load %s ' % n)
    time.sleep(0)
    e.write('errors ')
    time.sleep(0.001)
    e.buffer.write(b'part\n')
    print('load', n, 'printed', end=' ')
    time.sleep(0)
    print('end')
    sys.stderr.buffer.write(memoryview(('load %s stderr\n' % n).encode()))
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [n.encode()]
"#;
    const CLIENTS: usize = 8;
    const EACH: usize = 25;
    for mpm in [Mpm::Event, Mpm::Worker] {
        let dir = TempDir::new("streams-load");
        dir.write("load.wsgi", LOAD_APP);
        let apache = Apache::start_in(dir, mpm, "WSGIScriptAlias /load {dir}/load.wsgi\n");
        let results = hammer(apache.port, CLIENTS, EACH, |n| Request::get(format!("/load?{n}")));
        let failed: Vec<String> = results
            .iter()
            .filter(|(request, outcome)| !matches!(outcome, Ok(r) if r.status == 200 && format!("/load?{}", r.text()) == request.path))
            .map(|(request, outcome)| format!("{}: {outcome:?}", request.path))
            .collect();
        assert!(failed.is_empty(), "{mpm:?}: {failed:?}\n{}", apache.error_log());
        let total = CLIENTS * EACH;
        // Wait for the lines of every request (they can trail the responses).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut log = apache.error_log();
        while log.lines().filter(|l| l.contains("load ")).count() < 3 * total && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
            log = apache.error_log();
        }
        for n in 0..total {
            for expected in [format!("load {n} errors part"), format!("load {n} printed end"), format!("load {n} stderr")] {
                let lines: Vec<&str> = log.lines().filter(|l| l.ends_with(&expected)).collect();
                assert_eq!(lines.len(), 1, "{mpm:?}: '{expected}' {} times\n{log}", lines.len());
                assert!(lines[0].contains("[client 127.0.0.1:"), "{mpm:?}: not attributed: {}", lines[0]);
            }
        }
        // Nothing else: no line made of pieces of two requests.
        let load_lines = log.lines().filter(|l| l.contains("load ")).count();
        assert_eq!(load_lines, 3 * total, "{mpm:?}: stray or torn lines\n{log}");
        assert!(crash_lines(&log).is_empty(), "{mpm:?}:\n{log}");
    }
}

/// A request that leaves a line unfinished on `sys.stdout` or `sys.stderr` (`print('x',
/// end='')`) gets it logged when it ends, attributed to it, instead of kept for the thread's
/// next write (another request's line, glued to it, or never).
#[test]
fn partial_lines_on_stdout_and_stderr_are_logged_when_their_request_ends() {
    const PARTIAL_APP: &str = r#"
import sys

def partial(environ, start_response):
    port = environ['REMOTE_PORT']
    print('partial print from %s' % port, end='')
    sys.stderr.write('partial stderr from %s' % port)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [port.encode()]

def whole(environ, start_response):
    print('whole line')
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'whole']
"#;
    let dir = TempDir::new("streams-partial");
    dir.write("app.wsgi", PARTIAL_APP);
    // One process of one thread, one interpreter: every request runs where the last one left
    // its fragment.
    let apache = Apache::start_in(
        dir,
        Mpm::Prefork,
        "WSGIApplicationGroup streams\nWSGIScriptAlias /partial {dir}/app.wsgi callable-object=partial\nWSGIScriptAlias /whole {dir}/app.wsgi callable-object=whole\n",
    );
    let mut ports = Vec::new();
    for _ in 0..3 {
        let port = get(&apache, "/partial");
        for what in ["print", "stderr"] {
            let text = format!("partial {what} from {port}");
            let log = apache.wait_for_log(&text);
            let line = log_line(&log, &text).unwrap_or_else(|| panic!("'{text}' not logged when its request ended:\n{log}"));
            assert!(line.contains(&format!("[client 127.0.0.1:{port}]")), "not attributed to its request: {line}");
        }
        assert_eq!(get(&apache, "/whole"), "whole");
        ports.push(port);
    }
    let log = apache.wait_for_log("whole line");
    let whole: Vec<&str> = log.lines().filter(|l| l.contains("whole line")).collect();
    assert_eq!(whole.len(), 3, "{log}");
    assert!(whole.iter().all(|l| l.ends_with("): whole line")), "a fragment glued to a later request's line:\n{log}");
    assert_eq!(log.matches("partial ").count(), 6, "{ports:?}\n{log}");
    assert!(crash_lines(&log).is_empty(), "{log}");
}

/// Threads of one request write to its `wsgi.errors` at once, one byte at a time (the GIL
/// switching between them as often as it can): no byte is lost, and each line is logged once.
#[test]
fn threads_sharing_a_requests_wsgi_errors_lose_no_bytes() {
    const THREADS_APP: &str = r#"
import sys, threading

EACH = 1000
ROUNDS = 10

def application(environ, start_response):
    errors = environ['wsgi.errors']
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for n in range(ROUNDS):
            def work(letter, layer):
                for _ in range(EACH):
                    layer.write(letter)
            # The binary layer, and the text stream over it.
            workers = [threading.Thread(target=work, args=(letter, errors.buffer)) for letter in (b'w', b'x')]
            workers += [threading.Thread(target=work, args=(letter, errors)) for letter in ('y', 'z')]
            for t in workers:
                t.start()
            for t in workers:
                t.join()
            errors.write(' round %d\n' % n)
    finally:
        sys.setswitchinterval(interval)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'done']
"#;
    let dir = TempDir::new("streams-threads");
    dir.write("app.wsgi", THREADS_APP);
    let apache = Apache::start_in(dir, Mpm::Event, "WSGIScriptAlias /threads {dir}/app.wsgi\n");
    assert_eq!(get(&apache, "/threads"), "done");
    let log = apache.wait_for_log(" round 9");
    for n in 0..10 {
        let marker = format!(" round {n}");
        let lines: Vec<&str> = log.lines().filter(|l| l.ends_with(&marker)).collect();
        assert_eq!(lines.len(), 1, "'{marker}' {} times\n{log}", lines.len());
        let line = lines[0];
        assert!(line.contains("[client 127.0.0.1:"), "not attributed: {line}");
        let message = line.rsplit_once("): ").map_or(line, |(_, m)| m);
        let counts: Vec<usize> = ['w', 'x', 'y', 'z'].iter().map(|c| message.matches(*c).count()).collect();
        assert_eq!(counts, [1000; 4], "round {n}: bytes lost ({} of 4000 logged)", message.len() - marker.len());
    }
    assert!(crash_lines(&log).is_empty(), "{log}");
}

/// Python 2.7 keeps its own text streams (its `print` writes byte strings, which a
/// TextIOWrapper refuses): lines still reach the log attributed to the request, reloading's
/// `__mtime__` is an integer there too, and a restricted stdin is a `mod_wsgi.Restricted`.
#[test]
fn python_2_7_streams_and_restricted_stdin() {
    let Some(home) = python_home("2.7") else { return };
    const APP_27: &str = r#"
import sys

def application(environ, start_response):
    print 'py27 printed'
    print 'py27 partial',
    sys.stderr.write('py27 stderr\n')
    environ['wsgi.errors'].write('py27 ')
    environ['wsgi.errors'].write('errors\n')
    try:
        sys.stdin.read()
        stdin = 'readable'
    except IOError as e:
        stdin = '%s: %s' % (type(e).__name__, e)
    import mod_wsgi
    body = 'stdin=%s class=%s.%s mtime=%s' % (stdin, type(sys.stdin).__module__, type(sys.stdin).__name__,
                                             type(globals()['__mtime__']).__name__)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;
    let dir = TempDir::new("streams-27");
    dir.write("app.wsgi", APP_27);
    let apache = Apache::start_in(dir, Mpm::Worker, &format!("WSGIPythonHome {home}\nWSGIRestrictStdin On\nWSGIScriptAlias /app {{dir}}/app.wsgi\n"));
    assert_eq!(get(&apache, "/app"), "stdin=IOError: sys.stdin access restricted by mod_wsgi class=mod_wsgi.Restricted mtime=long");
    let log = apache.wait_for_log("py27 errors");
    // The unfinished print is logged when the request ends.
    for marker in ["py27 printed", "py27 stderr", "py27 errors", "py27 partial"] {
        let line = log_line(&log, marker).unwrap_or_else(|| panic!("no '{marker}' line in\n{log}"));
        assert!(line.contains("[client 127.0.0.1:"), "not attributed to the request: {line}");
    }
    assert!(crash_lines(&log).is_empty(), "{log}");
}

/// `WSGIRestrictStdout On` in the main interpreter: a child that ends does not log Python's
/// complaint about flushing the restricted `sys.stdout` (mod_wsgi 6 logs `Exception ignored
/// in: <mod_wsgi.Restricted object ...>` for every child).
#[test]
fn a_restricted_stdout_is_not_flushed_at_exit() {
    let dir = TempDir::new("streams-stdout");
    dir.write("app.wsgi", APP);
    let mut apache = Apache::start_in(
        dir,
        Mpm::Event,
        "WSGIRestrictStdout On\nWSGIScriptAlias /report {dir}/app.wsgi callable-object=report application-group=%{GLOBAL}\n",
    );
    let r = apache.get("/report");
    assert_eq!(r.status, 500, "print() to a restricted stdout");
    assert!(apache.wait_for_log("sys.stdout access restricted by mod_wsgi").contains("OSError: sys.stdout access restricted by mod_wsgi"));
    apache.stop();
    let log = apache.error_log();
    assert!(log.contains("caught SIGTERM"), "{log}");
    assert!(!log.contains("Exception ignored"), "{log}");
}
