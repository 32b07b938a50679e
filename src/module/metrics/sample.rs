//! One window's figures as mod_wsgi 6.1 reports them: what a telemetry tick sends and what
//! `mod_wsgi.request_metrics()` returns, made the same way for both (only one of them drains
//! the window in a process: `request_metrics()` is `None` while telemetry is on).

use super::window::Window;
use super::{active, epoch_now, lock, State, MAX_SLOTS};
use std::sync::Mutex;
use std::time::Instant;

pub struct Sample {
    pub window: Window,
    /// Seconds the window lasted, and its ends (epoch seconds).
    pub period: f64,
    pub start_epoch: f64,
    pub stop_epoch: f64,
    /// CPU seconds this process used in the window.
    pub cpu_user: f64,
    pub cpu_system: f64,
    pub rss: u64,
    pub max_rss: u64,
    /// Request threads: the most there can be, those that ever served, those busy in the window.
    pub threads: usize,
    pub threads_started: usize,
    pub threads_active: usize,
    /// Per thread: busy seconds in the window (in-flight parts included), and how long its
    /// current request has run.
    pub busy: Vec<f64>,
    pub current: Vec<f64>,
    /// Daemon mode (queue and daemon phases exist).
    pub daemon: bool,
}

/// Where the last window ended: monotonic time, epoch seconds, CPU user and system seconds.
static LAST: Mutex<Option<(Instant, f64, f64, f64)>> = Mutex::new(None);

/// Starts the first window now, once (recording starts).
pub fn seed_once(state: &State) {
    let mut last = lock(&LAST);
    if last.is_none() {
        let (user, system) = cpu_times();
        state.window.drain(Instant::now());
        *last = Some((Instant::now(), epoch_now(), user, system));
    }
}

/// Takes the window out and starts the next.
pub fn take(state: &State) -> Sample {
    // One take at a time (two interpreters may ask at once): the window and its baseline
    // move together.
    let mut last = lock(&LAST);
    let now = Instant::now();
    let stop_epoch = epoch_now();
    let window = state.window.drain(now);
    let (user, system) = cpu_times();
    let (before, start_epoch, user_before, system_before) =
        last.replace((now, stop_epoch, user, system)).unwrap_or((window.started, stop_epoch, user, system));
    drop(last);
    let period = now.saturating_duration_since(before).as_secs_f64().max(1e-6);
    let threads = state.settings.threads_maximum.clamp(1, MAX_SLOTS);
    let mut busy = window.busy.clone();
    let mut current = vec![0.0; MAX_SLOTS];
    active::each(|slot, running| {
        if slot >= MAX_SLOTS {
            return;
        }
        let since = if running.began > window.started { running.began } else { window.started };
        busy[slot] += now.saturating_duration_since(since).as_secs_f64();
        current[slot] = now.saturating_duration_since(running.began).as_secs_f64();
    });
    let threads_active = (0..threads).filter(|&i| window.completed[i] > 0 || current[i] > 0.0).count();
    busy.truncate(threads);
    current.truncate(threads);
    let (rss, max_rss) = memory();
    Sample {
        period,
        start_epoch,
        stop_epoch,
        cpu_user: (user - user_before).max(0.0),
        cpu_system: (system - system_before).max(0.0),
        rss,
        max_rss,
        threads,
        threads_started: active::threads_started(),
        threads_active,
        busy,
        current,
        daemon: !state.settings.process_group.is_empty(),
        window,
    }
}

impl Sample {
    /// Mean seconds per request of a phase (0 without requests).
    pub fn mean(&self, sum: f64) -> f64 {
        if self.window.requests > 0 {
            sum / self.window.requests as f64
        } else {
            0.0
        }
    }

    /// Busy thread-seconds over the period and the threads there are (0 to 1).
    pub fn capacity_utilization(&self) -> f64 {
        self.busy.iter().sum::<f64>() / self.period / self.threads as f64
    }
}

/// This process's user and system CPU seconds.
pub fn cpu_times() -> (f64, f64) {
    // SAFETY: a zeroed rusage is a valid output buffer for getrusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid buffer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return (0.0, 0.0);
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(usage.ru_utime), secs(usage.ru_stime))
}

/// Resident and peak resident memory, in bytes.
pub fn memory() -> (u64, u64) {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    let rss = std::fs::read_to_string("/proc/self/statm").ok().and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok()).map_or(0, |p| p * page);
    // SAFETY: as in cpu_times.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid buffer.
    let max = if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0 { usage.ru_maxrss as u64 * 1024 } else { 0 };
    (rss, max.max(rss))
}
