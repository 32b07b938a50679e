//! In Apache's child: forwards a request to its daemon group and serves the daemon's frames
//! with the handler's own callbacks (`abi::Request`), so validation, `WSGIErrorOverride`,
//! HEAD, flushing and clients that go away behave as in embedded mode. No Python here.

use super::super::apache;
use super::super::log;
use super::connection::Sock;
use super::options::SystemAccounts;
use super::pool::{self, Kept};
use super::script_owner;
use super::supervisor::{self, Group, Registry};
use super::wire::{self, Decoder, Start};
use crate::abi;
use std::ffi::{c_int, CStr};
use std::io::{self, BufReader, Write};
use std::os::fd::FromRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The first pause between connection attempts refused outright (mod_wsgi's: 0.125 s, then
/// 1 s once 2 s have passed).
const RETRY_SHORT: Duration = Duration::from_millis(125);
const RETRY_LONG: Duration = Duration::from_secs(1);
const RETRY_SHORT_FOR: Duration = Duration::from_secs(2);
/// The most body bytes fetched from Apache per READ frame.
const BODY_CHUNK: usize = 64 << 10;

/// Serves `request` through daemon group `name`; `error_override` is `WSGIErrorOverride` for
/// this request, as the handler's callbacks apply it. `Err` is an HTTP status for a failure of
/// the forwarding itself (already logged); `Ok` is what the engine in the daemon returned.
pub fn serve(r: *mut apache::request_rec, name: &str, request: &abi::Request, error_override: bool) -> Result<abi::Outcome, c_int> {
    let fail = |status: u32, message: String| {
        log::request(log::ERR, r, &message);
        Err(status as c_int)
    };
    let registry = supervisor::registry();
    let Some((index, group)) = registry.as_ref().and_then(|reg| reg.groups.iter().enumerate().find(|(_, g)| g.spec.name == name)) else {
        return fail(apache::HTTP_INTERNAL_SERVER_ERROR, format!("No WSGI daemon process called '{name}' has been configured."));
    };
    if !accessible(registry.as_ref().expect("found above"), group, r) {
        return fail(apache::HTTP_INTERNAL_SERVER_ERROR, format!("Daemon process called '{name}' cannot be accessed by this WSGI application."));
    }
    if let Some(rule) = &group.spec.script_owner {
        // SAFETY: the request record is live; filename is null or a NUL-terminated string.
        let filename = unsafe { (!(*r).filename.is_null()).then(|| CStr::from_ptr((*r).filename).to_bytes().to_vec()) };
        let filename = PathBuf::from(std::ffi::OsString::from_vec(filename.unwrap_or_default()));
        if let Err(message) = script_owner::check(rule, &filename, &SystemAccounts) {
            return fail(apache::HTTP_FORBIDDEN, message);
        }
    }
    // socket-timeout=, else this request's server's Timeout (as mod_wsgi).
    let timeout = match group.spec.timeouts.socket {
        0 => {
            // SAFETY: the request's server record is live configuration.
            let timeout = unsafe { (*(*r).server).timeout };
            (timeout > 0).then(|| Duration::from_micros(timeout as u64))
        }
        seconds => Some(Duration::from_secs(seconds)),
    };
    // A kept connection if there is one (see pool.rs), else a new one.
    let (stream, reused) = match pool::take(index) {
        Some(kept) => {
            if kept.timeout != timeout {
                let _ = kept.stream.set_read_timeout(timeout);
                let _ = kept.stream.set_write_timeout(timeout);
            }
            (kept.stream, true)
        }
        None => (Arc::new(connect_for(r, group, timeout)?), false),
    };
    let token = supervisor::token(index).unwrap_or_default();
    // response-socket-timeout=, else socket-timeout=; neither: the connection's own.
    let response_timeout = match (group.spec.timeouts.response_socket, group.spec.timeouts.socket) {
        (0, 0) => None,
        (0, seconds) | (seconds, _) => Some(Duration::from_secs(seconds)),
    };
    let mut exchange = Exchange {
        r,
        name,
        index,
        group,
        request,
        stream,
        reused,
        reusable: false,
        timeout,
        ready: false,
        started: false,
        flusher: Flusher::new(group.spec.response_buffer_size),
        response_timeout,
        client_timeout: None,
    };
    exchange.run(token, error_override)
}

/// Connects to `group` for request `r` (see [`connect`]) with the connection's I/O timeout;
/// `Err` is the 503 after mod_wsgi's line, logged.
fn connect_for(r: *mut apache::request_rec, group: &Group, timeout: Option<Duration>) -> Result<UnixStream, c_int> {
    let name = &group.spec.name;
    let message = match connect(group) {
        Ok(stream) => {
            let _ = stream.set_read_timeout(timeout);
            let _ = stream.set_write_timeout(timeout);
            return Ok(stream);
        }
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::ECONNREFUSED)) => format!(
            "Unable to connect to WSGI daemon process '{name}' on '{}' after multiple attempts as listener backlog limit was exceeded or the socket does not exist \
             ({e}; connect-timeout is {} s: the daemons are not taking connections fast enough, or cannot start).",
            group.path.display(),
            group.spec.timeouts.connect
        ),
        Err(e) => {
            // SAFETY: getuid has no preconditions.
            let uid = unsafe { libc::getuid() };
            format!("Unable to connect to WSGI daemon process '{name}' on '{}' as user with uid={uid}: {e}", group.path.display())
        }
    };
    log::request(log::ERR, r, &message);
    Err(apache::HTTP_SERVICE_UNAVAILABLE as c_int)
}

