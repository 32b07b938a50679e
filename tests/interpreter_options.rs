//! The directives mod_wsgi 6 lets `<WSGIInterpreterOptions>` scope to the application groups
//! (and process groups) it selects: `WSGIPythonPath` (layered over the process-wide path,
//! least specific container first, so the most specific one's directories come first), `WSGISwitchInterval`, `WSGIRestrictStdin`,
//! `WSGIRestrictStdout`, `WSGIRestrictSignal` (the most specific container wins), and
//! `WSGIFreeThreading` (accepted with a warning: no engine is free-threaded). Each group's
//! interpreter reports what it was set up with; a group is created by a request, by
//! `WSGIImportScript`, or (`%{GLOBAL}`) at start, and each of those paths is covered.
//!
//! Own-GIL groups need the 3.12 engine (`scripts/pythons 3.12`); a Python in
//! `MOD_WSGI_TEST_PYTHONS` or under `CI` must be installed, by hand a missing one is skipped.

mod common;
use common::*;

/// Reports the interpreter's set-up: which marker modules its path reaches (and in which
/// order their directories come), its switch interval, and what stands in for stdin, stdout
/// and `signal.signal`.
const APP: &str = r#"
import os, signal, sys
import mod_wsgi

MARKS = ('all', 'a', 'g', 'embedded', 'site', 'evil')

def application(environ, start_response):
    marks = [m for m in MARKS
             if any(os.path.exists(os.path.join(p, 'mark_%s.py' % m)) for p in sys.path)]
    order = [os.path.basename(p) for p in sys.path if os.path.basename(p)[4:] in MARKS]
    body = 'marks=%s order=%s switch=%.4f stdin=%s stdout=%s signal=%s leaked=%s' % (
        ','.join(marks), ','.join(order), sys.getswitchinterval(), type(sys.stdin).__name__,
        type(sys.stdout).__name__, signal.signal.__name__, 'mod_wsgi.interpreter_options' in environ)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;

fn app_dir(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    dir.write("app.wsgi", APP);
    for mark in ["all", "a", "g", "embedded", "site", "evil"] {
        dir.write(&format!("lib-{mark}/mark_{mark}.py"), "");
    }
    dir
}

fn expect(apache: &Apache, path: &str, want: &str) {
    let r = apache.get(path);
    assert_eq!((r.status, r.text()), (200, want.to_string()), "GET {path}\n{}", apache.error_log());
}

