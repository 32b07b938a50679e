//! `WSGIPythonConcurrency auto`: adapts the admission limit to the load it sees.
//!
//! Each window of completed requests (half a second) reads two things: the requests/second,
//! and how busy the GIL behind the gate was, the CPU time threads used while holding its slots
//! (`scheduler.rs`) over the window's length.
//!
//! - A GIL busy less than [`IDLE`] of the time while requests wait at the gate idles for want
//!   of threads (they wait with it released: a database, a sleep, a remote call), so the limit
//!   grows at once, in proportion (up to fourfold per window): an I/O-bound app reaches
//!   `ThreadsPerChild` within a second of start or of a change in load, where one neighbour per
//!   window took many seconds and lost throughput meanwhile.
//! - A busy GIL is the bottleneck, and a hill climb decides whether one more thread still adds
//!   anything: each window tries a neighbouring limit and keeps going in the direction that
//!   raised requests/second; a flat result steps down (fewer threads contend less), by half
//!   from the top. A step down that lost throughput, or left the GIL idle, goes back and makes
//!   that limit a floor for [`FLOOR_WINDOWS`] windows, so the climb does not keep paying for
//!   the same failed probe. Against a bound, it tries the other side once every
//!   [`PROBE_AFTER`] windows, so an app whose needs changed is not stuck where it was.
//! - CPU time cannot tell an idle GIL from a starved CPU (more runnable threads than cores,
//!   as with two children on two cores): there the growth is kept as long as it costs no
//!   throughput, since measured there (bench/gil.sh, Django in 2 children x 16 threads) a low
//!   limit loses 20% against none: a thread woken for a freed slot waits for a core. A growth
//!   that lowers the next window's rate is undone and not repeated for a while.
//! - A raise by the gate's stall guard (`admission.rs`: slots held by requests waiting for
//!   others) is a floor for a while, so the climb does not step straight back into the stall.
//!
//! Without queueing (and below the top) the limit is not what bounds throughput, and nothing
//! is learnt.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a window lasts, and how many requests it needs, before it counts.
const WINDOW: Duration = Duration::from_millis(500);
const MIN_REQUESTS: u64 = 10;
/// Changes smaller than this are noise: treated as "no gain", which steps the limit down.
const SIGNIFICANT: f64 = 0.05;
/// A GIL busy less than this share of a window is idling: the limit grows towards
/// [`BUSY_TARGET`]. Busier, the hill climb decides.
const IDLE: f64 = 0.6;
const BUSY_TARGET: f64 = 0.9;
/// The most one window multiplies the limit by.
const MAX_GROWTH: f64 = 4.0;
/// How long a failed step down keeps the limit above it, or a growth that did not pay below
/// it (windows: 10 s).
const FLOOR_WINDOWS: u32 = 20;
/// How many windows the climb stays against a bound before it tries the other side once.
const PROBE_AFTER: u32 = 6;

pub struct Tuner {
    pub min: usize,
    pub max: usize,
    window_start: Instant,
    completed: u64,
    contended: bool,
    /// The previous window's limit and requests/second (the hill climb's reference).
    last: Option<(usize, f64)>,
    direction: isize,
    /// The lowest limit the climb may try now, and for how many more windows.
    floor: usize,
    floor_windows: u32,
    /// The most a busy-GIL growth may reach now (one did not pay), and for how long.
    ceiling: usize,
    ceiling_windows: u32,
    /// The limit as this tuner last left it: another value at the next window was set by the
    /// admission gate's stall guard.
    expected: Option<usize>,
    /// A growth on trial: the limit and requests/second before it. Undone if the rate fell.
    grown_from: Option<(usize, f64)>,
    /// Windows the climb has pushed against a bound without moving.
    stuck: u32,
}

/// A change the tuner made, for the debug log.
#[derive(Debug, PartialEq)]
pub struct Step {
    pub from: usize,
    pub to: usize,
    pub rate: f64,
    /// How busy the GIL was over the window (share of its time).
    pub busy: f64,
}

impl Tuner {
    pub fn new(min: usize, max: usize) -> Tuner {
        let min = min.max(1);
        let max = max.max(min);
        Tuner {
            min,
            max,
            window_start: Instant::now(),
            completed: 0,
            contended: false,
            last: None,
            direction: 1,
            floor: min,
            floor_windows: 0,
            ceiling: max,
            ceiling_windows: 0,
            expected: None,
            grown_from: None,
            stuck: 0,
        }
    }

