//! The daemon's monitor: mod_wsgi's `wsgi_monitor_thread` for `request-timeout`,
//! `inactivity-timeout`, `restart-interval`, `deadlock-timeout` and `startup-timeout`.
//!
//! Worker threads register each request they serve ([`Monitor::begin`]) and note request I/O
//! ([`Monitor::touch`]); a thread of its own looks every [`TICK`] and, when a limit is passed,
//! logs why and writes a reason byte to the process's signal pipe, where the main thread
//! (`process.rs`) stops the process as that reason says. The parent then forks a new one.
//!
//! The monitor never calls into Python: a request-timeout's stack dump is made by the main
//! thread as it stops the process (`process.rs`), under the shutdown time limit. Its own lock
//! (the table of running requests) is only held to read or change the table.
//!
//! `deadlock-timeout` and `startup-timeout` watch the engine's counters
//! (`abi::Engine::progress`): its heartbeat, which takes the GIL every second, and the
//! requests that found their WSGI script loaded.

use super::super::apache;
use super::super::log;
use super::options::Timeouts;
use crate::abi::{self, level};
use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Reason bytes the monitor writes to the signal pipe (besides the signal handler's `S`/`G`).
/// A request ran past `request-timeout`: stop, interrupting requests after `interrupt-timeout`.
pub const REQUEST_TIMEOUT: u8 = b'R';
/// Nothing happened for `inactivity-timeout`: stop at once.
pub const INACTIVITY: u8 = b'I';
/// The process has run for `restart-interval`: stop gracefully (`graceful-timeout`).
pub const RESTART_INTERVAL: u8 = b'T';
/// Nobody could take the GIL for `deadlock-timeout`: stop at once (nothing can finish).
pub const DEADLOCK: u8 = b'D';
/// No request found its WSGI script loaded within `startup-timeout` of the first: stop.
pub const STARTUP: u8 = b'U';

/// How often the monitor looks: the precision of every limit it enforces.
const TICK: Duration = Duration::from_millis(200);
/// How long an abort waits for a connection its worker is writing to.
const ABORT_WAIT: Duration = Duration::from_millis(200);

/// A running request's connection, as the monitor may end it for the client when the process
/// exits while the request is stuck.
pub trait Abort: Send + Sync {
    /// Tells the client the request failed with `outcome` (unless its response has begun:
    /// then the response is cut short); false when the connection could not be had in
    /// [`ABORT_WAIT`] (its worker is blocked writing to it).
    fn abort(&self, outcome: abi::Outcome, wait: Duration) -> bool;
}

/// One request being served.
struct Entry {
    id: u64,
    /// `pthread_self` of the worker serving it, as the engine's stack dump takes it.
    ident: u64,
    started: Instant,
    /// The URL, script and application group, for the log.
    what: String,
    /// It ran past `request-timeout`: the client gets a 504.
    timed_out: Arc<AtomicBool>,
    conn: Arc<dyn Abort>,
}

pub struct Monitor {
    name: String,
    server: *mut apache::server_rec,
    timeouts: Timeouts,
    /// The write end of the process's signal pipe.
    signals: c_int,
    born: Instant,
    requests: Mutex<Vec<Entry>>,
    next_id: AtomicU64,
    /// Milliseconds from `born` to the last request start, end or I/O.
    activity: AtomicU64,
    /// The process is stopping: the monitor has nothing more to decide.
    stopping: AtomicBool,
    /// Milliseconds from `born` to the first request, plus one (0: none yet): mod_wsgi's
    /// startup timer starts there.
    first_request: AtomicU64,
    engine: &'static abi::Engine,
    /// The engine's heartbeat runs: without it, `deadlock-timeout` cannot be told from a
    /// heartbeat that never started, and is not enforced.
    heartbeat: AtomicBool,
}

/// What the monitor thread remembers between two looks.
struct Watch {
    /// The engine's counters at the last look, and when the heartbeat count last grew.
    progress: abi::Progress,
    last_beat: Instant,
    /// `startup-timeout` is over: a request found its script loaded.
    started: bool,
}

// SAFETY: the server record is read-only configuration; everything else is Sync.
unsafe impl Send for Monitor {}
// SAFETY: as above.
unsafe impl Sync for Monitor {}

/// A request registered with [`Monitor::begin`]; dropping it ends the registration.
pub struct Running<'a> {
    monitor: &'a Monitor,
    id: u64,
    timed_out: Arc<AtomicBool>,
    activity: bool,
}

impl Running<'_> {
    /// The monitor gave up on this request (`request-timeout`).
    pub fn timed_out(&self) -> bool {
        self.timed_out.load(Ordering::SeqCst)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut requests = self.monitor.requests.lock().unwrap_or_else(|e| e.into_inner());
        requests.retain(|entry| entry.id != self.id);
        drop(requests);
        if self.activity {
            self.monitor.touch();
        }
    }
}