/// Embedded mode on Python 3.12: a (own GIL, preloaded by WSGIImportScript), b (shared GIL),
/// c (own GIL, no container of its own; a SetEnv tries to smuggle settings in) and %{GLOBAL}.
#[test]
fn containers_scope_path_switch_interval_and_restrictions() {
    let Some(home) = python_home("3.12") else { return };
    let config = format!(
        "WSGIPythonHome {home}\n\
         WSGIPythonPath {{dir}}/lib-all\n\
         WSGISwitchInterval 0.004\n\
         WSGIRestrictStdin On\n\
         WSGIPerInterpreterGIL On\n\
         <WSGIInterpreterOptions application-group=a>\n\
         \x20   WSGIPythonPath {{dir}}/lib-a\n\
         \x20   WSGISwitchInterval 0.0021\n\
         \x20   WSGIRestrictStdout On\n\
         \x20   WSGIRestrictSignal Off\n\
         </WSGIInterpreterOptions>\n\
         <WSGIInterpreterOptions application-group=b>\n\
         \x20   WSGIPerInterpreterGIL Off\n\
         \x20   WSGISwitchInterval 0.0031\n\
         \x20   WSGIRestrictStdin Off\n\
         </WSGIInterpreterOptions>\n\
         <WSGIInterpreterOptions application-group=%{{GLOBAL}}>\n\
         \x20   WSGIPythonPath {{dir}}/lib-g\n\
         \x20   WSGIRestrictStdout On\n\
         </WSGIInterpreterOptions>\n\
         <WSGIInterpreterOptions process-group=%{{GLOBAL}}>\n\
         \x20   WSGIPythonPath {{dir}}/lib-embedded\n\
         </WSGIInterpreterOptions>\n\
         WSGIImportScript {{dir}}/app.wsgi process-group=%{{GLOBAL}} application-group=a\n\
         WSGIScriptAlias /a {{dir}}/app.wsgi application-group=a\n\
         WSGIScriptAlias /b {{dir}}/app.wsgi application-group=b\n\
         WSGIScriptAlias /c {{dir}}/app.wsgi application-group=c\n\
         WSGIScriptAlias /g {{dir}}/app.wsgi application-group=%{{GLOBAL}}\n\
         <Location /c>\n    SetEnv mod_wsgi.interpreter_options path={{dir}}/lib-evil\n</Location>\n"
    );
    for mpm in [Mpm::Event, Mpm::Worker] {
        let apache = Apache::start_in(app_dir("interp-options"), mpm, &config);
        apache.wait_for_log("Imported WSGI script");
        // Containers' paths layered over WSGIPythonPath, least specific first, then in order;
        // each layer in front of the ones before.
        expect(
            &apache,
            "/a/",
            "marks=all,a,embedded order=lib-embedded,lib-a,lib-all switch=0.0021 stdin=Restricted stdout=Restricted signal=signal leaked=False",
        );
        // An application group's switch interval on the shared GIL would be every group's:
        // skipped, and WSGISwitchInterval stays.
        expect(
            &apache,
            "/b/",
            "marks=all,embedded order=lib-embedded,lib-all switch=0.0040 stdin=TextIOWrapper stdout=TextIOWrapper signal=intercept leaked=False",
        );
        expect(
            &apache,
            "/c/",
            "marks=all,embedded order=lib-embedded,lib-all switch=0.0040 stdin=Restricted stdout=TextIOWrapper signal=intercept leaked=False",
        );
        expect(
            &apache,
            "/g/",
            "marks=all,g,embedded order=lib-embedded,lib-g,lib-all switch=0.0040 stdin=Restricted stdout=Restricted signal=intercept leaked=False",
        );
        let log = apache.error_log();
        assert!(log.contains("Skipping per-interpreter switch interval 0.003100s for 'b'"), "{log}");
        assert!(log.contains("Create interpreter 'a' with own GIL.") && log.contains("Create interpreter 'b'."), "{log}");
        assert!(crash_lines(&log).is_empty(), "{log}");
    }
}

