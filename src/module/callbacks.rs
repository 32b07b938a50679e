//! The module's side of the engine interface (`abi::Request`): the context the engine passes
//! back and the callbacks through which it reads the request body and writes the response,
//! plus the mapping of the engine's [`abi::Outcome`] to Apache's status. The engine calls them
//! with the GIL released; each may block on the network.

use super::apache;
use super::log;
use super::request::RequestRec;
use super::trampoline::trampoline;
use crate::abi;
use std::ffi::{c_int, c_void, CString};
use std::time::{Duration, Instant};

/// The module's side of one request, passed to the engine as the opaque context of its
/// callbacks.
pub(super) struct CallbackContext {
    r: *mut apache::request_rec,
    body_checked: bool,
    has_body: bool,
    /// `WSGIErrorOverride On`: an error status from the application is handed to Apache.
    error_override: bool,
    override_status: Option<c_int>,
    /// `WSGIEnableSendfile On`: `wsgi.file_wrapper`'s files may go out with sendfile.
    sendfile: bool,
    /// A HEAD request whose application set Content-Length: its body is not passed to Apache,
    /// whose content-length filter would otherwise set the header to the bytes it saw (fewer,
    /// for an application that writes none or a part), while it keeps the application's
    /// header when no byte came. A GET of the same URL then has the same headers.
    head_with_length: bool,
    /// The body traffic, and the time spent reading and writing it, for telemetry.
    pub(super) traffic: super::metrics::Traffic,
    pub(super) input_time: Duration,
    pub(super) output_time: Duration,
}

impl CallbackContext {
    /// `error_override`: `WSGIErrorOverride On` for this request.
    pub(super) fn new(r: &RequestRec, error_override: bool, sendfile: bool) -> CallbackContext {
        CallbackContext {
            r: r.as_ptr(),
            body_checked: false,
            has_body: false,
            error_override,
            override_status: None,
            sendfile,
            head_with_length: false,
            traffic: Default::default(),
            input_time: Duration::ZERO,
            output_time: Duration::ZERO,
        }
    }

    /// The request as the engine sees it, with this context and the callbacks below. Every
    /// pointer in it borrows `self` or the arguments: use it only while they live, and do
    /// not move `self` meanwhile.
    /// `python_wait` receives what the engine measured of the request's waits for Python;
    /// `figures`, the figures of the interpreter that served it (for the status page).
    pub(super) fn engine_request(
        &mut self,
        environ: &[abi::Pair],
        script: &[u8],
        callable: &[u8],
        group: &[u8],
        python_wait: Option<&mut abi::PythonWait>,
        figures: Option<&mut abi::GroupFigures>,
    ) -> abi::Request {
        abi::Request {
            ctx: (self as *mut CallbackContext).cast(),
            environ: environ.as_ptr(),
            environ_len: environ.len(),
            script: abi::Bytes::new(script),
            callable: abi::Bytes::new(callable),
            group: abi::Bytes::new(group),
            read: read_body,
            start: set_head,
            write: write_body,
            send_file: send_file_bucket,
            log: log_line,
            python_wait: python_wait.map_or(std::ptr::null_mut(), |w| w as *mut abi::PythonWait),
            figures: figures.map_or(std::ptr::null_mut(), |f| f as *mut abi::GroupFigures),
        }
    }

    /// What the handler returns to Apache for the engine's outcome. An outcome the module does
    /// not know is a 500.
    pub(super) fn status_of(&self, outcome: abi::Outcome) -> c_int {
        match outcome {
            abi::Outcome::DONE => apache::OK as c_int,
            abi::Outcome::OVERRIDE => self.override_status.unwrap_or(apache::HTTP_INTERNAL_SERVER_ERROR as c_int),
            abi::Outcome::ABORTED => {
                // SAFETY: the request this context was made for is still being handled.
                abort_response(unsafe { RequestRec::from_raw(self.r) });
                apache::OK as c_int
            }
            abi::Outcome::NOT_FOUND => apache::HTTP_NOT_FOUND as c_int,
            abi::Outcome::UNAVAILABLE => apache::HTTP_SERVICE_UNAVAILABLE as c_int,
            abi::Outcome::GATEWAY_TIMEOUT => apache::HTTP_GATEWAY_TIME_OUT as c_int,
            // SERVER_ERROR, and any value an engine should not have returned.
            _ => apache::HTTP_INTERNAL_SERVER_ERROR as c_int,
        }
    }
}

/// The code of a status line (`"404 Not Found"`: 404), or `None` when it does not start with
/// one.
pub(super) fn status_code(status: &[u8]) -> Option<i32> {
    std::str::from_utf8(status.get(..3)?).ok()?.parse().ok()
}

