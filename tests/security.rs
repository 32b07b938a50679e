//! Shared hosting: every `.htaccess` is written by a customer the administrator does not trust,
//! and every request header by a client. Neither may run a script where the administrator did
//! not allow scripts, choose an interpreter, or take Apache's signals away from it.

mod common;
use common::*;

const MIME: &str = "LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so\nTypesConfig /etc/mime.types\n";

const HELLO: &str = "def application(e, s):\n    s('200 OK', [])\n    return [b'ran']\n\
                     def other(e, s):\n    s('200 OK', [])\n    return [b'other callable']\n";

#[test]
fn scripts_selected_by_handler_directives_need_exec_cgi() {
    let dir = TempDir::new("execcgi");
    for script in ["noexec/app.wsgi", "sethandler/app.wsgi", "customer/app.wsgi", "exec/app.wsgi"] {
        dir.write(script, HELLO);
    }
    // What a customer can write with AllowOverride FileInfo.
    dir.write("customer/.htaccess", "AddHandler wsgi-script .wsgi\n");
    let apache = Apache::start_in(
        dir,
        Mpm::Event,
        &format!(
            "{MIME}\
             Alias /noexec {{dir}}/noexec\n<Directory {{dir}}/noexec>\n  AddHandler wsgi-script .wsgi\n</Directory>\n\
             Alias /sethandler {{dir}}/sethandler\n<Directory {{dir}}/sethandler>\n  SetHandler wsgi-script\n</Directory>\n\
             Alias /customer {{dir}}/customer\n<Directory {{dir}}/customer>\n  AllowOverride FileInfo\n</Directory>\n\
             Alias /exec {{dir}}/exec\n<Directory {{dir}}/exec>\n  Options +ExecCGI\n  AddHandler wsgi-script .wsgi\n</Directory>\n\
             WSGIScriptAlias /aliased {{dir}}/noexec/app.wsgi\n"
        ),
    );
    for path in ["/noexec/app.wsgi", "/sethandler/app.wsgi", "/customer/app.wsgi"] {
        let r = apache.get(path);
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        let file = format!("{}{path}", apache.dir.path().display());
        apache.wait_for_log(&file);
        assert!(apache.error_log().contains(&format!("Options ExecCGI is off in this directory: {file}")), "{}", apache.error_log());
    }
    assert_eq!(apache.get("/exec/app.wsgi").text(), "ran");
    // WSGIScriptAlias is the administrator's own mapping: no ExecCGI needed.
    assert_eq!(apache.get("/aliased").text(), "ran");
}

#[test]
fn htaccess_may_choose_the_callable_but_not_the_interpreter() {
    let dir = TempDir::new("htaccess");
    // Directives outside mod_wsgi's FileInfo set, each in its own .htaccess, under the widest
    // AllowOverride there is.
    let refused = [
        ("group", "WSGIApplicationGroup %{GLOBAL}"),
        ("process", "WSGIProcessGroup %{GLOBAL}"),
        ("alias", "WSGIScriptAlias /x /etc/passwd"),
        ("restrict", "WSGIRestrictSignal Off"),
    ];
    let mut config = String::new();
    for (name, directive) in refused {
        dir.write(&format!("{name}/app.wsgi"), HELLO);
        dir.write(&format!("{name}/.htaccess"), &format!("{directive}\n"));
        config.push_str(&format!("WSGIScriptAlias /{name} {{dir}}/{name}/app.wsgi\n<Directory {{dir}}/{name}>\n  AllowOverride All\n</Directory>\n"));
    }
    // The FileInfo ones are the site's own business.
    dir.write("allowed/app.wsgi", HELLO);
    dir.write(
        "allowed/.htaccess",
        "WSGICallableObject other\nWSGIPassAuthorization On\nWSGIScriptReloading Off\nWSGIErrorOverride Off\n\
         WSGIChunkedRequest On\nWSGIMapHEADToGET Auto\nWSGITrustedProxyHeaders X-Forwarded-For\nWSGITrustedProxies 127.0.0.1\n",
    );
    config.push_str("WSGIScriptAlias /allowed {dir}/allowed/app.wsgi\n<Directory {dir}/allowed>\n  AllowOverride FileInfo\n</Directory>\n");
    // In the server's own <Directory>, the administrator may choose the interpreter.
    dir.write("admin/app.wsgi", "def application(e, s):\n    s('200 OK', [])\n    return [repr(e['mod_wsgi.application_group']).encode()]\n");
    config.push_str("WSGIScriptAlias /admin {dir}/admin/app.wsgi\n<Directory {dir}/admin>\n  WSGIApplicationGroup %{GLOBAL}\n  WSGIProcessGroup %{GLOBAL}\n</Directory>\n");
    let apache = Apache::start_in(dir, Mpm::Event, &config);

    for (name, directive) in refused {
        assert_eq!(apache.get(&format!("/{name}")).status, 500, "{directive}");
        let word = directive.split(' ').next().unwrap();
        let line = format!("{}/{name}/.htaccess: {word} not allowed here", apache.dir.path().display());
        assert!(apache.wait_for_log(&line).contains(&line), "{line}");
    }
    assert_eq!(apache.get("/allowed").text(), "other callable");
    assert_eq!(apache.get("/admin").text(), "''");
}

