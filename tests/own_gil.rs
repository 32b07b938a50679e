//! `WSGIPerInterpreterGIL` (issue 11, first slice): application groups whose interpreters have
//! their own GIL (Python 3.12 and 3.13 engines, `scripts/pythons 3.12 3.13`).
//!
//! Parallelism is shown without timings: a request in one group turns its GIL's switch
//! interval up to 1000 s and spins in bytecode (reading a shared `mmap`, which never releases
//! the GIL) until a request in another group writes a byte into that mapping. On one shared
//! GIL the second request cannot run until the spin gives up (its bound), so the spin reports
//! `timeout`; with separate GILs it reports `seen`. Which GIL a group uses also shows in the
//! switch interval: it is a setting of the GIL, so `%{GLOBAL}` and a shared-GIL group see each
//! other's, an own-GIL group does not.
//!
//! A Python in `MOD_WSGI_TEST_PYTHONS` (set by `scripts/test`) or under `CI` must be installed:
//! the test fails without it; run by hand, a missing one is skipped with a line saying so.

mod common;
use common::*;

/// The app, after the race helpers (`common::GIL_RACE_PY`).
fn app() -> String {
    format!("{GIL_RACE_PY}{APP}")
}

const APP: &str = r#"
import hashlib, os, subprocess, sys, threading, time
import mod_wsgi

GROUP = mod_wsgi.application_group
MARKS = []
TICKS = [0]

def _tick(started):
    started.set()
    while True:
        time.sleep(0.02)
        TICKS[0] += 1

def work():
    total = 0
    for i in range(20000):
        total += i * i % 7
    return total

def application(environ, start_response):
    path = environ['PATH_INFO']
    qs = environ.get('QUERY_STRING', '')
    if path == '/work':
        body = '%s %s %d' % (GROUP, hashlib.sha256(('%s:%s' % (GROUP, qs)).encode()).hexdigest(), work())
    elif path == '/mark':
        MARKS.append(qs)
        body = ','.join(MARKS)
    elif path == '/switch':
        if qs:
            sys.setswitchinterval(float(qs))
        body = '%.4f' % sys.getswitchinterval()
    elif path == '/sub':
        rc = subprocess.run(['true']).returncode
        started = threading.Event()
        threading.Thread(target=_tick, args=(started,), daemon=True).start()
        started.wait(30)
        before = TICKS[0]
        deadline = time.monotonic() + 30
        while TICKS[0] == before and time.monotonic() < deadline:
            time.sleep(0.01)
        body = 'rc=%d daemon=%s ticking=%s' % (rc, started.is_set(), TICKS[0] > before)
    elif path == '/environ':
        body = 'key=%s group=%s' % ('mod_wsgi.per_interpreter_gil' in environ, environ['mod_wsgi.application_group'])
    elif path == '/spin':
        path_, bound = qs.split(',')
        body = spin(path_, float(bound))
    elif path == '/poke':
        poke(qs)
        body = 'poked'
    else:
        body = 'unknown'
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;

/// Groups a and b: own GIL (server value); c: shared (its container); d: own (the more
/// specific container wins over the later, less specific one); g: `%{GLOBAL}`.
fn config(home: &str) -> String {
    format!(
        "WSGIPythonHome {home}\n\
         WSGIPerInterpreterGIL On\n\
         <WSGIInterpreterOptions application-group=c>\n    WSGIPerInterpreterGIL Off\n</WSGIInterpreterOptions>\n\
         <WSGIInterpreterOptions process-group=%{{GLOBAL}} application-group=d>\n    WSGIPerInterpreterGIL On\n</WSGIInterpreterOptions>\n\
         <WSGIInterpreterOptions application-group=d>\n    WSGIPerInterpreterGIL Off\n</WSGIInterpreterOptions>\n\
         WSGIScriptAlias /a {{dir}}/app.wsgi application-group=a\n\
         WSGIScriptAlias /b {{dir}}/app.wsgi application-group=b\n\
         WSGIScriptAlias /c {{dir}}/app.wsgi application-group=c\n\
         WSGIScriptAlias /d {{dir}}/app.wsgi application-group=d\n\
         WSGIScriptAlias /g {{dir}}/app.wsgi application-group=%{{GLOBAL}}\n"
    )
}

