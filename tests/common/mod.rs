//! Test harness: a real Debian Apache on a free 127.0.0.1 port, with a generated config.
//!
//! Shared by the integration tests (each test binary compiles it through `mod common;`), one
//! concept per file, all re-exported here so that `use common::*;` finds everything:
//! - `apache.rs`: starting and stopping an [`Apache`], its generated config, the MPMs, crash
//!   markers in the error log, `apache2 -t` of a config;
//! - `processes.rs`: an Apache's children and their closing connections, read through `/proc`;
//! - `http.rs`: the HTTP client, a concurrent load, and the response parser;
//! - `dirs.rs`: a server's world-readable [`TempDir`], apps copied into it, the test cache;
//! - `answers.rs`: reading the test applications' answers (JSON, `key=value` reports, hashes);
//! - `comparison.rs`: side-by-side comparisons with a reference mod_wsgi;
//! - `reference.rs`: the reference modules (Debian's mod_wsgi 4.9, mod_wsgi 6.1 from PyPI);
//! - `python.rs`: installed Pythons, wheels and venvs from PyPI;
//! - `gil_race.rs`: the race that shows two GILs running at once;
//! - `daemon.rs`, `examples.rs`, `express.rs` (used as `common::daemon::`, `common::examples::`,
//!   `common::express::`): helpers of the daemon-mode tests, the examples served by
//!   `mod_wsgi-express`, and a running `mod_wsgi-express start-server` with the helpers of its
//!   tests.
#![allow(dead_code)]

mod answers;
mod apache;
mod comparison;
pub mod daemon;
mod dirs;
pub mod examples;
pub mod express;
mod gil_race;
mod http;
mod processes;
mod python;
mod reference;

// A test binary that uses nothing of one of these files would otherwise warn that its
// re-export is unused (as `dead_code` above, for the items themselves).
#[allow(unused_imports)]
pub use self::{answers::*, apache::*, comparison::*, dirs::*, gil_race::*, http::*, processes::*, python::*, reference::*};

use std::net::TcpListener;
use std::path::PathBuf;

/// The repository root (where `target/modules` is).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}
