//! Side by side with Debian's mod_wsgi 4.9 (`libapache2-mod-wsgi-py3`, the reference for
//! behaviour): the same application and requests through both modules, in one run. Cases
//! where we differ on purpose are listed in the README ("Deliberate differences") and
//! checked here too, so that the list stays true.

mod common;
use common::*;
use std::path::Path;

const APP: &str = r#"
import json

def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    if path.startswith('/environ'):
        keys = ['REQUEST_METHOD', 'SCRIPT_NAME', 'PATH_INFO', 'QUERY_STRING', 'CONTENT_TYPE', 'CONTENT_LENGTH',
                'SERVER_PROTOCOL', 'HTTP_X_CUSTOM', 'wsgi.url_scheme', 'wsgi.multithread', 'wsgi.multiprocess',
                'wsgi.run_once', 'wsgi.input_terminated', 'mod_wsgi.application_group', 'mod_wsgi.callable_object',
                'mod_wsgi.process_group', 'mod_wsgi.request_handler', 'mod_wsgi.script_reloading', 'HTTP_AUTHORIZATION',
                'REQUEST_URI', 'PATH_TRANSLATED', 'mod_wsgi.script_name', 'mod_wsgi.path_info']
        body = json.dumps({k: environ.get(k) for k in keys}, sort_keys=True).encode()
    elif path == '/echo':
        body = environ['wsgi.input'].read()
    elif path == '/lines':
        body = json.dumps([l.decode() for l in environ['wsgi.input']]).encode()
    elif path == '/nostart':
        return [b'x']
    elif path == '/raise':
        raise RuntimeError('boom')
    elif path == '/str':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return ['text']
    elif path == '/cut':
        start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '3')])
        return [b'abcdef']
    elif path == '/status':
        start_response('418 I\'m a teapot', [('Content-Type', 'text/plain'), ('X-Extra', 'yes')])
        return [b'teapot']
    elif path == '/empty':
        start_response('204 No Content', [])
        return []
    elif path == '/write':
        write = start_response('200 OK', [('Content-Type', 'text/plain')])
        write(b'a')
        return [b'b', b'', b'c']
    elif path == '/crlf':
        start_response('200 OK', [('X-Split', 'a\r\nX-Injected: 1')])
        return [b'split']
    elif path == '/te':
        start_response('200 OK', [('Transfer-Encoding', 'chunked')])
        return [b'unframed']
    elif path == '/facts':
        import io
        import mod_wsgi
        fw = environ['wsgi.file_wrapper']
        facts = {'thread_id_is_int': isinstance(environ.get('mod_wsgi.thread_id'), int),
                 'PATH': 'PATH' in environ, 'HTTPS': 'HTTPS' in environ, 'scheme': environ['wsgi.url_scheme'],
                 'fw_is_mod_wsgi_class': fw is getattr(mod_wsgi, 'FileWrapper', None), 'fw_repr': repr(fw)}
        def outcome(f):
            try:
                return repr(f())
            except Exception as e:
                return '%s: %s' % (type(e).__name__, e)
        class Text(object):
            def read(self, n):
                return 'text'
        closed = fw(io.BytesIO(b'abc'))
        closed.close()
        facts['negative'] = outcome(lambda: fw(io.BytesIO(b'x'), -1))
        facts['blocks'] = outcome(lambda: [b.decode() for b in fw(io.BytesIO(b'abcdef'), 4)])
        facts['blksize'] = outcome(lambda: (fw(io.BytesIO(b''), 5).blksize, fw(io.BytesIO(b'')).blksize))
        facts['text'] = outcome(lambda: list(fw(Text())))
        facts['closed'] = outcome(lambda: next(iter(closed)))
        body = json.dumps(facts, sort_keys=True).encode()
    elif path.startswith('/rt'):
        import mod_wsgi
        timeout = mod_wsgi.RequestTimeout
        if path == '/rt':
            raise timeout()
        if path == '/rt-after-start':
            start_response('200 OK', [('Content-Type', 'text/plain')])
            raise timeout()
        if path == '/rt-iter-before':
            start_response('200 OK', [('Content-Type', 'text/plain')])
            def before():
                raise timeout()
                yield b'never'
            return before()
        if path == '/rt-close':
            start_response('200 OK', [('Content-Type', 'text/plain')])
            class Body(object):
                def __iter__(self):
                    return iter([b'body'])
                def close(self):
                    raise timeout()
            return Body()
    elif path == '/checks':
        # start_response's checks, each raised at the call (mod_wsgi 6's types and messages).
        outcomes = []
        def attempt(*args, **kwargs):
            try:
                start_response(*args, **kwargs)
                outcomes.append('accepted')
            except Exception as e:
                outcomes.append('%s: %s' % (type(e).__name__, e))
        attempt('200 OK')
        attempt('200 OK', [], None, 1)
        attempt(status='200 OK', headers=[])
        attempt('200 OK', {})
        attempt('200 OK', [], 'x')
        attempt('20 OK', [])
        attempt('200OK', [])
        attempt('200 OK\r\nX: y', [])
        attempt('200 OK', [['X', 'y']])
        attempt('200 OK', [('X',)])
        attempt('200 OK', [('X A', 'v')])
        attempt('200 OK', [('X-A', 'b\r\nX-Inj: 1')])
        attempt('200 OK', [('', 'v')])
        attempt('200 OK', [('Content-Length', 'abc')])
        write = start_response('200 OK', [('Content-Length', 'abc')])
        try:
            write(b'x')
            outcomes.append('written')
        except Exception as e:
            outcomes.append('%s: %s' % (type(e).__name__, e))
        write = start_response('200 OK', [('Content-Type', 'text/plain')])
        write(b'started\n')
        attempt('200 OK', [])
        attempt('500 Oops', [], (ValueError, ValueError('x'), None), )
        attempt('500 Oops', [], (ValueError, ValueError('x')))
        return [('\n'.join(outcomes)).encode()]
    elif path == '/latin':
        # Which exception start_response raises for what it cannot send.
        outcomes = []
        for status, headers in [('200 OK', [('X-Name', 'caf\u20ac')]), ('200 OK', [('X-N\u20ac', 'v')]),
                                ('200 \u20ac', []), ('200 OK', [('X-Name', b'bytes')]), ('200 OK', [('X-Name', 1)])]:
            try:
                start_response(status, headers)
                outcomes.append('accepted')
            except Exception as e:
                outcomes.append('%s: %s' % (type(e).__name__, e))
        body = '\n'.join(outcomes).encode()
    elif path.startswith('/connection/'):
        # Connection and Keep-Alive belong to Apache; see the README for what we pass on.
        headers = {'close': [('Connection', 'close')],
                   'keep-alive': [('Connection', 'keep-alive'), ('Keep-Alive', 'timeout=999, max=5')]}[path[12:]]
        start_response('200 OK', [('Content-Type', 'text/plain')] + headers)
        return [b'connection']
    else:
        body = b'hello'
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]