/// `WSGIErrorOverride`: whether Apache's error pages replace a response with status `code`.
/// The one rule for both sides of daemon mode: the daemon decides with it what `start` returns,
/// without waiting for the child, whose `start` applies it again.
pub(super) fn error_overridden(error_override: bool, code: i32) -> bool {
    error_override && code >= 400
}

/// # Safety
/// `ctx` must be the `CallbackContext` of the request being handled.
unsafe fn context<'a>(ctx: *mut c_void) -> &'a mut CallbackContext {
    // SAFETY: the engine passes back the ctx we gave it, during the handle call.
    unsafe { &mut *ctx.cast::<CallbackContext>() }
}

unsafe extern "C" fn read_body(ctx: *mut c_void, buf: *mut u8, len: usize) -> isize {
    trampoline("wsgi.input read", -1, || {
        // SAFETY: see context().
        let x = unsafe { context(ctx) };
        if !x.body_checked {
            x.body_checked = true;
            // SAFETY: live request; tells Apache we will read the body (sends 100-continue).
            x.has_body = unsafe { apache::ap_should_client_block(x.r) } != 0;
        }
        if !x.has_body || len == 0 {
            return 0;
        }
        let began = Instant::now();
        // SAFETY: buf has room for len bytes (engine contract).
        let n = unsafe { apache::ap_get_client_block(x.r, buf.cast(), len as apache::apr_size_t) };
        x.input_time += began.elapsed();
        x.traffic.input_reads += 1;
        x.traffic.input_bytes += n.max(0) as u64;
        if n < 0 {
            -1
        } else {
            n as isize
        }
    })
}

/// `abi::Request::start`: the status line and headers.
unsafe extern "C" fn set_head(ctx: *mut c_void, status: abi::Bytes, headers: *const abi::Pair, len: usize) -> c_int {
    trampoline("start_response", -1, || {
        // SAFETY: see context(); the engine's byte strings are valid for the call.
        let (x, status) = unsafe { (context(ctx), status.as_slice()) };
        // SAFETY: x.r is the live request.
        let r = unsafe { RequestRec::from_raw(x.r) };
        let Some(code) = status_code(status) else { return -1 };
        let status = String::from_utf8_lossy(status).into_owned();
        if error_overridden(x.error_override, code) {
            // Apache's ErrorDocument machinery produces the response instead.
            x.override_status = Some(code);
            return 1;
        }
        r.set_status(code, &status);
        let headers = if headers.is_null() || len == 0 {
            &[][..]
        } else {
            // SAFETY: the engine passes `len` pairs.
            unsafe { std::slice::from_raw_parts(headers, len) }
        };
        for pair in headers {
            // SAFETY: pair strings are valid for the call.
            let (name, value) = unsafe { (pair.name.as_slice(), pair.value.as_slice()) };
            let name = String::from_utf8_lossy(name);
            if name.eq_ignore_ascii_case("Content-Type") {
                let v = CString::new(value.to_vec()).unwrap_or_default();
                // SAFETY: the type is copied into the request pool before Apache keeps it.
                unsafe { apache::ap_set_content_type(x.r, apache::apr_pstrdup(r.pool(), v.as_ptr())) };
            } else if name.eq_ignore_ascii_case("Content-Length") {
                let Some(length) = std::str::from_utf8(value).ok().and_then(|v| v.trim().parse::<i64>().ok()) else { return -1 };
                // SAFETY: live request.
                unsafe { apache::ap_set_content_length(x.r, length) };
                // SAFETY: live request; header_only is set by Apache before the handler runs.
                // Not behind a filter that may change the body (mod_deflate, mod_include, ...):
                // such a filter decides from the body what headers the response gets
                // (mod_deflate, seeing none, leaves out its Content-Encoding and Vary), so
                // there the body goes through, as for GET.
                x.head_with_length = unsafe { (*x.r).header_only } != 0 && !r.has_content_filters();
            } else {
                r.headers_out().add(&name, value);
            }
        }
        0
    })
}

unsafe extern "C" fn write_body(ctx: *mut c_void, data: abi::Bytes) -> c_int {
    trampoline("response write", -1, || {
        // SAFETY: see context(); data is valid for the call.
        let (x, data) = unsafe { (context(ctx), data.as_slice()) };
        if x.head_with_length && !data.is_empty() {
            return 0;
        }
        let began = Instant::now();
        let n = if data.is_empty() {
            // SAFETY: live request.
            unsafe { apache::ap_rflush(x.r) }
        } else {
            // SAFETY: live request; each piece fits ap_rwrite's int length, and Apache copies
            // or sends the bytes before returning.
            write_in_pieces(data, MAX_WRITE, |piece| unsafe { apache::ap_rwrite(piece.as_ptr().cast(), piece.len() as c_int, x.r) })
        };
        x.output_time += began.elapsed();
        if !data.is_empty() {
            x.traffic.output_writes += 1;
            x.traffic.output_bytes += data.len() as u64;
        }
        if n < 0 {
            -1
        } else {
            0
        }
    })
}

