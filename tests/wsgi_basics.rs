//! The request path end to end through a real Apache: serving, environ, request body,
//! streaming and close(), under each MPM.

mod common;
use common::*;

const APP: &str = r#"
import hashlib, json, os, sys

def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    if path == '/environ':
        keys = ['REQUEST_METHOD', 'SCRIPT_NAME', 'PATH_INFO', 'QUERY_STRING', 'SERVER_NAME', 'SERVER_PORT',
                'SERVER_PROTOCOL', 'REMOTE_ADDR', 'HTTP_X_TEST', 'CONTENT_TYPE', 'wsgi.url_scheme',
                'mod_wsgi.application_group', 'mod_wsgi.callable_object', 'HTTP_AUTHORIZATION', 'FROM_SETENV',
                'REQUEST_URI', 'GATEWAY_INTERFACE', 'mod_wsgi.listener_port', 'mod_wsgi.request_start',
                'PATH_TRANSLATED', 'mod_wsgi.script_name', 'mod_wsgi.path_info']
        data = {k: environ.get(k) for k in keys}
        data['wsgi.version'] = list(environ['wsgi.version'])
        data['apache.version'] = list(environ['apache.version'])
        data['file_wrapper'] = callable(environ['wsgi.file_wrapper'])
        data['wsgi.multithread'] = environ['wsgi.multithread']
        data['types'] = sorted({type(v).__name__ for k, v in environ.items() if k.isupper()})
        body = json.dumps(data).encode()
    elif path == '/echo':
        inp = environ['wsgi.input']
        h = hashlib.sha256()
        n = 0
        while True:
            block = inp.read(65536)
            if not block:
                break
            h.update(block)
            n += len(block)
        body = ('%d %s' % (n, h.hexdigest())).encode()
    elif path == '/lines':
        inp = environ['wsgi.input']
        first = inp.readline()
        second = inp.readline(3)
        rest = list(inp)
        body = json.dumps([first.decode(), second.decode(), [l.decode() for l in rest]]).encode()
    elif path == '/stream':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        def gen():
            for i in range(5):
                yield b'chunk %d\n' % i
                yield b''
        return gen()
    elif path == '/write':
        write = start_response('200 OK', [('Content-Type', 'text/plain')])
        write(b'written ')
        return [b'then returned']
    elif path == '/close':
        marker = environ['QUERY_STRING']
        class Body:
            def __iter__(self):
                yield b'body'
            def close(self):
                open(marker, 'w').write('closed')
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return Body()
    elif path == '/cut':
        start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '5')])
        return [b'12345678']
    elif path == '/connection':
        # Apache owns the connection: see connection_headers_never_contradict_apache.
        value = environ['QUERY_STRING']
        start_response('200 OK', [('Content-Type', 'text/plain'), ('Connection', value), ('Keep-Alive', 'timeout=999')])
        return [value.encode()]
    else:
        body = b'Hello World!'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('X-Pid', str(os.getpid()))])
    return [body]
"#;

fn server(mpm: Mpm) -> Apache {
    let dir = TempDir::new("basics");
    dir.write("app.wsgi", APP);
    Apache::start_in(dir, mpm, "WSGIScriptAlias /app {dir}/app.wsgi\nWSGIScriptAlias / {dir}/app.wsgi\nSetEnv FROM_SETENV yes\n")
}

fn json(r: &Response) -> Json {
    Json::parse(&r.text())
}

#[test]
fn hello_under_each_mpm() {
    for mpm in ALL_MPMS {
        let apache = server(mpm);
        let r = apache.get("/app");
        assert_eq!(r.status, 200, "{mpm:?}");
        assert_eq!(r.text(), "Hello World!");
        assert_eq!(r.header("Content-Type"), Some("text/plain"));
        let r = apache.get("/app/stream");
        assert_eq!(r.text(), "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n", "{mpm:?}");
    }
}

