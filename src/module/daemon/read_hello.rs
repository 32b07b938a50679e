//! The first frame of each request on a daemon's socket, the hello (environ, script, group,
//! and the token that proves the sender is one of Apache's children), read within a deadline
//! so that a stalled or foreign connection costs a worker thread a bounded time.

use super::wire::{self, Hello};
use std::ffi::c_int;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// How long a connection may take to send its whole hello: Apache's children send it at
/// once, so this only bounds a local process of Apache's user that connects and stalls (it
/// would hold a worker thread for as long).
const HELLO_LIMIT: Duration = Duration::from_secs(5);
/// The largest hello accepted from a sender with the token (the environ: request headers,
/// at most about 800 KiB with Apache's default request limits, more when an administrator
/// raised `LimitRequestFieldSize` or `LimitRequestFields`, and the CGI variables). Its length
/// is checked only after the token: a connection without it allocates nothing.
const HELLO_MAX: usize = wire::MAX_FRAME;

/// Reads and checks the hello within [`HELLO_LIMIT`] (or `socket-timeout`, if shorter): the
/// frame header and the fixed prefix (magic, version, token) first, so that a connection
/// without the token costs no more than those bytes. `None`: a kept connection (`reused`)
/// closed by its child before a new hello, which is how a child lets one go.
pub(super) fn read_hello(stream: &UnixStream, token: &[u8; 16], socket_timeout: Option<Duration>, reused: bool) -> Result<Option<Hello>, String> {
    let limit = socket_timeout.map_or(HELLO_LIMIT, |t| t.min(HELLO_LIMIT));
    let mut input = Deadline { stream, deadline: Instant::now() + limit };
    let refused = |why: &str| format!("Request origin could not be validated ({why}).");
    let mut header = [0u8; 5];
    match input.read_some(&mut header) {
        Ok(0) if reused => return Ok(None),
        Err(e) if reused && e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(None),
        Ok(n) => input.read_exact(&mut header[n..]).map_err(|e| refused(&format!("no hello: {e}")))?,
        Err(e) => return Err(refused(&format!("no hello: {e}"))),
    }
    let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if header[0] != wire::HELLO || len < wire::HELLO_PREFIX {
        return Err(refused("no hello"));
    }
    let mut payload = vec![0u8; wire::HELLO_PREFIX];
    input.read_exact(&mut payload).map_err(|e| refused(&format!("no hello: {e}")))?;
    if !wire::hello_prefix_matches(&payload, token) {
        return Err("Request origin could not be validated.".into());
    }
    if len > HELLO_MAX {
        return Err(format!(
            "daemon request failed: the request's environ is {len} bytes, over the limit of {HELLO_MAX} \
             (its headers: see LimitRequestFields and LimitRequestFieldSize)"
        ));
    }
    payload.resize(len, 0);
    input.read_exact(&mut payload[wire::HELLO_PREFIX..]).map_err(|e| format!("daemon request failed: {e}"))?;
    Hello::decode(&payload).map(Some).map_err(|e| format!("daemon request failed: {e}"))
}

/// Reads from a socket until an overall deadline, without touching its timeouts (a kept
/// connection's stay as set once): each read that would block waits in `poll` for what is
/// left. A hello usually arrives whole before its connection is readable, so this is one
/// `recv` per part.
struct Deadline<'a> {
    stream: &'a UnixStream,
    deadline: Instant,
}

impl Deadline<'_> {
    /// One read of at least a byte (0: end of stream).
    fn read_some(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let fd = std::os::fd::AsRawFd::as_raw_fd(self.stream);
        loop {
            // SAFETY: reads at most buf.len() bytes into buf.
            let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let error = std::io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => {}
                _ => return Err(error),
            }
            let left = self.deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero());
            let left = left.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::TimedOut, "hello not received in time"))?;
            let mut poll = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd; the result is read by the recv above.
            unsafe { libc::poll(&mut poll, 1, left.as_millis().clamp(1, c_int::MAX as u128) as c_int) };
        }
    }

    fn read_exact(&mut self, mut buf: &mut [u8]) -> std::io::Result<()> {
        while !buf.is_empty() {
            match self.read_some(buf)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => buf = &mut buf[n..],
            }
        }
        Ok(())
    }
}