/// The largest piece handed to `ap_rwrite`, whose length is a C `int`: a chunk of 2 GiB or
/// more would overflow it.
const MAX_WRITE: usize = 1 << 30;
const _: () = assert!(MAX_WRITE <= c_int::MAX as usize);

/// Writes `data` in pieces of at most `max` bytes; stops at the first negative result.
fn write_in_pieces(data: &[u8], max: usize, mut write: impl FnMut(&[u8]) -> c_int) -> c_int {
    for piece in data.chunks(max) {
        let n = write(piece);
        if n < 0 {
            return n;
        }
    }
    0
}

/// Ends a response the application failed in the middle of so that the client sees it cut
/// short, as mod_proxy does when a backend breaks (`ap_proxy_backend_broke`). What was written
/// goes out first, with a flush: Apache's content-length filter, which sets Content-Length to
/// the body it saw when the whole body and the EOS come in one pass, then never rewrites the
/// application's own header. Then an error bucket with 502: the chunk filter then sends no
/// last chunk, the HTTP/1 error filter closes the connection and mod_http2 resets the stream.
/// The EOS Apache sends when the handler returns ends the request.
fn abort_response(r: &mut RequestRec) {
    r.set_no_cache();
    // Flushed while keep-alive is still possible, so that Apache frames what went out
    // (chunked) before the connection is marked to close: marked first, a body whose headers
    // had not gone out yet (a daemon's response held for response-flush-delay) would go out
    // unframed and end with the connection, looking complete.
    // SAFETY: live request.
    unsafe { apache::ap_rflush(r.as_ptr()) };
    r.close_connection();
    // SAFETY: live request; the brigade and the bucket come from its pool and allocator, and
    // the bucket is linked into the brigade before the brigade is passed.
    unsafe {
        let bb = apache::apr_brigade_create(r.pool(), r.bucket_alloc());
        let error = apache::ap_bucket_error_create(apache::HTTP_BAD_GATEWAY as c_int, std::ptr::null(), r.pool(), r.bucket_alloc());
        insert_tail(bb, error);
        apache::ap_pass_brigade(r.output_filters(), bb);
        apache::apr_brigade_destroy(bb);
    }
}

/// `APR_BRIGADE_INSERT_TAIL`, a macro in C: links bucket `e` as the last one of `bb`.
///
/// # Safety
/// `bb` must be a live brigade and `e` a live bucket that is in no brigade.
unsafe fn insert_tail(bb: *mut apache::apr_bucket_brigade, e: *mut apache::apr_bucket) {
    // SAFETY: the caller passes a live brigade, whose ring links are valid buckets or the
    // sentinel, the brigade's list head seen as a bucket (APR_RING_SENTINEL); this is
    // APR_RING_SPLICE_BEFORE(sentinel, e, e).
    unsafe {
        let head = std::ptr::addr_of_mut!((*bb).list).cast::<u8>();
        let sentinel = head.wrapping_sub(std::mem::offset_of!(apache::apr_bucket, link)).cast::<apache::apr_bucket>();
        let last = (*bb).list.prev;
        (*e).link.next = sentinel;
        (*e).link.prev = last;
        (*last).link.next = e;
        (*bb).list.prev = e;
    }
}

