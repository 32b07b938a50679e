//! Per-process request metrics for mod_wsgi 6.1's telemetry (`WSGITelemetryService`) and
//! slow-request reports (`WSGISlowRequests`), kept by the module, not by Python: the process
//! that runs the application (an Apache child in embedded mode, a daemon process in daemon
//! mode) records each request at the edge of the engine call, and a reporter thread of its own
//! (`reporter.rs`), which never takes the GIL, sends the datagrams and writes the slow-request
//! lines. With neither directive, nothing is recorded: [`begin`] returns `None` at the cost of
//! one atomic load.

mod active;
pub mod api;
pub mod board;
pub mod histogram;
mod reporter;
mod sample;
mod slow;
pub mod status;
mod window;
pub mod wire;

pub use active::Describe;
use std::ffi::CStr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use window::Accumulator;
pub use window::Phases;
pub use window::Traffic;

/// Worker threads reported one by one (mod_wsgi's cap on its per-thread arrays).
pub const MAX_SLOTS: usize = 128;

/// The process's telemetry settings, fixed when its reporter starts.
pub struct Settings {
    /// `WSGITelemetryService unix:PATH`: where datagrams go.
    pub target: Option<PathBuf>,
    /// Its `interval=`, in seconds.
    pub interval: f64,
    /// `WSGISlowRequests`, in seconds (`None`, or 0 as in mod_wsgi: off).
    pub slow: Option<f64>,
    /// Our `WSGITelemetryOptions +SlowRequestStacks`: a slow request's line is followed by its
    /// Python stack.
    pub slow_stacks: bool,
    /// `WSGITelemetryOptions +CaptureUserAgent`: slow-request datagrams carry the User-Agent.
    pub capture_user_agent: bool,
    /// The daemon process group (empty: an Apache child).
    pub process_group: String,
    /// Request threads this process has (`ThreadsPerChild`, a daemon's `threads=`).
    pub threads_maximum: usize,
    /// The switch interval in effect (seconds): the one configured, or CPython's default
    /// (0: none, a Python before 3.2, which has no switch interval).
    pub switch_interval: f64,
    /// The Python version of the engine (`3.11.2`).
    pub python_version: String,
    /// `Apache/2.4.62`, and the MPM's name (`event`).
    pub apache_version: String,
    pub mpm_name: String,
    /// The engine's `dump_stacks`, for `slow_stacks`.
    pub dump_stacks: Option<unsafe extern "C" fn(idents: *const u64, len: usize)>,
    /// The server whose error log (and `LogLevel`) the reporter's lines go to, as an address:
    /// the main server of the configuration, which lives as long as the process.
    pub log_server: usize,
}

/// What `sys.getswitchinterval()` answers when nothing set it, which mod_wsgi sends as field 13
/// (it asks Python, under the GIL; the reporter never takes it): 5 ms since Python 3.2,
/// nothing before.
fn default_switch_interval(python_version: &str) -> f64 {
    let mut parts = python_version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) if (major, minor) >= (3, 2) => 0.005,
        _ => 0.0,
    }
}

impl Settings {
    fn log(&self, level: std::ffi::c_int, message: &str) {
        super::log::server(level, self.log_server as *const super::apache::server_rec, message);
    }
}

impl Settings {
    /// The settings of a process that runs applications with `engine`: an Apache child
    /// (`process_group` empty) or a daemon process of that group.
    pub fn new(
        server: *const super::apache::server_rec,
        telemetry: &super::config::Telemetry,
        process_group: &str,
        threads_maximum: usize,
        switch_interval: f64,
        engine: &crate::abi::Engine,
    ) -> Settings {
        // SAFETY: both return static strings of httpd.
        let (description, mpm) =
            unsafe { (CStr::from_ptr(super::apache::ap_get_server_description()), CStr::from_ptr(super::apache::ap_show_mpm())) };
        let apache_version = description.to_string_lossy().split_whitespace().next().unwrap_or_default().to_string();
        // SAFETY: the engine's table holds a static version string.
        let python_version = unsafe { engine.python_version.to_text() };
        Settings {
            target: telemetry.target.as_ref().map(PathBuf::from),
            interval: telemetry.interval.unwrap_or(1.0),
            slow: telemetry.slow_requests,
            slow_stacks: telemetry.slow_request_stacks,
            capture_user_agent: telemetry.capture_user_agent,
            process_group: process_group.to_string(),
            threads_maximum,
            switch_interval: if switch_interval > 0.0 { switch_interval } else { default_switch_interval(&python_version) },
            python_version,
            apache_version,
            mpm_name: mpm.to_string_lossy().into_owned(),
            dump_stacks: Some(engine.dump_stacks),
            log_server: server as usize,
        }
    }

    fn slow_threshold(&self) -> Option<f64> {
        self.slow.filter(|&s| s > 0.0)
    }
}

struct State {
    settings: Settings,
    window: Accumulator,
    lifetime: Lifetime,
}

