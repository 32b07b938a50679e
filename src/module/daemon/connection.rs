//! One forwarded request's connection inside a daemon: the engine's `ctx` for the request,
//! and the `abi::Request` callbacks that serve the engine's calls as frames to and from the
//! Apache child (see `wire.rs`). `process.rs` accepts the connection, checks its hello and
//! hands it to the engine with these callbacks.

use super::super::apache;
use super::super::callbacks::{error_overridden, status_code};
use super::super::log;
use super::monitor::{self, Monitor};
use super::wire::{self, Start};
use crate::abi;
use std::ffi::{c_int, c_void};
use std::io::{BufReader, BufWriter, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most bytes of frames made with the GIL held (see [`Conn::pending`]) that wait for the
/// child; log lines beyond it go to the error log from the daemon itself.
const PENDING_LIMIT: usize = 256 << 10;

/// One forwarded request's connection, the engine's `ctx`.
pub(super) struct Conn {
    /// Taken by the callbacks the engine calls without the GIL (`read`, `write`,
    /// `send_file`), which may hold it while they wait on the socket; never with the GIL held.
    pub(super) io: Mutex<Io>,
    /// The frames of the callbacks called with the GIL held (`start`, `log`): they must never
    /// wait for the socket (a child blocked on a slow client does not read it), nor for `io`,
    /// or every thread of the daemon would wait with them. They go out ahead of the next
    /// frame sent without the GIL (a write, a read, END). Lock order: io, then pending; never
    /// held across a blocking call.
    pub(super) pending: Mutex<Pending>,
    /// The child went away or the protocol broke: the rest of the request is discarded.
    pub(super) dead: AtomicBool,
    /// END was sent (under `io`): the child may already use the connection for its next
    /// request, so the monitor's abort must not write to it or shut it down.
    pub(super) ended: AtomicBool,
    /// The application called `start_response`: once its frame left, only a cut-short
    /// response can tell the client of a failure.
    pub(super) start_queued: AtomicBool,
    /// `WSGIErrorOverride` for this request (from the hello): `start` answers for the child.
    pub(super) error_override: bool,
    /// Whether this request's I/O resets `inactivity-timeout` (not under `WSGIIgnoreActivity`).
    pub(super) counts_as_activity: bool,
    /// `header-buffer-size=`: see [`start_response`].
    pub(super) header_buffer_size: usize,
    /// The group's name, for log lines.
    pub(super) group: Arc<str>,
    pub(super) server: *mut apache::server_rec,
    /// Request I/O resets its inactivity timer.
    pub(super) monitor: Arc<Monitor>,
    /// The body traffic, for telemetry.
    pub(super) meter: Meter,
}

/// What a request's body reads and response writes moved, and the time they took
/// (nanoseconds), for telemetry (`metrics`).
#[derive(Default)]
pub(super) struct Meter {
    input_bytes: AtomicU64,
    input_reads: AtomicU64,
    input_nanos: AtomicU64,
    output_bytes: AtomicU64,
    output_writes: AtomicU64,
    output_nanos: AtomicU64,
    /// The status the application gave `start_response` (0: none).
    status: AtomicU64,
}

impl Meter {
    fn add(count: &AtomicU64, n: u64) {
        count.fetch_add(n, Ordering::Relaxed);
    }

    /// The status the request ended with, as the client sees it, for an engine `outcome`.
    pub(super) fn status(&self, outcome: abi::Outcome) -> i32 {
        match outcome {
            abi::Outcome::DONE | abi::Outcome::OVERRIDE | abi::Outcome::ABORTED => self.status.load(Ordering::Relaxed) as i32,
            abi::Outcome::NOT_FOUND => 404,
            abi::Outcome::UNAVAILABLE => 503,
            abi::Outcome::GATEWAY_TIMEOUT => 504,
            _ => 500,
        }
    }

    /// The traffic, and the seconds spent reading and writing.
    pub(super) fn totals(&self) -> (crate::module::metrics::Traffic, f64, f64) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let traffic = crate::module::metrics::Traffic {
            input_bytes: get(&self.input_bytes),
            input_reads: get(&self.input_reads),
            output_bytes: get(&self.output_bytes),
            output_writes: get(&self.output_writes),
        };
        (traffic, get(&self.input_nanos) as f64 / 1e9, get(&self.output_nanos) as f64 / 1e9)
    }
}

// SAFETY: the server record is read-only configuration; everything else is Sync.
unsafe impl Send for Conn {}
// SAFETY: as above.
unsafe impl Sync for Conn {}