/// `abi::Request::send_file`: a file bucket over a duplicate of the descriptor.
unsafe extern "C" fn send_file_bucket(ctx: *mut c_void, fd: c_int, offset: u64, len: u64) -> c_int {
    trampoline("wsgi.file_wrapper", -1, || {
        // SAFETY: see context().
        let x = unsafe { context(ctx) };
        if x.head_with_length {
            return 0;
        }
        // SAFETY: x.r is the live request.
        let r = unsafe { RequestRec::from_raw(x.r) };
        let (Ok(offset), Ok(len)) = (apache::apr_off_t::try_from(offset), apache::apr_off_t::try_from(len)) else { return -1 };
        // A file opened for writing only would fail in Apache's output filter, after this
        // returned, with nothing in the log but a dropped connection: said here instead.
        // SAFETY: F_GETFL on a descriptor the engine holds open for the call.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags >= 0 && flags & libc::O_ACCMODE == libc::O_WRONLY {
            log::request(log::ERR, x.r, "wsgi.file_wrapper: the file is not open for reading (opened write-only); the response is cut short.");
            return -1;
        }
        let Some(mut own_fd) = duplicate_for_request(r, fd) else { return -1 };
        let mut file: *mut apache::apr_file_t = std::ptr::null_mut();
        // As mod_wsgi: the file may go out through sendfile only under WSGIEnableSendfile On
        // (Apache's core output filter looks at this flag, not at its EnableSendfile).
        let flags = if x.sendfile { apache::APR_FOPEN_READ | apache::APR_FOPEN_SENDFILE_ENABLED } else { apache::APR_FOPEN_READ };
        // SAFETY: wraps our duplicate without an APR cleanup (the request pool's cleanup
        // closes it); the pool outlives the file buckets that refer to it.
        let status = unsafe { apache::apr_os_file_put(&mut file, &mut own_fd, flags as i32, r.pool()) };
        if status != 0 {
            return -1;
        }
        let began = Instant::now();
        // SAFETY: a brigade from the request pool; the file bucket(s) refer to `file`.
        let rc = unsafe {
            let bb = apache::apr_brigade_create(r.pool(), r.bucket_alloc());
            let bucket = apache::apr_brigade_insert_file(bb, file, offset, len, r.pool());
            // Read, never mapped: a file truncated while it is sent would kill the child with
            // SIGBUS through a mapping (Apache's own handler maps only under EnableMMAP).
            if !bucket.is_null() {
                apache::apr_bucket_file_enable_mmap(bucket, 0);
            }
            let rc = apache::ap_pass_brigade(r.output_filters(), bb);
            apache::apr_brigade_destroy(bb);
            rc
        };
        // Metered as one write of the file's bytes, as telemetry counts the body's writes.
        x.output_time += began.elapsed();
        if rc == 0 {
            x.traffic.output_writes += 1;
            x.traffic.output_bytes += len as u64;
            0
        } else {
            -1
        }
    })
}

/// A duplicate of the application's descriptor (close-on-exec), closed with the request pool.
/// The file bucket may be read after the engine returns and the application closes its file
/// (Apache sets buckets aside; under mod_http2 they outlive the handler).
fn duplicate_for_request(r: &RequestRec, fd: c_int) -> Option<c_int> {
    unsafe extern "C" fn close_fd(data: *mut c_void) -> apache::apr_status_t {
        trampoline("closing a wsgi.file_wrapper descriptor", 0, || {
            // SAFETY: data carries the descriptor duplicated below, closed once, by this cleanup.
            unsafe { libc::close(data as usize as c_int) };
            0
        })
    }
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor the engine holds open for the call.
    let own = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if own < 0 {
        return None;
    }
    // SAFETY: the pool is the live request's; the cleanup gets the descriptor back as data.
    unsafe { apache::apr_pool_cleanup_register(r.pool(), own as usize as *const c_void, Some(close_fd), Some(apache::apr_pool_cleanup_null)) };
    Some(own)
}

unsafe extern "C" fn log_line(ctx: *mut c_void, level: c_int, message: abi::Bytes) {
    trampoline("request log", (), || {
        // SAFETY: see context(); message is valid for the call.
        let (x, message) = unsafe { (context(ctx), message.as_slice()) };
        log::request(level, x.r, &String::from_utf8_lossy(message));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the piece lengths `write_in_pieces` hands out.
    fn pieces(len: usize, max: usize, fail_at: Option<usize>) -> (c_int, Vec<usize>) {
        let data = vec![7u8; len];
        let mut seen = Vec::new();
        let rc = write_in_pieces(&data, max, |piece| {
            seen.push(piece.len());
            if fail_at == Some(seen.len()) {
                -1
            } else {
                piece.len() as c_int
            }
        });
        (rc, seen)
    }

    #[test]
    fn writes_are_split_so_that_each_length_fits_a_c_int() {
        assert_eq!(pieces(10, 4, None), (0, vec![4, 4, 2]));
        assert_eq!(pieces(8, 4, None), (0, vec![4, 4]));
        assert_eq!(pieces(3, 4, None), (0, vec![3]));
        assert_eq!(pieces(0, 4, None), (0, vec![]));
        // A chunk of 2 GiB or more is several pieces of MAX_WRITE (lengths only: no 2 GiB
        // buffer is needed to count them).
        let two_gib_and_one = (c_int::MAX as usize) + 2;
        assert_eq!(two_gib_and_one.div_ceil(MAX_WRITE), 3);
        assert!(MAX_WRITE as c_int > 0);
    }

    #[test]
    fn a_failed_piece_stops_the_write() {
        assert_eq!(pieces(10, 4, Some(2)), (-1, vec![4, 4]));
    }
}