#[test]
fn environ_follows_the_mount_point() {
    let apache = server(Mpm::Event);
    let r = apache.request("GET", "/app/environ?a=1&b=%20", &[("X-Test", "yes")], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let env = json(&r);
    assert_eq!(env.get("REQUEST_METHOD"), "GET");
    assert_eq!(env.get("SCRIPT_NAME"), "/app");
    assert_eq!(env.get("PATH_INFO"), "/environ");
    assert_eq!(env.get("QUERY_STRING"), "a=1&b=%20");
    assert_eq!(env.get("REQUEST_URI"), "/app/environ?a=1&b=%20");
    assert_eq!(env.get("GATEWAY_INTERFACE"), "CGI/1.1");
    assert_eq!(env.get("HTTP_X_TEST"), "yes");
    assert_eq!(env.get("SERVER_PORT"), apache.port.to_string());
    assert_eq!(env.get("REMOTE_ADDR"), "127.0.0.1");
    assert_eq!(env.get("wsgi.url_scheme"), "http");
    assert_eq!(env.get("FROM_SETENV"), "yes");
    assert_eq!(env.get("mod_wsgi.application_group"), format!("localhost:{}|/app", apache.port));
    assert_eq!(env.get("mod_wsgi.callable_object"), "application");
    assert_eq!(env.get("wsgi.version"), "[1, 0]");
    assert_eq!(env.get("apache.version"), "[2, 4, 71]".replace("71", &apache_patch_version()));
    assert_eq!(env.get("file_wrapper"), "true");
    assert_eq!(env.get("mod_wsgi.listener_port"), apache.port.to_string());
    assert!(env.get("mod_wsgi.request_start").parse::<u64>().unwrap() > 1_700_000_000_000_000);
    assert_eq!(env.get("wsgi.multithread"), "true");
    // Every CGI variable is a native string.
    assert_eq!(env.get("types"), "[\"str\"]");
    // Authorization is passed only where WSGIPassAuthorization is On.
    assert_eq!(env.get("HTTP_AUTHORIZATION"), "null");
    // As mod_wsgi: SCRIPT_NAME and PATH_INFO as mapped, and (as CGI) PATH_INFO looked up as a
    // URL, which here is the mount at '/'.
    assert_eq!(env.get("mod_wsgi.script_name"), "/app");
    assert_eq!(env.get("mod_wsgi.path_info"), "/environ");
    assert_eq!(env.get("PATH_TRANSLATED"), format!("{}/app.wsgi/environ", apache.dir.path().display()));

    // Mounted at '/', SCRIPT_NAME is empty and PATH_INFO keeps the slash.
    let env = json(&apache.get("/environ"));
    assert_eq!(env.get("SCRIPT_NAME"), "");
    assert_eq!(env.get("PATH_INFO"), "/environ");
    assert_eq!(env.get("mod_wsgi.application_group"), format!("localhost:{}|", apache.port));
}

#[test]
fn authorization_only_with_pass_authorization() {
    let dir = TempDir::new("auth");
    dir.write(
        "env.wsgi",
        "import json\ndef application(e, s):\n    s('200 OK', [])\n    return [json.dumps(e.get('HTTP_AUTHORIZATION')).encode()]\n",
    );
    let apache = Apache::start_in(
        dir,
        Mpm::Event,
        "WSGIScriptAlias /on {dir}/env.wsgi\nWSGIScriptAlias /off {dir}/env.wsgi\n<Location /on>\nWSGIPassAuthorization On\n</Location>\n",
    );
    let auth = [("Authorization", "Basic dXNlcjpwdw==")];
    assert_eq!(apache.request("GET", "/on", &auth, b"").text(), "\"Basic dXNlcjpwdw==\"");
    assert_eq!(apache.request("GET", "/off", &auth, b"").text(), "null");
}

#[test]
fn request_body_streams_through_wsgi_input() {
    for mpm in ALL_MPMS {
        let apache = server(mpm);
        // 8 MiB of varied bytes; the app hashes what it reads in 64 KiB blocks.
        let body: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let expected = sha256_hex(&body);
        let r = apache.request("POST", "/app/echo", &[("Content-Type", "application/octet-stream")], &body);
        assert_eq!(r.status, 200, "{mpm:?}");
        assert_eq!(r.text(), format!("{} {}", body.len(), expected), "{mpm:?}");
    }
}

#[test]
fn readline_and_iteration() {
    let apache = server(Mpm::Worker);
    let r = apache.request("POST", "/app/lines", &[], b"first line\nsecond\nthird\nlast");
    assert_eq!(r.text(), r#"["first line\n", "sec", ["ond\n", "third\n", "last"]]"#);
}

#[test]
fn write_callable_close_and_content_length() {
    let apache = server(Mpm::Event);
    assert_eq!(apache.get("/app/write").text(), "written then returned");
    let marker = apache.dir.path().join("closed.txt");
    let r = apache.get(&format!("/app/close?{}", marker.display()));
    assert_eq!(r.text(), "body");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "closed");
    let r = apache.get("/app/cut");
    assert_eq!(r.header("Content-Length"), Some("5"));
    assert_eq!(r.text(), "12345");
}

#[test]
fn changed_script_is_reloaded_without_a_restart() {
    for mpm in ALL_MPMS {
        let dir = TempDir::new("reload");
        let version = |n: u32| {
            format!("import os\nVERSION = {n}\ndef application(e, s):\n    s('200 OK', [])\n    return [b'v%d %d' % (VERSION, os.getpid())]\n")
        };
        dir.write("app.wsgi", &version(1));
        let apache = Apache::start_in(dir, mpm, "WSGIScriptAlias /app {dir}/app.wsgi\n");
        let first = apache.get("/app").text();
        assert!(first.starts_with("v1 "), "{first}");
        // mtimes have one-second granularity on some filesystems.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        apache.dir.write("app.wsgi", &version(2));
        let second = apache.get("/app").text();
        assert!(second.starts_with("v2 "), "{mpm:?}: {second}");
        assert_eq!(first.split(' ').nth(1), second.split(' ').nth(1), "{mpm:?}: reloading restarted the process");
    }
    // WSGIScriptReloading Off: the loaded script stays until the child restarts.
    let dir = TempDir::new("noreload");
    dir.write("app.wsgi", "def application(e, s):\n    s('200 OK', [])\n    return [b'v1 ' + e['mod_wsgi.script_reloading'].encode()]\n");
    let apache = Apache::start_in(dir, Mpm::Prefork, "WSGIScriptReloading Off\nWSGIScriptAlias /app {dir}/app.wsgi\n");
    assert_eq!(apache.get("/app").text(), "v1 0");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    apache.dir.replace("app.wsgi", "def application(e, s):\n    s('200 OK', [])\n    return [b'v2']\n");
    assert_eq!(apache.get("/app").text(), "v1 0", "reloaded although WSGIScriptReloading is Off");
}

#[test]
fn group_naming_forms_and_alias_match() {
    let dir = TempDir::new("groups");
    dir.write(
        "group.wsgi",
        "def application(e, s):\n    s('200 OK', [])\n    return [('%s|%s|%s' % (e['mod_wsgi.application_group'], e['SCRIPT_NAME'], e['PATH_INFO'])).encode()]\n\
         def other(e, s):\n    s('200 OK', [])\n    return [b'other callable']\n",
    );
    let apache = Apache::start_in(
        dir,
        Mpm::Worker,
        "WSGIScriptAlias /server {dir}/group.wsgi application-group=%{SERVER}\n\
         WSGIScriptAlias /env {dir}/group.wsgi\n\
         <Location /env>\n  WSGIApplicationGroup %{ENV:SITE_GROUP}\n</Location>\n\
         SetEnv SITE_GROUP from-env\n\
         WSGIScriptAliasMatch ^/match/([a-z]+) {dir}/$1.wsgi\n\
         WSGIScriptAlias /literal {dir}/group.wsgi application-group=shop\n\
         WSGIScriptAlias /host {dir}/group.wsgi application-group=%{HOST}\n\
         WSGIScriptAlias /callable {dir}/group.wsgi callable-object=%{ENV:APP_CALLABLE}\n\
         SetEnv APP_CALLABLE other\n",
    );
    let port = apache.port;
    assert_eq!(apache.get("/server/x").text(), format!("localhost:{port}|/server|/x"));
    assert_eq!(apache.get("/env").text(), "from-env|/env|");
    assert_eq!(apache.get("/literal").text(), "shop|/literal|");
    assert_eq!(apache.get("/host").text(), format!("localhost:{port}|/host|"));
    assert_eq!(apache.get("/callable").text(), "other callable");
    assert_eq!(apache.get("/match/group/extra").text(), format!("localhost:{port}|/match/group|/match/group|/extra"));
    assert_eq!(apache.get("/match/nosuch").status, 404);
    // PATH_TRANSLATED's lookup of /extra (denied by <Directory />) stops before access checks,
    // so it logs nothing (mod_wsgi's logs AH01630).
    assert!(!apache.error_log().contains("AH01630"), "{}", apache.error_log());
}

/// Sends `requests` (path, and the client's Connection header) on one connection at once
/// (pipelined) and returns every byte the server sent until it closed the connection.
fn pipelined(apache: &Apache, requests: &[(&str, &str)]) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
    let all: String =
        requests.iter().map(|(path, connection)| format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: {connection}\r\n\r\n")).collect();
    stream.write_all(all.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    String::from_utf8_lossy(&raw).into_owned()
}

#[test]
fn connection_headers_never_contradict_apache() {
    let apache = Apache::start_in(
        {
            let dir = TempDir::new("connection");
            dir.write("app.wsgi", APP);
            dir
        },
        Mpm::Event,
        "WSGIScriptAlias /app {dir}/app.wsgi\nKeepAliveTimeout 7\n",
    );
    // `Connection: close` from the application: Apache closes after that response, so the
    // request pipelined behind it is never answered.
    let raw = pipelined(&apache, &[("/app/connection?close", "keep-alive"), ("/app/connection?unanswered", "close")]);
    assert_eq!(raw.matches("HTTP/1.1 200 OK").count(), 1, "{raw}");
    assert!(raw.contains("\r\nConnection: close\r\n") && !raw.contains("unanswered"), "{raw}");
    // Any other value, and the application's Keep-Alive, are dropped: Apache keeps the
    // connection (both requests answered) and announces its own terms (KeepAliveTimeout 7).
    let raw = pipelined(&apache, &[("/app/connection?keep-alive", "keep-alive"), ("/app/connection?upgrade", "close")]);
    assert_eq!(raw.matches("HTTP/1.1 200 OK").count(), 2, "{raw}");
    assert!(raw.contains("\r\nKeep-Alive: timeout=7, max=100\r\n"), "{raw}");
    assert!(!raw.contains("999") && !raw.contains("\r\nConnection: keep-alive") && !raw.contains("\r\nConnection: upgrade"), "{raw}");
}

/// The patch level of the Apache under test (`apache2 -v`).
fn apache_patch_version() -> String {
    let out = std::process::Command::new(APACHE).arg("-v").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split("Apache/2.4.").nth(1).unwrap().split(|c: char| !c.is_ascii_digit()).next().unwrap().to_string()
}
