//! Interpreters, application groups, script loading and the WSGI protocol (the engine side).

pub mod auth;
mod builtins;
pub mod busy;
pub mod dispatch;
mod environ;
mod error;
mod exchange;
mod fallback;
mod figures;
pub mod group;
mod input;
mod py;
mod replicas;
mod request_objects;
pub mod runtime;
mod script;
mod settings;
mod side_script;
pub mod stacks;
mod start_response;
pub mod trampoline;
pub mod wsgi;

/// A debug-level line in the error log (`LogLevel wsgi:debug`).
pub fn log_debug(message: &str) {
    settings::log(crate::abi::level::DEBUG, message);
}

/// A warning in the error log.
pub fn log_warning(message: &str) {
    settings::log(crate::abi::level::WARNING, message);
}
