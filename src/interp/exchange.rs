//! The engine's side of one request: what the application has said so far (status, headers,
//! bytes sent) and the calls back into the module, made with the GIL released.
//!
//! Python objects (`start_response`, `write`, `wsgi.input`) reach it through a pointer that is
//! cleared when the request ends, so an application that keeps them gets an exception, not a
//! dangling pointer.

use crate::abi;
use crate::gil::released;
use std::cell::RefCell;

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
        if rc != 0 {
            return Err(SendError::Refused);
        }
        state.headers_sent = true;
        Ok(())
    }

    /// Sends one body chunk (headers first), cut to the declared Content-Length.
    /// Called with the GIL held; releases it around the network write.
    pub fn write(&self, data: &[u8]) -> Result<(), SendError> {
        if data.is_empty() {
            return Ok(());
        }
        self.send_headers()?;
        let chunk = {
            let mut state = self.state.borrow_mut();
            if state.client_gone {
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
        // SAFETY: the chunk outlives the call; the module writes it to the client.
        let rc = released(|| unsafe { (request.write)(request.ctx, bytes) });
        if rc != 0 {
            self.state.borrow_mut().client_gone = true;
        }
        Ok(())
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
