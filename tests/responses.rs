//! The response path, seen from the client's side of the socket: a slow client never holds
//! Python for the rest of the child; request objects cannot outlive their request or cross
//! threads; a response that failed never looks complete (no last chunk, no keep-alive, the
//! application's own Content-Length kept); `wsgi.file_wrapper` sends a Content-Length. The
//! failure and file cases also run behind mod_http2 (h2c), where buckets outlive the handler.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

const APPS: &str = r#"
import sys, threading

def hello(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'hello']

def many_small(environ, start_response):
    # 64 MiB as a list of 1 KiB strings: many small writes, none of them flushed.
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])
    return [b'x' * 1024] * (64 * 1024)

def fails_midway(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    def body():
        yield b'first part\n'
        raise ValueError('broken halfway')
    return body()

def timeout_midway(environ, start_response):
    import mod_wsgi
    start_response('200 OK', [('Content-Type', 'text/plain')])
    def body():
        yield b'first part\n'
        raise mod_wsgi.RequestTimeout()
    return body()

def fails_in_close(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    class Body:
        def __iter__(self):
            yield b'whole body\n'
        def close(self):
            raise ValueError('close failed')
    return Body()

def exc_info_late(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    def body():
        yield b'already sent\n'
        try:
            raise KeyError('too late')
        except KeyError:
            start_response('500 Oops', [], sys.exc_info())
        yield b'never sent'
    return body()

def fails_before_output(environ, start_response):
    # The bad item comes before any byte left the engine: a clean 500 is still possible.
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'partial', 'not bytes']

def sized(environ, start_response):
    # Large enough for mod_deflate to compress (it leaves a response of a few bytes alone).
    body = b'hello, sized\n' * 200
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]

def short(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '1000')])
    return [b'0123456789']

def wrapped(environ, start_response):
    f = open(environ['DATA_FILE'], 'rb')
    f.read(10)  # a buffered read: the descriptor's offset is past the file object's tell()
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])
    return environ['wsgi.file_wrapper'](f, 65536)

kept = {}

def keep(environ, start_response):
    write = start_response('200 OK', [('Content-Type', 'text/plain')])
    kept.update(start_response=start_response, write=write, input=environ['wsgi.input'])
    return [b'kept']

def attempts(start_response, write, stream):
    results = []
    for name, call in (('start_response', lambda: start_response('200 OK', [])),
                       ('write', lambda: write(b'stray bytes')),
                       ('wsgi.input', lambda: stream.read())):
        try:
            call()
            results.append('%s: no error' % name)
        except Exception as e:
            results.append('%s: %s: %s' % (name, type(e).__name__, e))
    return '\n'.join(results).encode()

def use_kept(environ, start_response):
    body = attempts(kept['start_response'], kept['write'], kept['input'])
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]

def from_thread(environ, start_response):
    write = start_response('200 OK', [('Content-Type', 'text/plain')])
    results = []
    t = threading.Thread(target=lambda: results.append(attempts(start_response, write, environ['wsgi.input'])))
    t.start()
    t.join()
    return results

def application(environ, start_response):
    return globals()[environ['PATH_INFO'].strip('/')](environ, start_response)
"#;

/// Lines that mean a child crashed or Rust panicked.
const CRASHES: [&str; 5] = ["Segmentation fault", "Fatal Python error", "exit signal", "AH00052", "panicked"];

fn assert_no_crash(apache: &Apache) {
    let log = apache.error_log();
    for line in CRASHES {
        assert!(!log.contains(line), "'{line}' in the error log:\n{log}");
    }
}

/// A file the `wrapped` app sends, of a size no buffer rounds to.
fn data() -> Vec<u8> {
    (0..3_000_001u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect()
}

fn server(mpm: Mpm, extra: &str) -> Apache {
    let dir = TempDir::new("responses");
    dir.write("app.wsgi", APPS);
    let path = dir.path().join("data.bin");
    std::fs::write(&path, data()).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    // A long keep-alive timeout: a connection that is still open after the 10 s read bound
    // below was kept alive, not closed by the idle timer.
    Apache::start_in(dir, mpm, &format!("KeepAliveTimeout 60\nSetEnv DATA_FILE {{dir}}/data.bin\nWSGIScriptAlias /app {{dir}}/app.wsgi\n{extra}"))
}

/// What a client saw of one request on a keep-alive connection: every byte until the server
/// closed it, and whether it did close within `bound` (a liveness bound, not a timing check).
struct Raw {
    bytes: Vec<u8>,
    closed: bool,
}

impl Raw {
    fn head(&self) -> String {
        let end = self.bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
        String::from_utf8_lossy(&self.bytes[..end]).into_owned()
    }
    fn body(&self) -> &[u8] {
        let end = self.bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
        &self.bytes[end + 4..]
    }
    fn header(&self, name: &str) -> Option<String> {
        self.head().split("\r\n").filter_map(|l| l.split_once(':')).find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string())
    }
}