def other(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'other callable']
"#;

fn server(module: &Path) -> Apache {
    let dir = TempDir::new("compare");
    for script in ["app.wsgi", "noexec/app.wsgi", "exec/app.wsgi", "sethandler/app.wsgi", "group/app.wsgi", "callable/app.wsgi"] {
        dir.write(script, APP);
    }
    // What a customer's .htaccess may and may not say.
    dir.write("group/.htaccess", "WSGIApplicationGroup %{GLOBAL}\n");
    dir.write("callable/.htaccess", "WSGICallableObject other\n");
    Apache::start_with_module(
        dir,
        Mpm::Event,
        module,
        "LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so\nTypesConfig /etc/mime.types\n\
         WSGIScriptAlias /app {dir}/app.wsgi\nWSGIScriptAlias /missing {dir}/missing.wsgi\n\
         <Location /app/environ/auth>\n  WSGIPassAuthorization On\n</Location>\n\
         <Location /app/facts>\n  SetEnv HTTPS on\n</Location>\n\
         WSGIScriptAlias /nopath {dir}/app.wsgi\n<Location /nopath>\n  AcceptPathInfo Off\n</Location>\n\
         Alias /noexec {dir}/noexec\n<Directory {dir}/noexec>\n  AddHandler wsgi-script .wsgi\n</Directory>\n\
         Alias /sethandler {dir}/sethandler\n<Directory {dir}/sethandler>\n  SetHandler wsgi-script\n</Directory>\n\
         Alias /exec {dir}/exec\n<Directory {dir}/exec>\n  Options +ExecCGI\n  AddHandler wsgi-script .wsgi\n</Directory>\n\
         WSGIScriptAlias /aliased {dir}/noexec/app.wsgi\n\
         WSGIScriptAlias /group {dir}/group/app.wsgi\nWSGIScriptAlias /callable {dir}/callable/app.wsgi\n\
         <Directory {dir}/group>\n  AllowOverride FileInfo\n</Directory>\n<Directory {dir}/callable>\n  AllowOverride FileInfo\n</Directory>\n",
    )
}

