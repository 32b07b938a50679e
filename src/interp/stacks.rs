//! Python stacks of given threads, for the daemon's `request-timeout` log lines (mod_wsgi
//! logs the stack of a request it gives up on, so that the cause shows in the error log).
//!
//! Called from the daemon's monitor thread, which serves no request: for each interpreter
//! in which one of the threads is serving (see `busy.rs`), it takes the GIL there, formats
//! `sys._current_frames()[ident]` with `traceback.format_stack`, and gives the GIL back
//! before any line is written to the error log (a write that can block).

use super::py::{self, PyObj};
use super::{busy, settings};
use crate::abi::level;
use crate::gil::GilGuard;
use crate::pyffi as ffi;

/// Logs the Python stack of each thread in `idents` (thread idents as `busy.rs` records them:
/// `pthread_self`), one error-log line per source line, under a header naming the thread.
/// Threads that are not serving a request are logged as such.
pub fn dump(idents: &[u64]) {
    for &ident in idents {
        let ident = ident as std::ffi::c_long;
        let lines = match busy::interpreter_of(ident) {
            Some(index) => {
                let _gil = GilGuard::acquire(index);
                format_stack(ident)
            }
            None => vec!["(the thread is not running Python code of a request)".to_string()],
        };
        settings::log(level::ERR, &format!("Python stack of thread {} (most recent call last):", ident as u64));
        for line in lines {
            settings::log(level::ERR, &line);
        }
    }
}

/// The formatted stack of thread `ident` in the current interpreter (GIL held).
fn format_stack(ident: std::ffi::c_long) -> Vec<String> {
    let formatted = (|| {
        let frames = py::import("sys").ok()?.call_method("_current_frames", &[]).ok()?;
        let frame = frames.call_method("get", &[&py::int(ident as u64 as i64).ok()?]).ok()?;
        if frame.is_none() {
            return Some("(no Python frame: the thread is outside Python code)".to_string());
        }
        let lines: PyObj = py::import("traceback").ok()?.call_method("format_stack", &[&frame]).ok()?;
        py::utf8(&py::text("").ok()?.call_method("join", &[&lines]).ok()?)
    })();
    match formatted {
        Some(text) => text.lines().map(str::to_string).collect(),
        None => {
            // SAFETY: under the GIL: whatever failed while formatting is dropped.
            unsafe { ffi::PyErr_Clear() };
            vec!["(the stack could not be formatted)".to_string()]
        }
    }
}
