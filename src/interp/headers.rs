//! Validation of what an application passes to `start_response`, in plain Rust.
//!
//! Nothing an application says may become an invalid or split response: a status or header
//! that fails here is a Python exception in the application (and so a 500 with a traceback),
//! never a panic and never bytes on the wire.

/// `"200 OK"`: three digits, a space, then a reason without control characters.
pub fn check_status(status: &[u8]) -> Result<u16, String> {
    let shown = String::from_utf8_lossy(status);
    let ok = status.len() >= 4 && status[..3].iter().all(u8::is_ascii_digit) && status[3] == b' ';
    if !ok {
        return Err(format!("status must be 3-digit integer followed by a space and a reason, got {shown:?}"));
    }
    if status.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(format!("status contains a control character: {shown:?}"));
    }
    let code = (status[0] - b'0') as u16 * 100 + (status[1] - b'0') as u16 * 10 + (status[2] - b'0') as u16;
    if code < 100 {
        return Err(format!("status code {code} is out of range"));
    }
    Ok(code)
}

/// A header name is an RFC 9110 token; a value has no CR, LF, NUL or other control
/// character but tab (a CR or LF would let the application split the response).
pub fn check_header(name: &[u8], value: &[u8]) -> Result<(), String> {
    let shown = String::from_utf8_lossy(name);
    if name.is_empty() {
        return Err("header name is empty".into());
    }
    if let Some(&bad) = name.iter().find(|&&b| !is_token_byte(b)) {
        return Err(format!("header name {shown:?} contains an invalid character {:?}", bad as char));
    }
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(format!("value of header {shown:?} contains a control character (CR, LF or NUL are refused)"));
    }
    if name.eq_ignore_ascii_case(b"Transfer-Encoding") {
        // Apache frames the body (Content-Length or chunked): the application's own
        // Transfer-Encoding would leave it unframed on the wire.
        return Err(format!("hop-by-hop header {shown:?} is not allowed from a WSGI application: Apache frames the response"));
    }
    Ok(())
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
    fn statuses() {
        assert_eq!(check_status(b"200 OK"), Ok(200));
        assert_eq!(check_status(b"404 Not Found"), Ok(404));
        for bad in [&b"200"[..], b"20 OK", b"abc OK", b"200OK", b"200 OK\r\nX: y", b"099 Low"] {
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
