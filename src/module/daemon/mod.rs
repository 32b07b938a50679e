//! Daemon mode (`WSGIDaemonProcess`, `WSGIProcessGroup`): applications run in processes that
//! Apache's parent forks per group, under the group's user and with the group's Python,
//! while Apache's children only forward requests to them.
//!
//! - `options.rs`: the directive's options;
//! - `supervisor.rs`: Apache's parent: sockets, forks, re-forks;
//! - `inherited.rs`: a daemon's start-up: the shared writable memory of Apache's parent
//!   (its modules', its MPM's) that it must not keep;
//! - `descriptors.rs`: a daemon's start-up: the parent's descriptors (other hosts' logs,
//!   logger pipes, the MPM's pipes) that it must not keep, and its error log as stderr;
//! - `environment.rs`: a daemon's start-up: display name, priority, user and
//!   groups, umask, resource limits, language;
//! - `process.rs`: inside a daemon: the engine, worker threads;
//! - `dispatch.rs`: inside a daemon: new and kept connections, and the workers waiting for them;
//! - `connection.rs`: inside a daemon: one request's connection and the engine's callbacks;
//! - `monitor.rs`: inside a daemon: request-timeout, inactivity-timeout, restart-interval;
//! - `reloading.rs`: inside a daemon: restarting when a script changed;
//! - `client.rs`: in Apache's children: forwarding one request;
//! - `pool.rs`: in Apache's children: connections kept open between requests;
//! - `wire.rs`: the frames between the two;
//! - `script_owner.rs`: in Apache's children: `script-user=` / `script-group=`.

pub mod client;
mod connection;
mod descriptors;
mod dispatch;
mod environment;
mod inherited;
mod monitor;
pub mod options;
mod pool;
mod process;
pub use process::IGNORE_ACTIVITY_KEY;
mod read_hello;
mod reloading;
mod request_figures;
mod script_owner;
pub mod supervisor;
mod wire;
