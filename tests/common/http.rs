//! The tests' HTTP client: one request per connection over plain TCP ([`http`], [`try_http`]),
//! a concurrent load ([`hammer`]), and the response parser, written here so that the tests see
//! exactly the bytes Apache sent (no client library in between, no new crate).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A small HTTP/1.1 client (one request per connection), enough for these tests; it
/// de-chunks chunked responses.
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    try_http(port, method, path, headers, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Sends `raw` as it is (bytes a `&str` header cannot carry: a request target or a header
/// value that is not UTF-8) on a new connection and reads the whole response.
pub fn raw_http(port: u16, raw: &[u8]) -> Response {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    stream.write_all(raw).unwrap();
    let mut got = Vec::new();
    stream.read_to_end(&mut got).unwrap();
    parse_response(&got, false)
}

/// As [`http`], but a connection that fails or closes without a response is an `Err`.
pub fn try_http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Response, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| e.to_string())?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    // A Host of the caller's (a name-based virtual host) replaces the default: two are a 400.
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: localhost:{port}\r\n"));
    }
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding")) && (!body.is_empty() || method == "POST") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    stream.write_all(body).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    if !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        return Err(format!("no response ({} bytes)", raw.len()));
    }
    Ok(parse_response(&raw, method == "HEAD"))
}

/// One request of a load (see [`hammer`]).
#[derive(Clone, Debug)]
pub struct Request {
    pub method: &'static str,
    pub path: String,
    pub body: Vec<u8>,
}

impl Request {
    pub fn get(path: impl Into<String>) -> Request {
        Request { method: "GET", path: path.into(), body: Vec::new() }
    }

    pub fn post(path: impl Into<String>, body: Vec<u8>) -> Request {
        Request { method: "POST", path: path.into(), body }
    }
}

/// Concurrent load: `clients` threads start together and each sends `requests_per_client`
/// requests one after the other, request `n` (`client * requests_per_client + i`) being
/// `make_request(n)`. Returns every request with its outcome, in the order of `n`; a connection
/// that fails or closes without a response is an `Err` rather than a panic, so the caller can
/// report all failures (and the error log) together.
pub fn hammer(
    port: u16,
    clients: usize,
    requests_per_client: usize,
    make_request: impl Fn(usize) -> Request + Sync,
) -> Vec<(Request, Result<Response, String>)> {
    let start = std::sync::Barrier::new(clients);
    let (make_request, start) = (&make_request, &start);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..clients)
            .map(|client| {
                scope.spawn(move || {
                    start.wait();
                    (0..requests_per_client)
                        .map(|i| {
                            let request = make_request(client * requests_per_client + i);
                            let outcome = try_http(port, request.method, &request.path, &[], &request.body);
                            (request, outcome)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads.into_iter().flat_map(|thread| thread.join().expect("a load client panicked")).collect()
    })
}

pub fn parse_response(raw: &[u8], head_only: bool) -> Response {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked && !head_only {
        body = dechunk(&body);
    }
    Response { status, headers, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else { return out };
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).split(';').next().unwrap().trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
}
