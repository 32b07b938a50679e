//! The engine's side of one request: what the application has said so far (status, headers,
//! bytes sent) and the calls back into the module, made with the GIL released.
//!
//! Python objects (`start_response`, `write`, `wsgi.input`) reach it through a pointer that is
//! cleared when the request ends, so an application that keeps them gets an exception, not a
//! dangling pointer.

use crate::abi;
use crate::gil::released;
use std::cell::RefCell;
use std::ffi::c_int;

thread_local! {
    /// The request this thread is serving, for log lines written through `sys.stdout`,
    /// `sys.stderr` and `wsgi.errors`. Set for the duration of `wsgi::handle`.
    static CURRENT: std::cell::Cell<*const abi::Request> = const { std::cell::Cell::new(std::ptr::null()) };
}

/// Logs a line against the request this thread is serving, or the process when none.
/// The GIL is released around the write (see [`crate::gil::outside`]).
pub fn log_current(level: i32, message: &str) {
    let request = CURRENT.with(|c| c.get());
    if request.is_null() {
        super::settings::log(level, message);
    } else {
        // SAFETY: CURRENT is only non-null while its request is being handled on this thread.
        let request = unsafe { &*request };
        // SAFETY: the module's callback takes a byte string valid for the call.
        crate::gil::outside(|| unsafe { (request.log)(request.ctx, level, abi::Bytes::new(message.as_bytes())) })
    }
}

/// Marks the request this thread serves (for [`log_current`]) until dropped.
/// Restores the previous one when dropped: a sub-request made by a filter while this thread
/// writes (mod_include's `#include virtual`) can run another WSGI request on the same thread.
pub struct Current(*const abi::Request);

impl Current {
    pub fn set(request: &abi::Request) -> Current {
        Current(CURRENT.with(|c| c.replace(request)))
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// Body bytes are gathered in the Exchange, with the GIL held, up to this many; then they go
/// to Apache in one call made with the GIL released. Releasing the GIL for every small piece
/// would hand it to another thread and make this one wait to get it back; holding it across
/// Apache's write would freeze every Python thread of the child whenever the client reads
/// slowly (once Apache's own buffer is full, its write blocks on the socket).
const GATHER_LIMIT: usize = 64 * 1024;

/// Chunks from this size on are not copied into the gathering buffer: what was gathered and
/// the chunk go to Apache together.
const DIRECT_FROM: usize = 8 * 1024;

/// Blocks smaller than this sit in ap_rwrite's buffer until flushed.
const FLUSH_BELOW: usize = 8192;

pub struct Exchange<'a> {
    pub request: &'a abi::Request,
    pub state: RefCell<State>,
}

#[derive(Default)]
pub struct State {
    /// The status line and headers from the last `start_response`, as latin-1 bytes.
    pub status: Option<Vec<u8>>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub headers_sent: bool,
    /// The application's own Content-Length: the body is cut to it.
    pub content_length: Option<u64>,
    /// A Content-Length that is not a number: refused when the response starts (mod_wsgi 6).
    pub bad_content_length: Option<Vec<u8>>,
    /// Body bytes accepted from the application (handed to Apache or gathered).
    pub body_sent: u64,
    /// Body bytes accepted but not handed to Apache yet (at most [`GATHER_LIMIT`]).
    pub gathered: Vec<u8>,
    /// Some of the body (or a file) was handed to Apache: from then on a failure can no
    /// longer become a clean error response, only a response cut short.
    pub passed: bool,
    /// The client went away; the rest of the response is dropped.
    pub client_gone: bool,
    /// `WSGIErrorOverride` took the response over: the body is dropped.
    pub overridden: bool,
    /// Request body bytes read from Apache but not yet handed to the application.
    pub input_buffer: Vec<u8>,
    pub input_done: bool,
    /// The interpreter that served the request (the last one, after a fall-back), whose
    /// figures go back to the module (`abi::Request::figures`), with its replica number;
    /// none when none was reached.
    pub interpreter: Option<(crate::gil::InterpIndex, u32)>,
}

/// Why a response could not be written.
#[derive(Debug, PartialEq)]
pub enum SendError {
    /// `start_response` was never called.
    NoStatus,
    /// Apache refused the status or a header.
    Refused,
    /// The application's Content-Length is not a non-negative integer.
    BadContentLength(Vec<u8>),
}

impl<'a> Exchange<'a> {
    pub fn new(request: &'a abi::Request) -> Exchange<'a> {
        Exchange { request, state: RefCell::new(State::default()) }
    }

    /// A variable the module put in the environ, as bytes.
    pub fn environ_value(&self, name: &[u8]) -> Option<&'a [u8]> {
        if self.request.environ.is_null() {
            return None;
        }
        // SAFETY: the module passes environ_len pairs valid for the request.
        let pairs = unsafe { std::slice::from_raw_parts(self.request.environ, self.request.environ_len) };
        // SAFETY: byte strings valid for the request.
        pairs.iter().find(|p| unsafe { p.name.as_slice() } == name).map(|p| unsafe { p.value.as_slice() })
    }

