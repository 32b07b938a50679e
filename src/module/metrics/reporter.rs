//! The reporter thread of a process with telemetry or slow-request reports: every 100 ms it
//! looks for requests running past `WSGISlowRequests`, and every telemetry interval it sends
//! mod_wsgi 6.1's periodic datagram (and the slow-request ones) to the `WSGITelemetryService`
//! socket. It never takes the GIL (only a slow request's stack, with `+SlowRequestStacks`,
//! goes through the engine, which takes it in that request's interpreter), and it never waits
//! for the receiver: datagrams go out with `MSG_DONTWAIT`, and one the socket cannot take now,
//! or that has nowhere to go (no ingester yet), is dropped, as mod_wsgi drops them.
//!
//! Sequence numbers count periodic datagrams only; the others carry the current one. The
//! ingester counts a gap between periodic datagrams as dropped ones, which stays true so
//! (mod_wsgi numbers every datagram, so each slow-request report there counts as a drop).

use super::super::log;
use super::window::Stat;
use super::wire::{kind, Datagram};
use super::{active, active_requests, epoch_now, sample, slow, state, Settings};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::OnceLock;
use std::sync::{Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often running requests are looked at for `WSGISlowRequests`.
const SCAN: Duration = Duration::from_millis(100);
/// At most this many running slow requests are reported per tick (as mod_wsgi).
const RUNNING_REPORTS: usize = 16;

struct Reporter {
    socket: Option<UnixDatagram>,
    pid: u32,
    hostname: Vec<u8>,
    started: f64,
    stop: Mutex<bool>,
    wake: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The periodic datagrams' sequence number.
    seq: AtomicU32,
    /// STOPPING was sent, with this shutdown reason (for STOPPED too).
    stopping: AtomicBool,
    reason: OnceLock<&'static str>,
}

static REPORTER: OnceLock<Reporter> = OnceLock::new();

fn settings() -> &'static Settings {
    &state().expect("metrics started").settings
}

pub fn start() {
    let s = settings();
    let socket = s.target.as_ref().and_then(|path| {
        let socket = UnixDatagram::unbound().and_then(|sock| sock.set_nonblocking(true).map(|()| sock));
        match socket {
            Ok(socket) => Some((socket, path)),
            Err(e) => {
                s.log(
                    log::WARNING,
                    &format!("WSGI0132: Telemetry reporter could not open target 'unix:{}'; metrics will not be sent ({e}).", path.display()),
                );
                None
            }
        }
    });
    let new = Reporter {
        socket: socket.as_ref().map(|(socket, _)| socket.try_clone()).and_then(Result::ok),
        pid: std::process::id(),
        hostname: hostname(),
        started: epoch_now(),
        stop: Mutex::new(false),
        wake: Condvar::new(),
        thread: Mutex::new(None),
        seq: AtomicU32::new(1),
        stopping: AtomicBool::new(false),
        reason: OnceLock::new(),
    };
    if REPORTER.set(new).is_err() {
        return;
    }
    let r = self::reporter();
    if let Some((_, path)) = &socket {
        r.send(&started());
        s.log(log::INFO, &format!("Telemetry reporter started; target='unix:{}', interval={:.3}s.", path.display(), s.interval));
    }
    // Started with every signal blocked, as httpd starts its own threads: a prefork child's
    // exit signals (whose handler ends the process from the thread it runs on) must go to
    // the thread that serves requests, never to this one.
    // SAFETY: a zeroed sigset_t is valid for sigfillset, which fills it; pthread_sigmask
    // swaps this thread's mask (restored right after the spawn) and writes the old one.
    let mut old_mask: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old_mask);
    }
    let spawned = std::thread::Builder::new().name("wsgi-telemetry".into()).spawn(run);
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old_mask, std::ptr::null_mut()) };
    match spawned {
        Ok(handle) => *super::lock(&r.thread) = Some(handle),
        Err(e) => s.log(log::WARNING, &format!("WSGI0133: Unable to create telemetry reporter thread; metrics will not be sent ({e}).")),
    }
}

