//! `WSGIDispatchScript` (issue 13): the script's `application_group(environ)`,
//! `process_group(environ)` and `callable_object(environ)` choose, per request, where it runs
//! (`None` keeps the configured one); it runs in Apache's child in the main interpreter, with
//! mod_wsgi's environ (`mod_wsgi.process_group` empty, `mod_wsgi.application_group` its own,
//! no `mod_wsgi.callable_object`); an exception is a 500 with its traceback; a wrong type is
//! a 500 that says so; bad definitions stop `apache2 -t` with mod_wsgi's messages.

mod common;
use common::*;

const DISPATCH: &str = r#"
def application_group(environ):
    first = environ['PATH_INFO'].split('/')[1]
    if first == 'raise':
        raise RuntimeError('dispatch failed on purpose')
    if first == 'number':
        return 42
    if first == 'keep':
        return None
    seen = '%s|%s|%s' % (environ['mod_wsgi.application_group'] == '', environ['mod_wsgi.process_group'] == '',
                         'mod_wsgi.callable_object' in environ)
    return '%s:%s' % (first, seen)

def process_group(environ):
    return 'site' if '/daemon' in environ['SCRIPT_NAME'] + environ['PATH_INFO'] else None

def callable_object(environ):
    return 'other' if environ.get('QUERY_STRING') == 'other' else None
"#;

const APP: &str = r#"
def _answer(name, environ, start_response):
    body = '%s group=%s process=%s' % (name, environ['mod_wsgi.application_group'], environ['mod_wsgi.process_group'])
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]

def application(environ, start_response):
    return _answer('application', environ, start_response)

def other(environ, start_response):
    return _answer('other', environ, start_response)
"#;

#[test]
fn the_dispatch_script_chooses_group_process_and_callable() {
    let dir = TempDir::new("dispatch");
    dir.write("dispatch.wsgi", DISPATCH);
    dir.write("app.wsgi", APP);
    dir.write("run/.keep", "");
    let daemon = if is_root() { "WSGISocketPrefix {dir}/run/wsgi\nWSGIDaemonProcess site user=nobody threads=2\n" } else { "" };
    let apache = Apache::start_in(
        dir,
        Mpm::Event,
        &format!("{daemon}WSGIDispatchScript {{dir}}/dispatch.wsgi\nWSGIScriptAlias / {{dir}}/app.wsgi application-group=configured\n"),
    );
    let expect = |path: &str, status: u16, want: &str| {
        let r = apache.get(path);
        assert_eq!((r.status, if status == 200 { r.text() } else { String::new() }), (status, want.to_string()), "{path}\n{}", apache.error_log());
    };
    // The dispatch environ is mod_wsgi's: its own group (the main interpreter), no process
    // group, no callable.
    expect("/alpha", 200, "application group=alpha:True|True|False process=");
    expect("/beta?other", 200, "other group=beta:True|True|False process=");
    expect("/keep", 200, "application group=configured process=");
    if is_root() {
        expect("/daemon", 200, "application group=daemon:True|True|False process=site");
    }
    expect("/raise", 500, "");
    expect("/number", 500, "");
    let log = apache.error_log();
    assert!(log.contains("RuntimeError: dispatch failed on purpose"), "{log}");
    assert!(log.contains("Application group must be a string object"), "{log}");
    // It still serves afterwards.
    expect("/alpha", 200, "application group=alpha:True|True|False process=");
    assert!(crash_lines(&log).is_empty(), "{log}");
}

/// The usual shape: applications in daemons (WSGIRestrictEmbedded On), the dispatch script in
/// Apache's children all the same (Python starts there for it, as in mod_wsgi); its answer is
/// bound by WSGIRestrictProcess like a configured process group.
#[test]
fn dispatch_under_restrict_embedded_chooses_the_daemon() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let dir = TempDir::new("dispatch-daemons");
    dir.write("dispatch.wsgi", DISPATCH);
    dir.write("app.wsgi", APP);
    dir.write("run/.keep", "");
    let apache = Apache::start_in(
        dir,
        Mpm::Event,
        "WSGIRestrictEmbedded On\nWSGISocketPrefix {dir}/run/wsgi\n\
         WSGIDaemonProcess site user=nobody threads=2\nWSGIDaemonProcess other user=nobody threads=2\n\
         WSGIDispatchScript {dir}/dispatch.wsgi\n\
         WSGIScriptAlias / {dir}/app.wsgi process-group=other application-group=configured\n\
         <Location /restricted>\n    WSGIRestrictProcess other\n</Location>\n",
    );
    let get = |path: &str| {
        let r = apache.get(path);
        (r.status, r.text())
    };
    // Configured: daemon 'other'; the dispatch environ shows no process group all the same.
    assert_eq!(get("/plain"), (200, "application group=plain:True|True|False process=other".to_string()), "{}", apache.error_log());
    assert_eq!(get("/daemon"), (200, "application group=daemon:True|True|False process=site".to_string()), "{}", apache.error_log());
    assert_eq!(get("/restricted/daemon").0, 500);
    assert!(apache.error_log().contains("Daemon process called 'site' cannot be accessed by this WSGI application"), "{}", apache.error_log());
    assert!(crash_lines(&apache.error_log()).is_empty(), "{}", apache.error_log());
}

#[test]
fn bad_definitions_stop_the_configuration() {
    for (body, message) in [
        ("WSGIDispatchScript\n", "Location of dispatch script not supplied."),
        ("WSGIDispatchScript /srv/d.wsgi process-group=x\n", "Invalid option to WSGI dispatch script definition."),
        ("WSGIDispatchScript /srv/d.wsgi application-group=\n", "Invalid name for WSGI application group."),
    ] {
        let (ok, out) = config_test(body);
        assert!(!ok, "accepted: {body}\n{out}");
        assert!(out.contains(message), "{body}: expected {message:?} in\n{out}");
    }
}