fn start(mpm: Mpm, home: &str) -> Apache {
    let dir = TempDir::new("own-gil");
    dir.write("app.wsgi", &app());
    Apache::start_in(dir, mpm, &config(home))
}

fn expect(apache: &Apache, path: &str, want: &str) {
    let r = apache.get(path);
    assert_eq!((r.status, r.text()), (200, want.to_string()), "GET {path}\n{}", apache.error_log());
}

/// `sum(i * i % 7 for i in range(20000))`, as the app computes it.
fn work() -> u64 {
    (0..20000u64).map(|i| i * i % 7).sum()
}

/// Spins in group `spinner` (bounded by `bound` seconds) until group `poker` pokes (see
/// `common::gil_race`); returns what the spin reported.
fn race(apache: &Apache, spinner: &str, poker: &str, bound: u32) -> String {
    let (spun, poked) = gil_race(apache, &format!("/{spinner}/spin"), &format!("/{poker}/poke"), bound);
    assert_eq!(poked, "poked");
    spun
}

fn serves_own_gil_groups(version: &str) {
    let Some(home) = python_home(version) else { return };
    for mpm in [Mpm::Event, Mpm::Worker] {
        let mut apache = start(mpm, &home);
        // Every group, created once; the log says which got their own GIL.
        for g in ["a", "b", "c", "d", "g"] {
            expect(&apache, &format!("/{g}/environ"), &format!("key=False group={}", if g == "g" { "" } else { g }));
        }
        let log = apache.error_log();
        for line in [
            "Create interpreter 'a' with own GIL.",
            "Create interpreter 'b' with own GIL.",
            "Create interpreter 'd' with own GIL.",
            "Create interpreter 'c'.",
        ] {
            assert!(log.contains(line), "{mpm:?}: no line {line:?}\n{log}");
        }
        assert!(!log.contains("Create interpreter '' "), "%{{GLOBAL}} is the main interpreter\n{log}");

        // The switch interval belongs to a GIL: %{GLOBAL} shares the main one with c only.
        expect(&apache, "/g/switch?0.0123", "0.0123");
        expect(&apache, "/c/switch", "0.0123");
        expect(&apache, "/a/switch", "0.0050");
        expect(&apache, "/d/switch", "0.0050");
        expect(&apache, "/g/switch?0.005", "0.0050");

        // Isolation: each group has its own module globals.
        expect(&apache, "/a/mark?x", "x");
        expect(&apache, "/b/mark?y", "y");
        expect(&apache, "/a/mark?z", "x,z");
        expect(&apache, "/g/mark?w", "w");

        // Two own GILs, and an own GIL beside the main one, run at the same time; two groups
        // on the shared GIL cannot (the proof that the spin can tell).
        assert_eq!(race(&apache, "a", "b", 60), "seen", "{mpm:?}: a and b did not run in parallel\n{}", apache.error_log());
        assert_eq!(race(&apache, "b", "g", 60), "seen", "{mpm:?}: b and %{{GLOBAL}} did not run in parallel\n{}", apache.error_log());
        assert_eq!(race(&apache, "c", "g", 3), "timeout", "{mpm:?}: c and %{{GLOBAL}} should share one GIL\n{}", apache.error_log());

        // subprocess and a daemon thread inside an own-GIL group (mod_wsgi 6 refuses both).
        expect(&apache, "/a/sub", "rc=0 daemon=True ticking=True");

        // Every thread, two own-GIL groups and the main interpreter, every response checked.
        let groups = ["a", "b", "a", "b", "g"];
        let results = hammer(apache.port, 16, 15, |n| Request::get(format!("/{}/work?{n}", groups[n % groups.len()])));
        let mut failures = Vec::new();
        for (n, (request, outcome)) in results.iter().enumerate() {
            let g = groups[n % groups.len()];
            let name = if g == "g" { "" } else { g };
            let want = format!("{name} {} {}", sha256_hex(format!("{name}:{n}").as_bytes()), work());
            match outcome {
                Ok(r) if r.status == 200 && r.text() == want => {}
                Ok(r) => failures.push(format!("{}: {} {:?}", request.path, r.status, r.text())),
                Err(e) => failures.push(format!("{}: {e}", request.path)),
            }
        }
        assert!(
            failures.is_empty(),
            "{mpm:?}: {} of {} failed: {:?}\n{}",
            failures.len(),
            results.len(),
            &failures[..failures.len().min(10)],
            apache.error_log()
        );

        // The child's exit: group a's daemon thread keeps it from ending (it is left running,
        // its GIL parked), the others end; no crash (the harness checks the log).
        apache.stop_gracefully();
        let log = apache.error_log();
        assert!(log.contains("Interpreter 'a' is left running"), "{mpm:?}\n{log}");
        assert!(crash_lines(&log).is_empty(), "{mpm:?}: {:?}\n{log}", crash_lines(&log));
    }
}