impl monitor::Abort for Conn {
    /// From the monitor's side of a stuck request: its worker is in Python (or blocked in a
    /// C call), not in the socket, unless it is writing, and then the wait is bounded.
    fn abort(&self, outcome: abi::Outcome, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut io = loop {
            match self.io.try_lock() {
                Ok(io) => break io,
                Err(std::sync::TryLockError::Poisoned(e)) => break e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                Err(std::sync::TryLockError::WouldBlock) => return false,
            }
        };
        if self.ended.load(Ordering::SeqCst) {
            // The request ended just now, on its own.
            return true;
        }
        // The process is about to exit: these last frames may not wait on the socket.
        let _ = io.stream.set_write_timeout(Some(wait.max(Duration::from_millis(1))));
        let (frames, start_queued) = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            (std::mem::take(&mut pending.frames), self.start_queued.load(Ordering::SeqCst))
        };
        let unsent_start = frames.iter().any(|(kind, _)| *kind == wire::START);
        // Log lines first; a START that never left is dropped: the client gets the failure.
        for (kind, payload) in frames.into_iter().filter(|(kind, _)| *kind == wire::LOG) {
            self.queue(kind, payload, false);
        }
        if unsent_start || !start_queued {
            self.send_locked(&mut io, wire::END, &wire::end(outcome.0, false), true);
        } else {
            // The response has begun: no END; the log lines go to the log from here.
            self.log_pending_locally();
        }
        // Whatever the worker does next goes nowhere; a begun response is cut short.
        self.kill(&io);
        true
    }
}

/// Frames waiting for the next send; see [`Conn::pending`].
#[derive(Default)]
pub(super) struct Pending {
    frames: Vec<(u8, Vec<u8>)>,
    /// Payload bytes in `frames`, bounded by [`PENDING_LIMIT`] for log lines.
    bytes: usize,
}

pub(super) struct Io {
    pub(super) reader: BufReader<Sock>,
    pub(super) writer: BufWriter<Sock>,
    pub(super) stream: Arc<UnixStream>,
}

/// One connection shared by the buffered reader and writer, without a descriptor each (two
/// `dup`s and `close`s per request saved).
pub(super) struct Sock(pub(super) Arc<UnixStream>);

impl std::io::Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::io::Read::read(&mut &*self.0, buf)
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        (&*self.0).flush()
    }
}

impl Conn {
    /// Request activity, for `inactivity-timeout`, unless `WSGIIgnoreActivity` says otherwise.
    fn touch(&self) {
        if self.counts_as_activity {
            self.monitor.touch();
        }
    }

    /// Sends one frame (after the waiting log lines); false once the connection is dead.
    pub(super) fn send(&self, kind: u8, payload: &[u8], flush: bool) -> bool {
        let mut io = self.io.lock().unwrap_or_else(|e| e.into_inner());
        self.send_locked(&mut io, kind, payload, flush)
    }

    fn send_locked(&self, io: &mut Io, kind: u8, payload: &[u8], flush: bool) -> bool {
        if self.dead.load(Ordering::Relaxed) {
            return false;
        }
        if kind == wire::END {
            self.ended.store(true, Ordering::SeqCst);
        }
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        let mut sent = pending.frames.iter().try_for_each(|(kind, payload)| wire::write_frame(&mut io.writer, *kind, payload));
        sent = sent.and_then(|()| wire::write_frame(&mut io.writer, kind, payload));
        if flush {
            sent = sent.and_then(|()| io.writer.flush());
        }
        if sent.is_err() {
            self.kill(io);
            // The child may not have logged them: better twice than never.
            self.log_locally(pending.frames);
        }
        sent.is_ok()
    }