/// mod_wsgi's rule: a group defined in a virtual host serves that host (by name) only.
fn accessible(registry: &Registry, group: &Group, r: *mut apache::request_rec) -> bool {
    // SAFETY: the request's server and the group's server are live configuration.
    let server = unsafe { (*r).server };
    if group.server == server || group.server == registry.main {
        return true;
    }
    // SAFETY: as above; server_hostname is null or a NUL-terminated string.
    let hostname = |s: *mut apache::server_rec| unsafe { (!(*s).server_hostname.is_null()).then(|| CStr::from_ptr((*s).server_hostname)) };
    matches!((hostname(group.server), hostname(server)), (Some(a), Some(b)) if a == b)
}

/// Connects within the group's `connect-timeout=`, as mod_wsgi: a full listen backlog is
/// waited on (a blocking connect with a send timeout; Linux fails it with EAGAIN when that
/// runs out), a refused connection (a socket with no listener) is tried again after a pause.
/// `connect-timeout=0`: one attempt that does not wait.
fn connect(group: &Group) -> io::Result<UnixStream> {
    // SAFETY: sockaddr_un is plain old data.
    let mut address: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    address.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let path = group.path.as_os_str().as_bytes();
    if path.len() >= address.sun_path.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (to, from) in address.sun_path.iter_mut().zip(path) {
        *to = *from as libc::c_char;
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(group.spec.timeouts.connect);
    loop {
        match connect_once(&address, deadline.saturating_duration_since(Instant::now())) {
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) && Instant::now() < deadline => {
                let pause = if started.elapsed() < RETRY_SHORT_FOR { RETRY_SHORT } else { RETRY_LONG };
                std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
            }
            result => return result,
        }
    }
}

/// One connection attempt that waits at most `wait` for room in the backlog.
fn connect_once(address: &libc::sockaddr_un, wait: Duration) -> io::Result<UnixStream> {
    // A zero wait is a non-blocking attempt (a zero SO_SNDTIMEO would wait for ever).
    let non_blocking = if wait.is_zero() { libc::SOCK_NONBLOCK } else { 0 };
    // SAFETY: plain socket creation.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC | non_blocking, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a new socket that nothing else owns; the stream closes it.
    let stream = unsafe { UnixStream::from_raw_fd(fd) };
    if !wait.is_zero() {
        stream.set_write_timeout(Some(wait))?;
    }
    let size = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: address is a valid sockaddr_un of `size` bytes.
    if unsafe { libc::connect(fd, (address as *const libc::sockaddr_un).cast(), size) } != 0 {
        return Err(io::Error::last_os_error());
    }
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// One forwarded request.
struct Exchange<'a> {
    r: *mut apache::request_rec,
    name: &'a str,
    /// The group's index in the registry (its pool of kept connections).
    index: usize,
    group: &'a Group,
    request: &'a abi::Request,
    stream: Arc<UnixStream>,
    /// `stream` was kept from an earlier request: the daemon may have closed it since.
    reused: bool,
    /// The exchange ended cleanly with END: `stream` may carry the next request.
    reusable: bool,
    /// The I/O timeout on the connection (`socket-timeout=`, else `Timeout`), for log lines.
    timeout: Option<Duration>,
    /// The daemon accepted the hello: Python sees the request.
    ready: bool,
    /// Response headers were handed to Apache.
    started: bool,
    /// `response-buffer-size=`.
    flusher: Flusher,
    /// `response-socket-timeout=` (else `socket-timeout=`), set on the client connection once
    /// the response begins.
    response_timeout: Option<Duration>,
    client_timeout: Option<ClientTimeout>,
}