/// A GET with the client's own Host header (the harness always sends the right one).
fn get_with_host(apache: &Apache, path: &str, host: &str) -> Response {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_response(&raw, false)
}

#[test]
fn clients_never_choose_the_application_group() {
    let dir = TempDir::new("client-group");
    dir.write(
        "app.wsgi",
        "import json, mod_wsgi\n\
         def application(e, s):\n    s('200 OK', [])\n    groups = sorted(g for g in mod_wsgi.process_metrics()['thread_states'] if g)\n\
         \x20   return [json.dumps([e['mod_wsgi.application_group'], e['SCRIPT_NAME'], e['mod_wsgi.script_name'], groups]).encode()]\n",
    );
    // X-Script-Name believed from every client: no WSGITrustedProxies.
    let apache = Apache::start_in(dir, Mpm::Event, "WSGITrustedProxyHeaders X-Script-Name\nWSGIScriptAlias /app {dir}/app.wsgi\n");
    let group = format!("localhost:{}|/app", apache.port);
    for script_name in ["/one", "/two", "/APP", "/app/../other"] {
        let r = apache.request("GET", "/app", &[("X-Script-Name", script_name)], b"");
        // The application sees the proxied SCRIPT_NAME; the interpreter is the mapped one's.
        assert_eq!(r.text(), format!("[\"{group}\", \"{script_name}\", \"/app\", [\"{group}\"]]"));
    }
    // Nor by the port in its Host header (Apache's SERVER_PORT): the group has the port the
    // request arrived on.
    for host in ["localhost", "localhost:1", "localhost:2", "localhost:65535"] {
        let r = get_with_host(&apache, "/app", host);
        assert_eq!(r.text(), format!("[\"{group}\", \"/app\", \"/app\", [\"{group}\"]]"), "Host: {host}");
    }
}

/// `WSGIScriptAlias /app` also serves `//app` and `///app`, even with `MergeSlashes Off`: all
/// spellings must share one interpreter (a client must not create interpreters at will).
#[test]
fn extra_slashes_do_not_make_new_interpreters() {
    let dir = TempDir::new("slash-group");
    dir.write(
        "app.wsgi",
        "import mod_wsgi\n\
         def application(e, s):\n    s('200 OK', [])\n    groups = sorted(g for g in mod_wsgi.process_metrics()['thread_states'] if g)\n\
         \x20   return [('%s %s' % (e['mod_wsgi.application_group'], groups)).encode()]\n",
    );
    let apache = Apache::start_in(dir, Mpm::Event, "MergeSlashes Off\nWSGIScriptAlias /app {dir}/app.wsgi\n");
    let group = format!("localhost:{}|/app", apache.port);
    for path in ["/app", "//app", "///app"] {
        let r = get_with_host(&apache, path, "localhost");
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.text(), format!("{group} ['{group}']"), "{path}");
    }
}

/// An application that tries to take over SIGTERM (Apache's stop signal) or SIGUSR2 (which
/// Apache does not use), under prefork with the main interpreter, where the request runs on
/// the thread that started Python, so that nothing but the restriction stops the handler.
const SIGNAL_APP: &str = r#"
import os, signal

def handler(signum, frame):
    pass

def application(environ, start_response):
    signum = getattr(signal, environ['QUERY_STRING'])
    returned = signal.signal(signum, handler)
    installed = signal.getsignal(signum) is handler
    start_response('200 OK', [])
    return [('%s %s %d' % (returned is handler, installed, os.getpid())).encode()]
"#;

fn signal_server(restrict: &str) -> Apache {
    let dir = TempDir::new("signals");
    dir.write("app.wsgi", SIGNAL_APP);
    Apache::start_in(dir, Mpm::Prefork, &format!("{restrict}WSGIScriptAlias /app {{dir}}/app.wsgi application-group=%{{GLOBAL}}\n"))
}