    /// Queues a frame made with the GIL held (see [`Conn::pending`]). A log line that would
    /// take the queue over [`PENDING_LIMIT`] is refused (false); `start`'s frame never is.
    fn queue(&self, kind: u8, payload: Vec<u8>, bounded: bool) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if bounded && pending.bytes + payload.len() > PENDING_LIMIT {
            return false;
        }
        pending.bytes += payload.len();
        pending.frames.push((kind, payload));
        true
    }

    /// Queues the START frame and notes it, under one lock: [`monitor::Abort::abort`] reads
    /// both together.
    fn queue_start(&self, payload: Vec<u8>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.bytes += payload.len();
        pending.frames.push((wire::START, payload));
        self.start_queued.store(true, Ordering::SeqCst);
    }

    /// Waits for the child's answer to READ.
    fn answer(&self, io: &mut Io, max: usize) -> Option<(u8, Vec<u8>)> {
        match wire::read_frame(&mut io.reader, max) {
            Ok(frame) => Some(frame),
            Err(_) => {
                self.kill(io);
                None
            }
        }
    }

    /// Gives up on the connection: the child sees it close and aborts the response.
    fn kill(&self, io: &Io) {
        self.dead.store(true, Ordering::Relaxed);
        let _ = io.stream.shutdown(std::net::Shutdown::Both);
    }

    /// After END: whether the connection may carry the child's next request. Only when the
    /// request ended cleanly (never killed, nothing unread or unsent) and nothing else still
    /// holds it (the monitor's entry is gone), so that nothing of this request can touch the
    /// next one.
    pub(super) fn finished(self: Arc<Self>) -> bool {
        let Ok(conn) = Arc::try_unwrap(self) else { return false };
        if conn.dead.load(Ordering::SeqCst) {
            return false;
        }
        let io = conn.io.into_inner().unwrap_or_else(|e| e.into_inner());
        io.reader.buffer().is_empty() && io.writer.buffer().is_empty()
    }

    /// Lines the child can no longer receive go to the error log here.
    pub(super) fn log_pending_locally(&self) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        self.log_locally(pending.frames);
    }

    /// Logs the LOG frames among `frames` from this process (not attributed to the request:
    /// only the child knows the client).
    fn log_locally(&self, frames: Vec<(u8, Vec<u8>)>) {
        for (_, payload) in frames.into_iter().filter(|(kind, _)| *kind == wire::LOG) {
            let mut d = wire::Decoder(&payload);
            if let Ok(level) = d.i32() {
                log::server(level, self.server, &String::from_utf8_lossy(d.0));
            }
        }
    }
}

/// # Safety
/// `ctx` must be the `Conn` of the request being handled.
unsafe fn conn<'a>(ctx: *mut c_void) -> &'a Conn {
    // SAFETY: the engine passes back the ctx serve() gave it, during the handle call.
    unsafe { &*ctx.cast::<Conn>() }
}

pub(super) unsafe extern "C" fn read_body(ctx: *mut c_void, buf: *mut u8, len: usize) -> isize {
    super::super::trampoline::trampoline("daemon wsgi.input read", -1, || {
        // SAFETY: see conn().
        let c = unsafe { conn(ctx) };
        let len = len.min(wire::MAX_DATA);
        if len == 0 {
            return 0;
        }
        c.touch();
        let began = Instant::now();
        let mut io = c.io.lock().unwrap_or_else(|e| e.into_inner());
        if !c.send_locked(&mut io, wire::READ, &(len as u32).to_le_bytes(), true) {
            return -1;
        }
        let answer = c.answer(&mut io, len);
        Meter::add(&c.meter.input_nanos, began.elapsed().as_nanos() as u64);
        Meter::add(&c.meter.input_reads, 1);
        match answer {
            Some((wire::BODY, data)) => {
                Meter::add(&c.meter.input_bytes, data.len() as u64);
                // SAFETY: buf has room for len bytes (engine contract) and data.len() <= len.
                unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len()) };
                data.len() as isize
            }
            Some((wire::BODY_ERROR, _)) => -1,
            Some(_) => {
                // Out of step with the child: nothing more on this connection makes sense.
                c.kill(&io);
                -1
            }
            None => -1,
        }
    })
}

/// Called with the GIL held: queues the START frame and answers as the child's `start` will
/// (`WSGIErrorOverride` from the hello), without waiting for it.
pub(super) unsafe extern "C" fn start_response(ctx: *mut c_void, status: abi::Bytes, headers: *const abi::Pair, len: usize) -> c_int {
    super::super::trampoline::trampoline("daemon start_response", -1, || {
        // SAFETY: see conn(); the engine's strings and `len` pairs are valid for the call.
        let (c, status, headers) =
            unsafe { (conn(ctx), status.as_slice(), if headers.is_null() { &[][..] } else { std::slice::from_raw_parts(headers, len) }) };
        let Some(code) = status_code(status) else { return -1 };
        // SAFETY: as above.
        let pairs: Vec<(&[u8], &[u8])> = headers.iter().map(|p| unsafe { (p.name.as_slice(), p.value.as_slice()) }).collect();
        // mod_wsgi's header-buffer-size bounds each line of the head (the status line, each
        // `Name: value`), not their sum.
        let longest = pairs.iter().map(|(name, value)| name.len() + 2 + value.len()).chain([status.len()]).max().unwrap_or(0);
        if longest > c.header_buffer_size {
            // Refused here, with the numbers, rather than sent for the child to refuse (which
            // mod_wsgi reports only as "Truncated or oversized response headers").
            let message = oversized_headers(&c.group, longest, c.header_buffer_size);
            if !c.queue(wire::LOG, wire::Encoder::default().i32(log::ERR).raw(message.as_bytes()).0, true) {
                log::server(log::ERR, c.server, &message);
            }
            return -1;
        }
        c.meter.status.store(code as u64, Ordering::Relaxed);
        c.queue_start(Start::encode(status, pairs.into_iter()));
        if error_overridden(c.error_override, code) {
            1
        } else {
            0
        }
    })
}