impl Exchange<'_> {
    /// Sends the request, and again to a new connection each time the daemon answers that it
    /// is restarting (a changed script: see `reloading.rs`), at most `2 * processes + 1`
    /// times in all, as mod_wsgi, then 503. The same hello each time (its `queue_start` too,
    /// so `queue-timeout=` counts from the first attempt).
    fn run(&mut self, token: [u8; 16], error_override: bool) -> Result<abi::Outcome, c_int> {
        let hello = match self.hello(token, error_override) {
            Ok(hello) => hello,
            Err(e) => return self.failed(e),
        };
        let maximum = 2 * self.group.spec.processes.max(1) + 1;
        let mut restarts = 0;
        loop {
            match self.forward(&hello) {
                Ok(Some(outcome)) => {
                    if self.reusable {
                        pool::give_back(self.index, Kept { stream: self.stream.clone(), timeout: self.timeout });
                    }
                    return Ok(outcome);
                }
                Ok(None) => {}
                Err(e) if self.reused && !self.ready && closed(&e) => {
                    // A kept connection that its daemon closed since (a recycle, a stop):
                    // nothing of the request was taken; it goes on a new connection.
                    self.reused = false;
                    self.stream = Arc::new(connect_for(self.r, self.group, self.timeout)?);
                    continue;
                }
                Err(e) => return self.failed(e),
            }
            restarts += 1;
            if restarts >= maximum {
                log::request(
                    log::ERR,
                    self.r,
                    &format!("Maximum number of WSGI daemon process '{}' restart attempts reached: {maximum}.", self.name),
                );
                return Err(apache::HTTP_SERVICE_UNAVAILABLE as c_int);
            }
            log::request(abi::level::INFO, self.r, &format!("Reconnecting after WSGI daemon process '{}' restart, attempt #{restarts}.", self.name));
            self.reused = false;
            self.stream = Arc::new(connect_for(self.r, self.group, self.timeout)?);
        }
    }

    /// The framed hello for this request.
    fn hello(&self, token: [u8; 16], error_override: bool) -> io::Result<Vec<u8>> {
        let request = self.request;
        // SAFETY: the handler's request record and its strings outlive this call.
        let (environ, script, callable, group) = unsafe {
            let environ = if request.environ.is_null() { &[][..] } else { std::slice::from_raw_parts(request.environ, request.environ_len) };
            (environ, request.script.as_slice(), request.callable.as_slice(), request.group.as_slice())
        };
        let queued = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0).to_string();
        // SAFETY: as above.
        let pairs = environ.iter().map(|p| unsafe { (p.name.as_slice(), p.value.as_slice()) });
        let pairs = pairs.chain(std::iter::once((&b"mod_wsgi.queue_start"[..], queued.as_bytes())));
        wire::hello_frame(&token, error_override, script, callable, group, pairs)
    }

    /// One attempt: sends the hello and serves the daemon's frames. `None`: the daemon is
    /// restarting and did not take the request (nothing was read from the client).
    fn forward(&mut self, hello: &[u8]) -> io::Result<Option<abi::Outcome>> {
        let request = self.request;
        (&*self.stream).write_all(hello)?;
        let mut reader = BufReader::with_capacity(8 << 10, Sock(self.stream.clone()));
        // When a FLUSH not yet acted on is due at the latest (`response-flush-delay=` after
        // the first one deferred): it is done then, or as soon as nothing more is at hand,
        // or before anything that waits on the client (READ), whichever comes first.
        let mut flush_at: Option<Instant> = None;
        loop {
            if let Some(deadline) = flush_at {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || !self.more_within(&reader, left) {
                    flush_at = None;
                    if !self.flush() {
                        return Ok(Some(abi::Outcome::DONE));
                    }
                }
            }
            // The daemon holds each header line to header-buffer-size; the head as a whole
            // has the general frame limit here.
            let (kind, payload) = match wire::read_frame(&mut reader, wire::MAX_FRAME) {
                Ok(frame) => frame,
                Err(e) => {
                    if flush_at.is_some() {
                        // What the application flushed reaches the client before the
                        // failure cuts the response short, as without a delay.
                        self.flush();
                    }
                    return Err(e);
                }
            };
            match kind {
                wire::READY => self.ready = true,
                wire::RESTART if !self.ready => return Ok(None),
                wire::READ => {
                    // The application may wait for the client to answer what it flushed.
                    if flush_at.take().is_some() && !self.flush() {
                        return Ok(Some(abi::Outcome::DONE));
                    }
                    self.read(Decoder(&payload).u32()? as usize)?
                }
                wire::START => {
                    // A daemon sends one START per request (again for each block of a response
                    // that WSGIErrorOverride hands to Apache, whose `start` answers 1 each
                    // time); one after headers Apache took is a site's own frames, after
                    // headers and maybe body went out.
                    if self.started {
                        log::request(log::ERR, self.r, &format!("Daemon process '{}' sent a second response start: {}", self.name, self.script()));
                        let _ = self.stream.shutdown(std::net::Shutdown::Both);
                        // What went out must not look complete.
                        return Ok(Some(abi::Outcome::ABORTED));
                    }
                    self.response_begins();
                    if !self.start(&payload)? {
                        // The daemon, which took the headers as sent, finds the connection
                        // closed at its next write.
                        let _ = self.stream.shutdown(std::net::Shutdown::Both);
                        return Ok(Some(abi::Outcome::SERVER_ERROR));
                    }
                }
                wire::FLUSH if !self.group.spec.response_flush_delay.is_zero() => {
                    self.response_begins();
                    // A later FLUSH does not push the first one's deadline back.
                    flush_at.get_or_insert_with(|| Instant::now() + self.group.spec.response_flush_delay);
                }
                wire::DATA | wire::FLUSH => {
                    self.response_begins();
                    let data = if kind == wire::DATA { abi::Bytes::new(&payload) } else { abi::Bytes::EMPTY };
                    // SAFETY: the handler's callback with its own ctx, during its request.
                    if unsafe { (request.write)(request.ctx, data) } != 0 {
                        // The client is gone: the daemon's next write fails and the engine
                        // closes the application's iterable, as when embedded.
                        let _ = self.stream.shutdown(std::net::Shutdown::Both);
                        return Ok(Some(abi::Outcome::DONE));
                    }
                    if self.flusher.passed(payload.len()) && !self.flush() {
                        return Ok(Some(abi::Outcome::DONE));
                    }
                }
                wire::LOG => {
                    let mut d = Decoder(&payload);
                    let level = d.i32()?;
                    // SAFETY: as above; the text is valid for the call.
                    unsafe { (request.log)(request.ctx, level, abi::Bytes::new(d.0)) };
                }
                wire::END => {
                    // Nothing may follow END: anything buffered means the two ends are out of
                    // step, and the connection is not used again.
                    let mut end = Decoder(&payload);
                    let outcome = end.i32()?;
                    self.reusable = end.u8()? == 1 && reader.buffer().is_empty();
                    return Ok(Some(abi::Outcome(outcome)));
                }
                other => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("unexpected frame kind {other}"))),
            }
        }
    }

    /// Flushes what Apache holds of the response; false (the connection to the daemon shut
    /// down, so the daemon's next write fails) when the client is gone.
    fn flush(&mut self) -> bool {
        // SAFETY: the handler's callback with its own ctx, during its request; an empty
        // write is a flush.
        if unsafe { (self.request.write)(self.request.ctx, abi::Bytes::EMPTY) } != 0 {
            let _ = self.stream.shutdown(std::net::Shutdown::Both);
            return false;
        }
        self.flusher.passed(0);
        true
    }

    /// Whether more of the response is at hand within `delay`: buffered already, or readable
    /// on the connection within it.
    fn more_within(&self, reader: &BufReader<Sock>, delay: Duration) -> bool {
        if !reader.buffer().is_empty() {
            return true;
        }
        let mut poll = libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(&*self.stream), events: libc::POLLIN, revents: 0 };
        let millis = delay.as_millis().clamp(1, c_int::MAX as u128) as c_int;
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut poll, 1, millis) > 0 }
    }

    /// The client connection gets `response-socket-timeout=` (restored when the exchange
    /// ends), as mod_wsgi sets it while it passes the response on.
    fn response_begins(&mut self) {
        if self.client_timeout.is_none() {
            if let Some(timeout) = self.response_timeout {
                self.client_timeout = ClientTimeout::set(self.r, timeout);
            }
        }
    }

    /// READ: a piece of the request body, fetched from Apache only now, as when embedded.
    fn read(&mut self, max: usize) -> io::Result<()> {
        let mut buffer = vec![0u8; max.min(BODY_CHUNK)];
        // SAFETY: the handler's callback, with a buffer of the length given.
        let n = unsafe { (self.request.read)(self.request.ctx, buffer.as_mut_ptr(), buffer.len()) };
        let mut framed = Vec::new();
        match usize::try_from(n) {
            Ok(n) => wire::write_frame(&mut framed, wire::BODY, &buffer[..n.min(buffer.len())])?,
            Err(_) => wire::write_frame(&mut framed, wire::BODY_ERROR, &[])?,
        }
        (&*self.stream).write_all(&framed)
    }

    /// START: the status and headers go through the handler's `start`, which also records a
    /// `WSGIErrorOverride` takeover (1) for the outcome the daemon will send. No answer: the
    /// daemon made the same decision itself. False when Apache refused them (-1), which the
    /// daemon could not foresee: the request becomes a 500, as when embedded.
    ///
    /// The status and headers are checked again here, as the engine checks them at
    /// `start_response`: the daemon runs the site's code, which can write a START frame to its
    /// socket itself (an unframed body, a 1xx status, a header Apache would pass as it is), so
    /// nothing in them is trusted. A failed check is a 500, as when Apache refuses them.
    fn start(&mut self, payload: &[u8]) -> io::Result<bool> {
        let mut start = Start::decode(payload)?;
        if let Err(reason) = checked(&mut start) {
            log::request(
                log::ERR,
                self.r,
                &format!("Invalid response status or headers from daemon process '{}' ({reason}): {}", self.name, self.script()),
            );
            self.started = false;
            return Ok(false);
        }
        let pairs: Vec<abi::Pair> = start.headers.iter().map(|(k, v)| abi::Pair { name: abi::Bytes::new(k), value: abi::Bytes::new(v) }).collect();
        // SAFETY: the handler's callback; the status and pairs are valid for the call.
        let rc = unsafe { (self.request.start)(self.request.ctx, abi::Bytes::new(&start.status), pairs.as_ptr(), pairs.len()) };
        self.started = rc == 0;
        if rc < 0 {
            let status = String::from_utf8_lossy(&start.status);
            log::request(
                log::ERR,
                self.r,
                &format!("Apache refused the response status or headers from daemon process '{}' (status '{status}'): {}", self.name, self.script()),
            );
        }
        Ok(rc >= 0)
    }

    fn script(&self) -> String {
        // SAFETY: the handler's request record outlives this call.
        String::from_utf8_lossy(unsafe { self.request.script.as_slice() }).into_owned()
    }

    /// What a broken connection means depends on how far the request got. Once the headers
    /// went to Apache, the response is cut short (`Outcome::ABORTED`: no last chunk, the
    /// connection closed), never ended as if complete.
    fn failed(&self, error: io::Error) -> Result<abi::Outcome, c_int> {
        let script = self.script();
        let name = self.name;
        let timed_out = matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut);
        let (status, message) = if !self.ready && timed_out {
            let waited = self.timeout.map_or(0, |t| t.as_secs());
            (
                apache::HTTP_SERVICE_UNAVAILABLE,
                format!(
                    "Daemon process '{name}' did not take the request within {waited} s (socket-timeout=, else Timeout): its \
                 processes are all busy, stuck, or cannot start: {script}"
                ),
            )
        } else if !self.ready {
            (
                apache::HTTP_SERVICE_UNAVAILABLE,
                format!("Daemon process '{name}' closed the connection before handling the request ({error}): {script}"),
            )
        } else if self.started {
            let message = if timed_out {
                format!("Timeout when reading the rest of the response from daemon process '{name}'; the response is cut short: {script}")
            } else {
                format!(
                    "Daemon process '{name}' went away mid-response (it died or closed the connection: {error}); the response is cut short: {script}"
                )
            };
            log::request(log::ERR, self.r, &message);
            return Ok(abi::Outcome::ABORTED);
        } else if timed_out {
            (apache::HTTP_GATEWAY_TIME_OUT, format!("Timeout when reading response headers from daemon process '{name}': {script}"))
        } else if let Some(oversized) = wire::Oversized::of(&error).filter(|o| o.kind == wire::START) {
            (
                apache::HTTP_INTERNAL_SERVER_ERROR,
                format!(
                    "Truncated or oversized response headers received from daemon process '{name}': {} bytes of status and headers, \
                 over the limit of {} bytes: {script}",
                    oversized.len, oversized.max
                ),
            )
        } else {
            (
                apache::HTTP_INTERNAL_SERVER_ERROR,
                format!("Truncated or oversized response headers received from daemon process '{name}' ({error}): {script}"),
            )
        };
        log::request(log::ERR, self.r, &message);
        Err(status as c_int)
    }
}