#[test]
fn own_gil_groups_on_python_3_12() {
    serves_own_gil_groups("3.12");
}

#[test]
fn own_gil_groups_on_python_3_13() {
    serves_own_gil_groups("3.13");
}

/// `WSGIImportScript` creates its group with the group's setting too.
#[test]
fn import_script_creates_own_gil_group() {
    let Some(home) = python_home("3.12") else { return };
    let dir = TempDir::new("own-gil-import");
    dir.write("app.wsgi", &app());
    let apache = Apache::start_in(
        dir,
        Mpm::Event,
        &format!(
            "WSGIPythonHome {home}\n\
             <WSGIInterpreterOptions application-group=a>\n    WSGIPerInterpreterGIL Auto\n</WSGIInterpreterOptions>\n\
             WSGIImportScript {{dir}}/app.wsgi process-group=%{{GLOBAL}} application-group=a\n\
             WSGIScriptAlias /a {{dir}}/app.wsgi application-group=a\n"
        ),
    );
    let log = apache.wait_for_log("Imported WSGI script");
    assert!(log.contains("Create interpreter 'a' with own GIL."), "{log}");
    expect(&apache, "/a/switch", "0.0050");
}

#[test]
fn configuration_errors_and_warnings() {
    let alias = "WSGIScriptAlias /a {dir}/app.wsgi application-group=a\n";
    // On Python 3.11 (the default engine): accepted, with mod_wsgi 6's warning.
    let (ok, out) = config_test(&format!("WSGIPerInterpreterGIL On\n{alias}"));
    assert!(ok, "{out}");
    assert!(out.contains("WSGIPerInterpreterGIL requires Python 3.12 or later; directive has no effect on this build (Python 3.11"), "{out}");
    let (ok, out) =
        config_test(&format!("<WSGIInterpreterOptions application-group=a>\n  WSGIPerInterpreterGIL Auto\n</WSGIInterpreterOptions>\n{alias}"));
    assert!(ok && out.contains("requires Python 3.12 or later"), "{out}");
    let (ok, out) = config_test("WSGIPerInterpreterGIL Off\n");
    assert!(ok && !out.contains("requires Python"), "{out}");
    if let Some(home) = python_home("3.12") {
        let (ok, out) = config_test(&format!("WSGIPythonHome {home}\nWSGIPerInterpreterGIL On\n{alias}"));
        assert!(ok && !out.contains("requires Python"), "{out}");
    }
    for (body, message) in [
        ("WSGIPerInterpreterGIL Maybe\n", "WSGIPerInterpreterGIL must be one of: Off | On | Auto"),
        ("<VirtualHost *:80>\nWSGIPerInterpreterGIL On\n</VirtualHost>\n", "WSGIPerInterpreterGIL cannot occur within <VirtualHost> section"),
        (
            "<WSGIInterpreterOptions user=a>\nWSGIPerInterpreterGIL On\n</WSGIInterpreterOptions>\n",
            "unknown selector 'user', expected process-group or application-group",
        ),
        ("<WSGIInterpreterOptions application-group=a application-group=b>\n</WSGIInterpreterOptions>\n", "application-group given more than once"),
        ("<WSGIInterpreterOptions a>\n</WSGIInterpreterOptions>\n", "argument 'a' is not of the form key=value"),
        ("<WSGIInterpreterOptions application-group=a>\nWSGIPythonHome /tmp\n</WSGIInterpreterOptions>\n", "is not allowed inside this container"),
        (
            "<VirtualHost *:80>\n<WSGIInterpreterOptions application-group=a>\n</WSGIInterpreterOptions>\n</VirtualHost>\n",
            "cannot occur within <VirtualHost> section",
        ),
    ] {
        let (ok, out) = config_test(body);
        assert!(!ok, "accepted: {body}\n{out}");
        assert!(out.contains(message), "{body}: expected {message:?} in\n{out}");
        assert!(out.contains("httpd.conf"), "no file and line: {out}");
    }
}

