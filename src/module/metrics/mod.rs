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
pub use window::Traffic;
use std::ffi::CStr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use window::Accumulator;
pub use window::Phases;

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
    /// The switch interval Python was configured with (seconds; 0: Python's default).
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

impl Settings {
    fn log(&self, level: std::ffi::c_int, message: &str) {
        super::log::server(level, self.log_server as *const super::apache::server_rec, message);
    }
}

impl Settings {
    /// The settings of a process that runs applications with `engine`: an Apache child
    /// (`process_group` empty) or a daemon process of that group.
    pub fn new(server: *const super::apache::server_rec, telemetry: &super::config::Telemetry, process_group: &str, threads_maximum: usize, switch_interval: f64, engine: &crate::abi::Engine) -> Settings {
        // SAFETY: both return static strings of httpd.
        let (description, mpm) = unsafe { (CStr::from_ptr(super::apache::ap_get_server_description()), CStr::from_ptr(super::apache::ap_show_mpm())) };
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
            switch_interval,
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
        Lifetime { started: epoch_now(), requests: AtomicU64::new(0), busy_ns: AtomicU64::new(0), per_thread: std::array::from_fn(|_| AtomicU64::new(0)) }
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

/// Sends the last report and ends the reporter (the process is stopping; call once, from the
/// thread that stops it).
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

/// A request being recorded, from the start of the application on this thread.
pub struct Tracker {
    /// Its thread's slot, and whether it is marked running there (not when nested).
    slot: Option<usize>,
    entered: bool,
    began: Instant,
    phases: Phases,
}

/// Starts recording a request now, as its application is about to run: `server` is the time
/// since Apache read the request (seconds), `queue` and `daemon` daemon mode's phases.
/// `describe` is called only when the request is tracked.
pub fn begin(server: f64, queue: Option<f64>, daemon: Option<f64>, describe: impl FnOnce() -> Describe) -> Option<Tracker> {
    if !RECORDING.load(Ordering::Relaxed) {
        return None;
    }
    let slot = active::my_slot();
    let began = Instant::now();
    let mut entered = false;
    if let Some(slot) = slot {
        // SAFETY: pthread_self has no preconditions.
        let thread = unsafe { libc::pthread_self() } as u64;
        // What describes the request is needed only for slow-request reports.
        let describe = if state().is_some_and(|s| s.settings.slow_threshold().is_some()) { describe() } else { Describe::default() };
        entered = active::enter(slot, active::Running { began, began_epoch: epoch_now(), thread, describe, reported_slow: false });
    }
    Some(Tracker { slot, entered, began, phases: Phases { server, queue, daemon, ..Phases::default() } })
}

impl Drop for Tracker {
    /// A request that ended without [`Tracker::finish`] (a panic) is no longer running.
    fn drop(&mut self) {
        if let (Some(slot), true) = (self.slot.take(), self.entered) {
            active::leave(slot);
        }
    }
}

impl Tracker {
    /// The request ended with `status` (0: none was sent), after `traffic` and the seconds
    /// spent reading its body and writing its response.
    pub fn finish(mut self, status: i32, traffic: Traffic, input_read: f64, output_write: f64, python_wait: crate::abi::PythonWait) {
        let Some(state) = state() else { return };
        let ended = Instant::now();
        self.phases.application = ended.saturating_duration_since(self.began).as_secs_f64();
        self.phases.input_read = input_read;
        self.phases.output_write = output_write;
        self.phases.python_wait = python_wait.nanos as f64 / 1e9;
        self.phases.python_waits = python_wait.count;
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
                    slow::queue(slow::Completed { began_epoch, duration: elapsed, thread_slot: slot, status, traffic, describe, phases: self.phases });
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