impl Monitor {
    pub fn new(name: &str, server: *mut apache::server_rec, timeouts: Timeouts, engine: &'static abi::Engine, signals: c_int) -> Arc<Monitor> {
        Arc::new(Monitor {
            engine,
            name: name.to_string(),
            server,
            timeouts,
            signals,
            born: Instant::now(),
            requests: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            activity: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            first_request: AtomicU64::new(0),
            heartbeat: AtomicBool::new(false),
        })
    }

    /// Starts the monitor thread if a limit it enforces is set.
    pub fn start(self: &Arc<Self>) {
        let t = &self.timeouts;
        if t.request == 0 && t.inactivity == 0 && t.restart_interval == 0 && t.deadlock == 0 && t.startup == 0 {
            return;
        }
        if t.deadlock > 0 {
            // SAFETY: the engine is initialised; start_heartbeat takes no arguments.
            if unsafe { (self.engine.start_heartbeat)() } == 0 {
                self.heartbeat.store(true, Ordering::SeqCst);
            } else {
                log::server(
                    log::ERR,
                    self.server,
                    &format!("Unable to create deadlock-detection thread in daemon process '{}'; deadlock timeouts will not be enforced.", self.name),
                );
            }
        }
        let monitor = self.clone();
        let started = std::thread::Builder::new().name("wsgi-monitor".into()).spawn(move || monitor.run());
        if let Err(e) = started {
            log::server(
                log::ERR,
                self.server,
                &format!("Daemon process '{}' cannot start its monitor thread ({e}): its timeouts are not enforced.", self.name),
            );
        }
    }

