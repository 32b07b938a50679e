//! Interpreters, application groups, script loading and the WSGI protocol (the engine side).

mod environ;
mod error;
mod exchange;
pub mod group;
pub mod headers;
mod py;
pub mod runtime;
mod script;
mod settings;
mod types;
pub mod wsgi;
