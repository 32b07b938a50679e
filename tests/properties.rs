//! Property tests through a real Apache, with Python as the oracle: arbitrary request header
//! names and values reach the environ exactly as PEP 3333 says (latin-1 native strings under
//! CGI names) or are refused by Apache, never mangled; arbitrary response header values from
//! an application either go out as one intact header or become a 500 — never a panic, never
//! a split or invalid header on the wire, and the child keeps serving.

mod common;
use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::io::{Read, Write};

const APP: &str = r#"
import json, urllib.parse

def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    if path == '/environ':
        body = json.dumps({k: v for k, v in environ.items() if k.startswith('HTTP_X_P')}).encode()
        start_response('200 OK', [('Content-Type', 'application/json')])
        return [body]
    # /header?<percent-encoded latin-1 value>: sends it back as a response header.
    value = urllib.parse.unquote(environ['QUERY_STRING'], encoding='latin-1')
    start_response('200 OK', [('Content-Type', 'text/plain'), ('X-Echo', value)])
    return [b'ok']
"#;

/// Raw request/response, so that nothing in a client library normalises either side.
fn raw(port: u16, request: &[u8]) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

fn request_header_case(apache: &Apache, suffix: String, value: Vec<u8>) -> Result<(), TestCaseError> {
    let trimmed = latin1(&value).trim_matches(' ').to_string();
    let mut request = format!("GET /app/environ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-P{suffix}: ").into_bytes();
    request.extend_from_slice(&value);
    request.extend_from_slice(b"\r\n\r\n");
    let response = raw(apache.port, &request);
    let r = parse_response(&response, false);
    if r.status == 400 {
        return Ok(()); // Apache refused the header itself: fine, nothing reached the app.
    }
    prop_assert_eq!(r.status, 200);
    let key = format!("HTTP_X_P{}", suffix.to_ascii_uppercase().replace('-', "_"));
    let env = Json::parse(&r.text());
    prop_assert_eq!(env.get(&key), trimmed);
    Ok(())
}

fn response_header_case(apache: &Apache, value: Vec<u8>) -> Result<(), TestCaseError> {
    let encoded: String = value.iter().map(|b| format!("%{b:02X}")).collect();
    let response = raw(apache.port, format!("GET /app/header?{encoded} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes());
    let end = response.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response head");
    let head = &response[..end];
    // Every header line is "name: value" with no stray CR or LF.
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        prop_assert!(!line.contains(&b'\r') && line.contains(&b':'), "malformed header line {:?}", latin1(line));
    }
    let r = parse_response(&response, false);
    let acceptable = value.iter().all(|&b| (b >= 0x20 && b != 0x7f) || b == b'\t');
    if acceptable {
        prop_assert_eq!(r.status, 200);
        prop_assert_eq!(r.headers.iter().filter(|(k, _)| k == "X-Echo").count(), 1);
        // The header went out as latin-1 bytes; compare byte for byte (edges trimmed).
        let raw_line = head.split(|&b| b == b'\n').find(|l| l.starts_with(b"X-Echo:")).unwrap();
        let sent = &raw_line[7..raw_line.len() - 1];
        let trim = |b: &[u8]| -> Vec<u8> { latin1(b).trim_matches([' ', '\t']).chars().map(|c| c as u8).collect() };
        prop_assert_eq!(trim(sent), trim(&value));
    } else {
        prop_assert_eq!(r.status, 500);
        prop_assert!(r.header("X-Echo").is_none());
    }
    // The child keeps serving.
    prop_assert_eq!(apache.get("/app/environ").status, 200);
    Ok(())
}

#[test]
fn headers_in_both_directions_under_random_input() {
    let dir = TempDir::new("properties");
    dir.write("app.wsgi", APP);
    let apache = Apache::start_in(dir, Mpm::Event, "WSGIScriptAlias /app {dir}/app.wsgi\n");
    let mut runner = TestRunner::new(Config { cases: 64, ..Config::default() });
    let request = ("[A-Za-z0-9-]{1,12}", proptest::collection::vec(prop_oneof![0x20u8..0x7f, 0xa0u8..=0xff], 1..40));
    runner.run(&request, |(suffix, value)| request_header_case(&apache, suffix, value)).unwrap();
    let response = proptest::collection::vec(any::<u8>(), 0..40);
    runner.run(&response, |value| response_header_case(&apache, value)).unwrap();
}
