//! `WSGIPythonConcurrency auto`: adapts the admission limit to the throughput it yields.
//!
//! A hill climb over windows of completed requests: while requests queue, each window tries a
//! neighbouring limit and keeps going in the direction that raised requests/second. An app
//! that waits with the GIL released (a database call) keeps gaining from more concurrency and
//! climbs; a CPU-bound app gains nothing past one or two threads, and a flat result steps the
//! limit down, so it stays low. Without queueing the limit is not what bounds throughput, and
//! nothing is learnt.

use std::time::{Duration, Instant};

/// How long a window lasts, and how many requests it needs, before it counts.
const WINDOW: Duration = Duration::from_millis(500);
const MIN_REQUESTS: u64 = 10;
/// Changes smaller than this are noise: treated as "no gain", which steps the limit down.
const SIGNIFICANT: f64 = 0.05;

pub struct Tuner {
    pub min: usize,
    pub max: usize,
    window_start: Instant,
    completed: u64,
    contended: bool,
    /// The previous window's limit and requests/second.
    last: Option<(usize, f64)>,
    direction: isize,
}

/// A change the tuner made, for the debug log.
#[derive(Debug, PartialEq)]
pub struct Step {
    pub from: usize,
    pub to: usize,
    pub rate: f64,
}

impl Tuner {
    pub fn new(min: usize, max: usize) -> Tuner {
        Tuner { min: min.max(1), max: max.max(min.max(1)), window_start: Instant::now(), completed: 0, contended: false, last: None, direction: 1 }
    }

    /// Records one finished request; `queued` says whether requests were waiting. Returns the
    /// new limit when a window ends and the limit should change.
    pub fn request_done(&mut self, limit: usize, queued: bool, now: Instant) -> Option<Step> {
        self.completed += 1;
        self.contended |= queued;
        let elapsed = now.duration_since(self.window_start);
        if elapsed < WINDOW || self.completed < MIN_REQUESTS {
            return None;
        }
        let rate = self.completed as f64 / elapsed.as_secs_f64();
        let contended = self.contended;
        self.window_start = now;
        self.completed = 0;
        self.contended = false;
        // A window that spans an idle spell measures the idleness, not the limit.
        if !contended || elapsed > WINDOW * 4 {
            self.last = None;
            return None;
        }
        self.direction = match self.last {
            None => 1,
            Some((previous, _)) if previous == limit => self.direction,
            Some((_, previous_rate)) if rate > previous_rate * (1.0 + SIGNIFICANT) => self.direction,
            Some((_, previous_rate)) if rate < previous_rate * (1.0 - SIGNIFICANT) => -self.direction,
            Some(_) => -1,
        };
        self.last = Some((limit, rate));
        let step = if self.direction > 0 { (limit / 4).max(1) } else { 1 };
        let to = if self.direction > 0 { limit + step } else { limit.saturating_sub(step) }.clamp(self.min, self.max);
        (to != limit).then_some(Step { from: limit, to, rate })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives the tuner with a model of the app: requests/second as a function of the limit.
    fn settle(model: impl Fn(usize) -> f64, start: usize, max: usize) -> Vec<usize> {
        let mut tuner = Tuner::new(1, max);
        let mut limit = start;
        let mut now = Instant::now();
        let mut history = Vec::new();
        for _ in 0..60 {
            // One simulated second, the rate following the limit as the tuner changes it.
            let second = now + Duration::from_secs(1);
            while now < second {
                now += Duration::from_secs_f64(1.0 / model(limit));
                if let Some(step) = tuner.request_done(limit, true, now) {
                    limit = step.to;
                }
            }
            history.push(limit);
        }
        history
    }

    #[test]
    fn an_app_waiting_without_the_gil_climbs() {
        // 20 ms waits: each extra thread adds 50 req/s.
        let history = settle(|n| 50.0 * n as f64, 2, 32);
        assert!(history[history.len() - 10..].iter().all(|&n| n >= 24), "{history:?}");
    }

    #[test]
    fn a_cpu_bound_app_stays_low() {
        // The GIL is the bottleneck: one thread already gives all there is.
        let history = settle(|n| if n == 0 { 0.0 } else { 400.0 }, 2, 32);
        assert!(history[history.len() - 20..].iter().all(|&n| n <= 3), "{history:?}");
    }

    #[test]
    fn an_idle_spell_is_not_a_measurement() {
        let mut tuner = Tuner::new(1, 16);
        let start = Instant::now();
        // Nine quick requests, an idle minute, then one more: no step from that window.
        for i in 1..=9 {
            assert_eq!(tuner.request_done(8, true, start + Duration::from_millis(i)), None);
        }
        assert_eq!(tuner.request_done(8, true, start + Duration::from_secs(60)), None);
    }

    #[test]
    fn nothing_is_learnt_without_queueing() {
        let mut tuner = Tuner::new(1, 16);
        let mut now = Instant::now();
        for _ in 0..1000 {
            now += Duration::from_millis(5);
            assert_eq!(tuner.request_done(4, false, now), None);
        }
    }
}
