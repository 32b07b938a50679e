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
use super::wire::{kind, Datagram};
use super::window::Stat;
use super::{active, epoch_now, slow, state, Settings, MAX_SLOTS};
use std::sync::{Condvar, Mutex};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
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
    /// Requests completed over the process's life (STOPPED's count).
    lifetime: AtomicU64,
    /// Where the last tick's figures started: its monotonic and CPU clocks.
    last: Mutex<(Instant, f64, f64)>,
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
                s.log(log::WARNING, &format!("WSGI0132: Telemetry reporter could not open target 'unix:{}'; metrics will not be sent ({e}).", path.display()));
                None
            }
        }
    });
    let (user, system) = cpu_times();
    let new = Reporter {
        socket: socket.as_ref().map(|(socket, _)| socket.try_clone()).and_then(Result::ok),
        pid: std::process::id(),
        hostname: hostname(),
        started: epoch_now(),
        stop: Mutex::new(false),
        wake: Condvar::new(),
        thread: Mutex::new(None),
        seq: AtomicU32::new(1),
        lifetime: AtomicU64::new(0),
        last: Mutex::new((Instant::now(), user, system)),
    };
    if REPORTER.set(new).is_err() {
        return;
    }
    let r = self::reporter();
    if let Some((_, path)) = &socket {
        r.send(&started());
        s.log(log::INFO, &format!("Telemetry reporter started; target='unix:{}', interval={:.3}s.", path.display(), s.interval));
    }
    match std::thread::Builder::new().name("wsgi-telemetry".into()).spawn(run) {
        Ok(handle) => *super::lock(&r.thread) = Some(handle),
        Err(e) => s.log(log::WARNING, &format!("WSGI0133: Unable to create telemetry reporter thread; metrics will not be sent ({e}).")),
    }
}

fn reporter() -> &'static Reporter {
    REPORTER.get().expect("reporter started")
}

/// STOPPING, then the thread ends, then the last window and STOPPED, as mod_wsgi sends them.
pub fn stop() {
    let Some(r) = REPORTER.get() else { return };
    let Some(handle) = super::lock(&r.thread).take() else { return };
    r.send(&header(kind::PROCESS_STOPPING, r.seq.load(Ordering::Relaxed)).with(|d| {
        common_identity(d, false);
        d.u64(133, active_requests() as u64);
    }));
    *super::lock(&r.stop) = true;
    r.wake.notify_all();
    let _ = handle.join();
    tick();
    r.send(&header(kind::PROCESS_STOPPED, r.seq.load(Ordering::Relaxed)).with(|d| {
        common_identity(d, false);
        d.f64(131, epoch_now() - r.started);
        d.u64(132, r.lifetime.load(Ordering::Relaxed));
        d.u64(134, active_requests() as u64);
        d.u64(135, 1);
    }));
}

fn run() {
    let s = settings();
    let r = reporter();
    let interval = Duration::from_secs_f64(s.interval.max(0.1));
    let mut next_tick = Instant::now() + interval;
    loop {
        {
            let mut stop = super::lock(&r.stop);
            if !*stop {
                let wait = SCAN.min(next_tick.saturating_duration_since(Instant::now()));
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
            slow::log_running(settings(), running, elapsed, threshold);
            newly.push(running.thread);
        }
    });
    if settings().slow_stacks && !newly.is_empty() {
        if let Some(dump) = settings().dump_stacks {
            // SAFETY: the engine is initialised; called without a Rust lock, from a thread
            // that serves no request.
            unsafe { dump(newly.as_ptr(), newly.len()) };
        }
    }
}