fn reporter() -> &'static Reporter {
    REPORTER.get().expect("reporter started")
}

/// STOPPING, with the shutdown reason and the requests in flight, as the process decides to
/// stop (once; the reporter keeps ticking while they drain).
pub fn stopping(reason: &'static str) {
    let Some(r) = REPORTER.get() else { return };
    if super::lock(&r.thread).is_none() || r.stopping.swap(true, Ordering::AcqRel) {
        return;
    }
    let _ = r.reason.set(reason);
    r.send(&header(kind::PROCESS_STOPPING, r.seq.load(Ordering::Relaxed)).with(|d| {
        common_identity(d, false);
        d.text(130, reason.as_bytes(), 63);
        d.u64(133, active_requests() as u64);
    }));
}

/// STOPPING (unless [`stopping`] sent it), then the thread ends, then the last window and
/// STOPPED, as mod_wsgi sends them.
pub fn stop() {
    let Some(r) = REPORTER.get() else { return };
    // An Apache child: no reason, as mod_wsgi's children give none.
    stopping("");
    let Some(handle) = super::lock(&r.thread).take() else { return };
    *super::lock(&r.stop) = true;
    r.wake.notify_all();
    let _ = handle.join();
    tick();
    let active = active_requests() as u64;
    r.send(&header(kind::PROCESS_STOPPED, r.seq.load(Ordering::Relaxed)).with(|d| {
        common_identity(d, false);
        d.text(130, r.reason.get().unwrap_or(&"").as_bytes(), 63);
        d.f64(131, epoch_now() - r.started);
        d.u64(132, state().map_or(0, |s| s.lifetime.requests.load(Ordering::Relaxed)));
        d.u64(134, active);
        // The running requests drained (none is cut off).
        d.u64(135, u64::from(active == 0));
    }));
}

fn run() {
    let s = settings();
    let r = reporter();
    let interval = Duration::from_secs_f64(s.interval.max(0.1));
    let mut next_tick = Instant::now() + interval;
    // Without WSGISlowRequests, nothing to look at between ticks.
    let scan = if s.slow_threshold().is_some() { SCAN } else { interval };
    loop {
        {
            let mut stop = super::lock(&r.stop);
            if !*stop {
                let wait = scan.min(next_tick.saturating_duration_since(Instant::now()));
                stop = r.wake.wait_timeout(stop, wait).unwrap_or_else(std::sync::PoisonError::into_inner).0;
            }
            if *stop {
                return;
            }
        }
        if let Some(threshold) = s.slow_threshold() {
            scan_slow(threshold);
        }
        if Instant::now() >= next_tick {
            tick();
            next_tick += interval;
            // Behind by more than an interval (a stopped process): start again from now.
            if next_tick < Instant::now() {
                next_tick = Instant::now() + interval;
            }
        }
    }
}

/// Logs each request that has just passed the threshold (once), and with
/// `+SlowRequestStacks` its Python stack (no lock held: the engine takes the GIL for it).
fn scan_slow(threshold: f64) {
    let mut newly = Vec::new();
    active::each(|_, running| {
        let elapsed = running.began.elapsed().as_secs_f64();
        if !running.reported_slow && elapsed >= threshold {
            running.reported_slow = true;
            newly.push((running.thread, elapsed, running.describe.clone()));
        }
    });
    // Logged with no slot locked: a stalled piped logger must not hold up the requests.
    for (_, elapsed, describe) in &newly {
        slow::log_running(settings(), describe, *elapsed, threshold);
    }
    let newly: Vec<u64> = newly.into_iter().map(|(thread, _, _)| thread).collect();
    if settings().slow_stacks && !newly.is_empty() {
        if let Some(dump) = settings().dump_stacks {
            // SAFETY: the engine is initialised; called without a Rust lock, from a thread
            // that serves no request.
            unsafe { dump(newly.as_ptr(), newly.len()) };
        }
    }
}

impl Reporter {
    fn send(&self, datagram: &Datagram) {
        if let (Some(socket), Some(path)) = (&self.socket, &settings().target) {
            // Nobody listening, or the receiver behind: the datagram is dropped.
            let _ = socket.send_to(datagram.bytes(), path);
        }
    }
}

