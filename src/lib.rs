//! mod_wsgi-rs: the Apache module (`LoadModule wsgi_module .../mod_wsgi.so`).
//!
//! Two shared objects are built from `src/`, and which file goes into which is the first thing
//! to know here:
//!
//! | `.so` | crate root | sources | links |
//! |---|---|---|---|
//! | `mod_wsgi.so`, loaded by Apache's parent | this file (`src/lib.rs`, package `mod_wsgi`) | `src/module/`, `src/abi.rs` | libc only: never libpython |
//! | `mod_wsgi-engine-pyX.Y.so`, one per Python, `dlopen`ed by each child after fork | `src/engine.rs` (package `engine/`) | `src/interp/`, `src/gil/`, `src/pyffi/`, `src/abi.rs` | that Python's libpython |
//!
//! This crate is what Apache's parent process loads, so it holds no Python: directives, config,
//! hooks and the request handler live in [`module`]. [`abi`] is the only file both compile: the
//! versioned `extern "C"` records they pass each other. `tests/architecture.rs` checks that this
//! `.so` does not link libpython and that Apache's parent never maps it.
#![doc = include_str!("../README.md")]

pub mod abi;
pub mod headers;
pub mod module;
