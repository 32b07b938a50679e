//! `WSGISlowRequests`: a request running longer than the threshold gets one error-log line
//! (ours; mod_wsgi 6.1 reports slow requests only in datagrams), when the reporter first sees
//! it running past the threshold or, if it ended before that, when it ends; with
//! `+SlowRequestStacks`, the Python stack of a running one follows. Its telemetry datagrams
//! (mod_wsgi's: a heartbeat each tick while it runs, a record once it completed) are made in
//! `reporter.rs` from the same entries.

use super::super::log;
use super::active::{Describe, Running};
use super::{Settings, Traffic};
use std::collections::VecDeque;
use std::sync::Mutex;

/// A slow request that completed, for the next tick's datagrams.
pub struct Completed {
    pub began_epoch: f64,
    pub duration: f64,
    pub thread_slot: usize,
    pub status: i32,
    pub traffic: Traffic,
    pub describe: Describe,
    pub phases: super::Phases,
    pub usage: super::Usage,
}

/// At most this many completed slow requests wait for a tick (mod_wsgi's smallest ring).
const QUEUE_MAX: usize = 256;

static COMPLETED: Mutex<VecDeque<Completed>> = Mutex::new(VecDeque::new());

pub fn queue(completed: Completed) {
    let mut queue = super::lock(&COMPLETED);
    if queue.len() == QUEUE_MAX {
        queue.pop_front();
    }
    queue.push_back(completed);
}

pub fn take_completed() -> Vec<Completed> {
    super::lock(&COMPLETED).drain(..).collect()
}

fn what(d: &Describe) -> String {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let group = if d.process_group().is_empty() {
        format!("application group '{}'", d.application_group())
    } else {
        format!("application group '{}' of daemon process group '{}'", d.application_group(), d.process_group())
    };
    format!("{} {}{} ({group})", text(d.method()), text(d.script_name()), text(d.path_info()))
}

/// The line for a request still running past the threshold.
pub fn log_running(settings: &Settings, describe: &Describe, elapsed: f64, threshold: f64) {
    settings
        .log(log::WARNING, &format!("Slow request: {} has been running for {elapsed:.3} seconds (WSGISlowRequests {threshold}).", what(describe)));
}

/// The line for a request that ended past the threshold before the reporter saw it.
pub fn log_completed(settings: &Settings, running: &Running, elapsed: f64, status: i32, threshold: f64) {
    settings.log(
        log::WARNING,
        &format!("Slow request: {} took {elapsed:.3} seconds, status {status} (WSGISlowRequests {threshold}).", what(&running.describe)),
    );
}