    /// Records one finished request; `queued` says whether requests were waiting, `busy_ns`
    /// is the gate's count of CPU time used in its slots (read and reset when a window ends).
    /// Returns the new limit when a window ends and the limit should change.
    pub fn request_done(&mut self, limit: usize, queued: bool, now: Instant, busy_ns: &AtomicU64) -> Option<Step> {
        self.completed += 1;
        self.contended |= queued;
        let elapsed = now.duration_since(self.window_start);
        if elapsed < WINDOW || self.completed < MIN_REQUESTS {
            return None;
        }
        let rate = self.completed as f64 / elapsed.as_secs_f64();
        let busy = busy_ns.swap(0, Ordering::Relaxed) as f64 / 1e9 / elapsed.as_secs_f64();
        // At the top no request can queue: a busy GIL there is still worth a probe down.
        let contended = self.contended || limit >= self.max;
        self.window_start = now;
        self.completed = 0;
        self.contended = false;
        self.expire_bounds();
        let to = self.decide(limit, rate, busy, contended, elapsed > WINDOW * 4);
        self.expected = Some(to);
        (to != limit).then_some(Step { from: limit, to, rate, busy })
    }

    /// The limit for the next window.
    fn decide(&mut self, limit: usize, rate: f64, busy: f64, contended: bool, after_idle: bool) -> usize {
        if self.expected.is_some_and(|expected| expected != limit) {
            // The stall guard raised it (requests held their slots waiting for others): stay
            // at least there for a while, or the next step down stalls them again.
            self.set_floor(limit);
            self.last = None;
            self.grown_from = None;
            self.direction = 1;
        }
        // A window that spans an idle spell measures the idleness, not the limit; without
        // queueing the limit did not bound throughput.
        if !contended || after_idle {
            self.last = None;
            self.grown_from = None;
            return limit;
        }
        if let Some((before, before_rate)) = self.grown_from.take() {
            if rate < before_rate * (1.0 - SIGNIFICANT) && before < limit {
                // More threads cost throughput: back, and no such growth past it for a while.
                self.ceiling = before.max(self.floor);
                self.ceiling_windows = FLOOR_WINDOWS;
                self.last = None;
                return before;
            }
        }
        if busy < IDLE {
            if self.direction < 0 && self.last.is_some_and(|(previous, _)| previous > limit) {
                // A step down left the GIL idle: back, and not below that again for a while.
                self.set_floor(limit + 1);
            }
            self.last = None;
            self.direction = 1;
            let growth = (BUSY_TARGET / busy.max(0.01)).min(MAX_GROWTH);
            let to = ((limit as f64 * growth).ceil() as usize).max(limit + 1).min(self.ceiling).clamp(self.floor, self.max);
            if to > limit {
                self.grown_from = Some((limit, rate));
            }
            // An idle GIL is never a reason to step down.
            return to.max(limit);
        }
        let (mut direction, back) = match self.last {
            None if limit >= self.max => (-1, false),
            None => (1, false),
            Some((previous, _)) if previous == limit => (self.direction, false),
            Some((_, previous_rate)) if rate > previous_rate * (1.0 + SIGNIFICANT) => (self.direction, false),
            Some((_, previous_rate)) if rate < previous_rate * (1.0 - SIGNIFICANT) => (-self.direction, true),
            Some(_) => (-1, false),
        };
        if back {
            if let Some((previous, _)) = self.last.filter(|(previous, _)| *previous > limit) {
                // The step down lost throughput: back to where it was, and stay above.
                self.set_floor(previous);
                self.direction = 1;
                self.last = None;
                return previous.clamp(self.min, self.max);
            }
        }
        self.last = Some((limit, rate));
        let lowest = self.floor.max(self.min);
        let next = |direction: isize| {
            let to = if direction > 0 { limit + (limit / 4).max(1) } else { limit.saturating_sub((limit / 2).max(1)) };
            to.clamp(lowest, self.max)
        };
        let mut to = next(direction);
        if to == limit {
            // Pushing against a bound: stay, and now and then try the other side once (an
            // app whose needs changed since the climb got here).
            self.stuck += 1;
            if self.stuck >= PROBE_AFTER {
                self.stuck = 0;
                direction = -direction;
                to = next(direction);
            }
        } else {
            self.stuck = 0;
        }
        self.direction = direction;
        to
    }

    /// Floors and ceilings last [`FLOOR_WINDOWS`] windows.
    fn expire_bounds(&mut self) {
        if self.floor_windows > 0 {
            self.floor_windows -= 1;
        } else {
            self.floor = self.min;
        }
        if self.ceiling_windows > 0 {
            self.ceiling_windows -= 1;
        } else {
            self.ceiling = self.max;
        }
    }