/// Counts over the process's life (`process_metrics()`, STOPPED's count).
struct Lifetime {
    /// When the process started (epoch seconds).
    started: f64,
    requests: AtomicU64,
    busy_ns: AtomicU64,
    /// Requests completed per worker thread (slot).
    per_thread: [AtomicU64; MAX_SLOTS],
}

impl Lifetime {
    fn new() -> Lifetime {
        Lifetime {
            started: epoch_now(),
            requests: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            per_thread: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

static STATE: OnceLock<State> = OnceLock::new();

/// Whether requests are recorded: telemetry or slow-request reports are configured, or the
/// application called `mod_wsgi.start_recording_metrics()`.
static RECORDING: AtomicBool = AtomicBool::new(false);
/// Whether the application called `mod_wsgi.start_recording_metrics()` (perhaps before this
/// process's settings were known: from a script imported at start).
static API_RECORDING: AtomicBool = AtomicBool::new(false);
/// The process is exiting (see `active::Held`).
static ENDING: AtomicBool = AtomicBool::new(false);
/// Requests being recorded now (mod_wsgi's `active_requests`: nested ones and those of
/// threads without a slot included), for a slow request's concurrency (260, 261) and the
/// lifecycle datagrams' in-flight counts.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Says the process is exiting: async-signal-safe (one store).
pub fn process_ending() {
    ENDING.store(true, Ordering::Relaxed);
}

fn ending() -> bool {
    ENDING.load(Ordering::Relaxed)
}

/// Keeps this process's settings (after Python started, once) and, when telemetry or
/// slow-request reports are configured, starts recording and the reporter thread.
pub fn start(settings: Settings) {
    let report = settings.target.is_some() || settings.slow_threshold().is_some();
    if STATE.set(State { settings, window: Accumulator::new(), lifetime: Lifetime::new() }).is_ok() {
        if report || API_RECORDING.load(Ordering::Acquire) {
            start_recording();
        }
        if report {
            reporter::start();
        }
    }
}

/// Starts recording requests (once): the first window starts now.
fn start_recording() {
    if let Some(state) = state() {
        // The first window starts before any request is recorded into it.
        sample::seed_once(state);
        RECORDING.store(true, Ordering::Release);
    }
}

/// Says the process is stopping, for `reason` (one of mod_wsgi's `shutdown_reason` strings,
/// or empty): mod_wsgi's STOPPING datagram goes out now, as the decision is made, before the
/// running requests drain; [`stop`] later repeats the reason in STOPPED. Only the first call
/// counts.
pub fn stopping(reason: &'static str) {
    if RECORDING.load(Ordering::Acquire) {
        reporter::stopping(reason);
    }
}

/// Sends the last report and ends the reporter (the process is stopping; call once, from the
/// thread that stops it). STOPPING goes first if [`stopping`] did not send it.
pub fn stop() {
    if RECORDING.load(Ordering::Acquire) {
        reporter::stop();
    }
}

fn state() -> Option<&'static State> {
    STATE.get()
}

/// The index of a status's class, 1xx to 5xx (0 to 4); a request without a status (0), or
/// with one out of range, counts as 5xx, as in mod_wsgi.
pub fn status_class(status: i32) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

/// Locks `m`; a panic elsewhere while it was held leaves figures, not invariants, behind.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn epoch_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Requests being recorded now.
fn active_requests() -> usize {
    ACTIVE.load(Ordering::Relaxed)
}

/// The calling thread's user and system CPU seconds (`getrusage(RUSAGE_THREAD)`, as mod_wsgi
/// reads them at the start and end of each request); `None` if the kernel says no.
fn thread_cpu() -> Option<(f64, f64)> {
    // SAFETY: a zeroed rusage is a valid output buffer for getrusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_THREAD with a valid buffer; it reads the calling thread only.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } != 0 {
        return None;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some((secs(usage.ru_utime), secs(usage.ru_stime)))
}

/// What a request used of its thread's CPU, and how many requests ran beside it.
#[derive(Default, Clone, Copy)]
pub struct Usage {
    /// User and system CPU seconds of its thread from start to end (0 if unknown).
    pub cpu_user: f64,
    pub cpu_system: f64,
    /// Requests in flight when it started and when it ended, itself included.
    pub active_at_start: u64,
    pub active_at_completion: u64,
}

/// A request being recorded, from the start of the application on this thread.
pub struct Tracker {
    /// Its thread's slot, and whether it is marked running there (not when nested).
    slot: Option<usize>,
    entered: bool,
    began: Instant,
    phases: Phases,
    /// Its thread's CPU times when it began.
    cpu_at_start: Option<(f64, f64)>,
    active_at_start: u64,
    /// Whether it still counts in [`ACTIVE`].
    counted: bool,
}

/// Starts recording a request now, as its application is about to run: `server` is the time
/// since Apache read the request (seconds), `queue` and `daemon` daemon mode's phases.
/// `describe` is called only when the request is tracked.
pub fn begin(server: f64, queue: Option<f64>, daemon: Option<f64>, describe: impl FnOnce() -> Describe) -> Option<Tracker> {
    if !RECORDING.load(Ordering::Relaxed) {
        return None;
    }
    let active_at_start = ACTIVE.fetch_add(1, Ordering::Relaxed) as u64 + 1;
    let cpu_at_start = thread_cpu();
    let slot = active::my_slot();
    let began = Instant::now();
    let mut entered = false;
    if let Some(slot) = slot {
        // SAFETY: pthread_self has no preconditions.
        let thread = unsafe { libc::pthread_self() } as u64;
        // What describes the request is needed only for slow-request reports.
        let describe = if state().is_some_and(|s| s.settings.slow_threshold().is_some()) { describe() } else { Describe::default() };
        entered = active::enter(slot, active::Running { began, began_epoch: epoch_now(), thread, describe, reported_slow: false, active_at_start });
    }
    Some(Tracker {
        slot,
        entered,
        began,
        phases: Phases { server, queue, daemon, ..Phases::default() },
        cpu_at_start,
        active_at_start,
        counted: true,
    })
}

impl Drop for Tracker {
    /// A request that ended without [`Tracker::finish`] (a panic) is no longer running.
    fn drop(&mut self) {
        if let (Some(slot), true) = (self.slot.take(), self.entered) {
            active::leave(slot);
        }
        if std::mem::take(&mut self.counted) {
            ACTIVE.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Tracker {
    /// The request ended with `status` (0: none was sent), after `traffic` and the seconds
    /// spent reading its body and writing its response.
    pub fn finish(mut self, status: i32, traffic: Traffic, input_read: f64, output_write: f64, python_wait: crate::abi::PythonWait) {
        let Some(state) = state() else { return };
        let cpu = match (self.cpu_at_start, thread_cpu()) {
            (Some((user0, system0)), Some((user, system))) => ((user - user0).max(0.0), (system - system0).max(0.0)),
            _ => (0.0, 0.0),
        };
        // Itself included: it leaves the count below.
        let usage =
            Usage { cpu_user: cpu.0, cpu_system: cpu.1, active_at_start: self.active_at_start, active_at_completion: active_requests() as u64 };
        if std::mem::take(&mut self.counted) {
            ACTIVE.fetch_sub(1, Ordering::Relaxed);
        }
        let ended = Instant::now();
        self.phases.application = ended.saturating_duration_since(self.began).as_secs_f64();
        self.phases.input_read = input_read;
        self.phases.output_write = output_write;
        self.phases.python_wait = python_wait.nanos as f64 / 1e9;
        self.phases.python_waits = python_wait.count;
        self.phases.cpu = usage.cpu_user + usage.cpu_system;
        let elapsed = self.phases.application;
        let slot = self.slot.take();
        let running = slot.filter(|_| self.entered).and_then(active::leave);
        if let (Some(slot), Some(running)) = (slot, running) {
            match state.settings.slow_threshold() {
                Some(threshold) if elapsed >= threshold => {
                    if !running.reported_slow {
                        slow::log_completed(&state.settings, &running, elapsed, status, threshold);
                    }
                    let (began_epoch, describe) = (running.began_epoch, running.describe);
                    slow::queue(slow::Completed {
                        began_epoch,
                        duration: elapsed,
                        thread_slot: slot,
                        status,
                        traffic,
                        describe,
                        phases: self.phases,
                        usage,
                    });
                }
                _ => {}
            }
        }
        state.window.add(slot, self.began, ended, status, &self.phases, &traffic);
        let lifetime = &state.lifetime;
        lifetime.requests.fetch_add(1, Ordering::Relaxed);
        lifetime.busy_ns.fetch_add(ended.saturating_duration_since(self.began).as_nanos() as u64, Ordering::Relaxed);
        if let Some(slot) = slot.filter(|&s| s < MAX_SLOTS) {
            lifetime.per_thread[slot].fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_s_default_switch_interval() {
        assert_eq!(default_switch_interval("3.11.2"), 0.005);
        assert_eq!(default_switch_interval("3.14.0rc1"), 0.005);
        assert_eq!(default_switch_interval("3.1.5"), 0.0);
        assert_eq!(default_switch_interval("2.7.18"), 0.0);
        assert_eq!(default_switch_interval(""), 0.0);
    }

    #[test]
    fn a_thread_s_cpu_time_is_its_own() {
        let (user, system) = thread_cpu().expect("RUSAGE_THREAD");
        let spin = Instant::now();
        let mut x = 0u64;
        while spin.elapsed().as_millis() < 50 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let (user2, system2) = thread_cpu().unwrap();
        assert!(user2 + system2 - user - system > 0.02, "{user} {system} -> {user2} {system2}");
        // Another thread's spinning is not ours.
        let before = thread_cpu().unwrap();
        std::thread::spawn(|| {
            let spin = Instant::now();
            while spin.elapsed().as_millis() < 50 {}
        })
        .join()
        .unwrap();
        let after = thread_cpu().unwrap();
        assert!(after.0 + after.1 - before.0 - before.1 < 0.02);
    }
}