    /// Logs a line against this request, the GIL released around the write.
    pub fn log(&self, level: i32, message: &str) {
        let request = self.request;
        // SAFETY: the module's callback takes a byte string valid for the call.
        crate::gil::outside(|| unsafe { (request.log)(request.ctx, level, abi::Bytes::new(message.as_bytes())) })
    }

    /// Passes status and headers to Apache once, before the first body byte. This only fills
    /// the request's tables: nothing reaches the network, so the GIL may stay held.
    pub fn send_headers(&self) -> Result<(), SendError> {
        let mut state = self.state.borrow_mut();
        if state.headers_sent {
            return Ok(());
        }
        let status = state.status.clone().ok_or(SendError::NoStatus)?;
        if let Some(value) = &state.bad_content_length {
            return Err(SendError::BadContentLength(value.clone()));
        }
        let pairs: Vec<abi::Pair> = state.headers.iter().map(|(n, v)| abi::Pair { name: abi::Bytes::new(n), value: abi::Bytes::new(v) }).collect();
        // SAFETY: status and pairs outlive the call; Apache copies what it keeps.
        let rc = unsafe { (self.request.start)(self.request.ctx, abi::Bytes::new(&status), pairs.as_ptr(), pairs.len()) };
        match rc {
            0 => state.headers_sent = true,
            1 => state.overridden = true,
            _ => return Err(SendError::Refused),
        }
        Ok(())
    }

    /// Accepts one body chunk (headers first), cut to the declared Content-Length. Small
    /// chunks are gathered; the gathered bytes go to Apache, with the GIL released, when they
    /// reach [`GATHER_LIMIT`], with a large chunk, and with `flush` (then Apache sends them on
    /// at once: PEP 3333 wants no block delayed while the application produces the next one).
    /// Called with the GIL held.
    pub fn write(&self, data: &[u8], flush: bool) -> Result<(), SendError> {
        if data.is_empty() {
            return Ok(());
        }
        self.send_headers()?;
        let chunk = {
            let mut state = self.state.borrow_mut();
            if state.client_gone || state.overridden {
                return Ok(());
            }
            let allowed = match state.content_length {
                Some(limit) => (limit.saturating_sub(state.body_sent)).min(data.len() as u64) as usize,
                None => data.len(),
            };
            state.body_sent += allowed as u64;
            &data[..allowed]
        };
        if chunk.is_empty() {
            return Ok(());
        }
        let direct = {
            let mut state = self.state.borrow_mut();
            if chunk.len() < DIRECT_FROM && state.gathered.len() + chunk.len() <= GATHER_LIMIT {
                state.gathered.extend_from_slice(chunk);
                if !flush && state.gathered.len() < GATHER_LIMIT {
                    return Ok(());
                }
                &[][..]
            } else {
                chunk
            }
        };
        let request = self.request;
        self.hand_over(|gathered| released(|| deliver(request, gathered, direct, flush)));
        Ok(())
    }

    /// Runs `send` on the gathered bytes, then records that output reached Apache (and
    /// whether the client is gone). The buffer's allocation is kept for the next chunks.
    fn hand_over(&self, send: impl FnOnce(&[u8]) -> c_int) {
        let mut gathered = std::mem::take(&mut self.state.borrow_mut().gathered);
        let rc = send(&gathered);
        gathered.clear();
        let mut state = self.state.borrow_mut();
        state.gathered = gathered;
        state.passed = true;
        if rc != 0 {
            state.client_gone = true;
        }
    }

    /// Hands what is still gathered to Apache at the end of the response. Called after the
    /// request's GIL guard is gone, so that a small response costs no GIL round trip.
    pub fn finish(&self) {
        let pending = {
            let state = self.state.borrow();
            !state.gathered.is_empty() && !state.client_gone
        };
        if pending {
            let request = self.request;
            self.hand_over(|gathered| deliver(request, gathered, &[], false));
        }
    }

    /// Drops what was gathered: the response failed before any of it reached Apache, and
    /// becomes a clean error response instead.
    pub fn discard_output(&self) {
        self.state.borrow_mut().gathered.clear();
    }

    /// Whether any of the body reached Apache.
    pub fn output_passed(&self) -> bool {
        self.state.borrow().passed
    }

    /// The declared Content-Length and the bytes sent, when the body fell short of the
    /// length and the response should have had a body (not HEAD, 1xx, 204 or 304).
    pub fn shortfall(&self) -> Option<(u64, u64)> {
        let state = self.state.borrow();
        let declared = state.content_length?;
        if state.body_sent >= declared || state.client_gone || state.overridden {
            return None;
        }
        let code = state.status.as_deref().and_then(|s| s.get(..3)).and_then(|c| std::str::from_utf8(c).ok()?.parse::<u16>().ok());
        let bodiless = matches!(code, Some(100..=199 | 204 | 304)) || self.environ_value(b"REQUEST_METHOD") == Some(b"HEAD");
        (!bodiless).then_some((declared, state.body_sent))
    }

