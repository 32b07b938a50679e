//! `WSGIHandlerScript name script [options]` (issue 13): requests whose Apache handler is
//! `name` (`SetHandler`/`AddHandler`) are served by the script's `handle_request`, with the
//! requested file as `SCRIPT_FILENAME` (no `Options ExecCGI` needed: the handler script is
//! the administrator's); a definition in a `<Directory>` replaces the server's of the same
//! name there; `process-group=` sends it to a daemon; `.htaccess` cannot define one.

mod common;
use common::*;

const HANDLER: &str = r#"
import mod_wsgi

def handle_request(environ, start_response):
    with open(environ['SCRIPT_FILENAME']) as f:
        text = f.read().strip()
    body = '%s %s group=%s process=%s' % (
        __name__.split('_')[0] or 'h', text.upper(), environ['mod_wsgi.application_group'], environ['mod_wsgi.process_group'])
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;

fn site(daemon: bool) -> Apache {
    let dir = TempDir::new("handler-scripts");
    dir.write("handler.wsgi", &HANDLER.replace("__name__.split('_')[0] or 'h'", "'server'"));
    dir.write("other.wsgi", &HANDLER.replace("__name__.split('_')[0] or 'h'", "'other'"));
    dir.write("pages/hello.page", "hello\n");
    dir.write("other/x.page", "x\n");
    dir.write("run/.keep", "");
    let daemon_config = if daemon {
        "WSGISocketPrefix {dir}/run/wsgi\nWSGIDaemonProcess site user=nobody threads=2\n\
         WSGIHandlerScript daemon-page {dir}/handler.wsgi process-group=site application-group=%{GLOBAL}\n\
         Alias /daemon {dir}/pages\n<Location /daemon>\n    SetHandler daemon-page\n</Location>\n"
    } else {
        ""
    };
    Apache::start_in(
        dir,
        Mpm::Event,
        &format!(
            "WSGIHandlerScript page {{dir}}/handler.wsgi application-group=pages\n\
             Alias /pages {{dir}}/pages\nAlias /other {{dir}}/other\n\
             <Directory {{dir}}/pages>\n    SetHandler page\n</Directory>\n\
             <Directory {{dir}}/other>\n    SetHandler page\n    WSGIHandlerScript page {{dir}}/other.wsgi\n</Directory>\n\
             {daemon_config}"
        ),
    )
}

#[test]
fn handler_scripts_serve_the_files_their_handler_selects() {
    let apache = site(false);
    let r = apache.get("/pages/hello.page");
    assert_eq!((r.status, r.text()), (200, "server HELLO group=pages process=".to_string()), "{}", apache.error_log());
    // The directory's own definition of the name.
    let r = apache.get("/other/x.page");
    assert!(r.status == 200 && r.text().starts_with("other X group="), "{} {}\n{}", r.status, r.text(), apache.error_log());
    assert!(crash_lines(&apache.error_log()).is_empty(), "{}", apache.error_log());
}

#[test]
fn a_handler_script_can_run_in_a_daemon() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = site(true);
    let r = apache.get("/daemon/hello.page");
    assert_eq!((r.status, r.text()), (200, "server HELLO group= process=site".to_string()), "{}", apache.error_log());
}

#[test]
fn htaccess_cannot_define_one_and_bad_definitions_stop_the_configuration() {
    let dir = TempDir::new("handler-scripts-htaccess");
    dir.write("handler.wsgi", HANDLER);
    dir.write("pages/hello.page", "hello\n");
    dir.write("pages/.htaccess", &format!("WSGIHandlerScript evil {}/handler.wsgi\nSetHandler evil\n", dir.path().display()));
    let apache = Apache::start_in(dir, Mpm::Event, "Alias /pages {dir}/pages\n<Directory {dir}/pages>\n    AllowOverride All\n</Directory>\n");
    let r = apache.get("/pages/hello.page");
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(apache.error_log().contains("WSGIHandlerScript not allowed here"), "{}", apache.error_log());
    for (body, message) in [
        ("WSGIHandlerScript\n", "Name for handler script not supplied."),
        ("WSGIHandlerScript page\n", "Location of handler script not supplied."),
        ("WSGIHandlerScript page /srv/h.wsgi callable-object=x\n", "Invalid option to WSGI handler script definition."),
        ("WSGIHandlerScript page /srv/h.wsgi pass-authorization=maybe\n", "Invalid value for authorization flag."),
        ("WSGIHandlerScript page /srv/h.wsgi application-group=\n", "Invalid name for WSGI application group."),
    ] {
        let (ok, out) = config_test(body);
        assert!(!ok, "accepted: {body}\n{out}");
        assert!(out.contains(message), "{body}: expected {message:?} in\n{out}");
    }
}