fn active_requests() -> usize {
    let mut n = 0;
    active::each(|_, _| n += 1);
    n
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
    let now = Instant::now();
    let window = state.window.drain(now);
    let (user, system) = cpu_times();
    let (period, cpu_user, cpu_system) = {
        let mut last = super::lock(&r.last);
        let before = *last;
        *last = (now, user, system);
        (now.saturating_duration_since(before.0).as_secs_f64().max(1e-6), user - before.1, system - before.2)
    };
    r.lifetime.fetch_add(window.requests, Ordering::Relaxed);
    // The in-flight part of each busy thread's time in this window.
    let threads = s.threads_maximum.clamp(1, MAX_SLOTS);
    let mut busy = window.busy.clone();
    let mut current = vec![0.0; MAX_SLOTS];
    active::each(|slot, running| {
        let since = if running.began > window.started { running.began } else { window.started };
        busy[slot] += now.saturating_duration_since(since).as_secs_f64();
        current[slot] = now.saturating_duration_since(running.began).as_secs_f64();
    });
    let seq = r.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let mut d = header(kind::REQUEST, seq);
    common_identity(&mut d, true);
    // SAFETY: getppid has no preconditions.
    d.u64(7, unsafe { libc::getppid() } as u64);
    d.f64(10, period).f64(11, s.interval).f64(12, s.slow_threshold().unwrap_or(0.0));
    if s.switch_interval > 0.0 {
        d.f64(13, s.switch_interval);
    }
    let n = window.requests;
    d.u64(20, n).f64(21, n as f64 / period);
    d.f64(22, busy.iter().sum::<f64>() / period / threads as f64);
    d.f64(30, cpu_user / period).f64(31, cpu_system / period).f64(32, (cpu_user + cpu_system) / period);
    let (rss, max_rss) = memory();
    d.u64(40, rss).u64(41, max_rss);
    let active_threads = (0..MAX_SLOTS).filter(|&i| window.completed[i] > 0 || current[i] > 0.0).count();
    d.u64(50, threads as u64).u64(51, active::threads_started() as u64).u64(52, active_threads as u64);
    let daemon = !s.process_group.is_empty();
    let mean = |stat: &Stat| if n > 0 { stat.sum / n as f64 } else { 0.0 };
    d.f64(60, mean(&window.server)).f64(63, mean(&window.application)).f64(64, mean(&window.request)).f64(65, mean(&window.python_wait));
    d.f64(66, mean(&window.input_read)).f64(67, mean(&window.output_write));
    if daemon && n > 0 {
        d.f64(61, mean(&window.queue)).f64(62, mean(&window.daemon));
    }
    if n > 0 {
        for (min, stat) in [(70, &window.server), (73, &window.application), (74, &window.request), (75, &window.python_wait), (76, &window.input_read), (77, &window.output_write)] {
            d.f64(min, stat.min).f64(min + 10, stat.max);
        }
        if daemon {
            d.f64(71, window.queue.min).f64(81, window.queue.max).f64(72, window.daemon.min).f64(82, window.daemon.max);
        }
    }
    d.i32s(90, &window.server.buckets).i32s(93, &window.application.buckets);
    if daemon {
        d.i32s(91, &window.queue.buckets).i32s(92, &window.daemon.buckets);
    }
    d.i32s(94, &window.request.buckets).i32s(95, &window.python_wait.buckets).i32s(96, &window.input_read.buckets).i32s(97, &window.output_write.buckets);
    let t = &window.traffic;
    d.u64(100, t.input_bytes).u64(101, t.input_reads).u64(102, t.output_bytes).u64(103, t.output_writes);
    for (i, count) in window.statuses.iter().enumerate() {
        d.u64(120 + i as u16, *count);
    }
    d.i32s(110, &window.completed[..threads]).f64s(111, &busy[..threads]);
    d.f64s(113, &current[..threads]).f64s(114, &window.longest[..threads]);
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
        let log_id = if desc.log_id.is_empty() { format!("{}-{}-{}", r.pid, slot + 1, (began * 1e6) as u64).into_bytes() } else { desc.log_id.clone() };
        d.text(204, &log_id, 63).text(210, &desc.method, 15).text(211, &desc.scheme, 15).text(212, &desc.hostname, 255);
        d.text(213, &desc.script_name, 255).text(214, &desc.path_info, 511).text(215, &desc.protocol, 15).text(216, &desc.peer_ip, 45);
        if s.capture_user_agent {
            d.text(217, &desc.user_agent, 511);
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
        describe(&mut d, &c.describe, c.thread_slot, c.began_epoch);
        r.send(&d);
    }
    let mut running = Vec::new();
    active::each(|slot, run| {
        let elapsed = run.began.elapsed().as_secs_f64();
        if elapsed >= threshold && running.len() < RUNNING_REPORTS {
            running.push((slot, run.began_epoch, elapsed, run.describe.clone()));
        }
    });
    for (slot, began, elapsed, desc) in running {
        let mut d = Datagram::new(kind::SLOW_REQUEST, r.pid, seq, stamp);
        d.u64(200, 0).f64(201, began).f64(202, elapsed).u64(203, slot as u64 + 1).u64(205, r.pid as u64).u64(240, 0);
        describe(&mut d, &desc, slot, began);
        r.send(&d);
    }
}

/// This process's user and system CPU seconds.
fn cpu_times() -> (f64, f64) {
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
fn memory() -> (u64, u64) {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    let rss = std::fs::read_to_string("/proc/self/statm").ok().and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok()).map_or(0, |p| p * page);
    // SAFETY: as in cpu_times.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid buffer.
    let max = if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0 { usage.ru_maxrss as u64 * 1024 } else { 0 };
    (rss, max.max(rss))
}

fn hostname() -> Vec<u8> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer holds 256 bytes; gethostname writes at most that many.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return Vec::new();
    }
    buf.iter().take_while(|&&b| b != 0).copied().collect()
}