trait With {
    fn with(self, f: impl FnOnce(&mut Datagram)) -> Datagram;
}

impl With for Datagram {
    fn with(mut self, f: impl FnOnce(&mut Datagram)) -> Datagram {
        f(&mut self);
        self
    }
}

fn header(kind: u8, seq: u32) -> Datagram {
    Datagram::new(kind, reporter().pid, seq, epoch_now())
}

/// Field 5 (hostname) and 6 (daemon process group); the versions too with `full`.
fn common_identity(d: &mut Datagram, full: bool) {
    let s = settings();
    if full {
        d.text(1, format!("mod_wsgi-rs/{}", env!("CARGO_PKG_VERSION")).as_bytes(), 63);
        d.text(2, s.python_version.as_bytes(), 63);
        d.text(3, s.apache_version.as_bytes(), 63);
        d.text(4, s.mpm_name.as_bytes(), 63);
    }
    d.text(5, &reporter().hostname, 255);
    d.text(6, s.process_group.as_bytes(), 255);
}

fn started() -> Datagram {
    let s = settings();
    let mut d = Datagram::new(kind::PROCESS_STARTED, reporter().pid, 1, reporter().started);
    common_identity(&mut d, true);
    // SAFETY: getppid has no preconditions.
    d.u64(7, unsafe { libc::getppid() } as u64);
    if s.switch_interval > 0.0 {
        d.f64(13, s.switch_interval);
    }
    d
}

/// One interval's report: the periodic datagram, then completed and running slow requests.
fn tick() {
    let Some(state) = state() else { return };
    let r = reporter();
    let s = &state.settings;
    if r.socket.is_none() {
        // Slow-request lines only: no datagram; the window stays for request_metrics().
        slow::take_completed();
        return;
    }
    let sample = sample::take(state);
    let w = &sample.window;
    let seq = r.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let mut d = header(kind::REQUEST, seq);
    common_identity(&mut d, true);
    // SAFETY: getppid has no preconditions.
    d.u64(7, unsafe { libc::getppid() } as u64);
    d.f64(10, sample.period).f64(11, s.interval).f64(12, s.slow_threshold().unwrap_or(0.0));
    if s.switch_interval > 0.0 {
        d.f64(13, s.switch_interval);
    }
    let (n, period) = (w.requests, sample.period);
    d.u64(20, n).f64(21, n as f64 / period).f64(22, sample.capacity_utilization());
    d.f64(30, sample.cpu_user / period).f64(31, sample.cpu_system / period).f64(32, (sample.cpu_user + sample.cpu_system) / period);
    d.u64(40, sample.rss).u64(41, sample.max_rss);
    d.u64(50, sample.threads as u64).u64(51, sample.threads_started as u64).u64(52, sample.threads_active as u64);
    let mean = |stat: &Stat| sample.mean(stat.sum);
    d.f64(60, mean(&w.server)).f64(63, mean(&w.application)).f64(64, mean(&w.request)).f64(65, mean(&w.python_wait));
    d.f64(66, mean(&w.input_read)).f64(67, mean(&w.output_write));
    if sample.daemon && n > 0 {
        d.f64(61, mean(&w.queue)).f64(62, mean(&w.daemon));
    }
    if n > 0 {
        for (min, stat) in [(70, &w.server), (73, &w.application), (74, &w.request), (75, &w.python_wait), (76, &w.input_read), (77, &w.output_write)]
        {
            d.f64(min, stat.min).f64(min + 10, stat.max);
        }
        if sample.daemon {
            d.f64(71, w.queue.min).f64(81, w.queue.max).f64(72, w.daemon.min).f64(82, w.daemon.max);
        }
    }
    d.i32s(90, &w.server.buckets).i32s(93, &w.application.buckets);
    if sample.daemon {
        d.i32s(91, &w.queue.buckets).i32s(92, &w.daemon.buckets);
    }
    d.i32s(94, &w.request.buckets).i32s(95, &w.python_wait.buckets).i32s(96, &w.input_read.buckets).i32s(97, &w.output_write.buckets);
    let t = &w.traffic;
    d.u64(100, t.input_bytes).u64(101, t.input_reads).u64(102, t.output_bytes).u64(103, t.output_writes);
    for (i, count) in w.statuses.iter().enumerate() {
        d.u64(120 + i as u16, *count);
    }
    d.i32s(110, &w.completed[..sample.threads]).f64s(111, &sample.busy).f64s(112, &w.cpu[..sample.threads]);
    d.f64s(113, &sample.current).f64s(114, &w.longest[..sample.threads]);
    r.send(&d);
    if s.slow_threshold().is_some() {
        slow_datagrams(seq);
    }
}