/// A failure that means the daemon closed the connection (rather than a timeout, or a broken
/// frame): on a kept connection, before READY, the request goes again on a new one.
fn closed(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
    )
}

/// `response-buffer-size=`: as mod_wsgi's guard against output filters that buffer without
/// end, the response is flushed whenever more than this many bytes went to Apache since the
/// last flush.
struct Flusher {
    limit: usize,
    since_flush: usize,
}

impl Flusher {
    fn new(limit: usize) -> Flusher {
        Flusher { limit, since_flush: 0 }
    }

    /// Notes `n` bytes passed on (0: a flush); true when a flush is due now.
    fn passed(&mut self, n: usize) -> bool {
        if n == 0 {
            self.since_flush = 0;
            return false;
        }
        self.since_flush += n;
        if self.since_flush > self.limit {
            self.since_flush = 0;
            return true;
        }
        false
    }
}

/// The client connection's socket timeout, changed for this response and put back after.
struct ClientTimeout {
    socket: *mut apache::apr_socket_t,
    previous: apache::apr_interval_time_t,
}

impl ClientTimeout {
    /// None when the connection has no socket of its own: a secondary (HTTP/2 stream)
    /// connection shares its main connection's socket, which another thread drives.
    fn set(r: *mut apache::request_rec, timeout: Duration) -> Option<ClientTimeout> {
        // SAFETY: the live request's connection record.
        let c = unsafe { (*r).connection };
        // SAFETY: as above.
        if c.is_null() || !unsafe { (*c).master }.is_null() {
            return None;
        }
        // SAFETY: the connection's core socket, live for the connection.
        let socket = unsafe { apache::ap_get_conn_socket(c) };
        if socket.is_null() {
            return None;
        }
        let mut previous: apache::apr_interval_time_t = 0;
        // SAFETY: a live socket; the getter writes one value.
        if unsafe { apache::apr_socket_timeout_get(socket, &mut previous) } != 0 {
            return None;
        }
        let micros = apache::apr_interval_time_t::try_from(timeout.as_micros()).unwrap_or(apache::apr_interval_time_t::MAX);
        // SAFETY: as above.
        unsafe { apache::apr_socket_timeout_set(socket, micros) };
        Some(ClientTimeout { socket, previous })
    }
}