    /// A body whose length is known before any of it is sent (a file) gets a Content-Length
    /// when the application gave none, as in mod_wsgi.
    pub fn default_length(&self, len: u64) {
        let mut state = self.state.borrow_mut();
        if state.headers_sent || state.content_length.is_some() {
            return;
        }
        state.headers.push((b"Content-Length".to_vec(), len.to_string().into_bytes()));
        state.content_length = Some(len);
    }

    /// Sends `len` bytes of an open file from `offset` through Apache's file bucket (headers
    /// and gathered bytes first), cut to the declared Content-Length. GIL released around the
    /// send.
    pub fn send_file(&self, fd: i32, offset: u64, len: u64) -> Result<(), SendError> {
        self.send_headers()?;
        let len = {
            let mut state = self.state.borrow_mut();
            if state.client_gone || state.overridden {
                return Ok(());
            }
            let len = match state.content_length {
                Some(limit) => limit.saturating_sub(state.body_sent).min(len),
                None => len,
            };
            state.body_sent += len;
            len
        };
        if len == 0 {
            return Ok(());
        }
        let request = self.request;
        self.hand_over(|gathered| {
            released(|| match deliver(request, gathered, &[], false) {
                // SAFETY: fd is open for the call (the caller's own duplicate); the module
                // sends a duplicate of it, so it may close after we return.
                0 => unsafe { (request.send_file)(request.ctx, fd, offset, len) },
                rc => rc,
            })
        });
        Ok(())
    }

    /// Bytes read from Apache and not yet handed to the application.
    pub fn input_buffered(&self) -> usize {
        self.state.borrow().input_buffer.len()
    }

    /// Fills `buf` from the request body (nothing may be buffered), until it is full or the
    /// body ends; the count, or `None` on a read error. GIL released around each read.
    pub fn read_into(&self, buf: &mut [u8]) -> Option<usize> {
        let mut filled = 0;
        while filled < buf.len() && !self.state.borrow().input_done {
            let (request, ptr, len) = (self.request, buf[filled..].as_mut_ptr(), buf.len() - filled);
            // SAFETY: ptr has room for len bytes and outlives the call.
            let n = released(|| unsafe { (request.read)(request.ctx, ptr, len) });
            match n {
                n if n < 0 => {
                    self.state.borrow_mut().input_done = true;
                    return None;
                }
                0 => self.state.borrow_mut().input_done = true,
                n => filled += n as usize,
            }
        }
        Some(filled)
    }

    /// Makes sure at least `wanted` bytes are buffered (or the body has ended).
    /// Releases the GIL around each read from Apache; returns false on a read error.
    pub fn fill_input(&self, wanted: usize) -> bool {
        const BLOCK: usize = 64 * 1024;
        loop {
            let state = self.state.borrow_mut();
            if state.input_done || state.input_buffer.len() >= wanted {
                return true;
            }
            let mut block = vec![0u8; BLOCK.min(wanted.saturating_sub(state.input_buffer.len()).max(8192))];
            drop(state);
            let (request, ptr, len) = (self.request, block.as_mut_ptr(), block.len());
            // SAFETY: block has room for len bytes and outlives the call.
            let n = released(|| unsafe { (request.read)(request.ctx, ptr, len) });
            let mut state = self.state.borrow_mut();
            match n {
                n if n < 0 => {
                    state.input_done = true;
                    return false;
                }
                0 => state.input_done = true,
                n => state.input_buffer.extend_from_slice(&block[..n as usize]),
            }
        }
    }
}

/// Writes `first`, then `second`, to the client through the module, then flushes small
/// blocks when asked to. These calls can block on the network: never call this with the GIL
/// held. 0, or -1 once the client is gone.
fn deliver(request: &abi::Request, first: &[u8], second: &[u8], flush: bool) -> c_int {
    for part in [first, second] {
        // SAFETY: the bytes outlive the call; the module writes them to the client.
        if !part.is_empty() && unsafe { (request.write)(request.ctx, abi::Bytes::new(part)) } != 0 {
            return -1;
        }
    }
    // Only small blocks need the explicit flush: from 8000 bytes on (AP_MIN_BYTES_TO_WRITE)
    // ap_rwrite passes the block on at once, and the core output filter writes what the
    // socket takes; a flush per large block only costs throughput.
    if flush && first.len() + second.len() < FLUSH_BELOW {
        // SAFETY: an empty write is a flush.
        return unsafe { (request.write)(request.ctx, abi::Bytes::EMPTY) };
    }
    0
}