/// Daemon mode: containers naming the daemon's process group apply in it, and only there;
/// WSGIPythonPath does not (a daemon's path is its python-path=, as in mod_wsgi). An
/// application group's switch interval on the daemon's shared GIL is skipped without touching
/// the GIL's (b is created by its first request, after %{GLOBAL} read it).
#[test]
fn containers_select_a_daemon_process_group() {
    let Some(home) = python_home("3.12") else { return };
    let dir = app_dir("interp-options-daemon");
    dir.write("run/.keep", "");
    let config = format!(
        "WSGISocketPrefix {{dir}}/run/wsgi\n\
         WSGIPythonHome {home}\n\
         WSGIPythonPath {{dir}}/lib-all\n\
         WSGISwitchInterval 0.004\n\
         WSGIRestrictStdin On\n\
         WSGIDaemonProcess site python-home={home} threads=4\n\
         <WSGIInterpreterOptions process-group=site>\n    WSGIPythonPath {{dir}}/lib-site\n    WSGISwitchInterval 0.0077\n</WSGIInterpreterOptions>\n\
         <WSGIInterpreterOptions process-group=site application-group=%{{GLOBAL}}>\n    WSGIRestrictStdout On\n</WSGIInterpreterOptions>\n\
         <WSGIInterpreterOptions process-group=site application-group=x>\n    WSGIPerInterpreterGIL On\n    WSGIRestrictSignal Off\n</WSGIInterpreterOptions>\n\
         WSGIScriptAlias /site-g {{dir}}/app.wsgi process-group=site application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /site-x {{dir}}/app.wsgi process-group=site application-group=x\n\
         WSGIScriptAlias /embedded-x {{dir}}/app.wsgi application-group=x\n\
         <WSGIInterpreterOptions process-group=site application-group=b>\n    WSGISwitchInterval 0.0031\n</WSGIInterpreterOptions>\n\
         WSGIScriptAlias /site-b {{dir}}/app.wsgi\n\
         <Location /site-b>\n    WSGIProcessGroup site\n    WSGIApplicationGroup b\n</Location>\n"
    );
    let apache = Apache::start_in(dir, Mpm::Event, &config);
    expect(&apache, "/site-g/", "marks=site order=lib-site switch=0.0077 stdin=Restricted stdout=Restricted signal=intercept leaked=False");
    expect(&apache, "/site-x/", "marks=site order=lib-site switch=0.0077 stdin=Restricted stdout=TextIOWrapper signal=signal leaked=False");
    expect(&apache, "/embedded-x/", "marks=all order=lib-all switch=0.0040 stdin=Restricted stdout=TextIOWrapper signal=intercept leaked=False");
    expect(&apache, "/site-b/", "marks=site order=lib-site switch=0.0077 stdin=Restricted stdout=TextIOWrapper signal=intercept leaked=False");
    expect(&apache, "/site-g/", "marks=site order=lib-site switch=0.0077 stdin=Restricted stdout=Restricted signal=intercept leaked=False");
    let log = apache.error_log();
    assert!(log.contains("Create interpreter 'x' with own GIL."), "{log}");
    assert!(log.contains("Skipping per-interpreter switch interval 0.003100s for 'b'"), "{log}");
    assert!(crash_lines(&log).is_empty(), "{log}");
}

#[test]
fn configuration_errors_and_warnings() {
    for (body, message) in [
        ("WSGISwitchInterval 0\n", "WSGISwitchInterval must be a positive number of seconds."),
        ("WSGISwitchInterval fast\n", "WSGISwitchInterval must be a positive number of seconds."),
        ("WSGISwitchInterval 1e30\n", "WSGISwitchInterval must be at most 3600 seconds."),
        ("<VirtualHost *:80>\nWSGISwitchInterval 0.01\n</VirtualHost>\n", "WSGISwitchInterval cannot occur within <VirtualHost> section"),
        ("<VirtualHost *:80>\nWSGIPythonPath /tmp\n</VirtualHost>\n", "WSGIPythonPath cannot occur within <VirtualHost> section"),
        (
            "<WSGIInterpreterOptions application-group=a>\nWSGIRestrictStdin Maybe\n</WSGIInterpreterOptions>\n",
            "WSGIRestrictStdin must be one of: Off | On",
        ),
        ("<WSGIInterpreterOptions application-group=a>\nWSGIPythonHome /tmp\n</WSGIInterpreterOptions>\n", "WSGIPythonHome ("),
        ("WSGIFreeThreading Sometimes\n", "WSGIFreeThreading must be one of: Off | On"),
    ] {
        let (ok, out) = config_test(body);
        assert!(!ok, "accepted: {body}\n{out}");
        assert!(out.contains(message), "{body}: expected {message:?} in\n{out}");
        assert!(out.contains("httpd.conf"), "no file and line: {out}");
    }
    let (ok, out) = config_test("WSGIFreeThreading On\n");
    assert!(ok && out.contains("WSGIFreeThreading On has no effect"), "{out}");
    let (ok, out) = config_test("<WSGIInterpreterOptions application-group=a>\n  WSGIFreeThreading Off\n</WSGIInterpreterOptions>\n");
    assert!(ok && out.contains("cannot be scoped per application group"), "{out}");
    let (ok, out) = config_test("WSGIFreeThreading Off\nWSGISwitchInterval 0.01\n<WSGIInterpreterOptions process-group=site>\n  WSGIFreeThreading Off\n  WSGIRestrictSignal Off\n</WSGIInterpreterOptions>\n");
    assert!(ok && !out.contains("WSGIFreeThreading"), "{out}");
}
