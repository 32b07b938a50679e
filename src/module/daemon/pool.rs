//! In Apache's children: connections to the daemons kept open between requests, per group.
//! A request takes the most recently used one, or connects when there is none, and gives it
//! back when its exchange ended cleanly (`client.rs`). Connecting, accepting and closing a
//! Unix socket per request cost about as much as forwarding a small request; a kept
//! connection costs a descriptor on each side and nothing else (the daemon waits for it in
//! its epoll set, `dispatch.rs`, not with a thread).
//!
//! A kept connection may have been closed by its daemon since (a recycle or a stop shuts
//! them all down); the request then notices before the daemon said READY, so before
//! anything ran, and goes again on a new connection.
//!
//! The lock is held only to push or pop; no Python in Apache's children.

use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The most idle connections a child keeps per group: more than a child's threads can use at
/// once, so in practice every one is kept; the bound is for a pathological configuration.
const LIMIT: usize = 256;

/// An idle connection and the I/O timeout last set on it (set again only when a request's
/// differs: virtual hosts may have different `Timeout`s).
pub(super) struct Kept {
    pub(super) stream: Arc<UnixStream>,
    pub(super) timeout: Option<Duration>,
}

/// Idle connections by group index (the registry's order, fixed for a child's life).
static IDLE: Mutex<Vec<Vec<Kept>>> = Mutex::new(Vec::new());

/// The most recently given back connection to group `index`, if any.
pub(super) fn take(index: usize) -> Option<Kept> {
    IDLE.lock().unwrap_or_else(|e| e.into_inner()).get_mut(index).and_then(Vec::pop)
}

/// Keeps `kept` for the next request to group `index` (closed instead beyond [`LIMIT`]).
pub(super) fn give_back(index: usize, kept: Kept) {
    let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
    if idle.len() <= index {
        idle.resize_with(index + 1, Vec::new);
    }
    if idle[index].len() < LIMIT {
        idle[index].push(kept);
    }
}
