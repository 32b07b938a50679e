//! mod_wsgi-rs: the Apache module (`LoadModule wsgi_module .../mod_wsgi.so`).
//!
//! This crate is what Apache's parent process loads, so it holds no Python: directives, config,
//! hooks and the request handler live in [`module`]. Python runs in an engine library (the
//! `engine/` package, sources in `src/interp` and `src/gil`) that each child loads with `dlopen`
//! after fork; [`abi`] is the only thing the two share.
#![doc = include_str!("../README.md")]

pub mod abi;
pub mod module;
