//! Everything Apache: the module record, directives, configuration, hooks and the handler.

mod alias;
mod apache;
pub mod args;
mod auth;
mod callbacks;
mod config;
mod daemon;
mod directives;
mod dispatch;
pub mod engine_loader;
mod environ;
pub mod group_name;
mod handler;
mod hooks;
mod imports;
mod log;
mod metrics;
pub mod proxy;
mod record;
mod request;
mod scoreboard;
mod trampoline;
mod translate;

/// How `WSGITelemetryOptions` reads its words, for `mod_wsgi-express --telemetry-options`,
/// which checks each value as the directive will before writing it.
pub use directives::apply_telemetry_options;