/// Daemon mode: a daemon group's application groups get their mode from the daemon's own
/// configuration (containers naming the process group match), and run in parallel there.
fn daemon_groups_get_their_own_gil(version: &str) {
    let Some(home) = python_home(version) else { return };
    let dir = TempDir::new("own-gil-daemon");
    dir.write("app.wsgi", &app());
    dir.write("run/.keep", "");
    let config = format!(
        "WSGIRestrictEmbedded On\nWSGISocketPrefix {{dir}}/run/wsgi\n\
         WSGIDaemonProcess site python-home={home} threads=4\n\
         WSGIPerInterpreterGIL On\n\
         <WSGIInterpreterOptions process-group=site application-group=c>\n    WSGIPerInterpreterGIL Off\n</WSGIInterpreterOptions>\n\
         WSGIScriptAlias /a {{dir}}/app.wsgi process-group=site application-group=a\n\
         WSGIScriptAlias /b {{dir}}/app.wsgi process-group=site application-group=b\n\
         WSGIScriptAlias /c {{dir}}/app.wsgi process-group=site application-group=c\n\
         WSGIScriptAlias /g {{dir}}/app.wsgi process-group=site application-group=%{{GLOBAL}}\n"
    );
    let apache = Apache::start_in(dir, Mpm::Event, &config);
    for g in ["a", "b", "c", "g"] {
        expect(&apache, &format!("/{g}/environ"), &format!("key=False group={}", if g == "g" { "" } else { g }));
    }
    let log = apache.error_log();
    for line in ["Create interpreter 'a' with own GIL.", "Create interpreter 'b' with own GIL.", "Create interpreter 'c'."] {
        assert!(log.contains(line), "no line {line:?}\n{log}");
    }
    // The switch interval belongs to a GIL: c shares the daemon's main one with %{GLOBAL}.
    expect(&apache, "/g/switch?0.0123", "0.0123");
    expect(&apache, "/c/switch", "0.0123");
    expect(&apache, "/a/switch", "0.0050");
    assert_eq!(race(&apache, "a", "b", 60), "seen", "a and b did not run in parallel in the daemon\n{}", apache.error_log());
    assert_eq!(race(&apache, "c", "g", 3), "timeout", "c and %{{GLOBAL}} should share one GIL\n{}", apache.error_log());
}

#[test]
fn daemon_groups_get_their_own_gil_on_python_3_12() {
    daemon_groups_get_their_own_gil("3.12");
}

#[test]
fn daemon_groups_get_their_own_gil_on_python_3_13() {
    daemon_groups_get_their_own_gil("3.13");
}