fn raw_get(port: u16, path: &str, bound: Duration) -> Raw {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(bound)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let (mut bytes, mut buf) = (Vec::new(), [0u8; 65536]);
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Raw { bytes, closed: true },
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => return Raw { bytes, closed: false },
            Err(_) => return Raw { bytes, closed: true },
        }
    }
}

/// One GET with `Connection: close`, answered within `bound` or an error.
fn get_within(port: u16, path: &str, bound: Duration) -> Result<Response, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(bound)).map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("no complete answer within {bound:?}: {e}"))?;
    Ok(parse_response(&raw, false))
}

/// Bytes waiting in a socket's receive queue.
fn queued(s: &TcpStream) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int for a socket descriptor we own.
    let rc = unsafe { libc::ioctl(std::os::unix::io::AsRawFd::as_raw_fd(s), libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0);
    n as usize
}

#[test]
fn clients_that_do_not_read_never_hold_python_for_the_rest_of_the_child() {
    let apache = server(Mpm::Event, "");
    let stuck: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
            write!(s, "GET /app/many_small HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
            s
        })
        .collect();
    // Wait until the responses have filled the sockets' buffers (queues that stop growing):
    // from then on, Apache's writes for them block.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = vec![0; stuck.len()];
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now: Vec<usize> = stuck.iter().map(queued).collect();
        if now.iter().any(|&n| n > 0) && now == last {
            break;
        }
        assert!(Instant::now() < deadline, "the large responses never started: {now:?}\n{}", apache.error_log());
        last = now;
    }
    for i in 0..20 {
        let r = get_within(apache.port, "/app/hello", Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("request {i} while two clients do not read: {e}\n{}", apache.error_log()));
        assert_eq!((r.status, r.text().as_str()), (200, "hello"));
    }
    drop(stuck);
    assert_no_crash(&apache);
}

#[test]
fn request_objects_kept_past_their_request_or_used_from_another_thread_raise() {
    let apache = server(Mpm::Event, "");
    assert_eq!(apache.get("/app/keep").text(), "kept");
    let r = apache.get("/app/use_kept");
    assert_eq!(r.status, 200);
    // start_response's message is mod_wsgi 6's.
    assert!(r.text().contains("start_response: RuntimeError: start_response() called after request completed"), "{}", r.text());
    for name in ["write", "wsgi.input"] {
        assert!(r.text().contains(&format!("{name}: RuntimeError: request object has expired")), "{}", r.text());
    }
    let r = apache.get("/app/from_thread");
    assert_eq!(r.status, 200);
    for name in ["start_response", "write", "wsgi.input"] {
        assert!(r.text().contains(&format!("{name}: RuntimeError: ")) && r.text().contains("another thread"), "{}", r.text());
    }
    assert!(!r.text().contains("stray bytes"), "a write from another thread reached the response: {}", r.text());
    assert_eq!(apache.get("/app/hello").text(), "hello", "the child keeps serving");
    assert_no_crash(&apache);
}

/// A chunked response that ends without the last chunk, on a connection the server closed.
fn assert_truncated_chunked(raw: &Raw, expected_start: &str) {
    let text = String::from_utf8_lossy(&raw.bytes).into_owned();
    assert!(raw.head().starts_with("HTTP/1.1 200"), "{text}");
    assert_eq!(raw.header("Transfer-Encoding").as_deref(), Some("chunked"), "{text}");
    assert!(String::from_utf8_lossy(raw.body()).contains(expected_start), "{text}");
    assert!(!raw.body().ends_with(b"0\r\n\r\n"), "the last chunk was sent after a failure: {text:?}");
    assert!(raw.closed, "the connection stayed open after a failed response: {text:?}");
}

#[test]
fn a_response_that_fails_after_output_never_looks_complete() {
    let apache = server(Mpm::Event, "");
    let bound = Duration::from_secs(10);
    assert_truncated_chunked(&raw_get(apache.port, "/app/fails_midway", bound), "first part");
    apache.wait_for_log("ValueError: broken halfway");
    assert_truncated_chunked(&raw_get(apache.port, "/app/fails_in_close", bound), "whole body");
    apache.wait_for_log("ValueError: close failed");
    assert_truncated_chunked(&raw_get(apache.port, "/app/exc_info_late", bound), "already sent");
    apache.wait_for_log("KeyError: 'too late'");

    // mod_wsgi.RequestTimeout after output: cut short too, with one INFO line, no traceback.
    assert_truncated_chunked(&raw_get(apache.port, "/app/timeout_midway", bound), "first part");
    let log = apache.wait_for_log("Request interrupted by RequestTimeout after headers sent; response truncated");
    assert!(!log.contains("RequestTimeout\n") && !log.contains("] RequestTimeout"), "a traceback for a RequestTimeout:\n{log}");

    let r = apache.get("/app/fails_before_output");
    assert_eq!(r.status, 500, "nothing had left the engine: a clean 500 ({})", r.text());
    assert!(!r.text().contains("partial"));

    let raw = raw_get(apache.port, "/app/short", bound);
    assert_eq!(raw.header("Content-Length").as_deref(), Some("1000"), "the application's own Content-Length:\n{}", raw.head());
    assert_eq!(raw.body(), b"0123456789");
    assert!(raw.closed, "the connection stayed open after a short body");
    apache.wait_for_log("Content-Length was 1000 but only 10 bytes were sent");

    assert_eq!(apache.get("/app/hello").text(), "hello", "the child keeps serving");
    assert_no_crash(&apache);
}

