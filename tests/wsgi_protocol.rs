//! PEP 3333 and mod_wsgi semantics in detail: wsgiref.validate, the error log streams,
//! wsgi.file_wrapper, chunked request bodies, HEAD, error override, trusted proxy headers,
//! refused headers and clients that go away.

mod common;
use common::*;
use std::io::{Read, Write};
use std::time::Duration;

const APPS: &str = r#"
import hashlib, io, os, sys, time
from wsgiref.validate import validator

def hello(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'hello']

def streaming(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    def gen():
        for i in range(3):
            yield b'part %d\n' % i
    return gen()

def writer(environ, start_response):
    write = start_response('200 OK', [('Content-Type', 'text/plain')])
    write(b'written ')
    return [b'returned']

def reader(environ, start_response):
    inp = environ['wsgi.input']
    first = inp.readline()
    rest = inp.read(int(environ.get('CONTENT_LENGTH') or 0) - len(first))
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [first, rest]

def wrapped_file(environ, start_response):
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])
    return environ['wsgi.file_wrapper'](open(environ['DATA_FILE'], 'rb'), 65536)

validated = {'/hello': validator(hello), '/streaming': validator(streaming), '/writer': validator(writer),
             '/reader': validator(reader), '/file': validator(wrapped_file)}

def logs(environ, start_response):
    print('printed to stdout')
    sys.stderr.write('written to stderr\n')
    environ['wsgi.errors'].write('written to wsgi.errors\n')
    try:
        sys.stdin.read()
        stdin = 'readable'
    except OSError as e:
        stdin = str(e)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [stdin.encode()]

def files(environ, start_response):
    q = environ['QUERY_STRING']
    if q == 'bytesio':
        body = environ['wsgi.file_wrapper'](io.BytesIO(b'x' * 100000), 4096)
        headers = []
    elif q == 'cut':
        body = environ['wsgi.file_wrapper'](open(environ['DATA_FILE'], 'rb'))
        headers = [('Content-Length', '1000')]
    else:
        f = open(environ['DATA_FILE'], 'rb')
        f.seek(int(q or 0))
        body = environ['wsgi.file_wrapper'](f)
        headers = []
    start_response('200 OK', [('Content-Type', 'application/octet-stream')] + headers)
    return body

def echo(environ, start_response):
    data = environ['wsgi.input'].read()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'%s %d %s' % (environ['REQUEST_METHOD'].encode(), len(data), hashlib.sha256(data).hexdigest().encode())]

def method(environ, start_response):
    body = environ['REQUEST_METHOD'].encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]

def missing(environ, start_response):
    start_response('404 Not Found', [('Content-Type', 'text/plain')])
    return [b'the application says not found']

def proxied(environ, start_response):
    body = '%s|%s|%s|%s' % (environ['REMOTE_ADDR'], environ['wsgi.url_scheme'], environ.get('HTTP_X_FORWARDED_HOST'), environ.get('HTTP_X_FORWARDED_FOR'))
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]

def transfer_encoding(environ, start_response):
    start_response('200 OK', [('Transfer-Encoding', 'chunked')])
    return [b'unframed']

def endless(environ, start_response):
    marker = environ['QUERY_STRING']
    class Body:
        def __init__(self):
            self.sent = 0
        def __iter__(self):
            while self.sent < 100000:
                self.sent += 1
                time.sleep(0.005)
                yield b'x' * 65536
        def close(self):
            with open(marker, 'w') as f:
                f.write('closed after %d chunks' % self.sent)
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])
    return Body()

