//! Validation of what an application passes to `start_response`, in plain Rust.
//!
//! Nothing an application says may become an invalid or split response: a status or header
//! that fails here is a Python exception in the application (and so a 500 with a traceback),
//! never a panic and never bytes on the wire. The engine checks at the call; Apache's child
//! checks again what a daemon sends it (`module::daemon::client`), because a daemon runs the
//! site's own code, which can write frames to its socket without `start_response`.

/// `"200 OK"`: three digits, a space, then a reason without control characters. The messages
/// are mod_wsgi 6's (each ending with the status as Python shows bytes); a bare `"200"`,
/// which 6 lets through, is refused as 4.9 refuses it.
pub fn check_status(status: &[u8]) -> Result<u16, String> {
    let shown = bytes_repr(status);
    let digits = status.len() >= 3 && status[..3].iter().all(u8::is_ascii_digit);
    if !digits || status.get(3).is_some_and(u8::is_ascii_digit) {
        return Err(format!("status code must be a 3 digit integer: {shown}"));
    }
    if status.get(3) != Some(&b' ') {
        return Err(format!("no space following status code: {shown}"));
    }
    if status.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(format!("control character in status reason phrase: {shown}"));
    }
    let code = (status[0] - b'0') as u16 * 100 + (status[1] - b'0') as u16 * 10 + (status[2] - b'0') as u16;
    if code < 100 {
        return Err(format!("status code must be between 100 and 999: {shown}"));
    }
    if code < 200 {
        // An interim response: the client would take the body that follows for the next
        // response on the connection (101: a proxy would switch to a tunnel). WSGI has no
        // interim responses; mod_wsgi sends them as final ones.
        return Err(format!("status code of a final response must be 200 or above (1xx is an interim response): {shown}"));
    }
    Ok(code)
}

/// A header name is an RFC 9110 token; a value has no CR, LF, NUL or other control
/// character but tab (a CR or LF would let the application split the response). mod_wsgi 6's
/// messages where it makes the same check (control or space characters in a name, CR/LF in
/// a value); it lets the other characters through (Apache then fails the request when it
/// sends them, or a NUL cuts the value), which are refused here at the call.
pub fn check_header(name: &[u8], value: &[u8]) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name is empty".into());
    }
    let shown = bytes_repr(name);
    if name.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(format!("control character in header name: {shown}"));
    }
    if name.contains(&b' ') {
        return Err(format!("space character in header name: {shown}"));
    }
    if !name.iter().all(|&b| is_token_byte(b)) {
        return Err(format!("invalid character in header name (not an HTTP token): {shown}"));
    }
    if value.iter().any(|&b| b == b'\r' || b == b'\n') {
        return Err(format!("carriage return/line feed character in header value: {}", bytes_repr(value)));
    }
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(format!("control character in header value: {}", bytes_repr(value)));
    }
    if name.eq_ignore_ascii_case(b"Transfer-Encoding") {
        // Apache frames the body (Content-Length or chunked): the application's own
        // Transfer-Encoding would leave it unframed on the wire.
        return Err(format!("hop-by-hop header {shown} is not allowed from a WSGI application: Apache frames the response"));
    }
    Ok(())
}

