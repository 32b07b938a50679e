//! The engine's side of one request: what the application has said so far (status, headers,
//! bytes sent) and the calls back into the module, made with the GIL released.
//!
//! Python objects (`start_response`, `write`, `wsgi.input`) reach it through a pointer that is
//! cleared when the request ends, so an application that keeps them gets an exception, not a
//! dangling pointer.

use crate::abi;
use crate::gil::released;
use std::cell::RefCell;

thread_local! {
    /// The request this thread is serving, for log lines written through `sys.stdout`,
    /// `sys.stderr` and `wsgi.errors`. Set for the duration of `wsgi::handle`.
    static CURRENT: std::cell::Cell<*const abi::Request> = const { std::cell::Cell::new(std::ptr::null()) };
}

/// Logs a line against the request this thread is serving, or the process when none.
pub fn log_current(level: i32, message: &str) {
    let request = CURRENT.with(|c| c.get());
    if request.is_null() {
        super::settings::log(level, message);
    } else {
        // SAFETY: CURRENT is only non-null while its request is being handled on this thread.
        let request = unsafe { &*request };
        // SAFETY: the module's callback takes a byte string valid for the call.
        unsafe { (request.log)(request.ctx, level, abi::Bytes::new(message.as_bytes())) }
    }
}

/// Marks the request this thread serves (for [`log_current`]) until dropped.
pub struct Current;

impl Current {
    pub fn set(request: &abi::Request) -> Current {
        CURRENT.with(|c| c.set(request));
        Current
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(std::ptr::null()));
    }
}

/// Writes from this size on (or any flushed write) release the GIL: they may reach the
/// network. Below it, Apache's output buffering (8 KB) only copies the bytes.
const RELEASE_GIL_FROM: usize = 4096;

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
    pub body_sent: u64,
    /// The client went away; the rest of the response is dropped.
    pub client_gone: bool,
    /// `WSGIErrorOverride` took the response over: the body is dropped.
    pub overridden: bool,
    /// Request body bytes read from Apache but not yet handed to the application.
    pub input_buffer: Vec<u8>,
    pub input_done: bool,
}

/// Why a response could not be written.
#[derive(Debug, PartialEq)]
pub enum SendError {
    /// `start_response` was never called.
    NoStatus,
    /// Apache refused the status or a header.
    Refused,
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

    pub fn log(&self, level: i32, message: &str) {
        // SAFETY: the module's callback takes a byte string valid for the call.
        unsafe { (self.request.log)(self.request.ctx, level, abi::Bytes::new(message.as_bytes())) }
    }

    /// Passes status and headers to Apache once, before the first body byte.
    pub fn send_headers(&self) -> Result<(), SendError> {
        let mut state = self.state.borrow_mut();
        if state.headers_sent {
            return Ok(());
        }
        let status = state.status.clone().ok_or(SendError::NoStatus)?;
        let pairs: Vec<abi::Pair> = state
            .headers
            .iter()
            .map(|(n, v)| abi::Pair { name: abi::Bytes::new(n), value: abi::Bytes::new(v) })
            .collect();
        // SAFETY: status and pairs outlive the call; Apache copies what it keeps.
        let rc = unsafe { (self.request.start)(self.request.ctx, abi::Bytes::new(&status), pairs.as_ptr(), pairs.len()) };
        match rc {
            0 => state.headers_sent = true,
            1 => state.overridden = true,
            _ => return Err(SendError::Refused),
        }
        Ok(())
    }

    /// Sends one body chunk (headers first), cut to the declared Content-Length; with `flush`,
    /// Apache sends it on at once instead of buffering it (PEP 3333: no block may be delayed
    /// while the application produces the next one). Called with the GIL held; releases it
    /// around the network write.
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
        let (request, bytes) = (self.request, abi::Bytes::new(chunk));
        // Only small blocks need the explicit flush: from 8000 bytes on (AP_MIN_BYTES_TO_WRITE)
        // ap_rwrite passes the block on at once, and the core output filter writes what the
        // socket takes; a flush per large block only costs throughput.
        let flush = flush && chunk.len() < FLUSH_BELOW;
        // SAFETY: the chunk outlives the call; the module writes it to the client (an empty
        // write is a flush).
        let send = || unsafe {
            match (request.write)(request.ctx, bytes) {
                0 if flush => (request.write)(request.ctx, abi::Bytes::EMPTY),
                rc => rc,
            }
        };
        // A small chunk that is not flushed only lands in Apache's output buffer: releasing
        // the GIL for that memcpy would hand the GIL to another thread and make this one wait
        // to get it back, for nothing.
        let rc = if flush || chunk.len() >= RELEASE_GIL_FROM { released(send) } else { send() };
        if rc != 0 {
            self.state.borrow_mut().client_gone = true;
        }
        Ok(())
    }

    /// Sends `len` bytes of an open file from `offset` through Apache's file bucket (headers
    /// first), cut to the declared Content-Length. GIL released around the send.
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
        // SAFETY: fd is open (the application's file object is alive) for the call; the
        // module sends a duplicate of it, so the file may close after we return.
        let rc = released(|| unsafe { (request.send_file)(request.ctx, fd, offset, len) });
        if rc != 0 {
            self.state.borrow_mut().client_gone = true;
        }
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