#[test]
fn file_wrapper_sends_the_rest_of_the_file_with_its_length() {
    let apache = server(Mpm::Event, "");
    let data = data();
    let raw = raw_get(apache.port, "/app/wrapped", Duration::from_secs(10));
    let expected = &data[10..];
    assert_eq!(raw.header("Content-Length"), Some(expected.len().to_string()), "{}", raw.head());
    assert!(raw.body() == expected, "from the file object's position (tell()), {} bytes", raw.body().len());
    assert_no_crash(&apache);
}

const HTTP2: &str = "LoadModule http2_module /usr/lib/apache2/modules/mod_http2.so\nProtocols h2c http/1.1\n";

/// `curl --http2-prior-knowledge`: (exit code, body).
fn curl_h2(port: u16, path: &str) -> (i32, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-s", "--http2-prior-knowledge", "--max-time", "30", &format!("http://127.0.0.1:{port}{path}")])
        .output()
        .expect("curl");
    (out.status.code().unwrap_or(-1), out.stdout)
}

#[test]
fn behind_http2_a_failed_response_is_an_error_and_files_arrive_whole() {
    let apache = server(Mpm::Event, HTTP2);
    let (code, body) = curl_h2(apache.port, "/app/hello");
    assert_eq!((code, body.as_slice()), (0, &b"hello"[..]), "h2c works");
    let data = data();
    for _ in 0..5 {
        let (code, body) = curl_h2(apache.port, "/app/wrapped");
        assert_eq!(code, 0);
        assert!(body == data[10..], "the file did not arrive whole: {} bytes", body.len());
    }
    for path in ["/app/fails_midway", "/app/short"] {
        let (code, body) = curl_h2(apache.port, path);
        assert_ne!(code, 0, "{path}: curl saw a complete response: {:?}", String::from_utf8_lossy(&body));
    }
    assert_eq!(curl_h2(apache.port, "/app/hello").1, b"hello");
    assert_no_crash(&apache);
}

/// HEAD answers with the headers GET would have, Content-Length included, embedded and in a
/// daemon: the application's own (here 1000 for a body it cuts short at 10 bytes, which Apache
/// would otherwise rewrite to the 10 it saw), `wsgi.file_wrapper`'s, and Apache's count for a
/// body without one.
#[test]
fn head_has_the_content_length_of_get() {
    let apache = server(
        Mpm::Event,
        "WSGISocketPrefix {dir}/wsgi\nWSGIDaemonProcess d threads=2\n\
         WSGIScriptAlias /dapp {dir}/app.wsgi process-group=d application-group=%{GLOBAL}\n\
         LoadModule deflate_module /usr/lib/apache2/modules/mod_deflate.so\n\
         <Location /app/sized>\n  SetOutputFilter DEFLATE\n</Location>\n<Location /dapp/sized>\n  SetOutputFilter DEFLATE\n</Location>\n",
    );
    let expected_file = (data().len() - 10).to_string();
    for prefix in ["/app", "/dapp"] {
        for (page, length) in [("short", "1000"), ("wrapped", expected_file.as_str()), ("hello", "5")] {
            let path = format!("{prefix}/{page}");
            let head = http(apache.port, "HEAD", &path, &[], b"");
            assert_eq!(head.status, 200, "HEAD {path}\n{}", apache.error_log());
            assert_eq!(head.header("Content-Length"), Some(length), "HEAD {path}: {:?}", head.headers);
            if page != "short" {
                let get = http(apache.port, "GET", &path, &[], b"");
                assert_eq!(get.header("Content-Length"), Some(length), "GET {path}");
            }
        }
        // Behind a filter that decides from the body (mod_deflate), HEAD gets what GET gets:
        // the body goes through it, and the filter's own headers come out.
        let path = format!("{prefix}/sized");
        let gzip = [("Accept-Encoding", "gzip")];
        let (get, head) = (http(apache.port, "GET", &path, &gzip, b""), http(apache.port, "HEAD", &path, &gzip, b""));
        assert_eq!(get.header("Content-Encoding"), Some("gzip"), "GET {path}: {:?}", get.headers);
        assert_eq!(head.header("Content-Encoding"), Some("gzip"), "HEAD {path}: {:?}", head.headers);
        assert_eq!(head.header("Content-Length"), get.header("Content-Length"), "HEAD {path}: {:?}\nGET: {:?}", head.headers, get.headers);
    }
    assert_no_crash(&apache);
}