/// Bytes as Python 3 shows them (`b'200 OK\r\n'`), for messages.
pub fn bytes_repr(bytes: &[u8]) -> String {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') { '"' } else { '\'' };
    let mut out = format!("b{quote}");
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            _ if b as char == quote => {
                out.push('\\');
                out.push(quote);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push(quote);
    out
}

/// What of a valid header goes to Apache, which owns the connection: `Connection` only as
/// `close` (Apache then closes after this response, so the header tells the truth), and never
/// `Keep-Alive` (Apache writes its own when it keeps the connection open). mod_wsgi 4.9 passes
/// both as they are, and so can announce `keep-alive, close` or a timeout Apache does not keep.
pub fn for_apache(name: &[u8], value: Vec<u8>) -> Option<Vec<u8>> {
    if name.eq_ignore_ascii_case(b"Keep-Alive") {
        return None;
    }
    if name.eq_ignore_ascii_case(b"Connection") {
        let close = value.split(|&b| b == b',').any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"));
        return close.then(|| b"close".to_vec());
    }
    Some(value)
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn messages_are_mod_wsgi_6s() {
        assert_eq!(check_status(b"20 OK").unwrap_err(), "status code must be a 3 digit integer: b'20 OK'");
        assert_eq!(check_status(b"2000 OK").unwrap_err(), "status code must be a 3 digit integer: b'2000 OK'");
        assert_eq!(check_status(b"200OK").unwrap_err(), "no space following status code: b'200OK'");
        assert_eq!(check_status(b"200 OK\r\nX: y").unwrap_err(), "control character in status reason phrase: b'200 OK\\r\\nX: y'");
        assert_eq!(check_header(b"X A", b"v").unwrap_err(), "space character in header name: b'X A'");
        assert_eq!(check_header(b"X-A\r\n", b"v").unwrap_err(), "control character in header name: b'X-A\\r\\n'");
        assert_eq!(check_header(b"X-A", b"b\r\nX-Inj: 1").unwrap_err(), "carriage return/line feed character in header value: b'b\\r\\nX-Inj: 1'");
        assert_eq!(bytes_repr(b"it's \x01\xff\\"), "b\"it's \\x01\\xff\\\\\"");
    }

    #[test]
    fn statuses() {
        assert_eq!(check_status(b"200 OK"), Ok(200));
        assert_eq!(check_status(b"404 Not Found"), Ok(404));
        for bad in [
            &b"200"[..],
            b"20 OK",
            b"abc OK",
            b"200OK",
            b"200 OK\r\nX: y",
            b"099 Low",
            b"100 Continue",
            b"101 Switching Protocols",
            b"103 Early Hints",
        ] {
            assert!(check_status(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn headers() {
        assert!(check_header(b"Content-Type", b"text/plain; charset=utf-8").is_ok());
        assert!(check_header(b"X-Tab", b"a\tb").is_ok());
        assert!(check_header(b"X-Split", b"a\r\nSet-Cookie: x=1").is_err());
        assert!(check_header(b"X-Nul", b"a\0b").is_err());
        assert!(check_header(b"Bad:Name", b"v").is_err());
        assert!(check_header(b"Bad Name", b"v").is_err());
        assert!(check_header(b"", b"v").is_err());
        assert!(check_header(b"Transfer-Encoding", b"chunked").unwrap_err().contains("Apache frames"));
        assert!(check_header(b"transfer-encoding", b"identity").is_err());
        for (name, value) in [(&b"Connection"[..], &b"close"[..]), (b"Keep-Alive", b"timeout=5"), (b"Upgrade", b"h2c"), (b"TE", b"trailers")] {
            assert!(check_header(name, value).is_ok(), "{:?}", String::from_utf8_lossy(name));
        }
    }

    #[test]
    fn connection_headers_cannot_contradict_apache() {
        assert_eq!(for_apache(b"connection", b"Keep-Alive, Close".to_vec()), Some(b"close".to_vec()));
        assert_eq!(for_apache(b"Connection", b"keep-alive".to_vec()), None);
        assert_eq!(for_apache(b"Connection", b"closed, upgrade".to_vec()), None);
        assert_eq!(for_apache(b"KEEP-ALIVE", b"timeout=999".to_vec()), None);
        assert_eq!(for_apache(b"X-Other", b"close".to_vec()), Some(b"close".to_vec()));
    }

    proptest! {
        /// Whatever passes can be written as one header line that parses back the same.
        #[test]
        fn accepted_headers_cannot_split(name in proptest::collection::vec(any::<u8>(), 0..12),
                                         value in proptest::collection::vec(any::<u8>(), 0..24)) {
            if check_header(&name, &value).is_ok() {
                prop_assert!(!name.contains(&b':'));
                prop_assert!(!value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0));
            }
        }

        #[test]
        fn status_never_panics(status in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = check_status(&status);
        }
    }
}
