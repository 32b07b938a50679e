//! The one way Apache calls into Rust: every `extern "C"` hook and directive handler runs its
//! body through [`trampoline`], so a panic becomes an error-log line and a fallback value (a 500 for
//! a handler) instead of unwinding into C, which would abort the child.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `body`; on a panic logs `what` with the panic message and returns `fallback`.
pub fn trampoline<R>(what: &str, fallback: R, body: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            let reason = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            // Logging itself must not unwind out of here either.
            let _ = catch_unwind(|| super::log::server(super::log::ERR, std::ptr::null(), &format!("internal error in {what}: {reason}")));
            fallback
        }
    }
}
