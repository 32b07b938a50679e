//! What one process's requests did since the last report: the counts, means, extremes and
//! histograms that mod_wsgi 6.1 sends each telemetry interval, drained and reset by each tick.
//! Requests add to it as they end, under a short lock no Python code ever runs under.

use super::histogram::{self, BUCKETS};
use super::MAX_SLOTS;
use std::sync::Mutex;
use std::time::Instant;

/// The times, in seconds, of one phase of the requests of a window.
#[derive(Clone)]
pub struct Stat {
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub buckets: [i32; BUCKETS],
}

impl Default for Stat {
    fn default() -> Stat {
        Stat { sum: 0.0, min: f64::INFINITY, max: 0.0, buckets: [0; BUCKETS] }
    }
}

impl Stat {
    fn add(&mut self, seconds: f64) {
        let seconds = seconds.max(0.0);
        self.sum += seconds;
        self.min = self.min.min(seconds);
        self.max = self.max.max(seconds);
        self.buckets[histogram::bucket(seconds)] += 1;
    }
}

/// The phases of a finished request, in seconds. `queue` and `daemon` are daemon mode's
/// (the wait for a daemon thread, and from there to the application), `None` in embedded mode.
#[derive(Default, Clone, Copy)]
pub struct Phases {
    pub server: f64,
    pub queue: Option<f64>,
    pub daemon: Option<f64>,
    pub application: f64,
    pub input_read: f64,
    pub output_write: f64,
    /// Waiting for a slot of the GIL scheduler and for the GIL, and how many waits.
    pub python_wait: f64,
    pub python_waits: u64,
    /// CPU seconds (user and system) its thread used meanwhile (not a phase: it adds to the
    /// thread's figure).
    pub cpu: f64,
}

/// The counts of a finished request's body traffic.
#[derive(Default, Clone, Copy)]
pub struct Traffic {
    pub input_bytes: u64,
    pub input_reads: u64,
    pub output_bytes: u64,
    pub output_writes: u64,
}

/// The window's figures, taken out by a tick.
#[derive(Clone)]
pub struct Window {
    pub started: Instant,
    pub requests: u64,
    /// 1xx to 5xx; a request without a status (0) counts as 5xx, as in mod_wsgi.
    pub statuses: [u64; 5],
    pub server: Stat,
    pub queue: Stat,
    pub daemon: Stat,
    pub application: Stat,
    pub request: Stat,
    pub input_read: Stat,
    pub output_write: Stat,
    pub python_wait: Stat,
    pub python_waits: u64,
    pub traffic: Traffic,
    /// Per worker thread (slot): requests completed, busy seconds, longest request, and the
    /// CPU seconds (user and system) of its requests that completed in the window (mod_wsgi's:
    /// a running request's CPU time counts in the window it ends in).
    pub completed: Vec<i32>,
    pub busy: Vec<f64>,
    pub longest: Vec<f64>,
    pub cpu: Vec<f64>,
}

impl Window {
    fn new(started: Instant) -> Window {
        Window {
            started,
            requests: 0,
            statuses: [0; 5],
            server: Stat::default(),
            queue: Stat::default(),
            daemon: Stat::default(),
            application: Stat::default(),
            request: Stat::default(),
            input_read: Stat::default(),
            output_write: Stat::default(),
            python_wait: Stat::default(),
            python_waits: 0,
            traffic: Traffic::default(),
            completed: vec![0; MAX_SLOTS],
            busy: vec![0.0; MAX_SLOTS],
            longest: vec![0.0; MAX_SLOTS],
            cpu: vec![0.0; MAX_SLOTS],
        }
    }
}

/// The current window of this process.
pub struct Accumulator {
    window: Mutex<Window>,
}

impl Accumulator {
    pub fn new() -> Accumulator {
        Accumulator { window: Mutex::new(Window::new(Instant::now())) }
    }

    /// Adds a request that began at `began` (monotonic) and ended at `ended` on worker
    /// `slot`.
    pub fn add(&self, slot: Option<usize>, began: Instant, ended: Instant, status: i32, phases: &Phases, traffic: &Traffic) {
        let mut w = super::lock(&self.window);
        w.requests += 1;
        let class = super::status_class(status);
        w.statuses[class] += 1;
        w.server.add(phases.server);
        let mut request = phases.server + phases.application;
        if let (Some(queue), Some(daemon)) = (phases.queue, phases.daemon) {
            w.queue.add(queue);
            w.daemon.add(daemon);
            request += queue + daemon;
        }
        w.application.add(phases.application);
        w.request.add(request);
        w.input_read.add(phases.input_read);
        w.output_write.add(phases.output_write);
        w.python_wait.add(phases.python_wait);
        w.python_waits += phases.python_waits;
        w.traffic.input_bytes += traffic.input_bytes;
        w.traffic.input_reads += traffic.input_reads;
        w.traffic.output_bytes += traffic.output_bytes;
        w.traffic.output_writes += traffic.output_writes;
        if let Some(slot) = slot.filter(|&s| s < MAX_SLOTS) {
            let since = if began > w.started { began } else { w.started };
            w.completed[slot] += 1;
            w.busy[slot] += ended.saturating_duration_since(since).as_secs_f64();
            w.longest[slot] = w.longest[slot].max(ended.saturating_duration_since(began).as_secs_f64());
            w.cpu[slot] += phases.cpu;
        }
    }

    /// Takes the window out and starts the next one at `now`.
    pub fn drain(&self, now: Instant) -> Window {
        std::mem::replace(&mut *super::lock(&self.window), Window::new(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_window_adds_up_and_drains() {
        let acc = Accumulator::new();
        let t0 = Instant::now();
        let phases = Phases { server: 0.001, application: 0.010, ..Phases::default() };
        let cpu = |cpu| Phases { cpu, ..phases };
        acc.add(Some(0), t0, t0 + Duration::from_millis(11), 200, &cpu(0.25), &Traffic { output_bytes: 5, output_writes: 1, ..Traffic::default() });
        acc.add(Some(1), t0, t0 + Duration::from_millis(11), 0, &phases, &Traffic::default());
        acc.add(Some(0), t0, t0 + Duration::from_millis(11), 200, &cpu(0.5), &Traffic::default());
        acc.add(None, t0, t0 + Duration::from_millis(11), 404, &cpu(1.0), &Traffic::default());
        let w = acc.drain(Instant::now());
        assert_eq!(w.requests, 4);
        assert_eq!(w.statuses, [0, 2, 0, 1, 1]);
        assert_eq!(w.statuses.iter().sum::<u64>(), w.requests);
        assert_eq!(w.completed[..2], [2, 1]);
        assert_eq!(w.cpu[..2], [0.75, 0.0]);
        assert_eq!(w.traffic.output_bytes, 5);
        assert!((w.request.sum - 0.044).abs() < 1e-9);
        assert_eq!(w.request.buckets.iter().sum::<i32>(), 4);
        assert_eq!(acc.drain(Instant::now()).requests, 0);
    }
}