/// A GET whose request target is sent as these bytes (not necessarily UTF-8), with this Host
/// header, one per connection.
fn raw_get(apache: &Apache, target: &[u8], host: &str) -> Response {
    let head = format!(" HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    raw_http(apache.port, &[&b"GET "[..], target, head.as_bytes()].concat())
}

/// What a response looks like with the server's own port taken out.
fn summary(apache: &Apache, r: &Response) -> String {
    common::summary(apache, r, &["content-type", "x-extra", "x-injected", "connection", "keep-alive"], |status| status >= 500)
}

/// The requests asked of both modules.
fn cases() -> Vec<Case<'static>> {
    const AUTH: &[(&str, &str)] = &[("Authorization", "Basic dXNlcjpwdw=="), ("X-Custom", "custom value")];
    vec![
        ("GET", "/app", &[], b""),
        ("GET", "/app/environ/x/y?a=1&b=2", AUTH, b""),
        ("GET", "/app/environ/auth", AUTH, b""),
        ("POST", "/app/environ", &[("Content-Type", "application/x-www-form-urlencoded")], b"a=1"),
        ("POST", "/app/echo", &[], b"some body bytes"),
        ("POST", "/app/lines", &[], b"one\ntwo\nthree"),
        ("GET", "/app/nostart", &[], b""),
        ("GET", "/app/raise", &[], b""),
        ("GET", "/app/str", &[], b""),
        ("GET", "/app/cut", &[], b""),
        ("GET", "/app/status", &[], b""),
        ("GET", "/app/empty", &[], b""),
        ("GET", "/app/write", &[], b""),
        ("HEAD", "/app", &[], b""),
        ("GET", "/missing", &[], b""),
        // A decoded URI that is not UTF-8 reaches the application, latin-1 decoded.
        ("GET", "/app/environ/caf%E9", &[], b""),
        // Scripts selected by AddHandler or SetHandler need Options ExecCGI (checked before the
        // file exists); WSGIScriptAlias needs none.
        ("GET", "/noexec/app.wsgi", &[], b""),
        ("GET", "/noexec/missing.wsgi", &[], b""),
        ("GET", "/sethandler/app.wsgi", &[], b""),
        ("GET", "/exec/app.wsgi/environ", &[], b""),
        ("GET", "/aliased/environ", &[], b""),
        // .htaccess may choose the callable, never the interpreter.
        ("GET", "/group", &[], b""),
        ("GET", "/callable", &[], b""),
        ("GET", "/app/latin", &[], b""),
        ("GET", "/app/checks", &[], b""),
        ("GET", "/app/facts", &[], b""),
        ("GET", "/app/rt", &[], b""),
        ("GET", "/app/rt-after-start", &[], b""),
        ("GET", "/app/rt-iter-before", &[], b""),
        ("GET", "/app/rt-close", &[], b""),
        // AcceptPathInfo Off: more path than the script is a 404.
        ("GET", "/nopath/extra", &[], b""),
        ("GET", "/nopath", &[], b""),
        ("GET", "/app/connection/close", &[], b""),
    ]
}