/// mod_wsgi's slow-request datagrams: each request completed since the last tick (state 1),
/// then each still running past the threshold (state 0, a heartbeat every tick).
fn slow_datagrams(seq: u32) {
    let s = settings();
    let r = reporter();
    let threshold = s.slow_threshold().unwrap_or(f64::INFINITY);
    let stamp = epoch_now();
    let describe = |d: &mut Datagram, desc: &super::Describe, slot: usize, began: f64| {
        let log_id =
            if desc.log_id().is_empty() { format!("{}-{}-{}", r.pid, slot + 1, (began * 1e6) as u64).into_bytes() } else { desc.log_id().to_vec() };
        d.text(204, &log_id, 63).text(210, desc.method(), 15).text(211, desc.scheme(), 15).text(212, desc.hostname(), 255);
        d.text(213, desc.script_name(), 255).text(214, desc.path_info(), 511).text(215, desc.protocol(), 15).text(216, desc.peer_ip(), 45);
        if s.capture_user_agent {
            d.text(217, desc.user_agent(), 511);
        }
    };
    for c in slow::take_completed() {
        let mut d = Datagram::new(kind::SLOW_REQUEST, r.pid, seq, stamp);
        d.u64(200, 1).f64(201, c.began_epoch).f64(202, c.duration).u64(203, c.thread_slot as u64 + 1).u64(205, r.pid as u64);
        d.u64(230, c.traffic.input_bytes).u64(231, c.traffic.input_reads).u64(232, c.traffic.output_bytes).u64(233, c.traffic.output_writes);
        let p = &c.phases;
        d.f64(220, p.server);
        if let (Some(queue), Some(daemon)) = (p.queue, p.daemon) {
            d.f64(221, queue).f64(222, daemon);
        }
        d.f64(223, p.application).f64(224, p.python_wait).u64(225, p.python_waits).f64(234, p.input_read).f64(235, p.output_write);
        d.u64(240, c.status.max(0) as u64);
        let u = &c.usage;
        d.f64(250, u.cpu_user).f64(251, u.cpu_system).u64(260, u.active_at_start).u64(261, u.active_at_completion);
        describe(&mut d, &c.describe, c.thread_slot, c.began_epoch);
        r.send(&d);
    }
    let mut running = Vec::new();
    active::each(|slot, run| {
        let elapsed = run.began.elapsed().as_secs_f64();
        if elapsed >= threshold && running.len() < RUNNING_REPORTS {
            running.push((slot, run.began_epoch, elapsed, run.describe.clone(), run.active_at_start));
        }
    });
    for (slot, began, elapsed, desc, active_at_start) in running {
        let mut d = Datagram::new(kind::SLOW_REQUEST, r.pid, seq, stamp);
        d.u64(200, 0).f64(201, began).f64(202, elapsed).u64(203, slot as u64 + 1).u64(205, r.pid as u64).u64(240, 0);
        // A running request's CPU times are not known yet (only its own thread can read
        // them), nor its concurrency at completion: zeros, as mod_wsgi sends.
        d.f64(250, 0.0).f64(251, 0.0).u64(260, active_at_start).u64(261, 0);
        describe(&mut d, &desc, slot, began);
        r.send(&d);
    }
}

fn hostname() -> Vec<u8> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer holds 256 bytes; gethostname writes at most that many.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return Vec::new();
    }
    buf.iter().take_while(|&&b| b != 0).copied().collect()
}
