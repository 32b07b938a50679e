//! Bad input gets a clear error and loses nothing: broken scripts and applications get
//! mod_wsgi's statuses and error-log lines while the same child keeps serving; bad
//! directives stop `apache2 -t` with the file, line and reason.

mod common;
use common::*;

const GOOD: &str = "import os\ndef application(e, s):\n    s('200 OK', [('Content-Type', 'text/plain')])\n    return [b'ok %d' % os.getpid()]\n";

fn server(mpm: Mpm, scripts: &[(&str, &str)]) -> Apache {
    let dir = TempDir::new("errors");
    dir.write("good.wsgi", GOOD);
    let mut body = String::from("WSGIScriptAlias /good {dir}/good.wsgi\n");
    for (name, source) in scripts {
        dir.write(&format!("{name}.wsgi"), source);
        body.push_str(&format!("WSGIScriptAlias /{name} {{dir}}/{name}.wsgi\n"));
    }
    body.push_str("WSGIScriptAlias /missing {dir}/missing.wsgi\nWSGIScriptAlias /scripts {dir}/\n");
    Apache::start_in(dir, mpm, &body)
}

/// The child that served `/good` before still serves it after the failure.
fn same_child_still_serves(apache: &Apache, before: &str) {
    let after = apache.get("/good");
    assert_eq!(after.status, 200);
    assert_eq!(after.text(), before, "a different process answered: the child did not survive");
}

#[test]
fn missing_script_and_missing_callable_are_404() {
    let apache = server(Mpm::Event, &[("nocallable", "x = 1\n")]);
    let r = apache.get("/missing");
    assert_eq!(r.status, 404);
    apache.wait_for_log("Target WSGI script not found or unable to stat");
    let r = apache.get("/nocallable");
    assert_eq!(r.status, 404);
    let log = apache.wait_for_log("does not contain WSGI application");
    assert!(log.contains("nocallable.wsgi' does not contain WSGI application 'application'"), "{log}");
}

#[test]
fn script_raising_on_import_is_500_and_imported_again() {
    for mpm in ALL_MPMS {
        let apache = server(mpm, &[("broken", "raise ValueError('broken on purpose')\n")]);
        let before = apache.get("/good").text();
        let r = apache.get("/broken");
        assert_eq!(r.status, 500, "{mpm:?}");
        let log = apache.wait_for_log("ValueError: broken on purpose");
        // mod_wsgi 6's numbered lines, naming the exception's type and the interpreter.
        assert!(log.contains("WSGI0109: Unable to execute Python script file"), "{log}");
        let dir = apache.dir.path().display();
        assert!(log.contains(&format!("[script {dir}/broken.wsgi] WSGI0109: Unable to execute Python script file '{dir}/broken.wsgi'.")), "{log}");
        assert!(log.contains(&format!("WSGI0174: [script {dir}/broken.wsgi] ValueError exception raised processing WSGI script '{dir}/broken.wsgi' for sub-interpreter 'localhost:{}|/broken' in embedded mode.", apache.port)), "{log}");
        assert!(log.contains("Traceback (most recent call last):"), "{log}");
        same_child_still_serves(&apache, &before);
        // Fixed on disk: imported again on the next request, no restart.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        apache.dir.write("broken.wsgi", GOOD);
        let r = apache.get("/broken");
        assert_eq!(r.status, 200, "{mpm:?}: {}", r.text());
    }
}

#[test]
fn exceptions_and_misbehaving_apps_are_500_and_the_child_keeps_serving() {
    let apps = [
        ("raises", "def application(e, s):\n    raise RuntimeError('app failed on purpose')\n", "RuntimeError: app failed on purpose"),
        ("exits", "import sys\ndef application(e, s):\n    sys.exit(3)\n", "SystemExit exception raised by WSGI script"),
        ("nostart", "def application(e, s):\n    return [b'x']\n", "start_response"),
        ("strbody", "def application(e, s):\n    s('200 OK', [])\n    return ['text, not bytes']\n", "response iterable must yield bytes, not str"),
        ("split", "def application(e, s):\n    s('200 OK', [('X-A', 'a\\r\\nSet-Cookie: evil=1')])\n    return [b'x']\n", "carriage return/line feed character in header value"),
        ("badname", "def application(e, s):\n    s('200 OK', [('Bad:Name', 'v')])\n    return [b'x']\n", "invalid character"),
        ("badstatus", "def application(e, s):\n    s('OK', [])\n    return [b'x']\n", "status code must be a 3 digit integer: b'OK'"),
        ("itererr", "def application(e, s):\n    s('200 OK', [])\n    def g():\n        raise KeyError('in iteration')\n        yield b''\n    return g()\n", "KeyError: 'in iteration'"),
        // traceback itself failing (as in an interpreter whose abc caches a shared extension
        // module corrupted): the frames are still logged, read off the traceback objects.
        ("notb", "import traceback\ndef broken(*a, **k):\n    raise TypeError('traceback is broken')\ntraceback.format_exception = broken\ndef inner():\n    raise ValueError('deep')\ndef application(e, s):\n    inner()\n", "notb.wsgi\", line 6, in inner\n"),
    ];
    for mpm in ALL_MPMS {
        let scripts: Vec<(&str, &str)> = apps.iter().map(|(n, s, _)| (*n, *s)).collect();
        let apache = server(mpm, &scripts);
        let before = apache.get("/good").text();
        for (name, _, expected) in apps {
            let r = apache.get(&format!("/{name}"));
            assert_eq!(r.status, 500, "{mpm:?} /{name}: {}", r.text());
            assert!(!r.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("Set-Cookie")), "response split by /{name}");
            let log = apache.wait_for_log(expected);
            assert!(log.contains(expected), "{mpm:?} /{name}: no '{expected}' in the log:\n{log}");
            same_child_still_serves(&apache, &before);
        }
    }
}