impl Drop for ClientTimeout {
    fn drop(&mut self) {
        // SAFETY: the exchange ends within the request, on the connection's live socket.
        unsafe { apache::apr_socket_timeout_set(self.socket, self.previous) };
    }
}

/// What the engine's `start_response` would have let through of a daemon's START: the status
/// and each header checked, `Connection` and `Keep-Alive` as Apache must see them, a
/// `Content-Length` that is a number.
fn checked(start: &mut Start) -> Result<(), String> {
    crate::headers::check_status(&start.status)?;
    let headers = std::mem::take(&mut start.headers);
    for (name, value) in headers {
        crate::headers::check_header(&name, &value)?;
        if name.eq_ignore_ascii_case(b"Content-Length") && std::str::from_utf8(&value).ok().and_then(|v| v.trim().parse::<u64>().ok()).is_none() {
            return Err(format!("Content-Length is not a number: {}", crate::headers::bytes_repr(&value)));
        }
        if let Some(value) = crate::headers::for_apache(&name, value) {
            start.headers.push((name, value));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Flusher;

    #[test]
    fn the_response_is_flushed_each_time_more_than_the_buffer_size_passed() {
        let mut flusher = Flusher::new(100);
        assert!(!flusher.passed(60));
        assert!(!flusher.passed(40), "exactly the limit: no flush yet");
        assert!(flusher.passed(1));
        assert!(!flusher.passed(100));
        assert!(!flusher.passed(0), "an application's flush starts the count again");
        assert!(!flusher.passed(100));
        assert!(flusher.passed(500));
    }
}
