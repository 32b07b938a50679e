//! `WSGIPassApacheRequest` (issue 13): `environ['apache.request_rec']` is a capsule holding the
//! request's `request_rec` in embedded mode when On (as mod_wsgi's: no name), absent when Off
//! and in daemon mode; a `SetEnv` of the module's entry neither creates one nor shows.

mod common;
use common::*;

const APP: &str = r#"
import ctypes

def application(environ, start_response):
    capsule = environ.get('apache.request_rec')
    if capsule is None:
        body = 'none'
    else:
        get = ctypes.pythonapi.PyCapsule_GetPointer
        get.restype = ctypes.c_void_p
        get.argtypes = [ctypes.py_object, ctypes.c_char_p]
        # request_rec begins with its pool, connection and server pointers: all non-null.
        words = ctypes.cast(get(capsule, None), ctypes.POINTER(ctypes.c_void_p))
        body = '%s %s' % (type(capsule).__name__, all(words[i] for i in range(3)))
    body += ' leaked=%s' % ('mod_wsgi.request_rec' in environ)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;

#[test]
fn the_request_rec_is_passed_only_when_asked_and_only_in_embedded_mode() {
    let dir = TempDir::new("apache-request");
    dir.write("app.wsgi", APP);
    dir.write("run/.keep", "");
    let daemon = if is_root() {
        "WSGISocketPrefix {dir}/run/wsgi\nWSGIDaemonProcess site user=nobody threads=2\n\
         WSGIScriptAlias /daemon {dir}/app.wsgi process-group=site application-group=%{GLOBAL}\n\
         <Location /daemon>\n    WSGIPassApacheRequest On\n</Location>\n"
    } else {
        ""
    };
    let apache = Apache::start_in(
        dir,
        Mpm::Event,
        &format!(
            "WSGIScriptAlias /on {{dir}}/app.wsgi\nWSGIScriptAlias /off {{dir}}/app.wsgi\n\
             <Location /on>\n    WSGIPassApacheRequest On\n</Location>\n\
             <Location /off>\n    SetEnv mod_wsgi.request_rec 4096\n</Location>\n{daemon}"
        ),
    );
    let expect = |path: &str, want: &str| {
        let r = apache.get(path);
        assert_eq!((r.status, r.text()), (200, want.to_string()), "{path}\n{}", apache.error_log());
    };
    expect("/on", "PyCapsule True leaked=False");
    expect("/off", "none leaked=False");
    if is_root() {
        expect("/daemon", "none leaked=False");
    }
    let (ok, out) = config_test("WSGIPassApacheRequest sometimes\n");
    assert!(!ok && out.contains("WSGIPassApacheRequest must be one of: Off | On"), "{out}");
}
