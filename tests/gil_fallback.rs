//! `WSGIPerInterpreterGIL Auto` (issue 11, ours): a group whose application imports an
//! extension module with single-phase init (here `readline`, and on 3.12 `_datetime` behind
//! `zoneinfo`, which Django needs) is moved to the shared GIL before it serves, with one log
//! line naming the module; with `On` the import fails cleanly (500, no crash: the module is
//! refused before its init runs); neighbouring own-GIL groups keep their own GIL.
//!
//! Which GIL a group has shows in the switch interval, a setting of the GIL: a group on the
//! shared GIL sees the one `%{GLOBAL}` sets, an own-GIL group does not.

mod common;
use common::*;

const NEEDS: &str = r#"
import sys
import readline
import mod_wsgi

def application(environ, start_response):
    qs = environ.get('QUERY_STRING', '')
    if environ['PATH_INFO'] == '/switch':
        body = '%.4f' % sys.getswitchinterval()
    else:
        body = 'readline %s refused=%s' % (readline.__name__, ','.join(mod_wsgi.refused_extensions))
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;

const FINE: &str = r#"
import sys

def application(environ, start_response):
    qs = environ.get('QUERY_STRING', '')
    if environ['PATH_INFO'] == '/switch':
        if qs:
            sys.setswitchinterval(float(qs))
        body = '%.4f' % sys.getswitchinterval()
    else:
        body = 'fine'
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;

/// zoneinfo at import time, as Django does (on 3.12 it needs the single-phase _datetime).
const TZ: &str = r#"
import zoneinfo

def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [str(zoneinfo.ZoneInfo('UTC')).encode()]
"#;

fn expect(apache: &Apache, path: &str, want: &str) {
    let r = apache.get(path);
    assert_eq!((r.status, r.text()), (200, want.to_string()), "GET {path}\n{}", apache.error_log());
}

fn falls_back(version: &str) {
    let Some(home) = python_home(version) else { return };
    let config = format!(
        "WSGIPythonHome {home}\n\
         WSGIPerInterpreterGIL Auto\n\
         <WSGIInterpreterOptions application-group=pinned>\n    WSGIPerInterpreterGIL On\n</WSGIInterpreterOptions>\n\
         WSGIImportScript {{dir}}/needs.wsgi process-group=%{{GLOBAL}} application-group=pre\n\
         WSGIScriptAlias /pre {{dir}}/needs.wsgi application-group=pre\n\
         WSGIScriptAlias /needs {{dir}}/needs.wsgi application-group=needs\n\
         WSGIScriptAlias /pinned {{dir}}/needs.wsgi application-group=pinned\n\
         WSGIScriptAlias /fine {{dir}}/fine.wsgi application-group=fine\n\
         WSGIScriptAlias /tz {{dir}}/tz.wsgi application-group=tz\n\
         WSGIScriptAlias /g {{dir}}/fine.wsgi application-group=%{{GLOBAL}}\n"
    );
    for mpm in [Mpm::Event, Mpm::Worker] {
        let dir = TempDir::new("gil-fallback");
        dir.write("needs.wsgi", NEEDS);
        dir.write("fine.wsgi", FINE);
        dir.write("tz.wsgi", TZ);
        let mut apache = Apache::start_in(dir, mpm, &config);
        // Preloaded: moved when the child starts, before any request.
        let log = apache.wait_for_log("Imported WSGI script");
        assert!(log.contains("Application group 'pre' moves to the shared GIL (WSGIPerInterpreterGIL Auto): it imports 'readline', which an interpreter with its own GIL cannot load (single-phase init"), "{mpm:?}\n{log}");
        // The first request is served: the import is retried on the shared GIL.
        expect(&apache, "/needs", "readline readline refused=");
        expect(&apache, "/pre", "readline readline refused=");
        let log = apache.error_log();
        assert_eq!(log.matches("Application group 'needs' moves to the shared GIL").count(), 1, "{mpm:?}\n{log}");
        assert!(log.contains("WSGIInterpreterOptions application-group=needs> WSGIPerInterpreterGIL Off"), "{mpm:?}: no advice on pinning\n{log}");

        // needs (moved) shares the main GIL with %{GLOBAL}; fine keeps its own.
        expect(&apache, "/g/switch?0.0123", "0.0123");
        expect(&apache, "/needs/switch", "0.0123");
        expect(&apache, "/fine/switch", "0.0050");
        expect(&apache, "/g/switch?0.005", "0.0050");

        // On: no fallback; the import fails with the reason, the child lives on.
        let r = apache.get("/pinned");
        assert_eq!(r.status, 500, "{mpm:?}: {}", r.text());
        let log = apache.error_log();
        assert!(
            log.contains(
                "module readline does not support loading in subinterpreters (single-phase init): mod_wsgi-rs refused it before its init could run"
            ),
            "{mpm:?}\n{log}"
        );
        assert!(!log.contains("Application group 'pinned' moves"), "{mpm:?}\n{log}");

        // zoneinfo (on 3.12 through the single-phase _datetime) works under Auto.
        expect(&apache, "/tz", "UTC");

        // Under load from every thread, both groups answer.
        let results = hammer(apache.port, 12, 10, |n| Request::get(if n % 2 == 0 { "/needs" } else { "/fine" }));
        let failures: Vec<_> = results
            .iter()
            .filter(|(_, o)| !matches!(o, Ok(r) if r.status == 200))
            .map(|(r, o)| format!("{}: {:?}", r.path, o.as_ref().map(|r| r.status)))
            .collect();
        assert!(failures.is_empty(), "{mpm:?}: {failures:?}\n{}", apache.error_log());

        apache.stop_gracefully();
        let log = apache.error_log();
        assert!(crash_lines(&log).is_empty(), "{mpm:?}: {:?}\n{log}", crash_lines(&log));
    }
}