    /// Registers the request the calling thread is about to serve; `activity`: whether it
    /// resets `inactivity-timeout` (not under `WSGIIgnoreActivity`).
    pub fn begin(&self, what: String, conn: Arc<dyn Abort>, activity: bool) -> Running<'_> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let timed_out = Arc::new(AtomicBool::new(false));
        // SAFETY: pthread_self has no preconditions; the engine's busy table uses the same value.
        let ident = unsafe { libc::pthread_self() } as u64;
        let entry = Entry { id, ident, started: Instant::now(), what, timed_out: timed_out.clone(), conn };
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
        if activity {
            self.touch();
        }
        if self.timeouts.startup > 0 {
            let since_born = self.born.elapsed().as_millis() as u64 + 1;
            if self.first_request.compare_exchange(0, since_born, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                log::server(level::INFO, self.server, &format!("Application startup timer started for daemon process '{}'.", self.name));
            }
        }
        Running { monitor: self, id, timed_out, activity }
    }

    /// Request activity (a start, an end, a read or write of its body): resets the
    /// inactivity timer.
    pub fn touch(&self) {
        // From 1: 0 means nothing counted yet.
        self.activity.store(self.born.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
    }

    /// The process began to stop: the monitor decides nothing more.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Just before the process `_exit`s: the clients of requests that ran past
    /// `request-timeout` and are still stuck (in code an interrupt cannot reach, a C call)
    /// get their 504 now rather than a connection closed without an answer.
    pub fn abort_timed_out(&self) {
        let stuck: Vec<Arc<dyn Abort>> = {
            let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
            requests.iter().filter(|e| e.timed_out.load(Ordering::SeqCst)).map(|e| e.conn.clone()).collect()
        };
        for conn in stuck {
            conn.abort(abi::Outcome::GATEWAY_TIMEOUT, ABORT_WAIT);
        }
    }

    /// `pthread_self` of the workers serving requests that ran past `request-timeout`.
    pub fn timed_out_idents(&self) -> Vec<u64> {
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        requests.iter().filter(|e| e.timed_out.load(Ordering::SeqCst)).map(|e| e.ident).collect()
    }

    fn run(&self) {
        let t = self.timeouts;
        log::server(
            level::DEBUG,
            self.server,
            &format!(
                "Monitor thread of daemon process '{}': request-timeout {} s, interrupt-timeout {} s, inactivity-timeout {} s, restart-interval {} s, graceful-timeout {} s, shutdown-timeout {} s, deadlock-timeout {} s, startup-timeout {} s.",
                self.name, t.request, t.interrupt, t.inactivity, t.restart_interval, t.graceful, t.shutdown, t.deadlock, t.startup
            ),
        );
        // SAFETY: the engine is initialised; progress is lock-free and needs no GIL.
        let progress = unsafe { (self.engine.progress)() };
        let mut watch = Watch { progress, last_beat: Instant::now(), started: false };
        while !self.stopping.load(Ordering::SeqCst) {
            std::thread::sleep(TICK);
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            if let Some(reason) = self.check().or_else(|| self.check_progress(&mut watch)) {
                self.stopping();
                // SAFETY: writes one byte to our own signal pipe.
                unsafe { libc::write(self.signals, (&reason as *const u8).cast(), 1) };
                if reason == DEADLOCK {
                    // After the stop began, so that its reaper bounds the dump and its log
                    // lines; skipped if the GIL moved meanwhile (the stacks would be live).
                    // SAFETY: as in check_progress.
                    let beats = unsafe { (self.engine.progress)() }.heartbeats;
                    if beats == watch.progress.heartbeats {
                        // SAFETY: the engine is initialised; called without a Rust lock, from
                        // a thread that serves no request; it does not take the GIL.
                        unsafe { (self.engine.dump_stacks_nogil)() };
                    }
                }
                return;
            }
        }
    }

    /// The reason to stop now, if any, after logging it (mod_wsgi's lines, with ours for
    /// each stuck request).
    fn check(&self) -> Option<u8> {
        let t = self.timeouts;
        if t.request > 0 {
            let limit = Duration::from_secs(t.request);
            let stuck: Vec<(u64, String, Duration)> = {
                let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
                let over = requests.iter().filter(|e| e.started.elapsed() > limit);
                over.map(|e| {
                    e.timed_out.store(true, Ordering::SeqCst);
                    (e.ident, e.what.clone(), e.started.elapsed())
                })
                .collect()
            };
            if !stuck.is_empty() {
                for (ident, what, elapsed) in &stuck {
                    log::server(
                        log::ERR,
                        self.server,
                        &format!(
                            "Daemon process '{}' request-timeout of {} seconds exceeded by a request running for {:.1} seconds in thread {ident}: {what}",
                            self.name,
                            t.request,
                            elapsed.as_secs_f64()
                        ),
                    );
                }
                // The stacks are logged by the main thread's stop (see `process.rs`), with a
                // time limit on it: a request stuck in C code holding the GIL must not keep
                // the monitor from stopping the process.
                log::server(
                    level::INFO,
                    self.server,
                    &format!("Daemon process request time limit exceeded, stopping daemon process '{}'.", self.name),
                );
                return Some(REQUEST_TIMEOUT);
            }
        }
        if t.restart_interval > 0 && self.born.elapsed() >= Duration::from_secs(t.restart_interval) {
            log::server(level::INFO, self.server, &format!("Application restart timer expired, stopping process '{}' gracefully.", self.name));
            return Some(RESTART_INTERVAL);
        }
        // mod_wsgi's rules: the timer starts with the first request that counts (not under
        // WSGIIgnoreActivity), and does not stop the process while a request runs that is not
        // yet past request-timeout + interrupt-timeout (when those are set).
        let last = self.activity.load(Ordering::Relaxed);
        if t.inactivity > 0 && last > 0 {
            let idle = (self.born.elapsed().as_millis() as u64 + 1).saturating_sub(last);
            let cutoff = Duration::from_secs(t.request + t.interrupt);
            let running = {
                let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
                requests.iter().any(|e| cutoff.is_zero() || e.started.elapsed() <= cutoff)
            };
            if idle >= t.inactivity * 1000 && !running {
                log::server(level::INFO, self.server, &format!("Daemon process inactivity timer expired, stopping process '{}'.", self.name));
                return Some(INACTIVITY);
            }
        }
        None
    }

    /// `startup-timeout` and `deadlock-timeout`, from the engine's counters (mod_wsgi's
    /// rules and lines).
    fn check_progress(&self, watch: &mut Watch) -> Option<u8> {
        let t = self.timeouts;
        // SAFETY: the engine is initialised; progress is lock-free and needs no GIL.
        let now = unsafe { (self.engine.progress)() };
        if now.heartbeats != watch.progress.heartbeats {
            watch.last_beat = Instant::now();
        }
        watch.progress = now;
        if t.startup > 0 && !watch.started {
            let first = self.first_request.load(Ordering::SeqCst);
            if now.scripts_ready > 0 {
                watch.started = true;
                if first > 0 {
                    log::server(level::INFO, self.server, &format!("Application startup timer cancelled for daemon process '{}'.", self.name));
                }
            } else if first > 0 && self.born.elapsed() >= Duration::from_millis(first - 1) + Duration::from_secs(t.startup) {
                // mod_wsgi: the timer starts with the first request and ends when a request
                // gets its script loaded; a script that fails to import keeps it running.
                log::server(level::INFO, self.server, &format!("Application startup timer expired, stopping daemon process '{}'.", self.name));
                return Some(STARTUP);
            }
        }
        if t.deadlock > 0 && self.heartbeat.load(Ordering::SeqCst) && watch.last_beat.elapsed() >= Duration::from_secs(t.deadlock) {
            log::server(level::INFO, self.server, &format!("Daemon process deadlock timer expired, stopping daemon process '{}'.", self.name));
            let serving: Vec<String> = {
                let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
                requests
                    .iter()
                    .map(|e| format!("thread {} ({:#x}) for {:.1} s: {}", e.ident, e.ident, e.started.elapsed().as_secs_f64(), e.what))
                    .collect()
            };
            for line in &serving {
                log::server(log::ERR, self.server, &format!("Daemon process '{}' was serving a request in {line}", self.name));
            }
            // The stacks are dumped once the stop has begun (see run()).
            return Some(DEADLOCK);
        }
        None
    }
}