#[test]
fn directory_of_scripts() {
    let apache = server(Mpm::Event, &[]);
    let r = apache.get("/scripts/good.wsgi");
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("ok "));
    assert_eq!(apache.get("/scripts/nothere.wsgi").status, 404);
}

#[test]
fn bad_directives_stop_config_test_with_file_line_and_reason() {
    let cases = [
        ("WSGIScriptAlias /only-one-arg\n", "WSGIScriptAlias takes a URL"),
        ("WSGIScriptAlias /a {dir}/a.wsgi colour=blue\n", "invalid option 'colour'"),
        ("WSGIScriptAlias /a {dir}/a.wsgi application-group=%{NOPE}\n", "invalid application group"),
        ("WSGIApplicationGroup %{GLOBALS}\n", "invalid application group '%{GLOBALS}'"),
        ("WSGICallableObject 9lives\n", "must be a Python identifier"),
        ("WSGIPassAuthorization maybe\n", "WSGIPassAuthorization must be one of: Off | On"),
        ("WSGIPythonHome relative/path\n", "must be an absolute path"),
        ("WSGIPythonHome /nonexistent/python\n", "is not a directory"),
        ("WSGIScriptAliasMatch ^/(a( {dir}/a.wsgi\n", "could not be compiled"),
        ("<VirtualHost 127.0.0.1:80>\nWSGIPythonHome /usr\n</VirtualHost>\n", "cannot occur within <VirtualHost> section"),
        ("WSGIDaemonProcess site1 processes=2 threads=15 request-timeout=-1\n", "Invalid request timeout for WSGI daemon process."),
        ("WSGIProcessGroup %{NOPE}\n", "WSGIProcessGroup: invalid application group '%{NOPE}'"),
        ("WSGIScriptReloading sometimes\n", "WSGIScriptReloading must be one of: Off | On"),
    ];
    for (directive, reason) in cases {
        let (ok, out) = config_test(directive);
        assert!(!ok, "apache2 -t accepted {directive:?}");
        assert!(out.contains("Syntax error on line"), "{directive:?}: {out}");
        assert!(out.contains("{dir}/httpd.conf"), "{directive:?} does not name the file: {out}");
        assert!(out.contains(reason), "{directive:?}: expected {reason:?} in {out}");
    }
    let (ok, out) = config_test("<IfModule mod_wsgi.c>\nWSGIScriptAlias /a {dir}/a.wsgi\nWSGIProcessGroup %{GLOBAL}\n</IfModule>\n<IfModule !wsgi_module>\nBogusDirective\n</IfModule>\n");
    assert!(ok, "{out}");
}

#[test]
fn python_home_without_a_matching_engine_names_both_versions() {
    let dir = TempDir::new("home");
    dir.write("venv/pyvenv.cfg", "home = /usr/bin\nversion = 3.99.0\n");
    let (ok, out) = config_test(&format!("WSGIPythonHome {}/venv\n", dir.path().display()));
    assert!(!ok);
    assert!(out.contains("is Python 3.99"), "{out}");
    assert!(out.contains(&format!("engines installed: {}", env!("MOD_WSGI_DEFAULT_PYTHON_VERSION"))) || out.contains("engines installed:"), "{out}");
    assert!(out.contains("mod_wsgi-engine-py3.99.so"), "{out}");
}

#[test]
fn a_stale_engine_stops_config_test_instead_of_every_child() {
    // An engine built for an older interface, for a made-up Python 3.98.
    let engines = module_path().parent().unwrap().to_path_buf();
    let stale = engines.join("mod_wsgi-engine-py3.98.so");
    std::fs::write(&stale, b"\x7fELF...mod_wsgi-rs-engine-abi:0001...").unwrap();
    let dir = TempDir::new("stale");
    dir.write("venv/pyvenv.cfg", "home = /usr/bin\nversion = 3.98.0\n");
    let (ok, out) = config_test(&format!("WSGIPythonHome {}/venv\n", dir.path().display()));
    std::fs::remove_file(&stale).unwrap();
    assert!(!ok);
    assert!(out.contains("was built for engine interface 1, this module speaks"), "{out}");
}

/// An `exc_info` that is not `(exception class, value, traceback)`, given once the response
/// has started, is a `TypeError` the application can catch. mod_wsgi 4.9 and 6.1 restore it
/// as the pending exception and the child crashes.
#[test]
fn a_bogus_exc_info_is_a_type_error_not_a_crash() {
    let app = r#"
def application(environ, start_response):
    write = start_response('200 OK', [('Content-Type', 'text/plain')])
    write(b'started\n')
    seen = []
    class Fake(object):
        pass
    fake = Fake()
    fake.__bases__ = (BaseException,)
    class traceback(object):
        pass
    for exc_info in [(None, None, None), (ValueError('x'), None, None), (1, 2, 3), (ValueError, ValueError('x'), 'tb'),
                     (fake, 2, None), (ValueError, ValueError('x'), traceback())]:
        try:
            start_response('500 Oops', [], exc_info)
        except TypeError as e:
            seen.append('TypeError')
    return [' '.join(seen).encode()]
"#;
    for mpm in [Mpm::Event, Mpm::Prefork] {
        let apache = server(mpm, &[("bogus", app)]);
        let r = apache.get("/bogus");
        assert_eq!(
            (r.status, r.text()),
            (200, "started\nTypeError TypeError TypeError TypeError TypeError TypeError".to_string()),
            "{}",
            apache.error_log()
        );
        assert!(crash_lines(&apache.error_log()).is_empty(), "{}", apache.error_log());
    }
}