def exc_before_sent(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    try:
        raise ValueError('changed my mind')
    except ValueError:
        start_response('503 Service Unavailable', [('Content-Type', 'text/plain')], sys.exc_info())
    return [b'replaced before sending']

def exc_after_sent(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    def gen():
        yield b'already sent\n'
        try:
            raise KeyError('too late')
        except KeyError:
            start_response('500 Oops', [], sys.exc_info())
        yield b'never sent'
    return gen()

def lines(environ, start_response):
    inp = environ['wsgi.input']
    got = inp.readlines()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('%d:' % len(got)).encode()] + got

def slow_stream(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    def gen():
        yield b'first block\n'
        time.sleep(3)
        yield b'second block\n'
    return gen()

def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    if path.startswith('/validate/'):
        return validated[path[len('/validate'):]](environ, start_response)
    return globals()[path.strip('/')](environ, start_response)
"#;

fn server(mpm: Mpm, extra: &str) -> (Apache, Vec<u8>) {
    let dir = TempDir::new("protocol");
    dir.write("app.wsgi", APPS);
    let data: Vec<u8> = (0..5_000_000u32).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect();
    let path = dir.path().join("data.bin");
    std::fs::write(&path, &data).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let apache = Apache::start_in(dir, mpm, &format!("SetEnv DATA_FILE {{dir}}/data.bin\nWSGIScriptAlias /app {{dir}}/app.wsgi\n{extra}"));
    (apache, data)
}

#[test]
fn wsgiref_validate_finds_nothing_to_complain_about() {
    for mpm in ALL_MPMS {
        let (apache, data) = server(mpm, "");
        assert_eq!(apache.get("/app/validate/hello").text(), "hello");
        assert_eq!(apache.get("/app/validate/streaming").text(), "part 0\npart 1\npart 2\n");
        assert_eq!(apache.get("/app/validate/writer").text(), "written returned");
        assert_eq!(apache.request("POST", "/app/validate/reader", &[], b"line one\nthe rest").text(), "line one\nthe rest");
        let r = apache.get("/app/validate/file");
        assert_eq!((r.status, r.body.len()), (200, data.len()), "{mpm:?}");
        assert!(r.body == data);
        let log = apache.error_log();
        assert!(!log.contains("AssertionError") && !log.contains("WSGIWarning") && !log.contains("Traceback"), "{mpm:?}:\n{log}");
    }
}

#[test]
fn stdout_stderr_and_wsgi_errors_go_to_the_error_log_and_stdin_is_restricted_on_demand() {
    // WSGIRestrictStdin is Off by default (mod_wsgi 4.9 and 6 alike): Apache's children have
    // /dev/null there.
    let (apache, _) = server(Mpm::Event, "");
    assert_eq!(apache.get("/app/logs").text(), "readable");
    let (apache, _) = server(Mpm::Event, "WSGIRestrictStdin On\n");
    assert_eq!(apache.get("/app/logs").text(), "sys.stdin access restricted by mod_wsgi");
    for line in ["printed to stdout", "written to stderr", "written to wsgi.errors"] {
        let log = apache.wait_for_log(line);
        let entry = log.lines().find(|l| l.contains(line)).unwrap_or_else(|| panic!("no '{line}' in\n{log}"));
        assert!(entry.contains("[client 127.0.0.1:"), "not attributed to the request: {entry}");
    }
    let (apache, _) = server(Mpm::Event, "WSGIRestrictStdin Off\nWSGIRestrictStdout On\n");
    assert_eq!(apache.get("/app/logs").status, 500);
    apache.wait_for_log("sys.stdout access restricted by mod_wsgi");
}

#[test]
fn file_wrapper_sends_real_files_and_file_likes() {
    let (apache, data) = server(Mpm::Worker, "");
    let r = apache.get("/app/files");
    assert!(r.status == 200 && r.body == data, "whole file");
    let r = apache.get("/app/files?4000000");
    assert!(r.body == data[4_000_000..], "from the file's current position");
    let r = apache.get("/app/files?cut");
    assert_eq!(r.header("Content-Length"), Some("1000"));
    assert!(r.body == data[..1000], "cut to Content-Length");
    let r = apache.get("/app/files?bytesio");
    assert_eq!(r.body, vec![b'x'; 100000]);
}

/// Sends a chunked request body by hand.
fn chunked_post(port: u16, path: &str, chunks: &[&[u8]]) -> Response {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("POST {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n").into_bytes();
    for c in chunks {
        req.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        req.extend_from_slice(c);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    s.write_all(&req).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    parse_response(&raw, false)
}

#[test]
fn chunked_request_bodies_need_wsgi_chunked_request() {
    let (apache, _) = server(Mpm::Event, "<Location /app/echo>\nWSGIChunkedRequest On\n</Location>\n");
    let chunks: [&[u8]; 3] = [b"hello ", b"chunked ", b"world"];
    let r = chunked_post(apache.port, "/app/echo", &chunks);
    assert_eq!(r.text(), format!("POST 19 {}", sha256_hex(b"hello chunked world")));
    assert_eq!(chunked_post(apache.port, "/app/method", &chunks).status, 411);
}

#[test]
fn head_requests_and_wsgi_map_head_to_get() {
    let (apache, _) = server(Mpm::Event, "<Location /app/method>\nWSGIMapHEADToGET On\n</Location>\n");
    let r = apache.request("HEAD", "/app/method", &[], b"");
    assert_eq!((r.status, r.header("Content-Length")), (200, Some("3")), "the application saw GET");
    assert!(r.body.is_empty(), "no body for HEAD");
    let (apache, _) = server(Mpm::Event, "WSGIMapHEADToGET Off\n");
    let r = apache.request("HEAD", "/app/method", &[], b"");
    assert_eq!(r.header("Content-Length"), Some("4"), "the application saw HEAD");
    assert!(r.body.is_empty());
}

#[test]
fn error_override_hands_error_statuses_to_apache() {
    let (apache, _) =
        server(Mpm::Event, "ErrorDocument 404 \"custom page from Apache\"\n<Location /app/missing>\nWSGIErrorOverride On\n</Location>\n");
    let r = apache.get("/app/missing");
    assert_eq!((r.status, r.text().as_str()), (404, "custom page from Apache"));
    let (apache, _) = server(Mpm::Event, "ErrorDocument 404 \"custom page from Apache\"\n");
    assert_eq!(apache.get("/app/missing").text(), "the application says not found");
}

#[test]
fn trusted_proxy_headers_only_from_trusted_proxies() {
    let headers = [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "spoofed.example")];
    // X-Forwarded-Host's category (the host) is not configured: it stays, as a plain header
    // (mod_wsgi 6.1; tests/proxy_headers.rs has the rest).
    let (apache, _) = server(Mpm::Event, "WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto\nWSGITrustedProxies 127.0.0.1 ::1\n");
    assert_eq!(apache.request("GET", "/app/proxied", &headers, b"").text(), "203.0.113.7|https|spoofed.example|203.0.113.7");
    // From a peer that is not a trusted proxy, the configured headers are not believed, and
    // X-Forwarded-For (configured) is removed.
    let (apache, _) = server(Mpm::Event, "WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto\nWSGITrustedProxies 10.0.0.0/8\n");
    assert_eq!(apache.request("GET", "/app/proxied", &headers, b"").text(), "127.0.0.1|http|spoofed.example|None");
    // Without the directives, headers pass untouched, as in mod_wsgi.
    let (apache, _) = server(Mpm::Event, "");
    assert_eq!(apache.request("GET", "/app/proxied", &headers, b"").text(), "127.0.0.1|http|spoofed.example|203.0.113.7");
    // A name mod_wsgi does not know is accepted and does nothing; one that is no header name
    // is refused (mod_wsgi crashes on it).
    let (ok, out) = config_test("WSGITrustedProxyHeaders X-Bogus\n");
    assert!(ok, "{out}");
    let (ok, out) = config_test("WSGITrustedProxyHeaders X_Forwarded_For\n");
    assert!(!ok && out.contains("'X_Forwarded_For' is not an HTTP header name (as a request header: 'X-Forwarded-For')"), "{out}");
}

#[test]
fn an_application_transfer_encoding_is_refused() {
    let (apache, _) = server(Mpm::Event, "");
    let r = apache.get("/app/transfer_encoding");
    assert_eq!(r.status, 500);
    assert!(!r.text().contains("unframed"));
    apache.wait_for_log("hop-by-hop header \"Transfer-Encoding\" is not allowed");
}

#[test]
fn a_client_that_goes_away_stops_the_iteration_and_close_is_called() {
    for mpm in ALL_MPMS {
        let (apache, _) = server(mpm, "");
        let marker = apache.dir.path().join("closed.txt");
        let mut s = std::net::TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
        write!(s, "GET /app/endless?{} HTTP/1.1\r\nHost: localhost\r\n\r\n", marker.display()).unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        s.read_exact(&mut buf).unwrap();
        drop(s);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !marker.exists() {
            assert!(std::time::Instant::now() < deadline, "{mpm:?}: close() was not called after the client left:\n{}", apache.error_log());
            std::thread::sleep(Duration::from_millis(50));
        }
        let text = std::fs::read_to_string(&marker).unwrap();
        let chunks: u32 = text.rsplit(' ').nth(1).unwrap().parse().unwrap();
        assert!(chunks < 1000, "{mpm:?}: kept producing after the client left ({text})");
        assert_eq!(apache.get("/app/hello").text(), "hello", "{mpm:?}: the child stopped serving");
    }
}

#[test]
fn each_generated_block_reaches_the_client_without_waiting_for_the_next() {
    let (apache, _) = server(Mpm::Event, "");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
    write!(s, "GET /app/slow_stream HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(2000))).unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&received).contains("first block") {
        let n = s.read(&mut buf).expect("the first block was held back while the application slept");
        assert!(n > 0, "connection closed early");
        received.extend_from_slice(&buf[..n]);
    }
    assert!(!String::from_utf8_lossy(&received).contains("second block"));
}

#[test]
fn exc_info_replaces_unsent_headers_and_reraises_after_sending() {
    let (apache, _) = server(Mpm::Event, "");
    let r = apache.get("/app/exc_before_sent");
    assert_eq!((r.status, r.text().as_str()), (503, "replaced before sending"));
    let r = apache.get("/app/exc_after_sent");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "already sent\n", "the body ends where the exception was re-raised");
    apache.wait_for_log("KeyError: 'too late'");
    let r = apache.request("POST", "/app/lines", &[], b"a\nbb\nccc");
    assert_eq!(r.text(), "3:a\nbb\nccc");
}
