//! Our GIL and thread-state layer.
//!
//! Each Apache worker thread keeps one `PyThreadState` per interpreter, created on first use
//! and reused by every later request on that thread ([`thread_state`]); entering an interpreter
//! is then one `PyEval_RestoreThread` ([`GilGuard`]), and Apache's network I/O runs with the
//! GIL released ([`Released`]). The `PyGILState_*` API is not used for this: it only knows the
//! main interpreter.
//!
//! In front of the GIL sits a scheduler ([`scheduler`]): at most N Apache threads run Python
//! at once, the others queue in FIFO order outside Python (`WSGIPythonConcurrency`).

mod admission;
pub mod gauges;
mod guard;
pub mod heartbeat;
pub mod scheduler;
mod thread_state;
mod tuner;
pub mod wait;

pub use admission::Refused;
pub use guard::{outside, outside_from_python, released, GilGuard};
pub use thread_state::{
    adopt_current, forget_interpreter, interpreter_of, is_cached, process_ending, register_interpreter, stop_reaping, thread_state,
    thread_state_count, thread_state_counts, InterpIndex, MAIN_INTERP,
};

#[cfg(test)]
mod tests;