#[test]
fn restricted_signal_registration_is_ignored_and_apache_keeps_its_signals() {
    let mut apache = signal_server("");
    let first = apache.get("/app?SIGTERM").text();
    let (answer, pid) = first.rsplit_once(' ').unwrap();
    // The application gets its handler back, as if installed; Apache's stays.
    assert_eq!(answer, "True False", "{first}");
    apache.wait_for_log("Callback registration for signal 15 ignored.");
    // Graceful restart: a new child serves; the old one went.
    // SAFETY: SIGUSR1 (graceful restart) to the Apache parent this test started.
    unsafe { libc::kill(apache.pid(), libc::SIGUSR1) };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut served_by = pid.to_string();
    while served_by == pid && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        served_by =
            try_http(apache.port, "GET", "/app?SIGTERM", &[], b"").map(|r| r.text().rsplit(' ').next().unwrap().to_string()).unwrap_or_default();
    }
    assert_ne!(served_by, pid, "no new child after a graceful restart:\n{}", apache.error_log());
    // Stop (SIGTERM): each child goes at once, none has to be killed.
    apache.stop();
    let log = apache.error_log();
    assert!(log.contains("caught SIGTERM, shutting down"), "{log}");
    assert!(!log.contains("still did not exit"), "a child ignored SIGTERM:\n{log}");
}

#[test]
fn unrestricted_signal_registration_goes_through() {
    let apache = signal_server("WSGIRestrictSignal Off\n");
    let answer = apache.get("/app?SIGUSR2").text();
    assert!(answer.starts_with("False True "), "{answer}");
    assert!(!apache.error_log().contains("Callback registration"), "{}", apache.error_log());
}

/// The environ the spoofing test reads back: the values of the module's keys as the
/// application sees them, and the Authorization header as bytes (latin-1 in the environ).
const ENVIRON_VALUES: &str = r#"
def application(environ, start_response):
    keys = ['mod_wsgi.process_group', 'mod_wsgi.request_start', 'mod_wsgi.script_reloading', 'mod_wsgi.application_group']
    lines = ['%s=%s' % (k, environ.get(k)) for k in keys]
    lines.append('auth=%s' % environ.get('HTTP_AUTHORIZATION', '').encode('latin-1').hex())
    body = '\n'.join(lines).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;

/// A `SetEnv` (here from a customer's `.htaccess` with FileInfo) cannot pass for the module's
/// own `mod_wsgi.*` values, embedded or in a daemon (whose queue-timeout reads
/// `mod_wsgi.request_start`: a forged start of 1 made every request a 504); and with
/// `WSGIPassAuthorization On` the Authorization header's bytes arrive unchanged.
#[test]
fn setenv_cannot_forge_the_modules_values_and_authorization_keeps_its_bytes() {
    let dir = TempDir::new("setenv-spoof");
    for site in ["embedded", "daemon"] {
        dir.write(&format!("{site}/app.wsgi"), ENVIRON_VALUES);
        dir.write(
            &format!("{site}/.htaccess"),
            "SetEnv mod_wsgi.process_group spoof\nSetEnv mod_wsgi.request_start 1\nSetEnv mod_wsgi.script_reloading 0\n\
             SetEnv mod_wsgi.application_group spoof\n",
        );
    }
    let apache = Apache::start_in(
        dir,
        Mpm::Event,
        "WSGISocketPrefix {dir}/wsgi\nWSGIDaemonProcess site threads=2 queue-timeout=5\nWSGIPassAuthorization On\n\
         <Directory {dir}/embedded>\n  AllowOverride FileInfo\n</Directory>\n<Directory {dir}/daemon>\n  AllowOverride FileInfo\n</Directory>\n\
         WSGIScriptAlias /embedded {dir}/embedded/app.wsgi application-group=%{GLOBAL}\n\
         WSGIScriptAlias /daemon {dir}/daemon/app.wsgi process-group=site application-group=%{GLOBAL}\n",
    );
    let credential = b"Custom \xe9t\xe9";
    for (path, group) in [("/embedded", ""), ("/daemon", "site")] {
        let mut raw = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: ").into_bytes();
        raw.extend_from_slice(credential);
        raw.extend_from_slice(b"\r\n\r\n");
        let response = raw_http(apache.port, &raw);
        assert_eq!(response.status, 200, "{path}: {}\n{}", response.text(), apache.error_log());
        let text = response.text();
        let value = |key: &str| text.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or_default().to_string();
        assert_eq!(value("mod_wsgi.process_group"), group, "{path}: {text}");
        assert_eq!(value("mod_wsgi.application_group"), "", "{path}: {text}");
        assert_ne!(value("mod_wsgi.request_start"), "1", "{path}: {text}");
        assert_eq!(value("mod_wsgi.script_reloading"), "1", "{path}: {text}");
        assert_eq!(value("auth"), credential.iter().map(|b| format!("{b:02x}")).collect::<String>(), "{path}: {text}");
    }
}