    fn set_floor(&mut self, floor: usize) {
        self.floor = floor.clamp(self.min, self.max);
        self.floor_windows = FLOOR_WINDOWS;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives the tuner with a model of the app: requests/second and the GIL's busy share as
    /// functions of the limit.
    fn settle(model: impl Fn(usize) -> (f64, f64), start: usize, max: usize) -> Vec<usize> {
        let mut tuner = Tuner::new(1, max);
        let busy_ns = AtomicU64::new(0);
        let mut limit = start;
        let mut now = Instant::now();
        let mut history = Vec::new();
        for _ in 0..60 {
            // One simulated second, the rate following the limit as the tuner changes it.
            let second = now + Duration::from_secs(1);
            while now < second {
                let (rate, busy) = model(limit);
                now += Duration::from_secs_f64(1.0 / rate);
                busy_ns.fetch_add((busy / rate * 1e9) as u64, Ordering::Relaxed);
                if let Some(step) = tuner.request_done(limit, true, now, &busy_ns) {
                    limit = step.to;
                }
            }
            history.push(limit);
        }
        history
    }

    #[test]
    fn an_app_waiting_without_the_gil_climbs_within_a_second() {
        // 20 ms waits, 0.2 ms of Python: each extra thread adds 50 req/s.
        let history = settle(|n| (50.0 * n as f64, 50.0 * n as f64 * 0.0002), 2, 32);
        assert!(history.iter().all(|&n| n == 32), "{history:?}");
    }

    #[test]
    fn a_cpu_bound_app_stays_low() {
        // The GIL is the bottleneck: one thread already gives all there is.
        let history = settle(|_| (400.0, 0.97), 2, 32);
        assert!(history[history.len() - 20..].iter().all(|&n| n <= 3), "{history:?}");
    }

    #[test]
    fn a_cpu_bound_app_comes_down_from_the_top() {
        let history = settle(|_| (400.0, 0.97), 32, 32);
        assert!(history[history.len() - 20..].iter().all(|&n| n <= 3), "{history:?}");
    }

    #[test]
    fn half_waiting_settles_where_the_gil_is_busy() {
        // Each request: 2 ms of Python, 2 ms waiting with the GIL released. One thread keeps the
        // GIL half busy; two or more keep it full, and the rate stops growing at two.
        let history = settle(
            |n| {
                let rate = 250.0 * (n.min(2) as f64);
                (rate, rate * 0.002)
            },
            1,
            32,
        );
        // A probe below, once the floor it left expires (every 10 s), and nothing above 4.
        assert!(history.iter().all(|&n| n <= 4), "{history:?}");
        assert!(history.iter().filter(|&&n| n < 2).count() <= history.len() / 10, "{history:?}");
    }

    #[test]
    fn a_growth_that_costs_throughput_is_undone() {
        // The GIL's holder gets half a core (the CPU is starved) and every thread past two
        // costs throughput: the growth is undone, and not repeated for a while.
        let history = settle(|n| (if n <= 2 { 400.0 } else { 300.0 }, 0.5), 2, 32);
        let high = history.iter().filter(|&&n| n > 2).count();
        assert!(high <= history.len() / 5, "{history:?}");
    }

    #[test]
    fn an_app_at_the_bottom_that_would_gain_from_two_threads_finds_them() {
        // The GIL 70% busy with one thread; two give 43% more.
        let history = settle(|n| if n == 1 { (100.0, 0.7) } else { (143.0, 1.0) }, 1, 32);
        let at_one = history[10..].iter().filter(|&&n| n == 1).count();
        assert!(at_one <= 10, "{history:?}");
    }

    #[test]
    fn a_stall_guard_raise_is_a_floor() {
        let mut tuner = Tuner::new(1, 32);
        let busy = AtomicU64::new(0);
        let mut now = Instant::now();
        let mut limit = 4;
        // A CPU-bound window at 4: the tuner steps (down or up) and expects its own value...
        for _ in 0..20 {
            now += Duration::from_millis(30);
            busy.fetch_add(29_000_000, Ordering::Relaxed);
            if let Some(step) = tuner.request_done(limit, true, now, &busy) {
                limit = step.to;
            }
        }
        // ...then the guard doubles it behind the tuner's back.
        limit = 16;
        let mut lowest = limit;
        for _ in 0..100 {
            now += Duration::from_millis(30);
            busy.fetch_add(29_000_000, Ordering::Relaxed);
            if let Some(step) = tuner.request_done(limit, true, now, &busy) {
                limit = step.to;
            }
            lowest = lowest.min(limit);
        }
        // 100 requests of 30 ms are 3 s, under the floor's 10 s: never below the raise.
        assert_eq!(lowest, 16);
    }

    #[test]
    fn an_idle_spell_is_not_a_measurement() {
        let mut tuner = Tuner::new(1, 16);
        let start = Instant::now();
        // Nine quick requests, an idle minute, then one more: no step from that window.
        let busy = AtomicU64::new(0);
        for i in 1..=9 {
            assert_eq!(tuner.request_done(8, true, start + Duration::from_millis(i), &busy), None);
        }
        assert_eq!(tuner.request_done(8, true, start + Duration::from_secs(60), &busy), None);
    }

    #[test]
    fn nothing_is_learnt_without_queueing() {
        let mut tuner = Tuner::new(1, 16);
        let mut now = Instant::now();
        for _ in 0..1000 {
            now += Duration::from_millis(5);
            assert_eq!(tuner.request_done(4, false, now, &AtomicU64::new(0)), None);
        }
    }
}