#[test]
fn same_answers_as_debian_mod_wsgi() {
    let debian = debian_mod_wsgi();
    let ours = server(&module_path());
    let theirs = server(debian);
    // /app/latin is compared below: its messages are mod_wsgi 6's.
    // mod_wsgi 6's own: its start_response messages, RequestTimeout, FileWrapper's checks.
    let cases: Vec<Case> =
        cases().into_iter().filter(|c| !["/app/latin", "/app/checks", "/app/facts"].contains(&c.1) && !c.1.starts_with("/app/rt")).collect();
    let mut differences = common::differences(&ours, &theirs, &cases, summary);
    // The same, with the byte 0xE9 raw in the request line.
    let raw_caf = |apache: &Apache| summary(apache, &raw_get(apache, b"/app/environ/caf\xe9", &format!("localhost:{}", apache.port)));
    let (a, b) = (raw_caf(&ours), raw_caf(&theirs));
    if a != b {
        differences.push(format!("GET /app/environ/caf\\xe9\n  mod_wsgi-rs: {a}\n  mod_wsgi:    {b}"));
    }
    assert!(differences.is_empty(), "differences from Debian's mod_wsgi:\n{}", differences.join("\n"));
    for apache in [&ours, &theirs] {
        let dir = apache.dir.path().display();
        apache.wait_for_log("WSGIApplicationGroup not allowed here");
        let log = apache.wait_for_log("Options ExecCGI is off in this directory");
        for line in [
            format!("Options ExecCGI is off in this directory: {dir}/noexec/app.wsgi"),
            format!("{dir}/group/.htaccess: WSGIApplicationGroup not allowed here"),
        ] {
            assert!(log.contains(&line), "{line:?} is not in the log of {dir}:\n{log}");
        }
    }

    // start_response's exceptions are mod_wsgi 6's (README): of the same types or subtypes as
    // 4.9's (UnicodeEncodeError is a ValueError), with 6's messages.
    let kinds = |apache: &Apache| -> Vec<String> {
        apache.get("/app/latin").text().lines().map(|l| l.split(':').next().unwrap_or("").replace("UnicodeEncodeError", "ValueError")).collect()
    };
    assert_eq!(kinds(&ours), kinds(&theirs));
    assert_eq!(kinds(&ours), ["ValueError", "ValueError", "ValueError", "TypeError", "TypeError"]);

    // Deliberate differences (README): we refuse what would corrupt the response.
    for path in ["/app/crlf", "/app/te"] {
        let r = ours.get(path);
        assert_eq!(r.status, 500, "{path}");
        assert!(r.header("X-Injected").is_none() && !r.text().contains("unframed"), "{path}");
    }
    // An application's Connection and Keep-Alive never contradict what Apache does with the
    // connection (mod_wsgi sends "Connection: keep-alive, close" and the app's timeout here).
    let theirs_ka = theirs.get("/app/connection/keep-alive");
    assert_eq!((theirs_ka.header("Connection"), theirs_ka.header("Keep-Alive")), (Some("keep-alive, close"), Some("timeout=999, max=5")));
    let ours_ka = ours.get("/app/connection/keep-alive");
    assert_eq!((ours_ka.status, ours_ka.header("Connection"), ours_ka.header("Keep-Alive")), (200, Some("close"), None));
    // The application group's port is the one the request arrived on, never the Host header's
    // (with which a client could create an interpreter per port).
    let group = |apache: &Apache| Json::parse(&raw_get(apache, b"/app/environ", "localhost:1").text()).get("mod_wsgi.application_group");
    assert_eq!(group(&theirs), "localhost:1|/app");
    assert_eq!(group(&ours), format!("localhost:{}|/app", ours.port));
    // PATH_TRANSLATED without the sub-request's access checks: mod_wsgi logs AH01630 for every
    // request whose PATH_INFO names a denied URL (here, any: <Directory /> denies all).
    assert!(theirs.error_log().contains("AH01630"), "{}", theirs.error_log());
    assert!(!ours.error_log().contains("AH01630"), "{}", ours.error_log());
}

/// `body` with the JSON entry `"key": value, ` taken out (the environ dumps are flat).
fn without_key(body: &str, key: &str) -> String {
    let Some(start) = body.find(&format!("\"{key}\": ")) else { return body.to_string() };
    let end = body[start..].find(", \"").map_or(body.len(), |i| start + i + 2);
    format!("{}{}", &body[..start], &body[end..])
}

/// mod_wsgi 6.1, built from PyPI for the same Python (what `pip install mod_wsgi` gives a new
/// user), side by side with ours on the same cases. Where 6.1 and 4.9 disagree we keep 4.9's
/// behaviour when 6.1's removes information (README: "Differences from mod_wsgi 6.1"): 6.1
/// passes no PATH_TRANSLATED and no `mod_wsgi.script_reloading`; those two keys are compared
/// on their own below, everything else must be the same.
#[test]
fn same_answers_as_mod_wsgi_6() {
    let ours = server(&module_path());
    let theirs = server(&mod_wsgi_6_module());
    let kept = ["PATH_TRANSLATED", "mod_wsgi.script_reloading"];
    let summarize = |apache: &Apache, r: &Response| kept.iter().fold(summary(apache, r), |text, key| without_key(&text, key));
    let differences = common::differences(&ours, &theirs, &cases(), summarize);
    assert!(differences.is_empty(), "differences from mod_wsgi {MOD_WSGI_6}:\n{}", differences.join("\n"));
    let environ = |apache: &Apache| Json::parse(&apache.get("/app/environ/x").text());
    let (a, b) = (environ(&ours), environ(&theirs));
    assert_eq!((a.get("PATH_TRANSLATED") == "null", a.get("mod_wsgi.script_reloading")), (false, "1".to_string()));
    assert_eq!((b.get("PATH_TRANSLATED"), b.get("mod_wsgi.script_reloading")), ("null".to_string(), "null".to_string()));
}