#[test]
fn auto_falls_back_on_python_3_12() {
    falls_back("3.12");
}

#[test]
fn auto_falls_back_on_python_3_13() {
    falls_back("3.13");
}

const PYO3_APP: &str = r#"
import rpds
import mod_wsgi

def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('%s refused=%s' % (len(rpds.HashTrieMap({1: 2})), ','.join(mod_wsgi.refused_extensions))).encode()]
"#;

/// A PyO3 package loads in one interpreter per process: the first group that imports it gets
/// it (moved to the shared GIL under Auto if the package does not declare per-interpreter GIL
/// support), a second group gets a 500 and a line pointing at `%{GLOBAL}`.
#[test]
fn pyo3_packages_get_their_own_advice() {
    let Some(home) = python_home("3.12") else { return };
    let dir = TempDir::new("gil-pyo3");
    dir.write("app.wsgi", PYO3_APP);
    let site = dir.path().join("site");
    pip_install_for("3.12", &site, &["rpds-py"]);
    let site = site.display();
    let config = format!(
        "WSGIPythonHome {home}\nWSGIPythonPath {site}\n\
         WSGIPerInterpreterGIL Auto\n\
         WSGIScriptAlias /first {{dir}}/app.wsgi application-group=first\n\
         WSGIScriptAlias /second {{dir}}/app.wsgi application-group=second\n"
    );
    let apache = Apache::start_in(dir, Mpm::Event, &config);
    let first = apache.get("/first");
    assert_eq!((first.status, first.text()), (200, "1 refused=".to_string()), "{}", apache.error_log());
    let log = apache.error_log();
    assert!(log.contains("Application group 'first' moves to the shared GIL (WSGIPerInterpreterGIL Auto): it imports 'rpds.rpds'"), "{log}");
    let second = apache.get("/second");
    assert_eq!(second.status, 500, "{}", apache.error_log());
    let log = apache.error_log();
    assert!(
        log.contains("Application group 'second' imports 'rpds.rpds', an extension module built with PyO3, which works in one interpreter per process only: run this application in the main interpreter, WSGIApplicationGroup %{GLOBAL}"),
        "{log}"
    );
    // The first group goes on serving.
    assert_eq!(apache.get("/first").status, 200);
}