/// The error-log line for a response head over `header-buffer-size`: what to change, and to
/// what.
fn oversized_headers(group: &str, size: usize, limit: usize) -> String {
    format!(
        "A response header line of {size} bytes from daemon process '{group}' is over its header-buffer-size of \
         {limit} bytes; the response is a 500. Raise header-buffer-size= of WSGIDaemonProcess {group} to at least \
         {size}, or send smaller headers."
    )
}

pub(super) unsafe extern "C" fn write_body(ctx: *mut c_void, data: abi::Bytes) -> c_int {
    super::super::trampoline::trampoline("daemon response write", -1, || {
        // SAFETY: see conn(); data is valid for the call.
        let (c, data) = unsafe { (conn(ctx), data.as_slice()) };
        c.touch();
        let began = Instant::now();
        let mut io = c.io.lock().unwrap_or_else(|e| e.into_inner());
        let sent = if data.is_empty() {
            c.send_locked(&mut io, wire::FLUSH, &[], true)
        } else {
            data.chunks(wire::MAX_DATA).all(|chunk| c.send_locked(&mut io, wire::DATA, chunk, false))
        };
        drop(io);
        Meter::add(&c.meter.output_nanos, began.elapsed().as_nanos() as u64);
        if !data.is_empty() {
            Meter::add(&c.meter.output_writes, 1);
            Meter::add(&c.meter.output_bytes, data.len() as u64);
        }
        if sent {
            0
        } else {
            -1
        }
    })
}

/// `wsgi.file_wrapper`: the file's bytes as DATA frames. A file shorter than promised
/// closes the connection, so that the client sees a truncated response, never a short one
/// that looks complete.
pub(super) unsafe extern "C" fn send_file(ctx: *mut c_void, fd: c_int, offset: u64, len: u64) -> c_int {
    super::super::trampoline::trampoline("daemon wsgi.file_wrapper", -1, || {
        // SAFETY: see conn().
        let c = unsafe { conn(ctx) };
        c.touch();
        // Metered as one write of the file's bytes, as in Apache's children (a file bucket).
        let began = std::time::Instant::now();
        let sent = send_file_frames(c, fd, offset, len);
        Meter::add(&c.meter.output_nanos, began.elapsed().as_nanos() as u64);
        if sent == 0 {
            Meter::add(&c.meter.output_writes, 1);
            Meter::add(&c.meter.output_bytes, len);
        }
        sent
    })
}

/// The file's bytes as DATA frames: 0, or -1 when the file or the connection failed.
fn send_file_frames(c: &Conn, fd: c_int, offset: u64, len: u64) -> c_int {
    let mut io = c.io.lock().unwrap_or_else(|e| e.into_inner());
    let mut buffer = vec![0u8; 256 << 10];
    let (mut offset, mut left) = (offset, len);
    while left > 0 {
        let want = buffer.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        // SAFETY: reads at most `want` bytes into the buffer from the engine's open file.
        let n = unsafe { libc::pread(fd, buffer.as_mut_ptr().cast(), want, offset as libc::off_t) };
        if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if n <= 0 {
            // Said here: the child only sees the connection end, and would report a cut
            // response without the cause.
            let cause = if n < 0 {
                std::io::Error::last_os_error().to_string()
            } else {
                format!("the file ended {left} bytes early (truncated while sent?)")
            };
            c.kill(&io);
            // After letting go of the connection: a stalled error log must not hold up the
            // monitor's abort of this request.
            drop(io);
            log::server(
                log::ERR,
                c.server,
                &format!("wsgi.file_wrapper: reading the file at offset {offset} failed: {cause}; the response is cut short."),
            );
            return -1;
        }
        if !c.send_locked(&mut io, wire::DATA, &buffer[..n as usize], false) {
            return -1;
        }
        offset += n as u64;
        left -= n as u64;
    }
    0
}

/// Called with the GIL held: queues the line for the child, which logs it against the
/// request. When the child cannot take it (gone, or [`PENDING_LIMIT`] reached: the
/// application logged that much since its last write or read), the daemon logs it itself:
/// bounded memory, no line lost.
pub(super) unsafe extern "C" fn log_line(ctx: *mut c_void, level: c_int, message: abi::Bytes) {
    super::super::trampoline::trampoline("daemon request log", (), || {
        // SAFETY: see conn(); message is valid for the call.
        let (c, message) = unsafe { (conn(ctx), message.as_slice()) };
        let queued = !c.dead.load(Ordering::Relaxed) && c.queue(wire::LOG, wire::Encoder::default().i32(level).raw(message).0, true);
        if !queued {
            log::server(level, c.server, &String::from_utf8_lossy(message));
        }
    })
}
