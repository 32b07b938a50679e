//! The module's side of mod_wsgi 6.1's internal metrics API (`abi::MetricsFn`): the engine's
//! `mod_wsgi.start_recording_metrics()`, `request_metrics()` and `process_metrics()` ask here,
//! and get the figures one by one, from the same records as telemetry. While
//! `WSGITelemetryService` is on, its reporter takes them: both answer `None`, as mod_wsgi does.

use super::super::trampoline::trampoline;
use super::window::Stat;
use super::{active, epoch_now, sample, start_recording, state, API_RECORDING};
use crate::abi::{self, metric_kind, metrics_query, MetricValue};
use std::ffi::{c_int, c_void};
use std::sync::atomic::Ordering;

/// Emits figures to the engine's sink.
struct Out {
    sink: abi::MetricsSink,
    ctx: *mut c_void,
}

impl Out {
    fn value(&self, name: &str, value: MetricValue) {
        // SAFETY: the engine's sink with its ctx, valid for the query; the value and what it
        // points to live across the call.
        unsafe { (self.sink)(self.ctx, abi::Bytes::new(name.as_bytes()), &value) };
    }
    fn none(&self, name: &str) {
        self.value(name, MetricValue { kind: metric_kind::NONE, int: 0, float: 0.0, ints: std::ptr::null(), floats: std::ptr::null(), len: 0 });
    }
    fn int(&self, name: &str, v: i64) {
        self.value(name, MetricValue { kind: metric_kind::INT, int: v, float: 0.0, ints: std::ptr::null(), floats: std::ptr::null(), len: 0 });
    }
    fn float(&self, name: &str, v: f64) {
        self.value(name, MetricValue { kind: metric_kind::FLOAT, int: 0, float: v, ints: std::ptr::null(), floats: std::ptr::null(), len: 0 });
    }
    fn ints(&self, name: &str, v: &[i64]) {
        self.value(name, MetricValue { kind: metric_kind::INTS, int: 0, float: 0.0, ints: v.as_ptr(), floats: std::ptr::null(), len: v.len() });
    }
    fn floats(&self, name: &str, v: &[f64]) {
        self.value(name, MetricValue { kind: metric_kind::FLOATS, int: 0, float: 0.0, ints: std::ptr::null(), floats: v.as_ptr(), len: v.len() });
    }
}

pub unsafe extern "C" fn query(which: c_int, sink: abi::MetricsSink, ctx: *mut c_void) -> c_int {
    trampoline("mod_wsgi metrics", 0, || {
        // The status board's figures are always kept, whoever takes the others.
        if which == metrics_query::GROUPS {
            groups(&Out { sink, ctx });
            return 1;
        }
        let Some(state) = state() else {
            // A script imported as the process starts, before its settings are known: recording
            // starts with them (`metrics::start`).
            if which == metrics_query::START_RECORDING {
                API_RECORDING.store(true, Ordering::Release);
            }
            return 0;
        };
        // The reporter owns the figures while telemetry is on.
        if state.settings.target.is_some() {
            return 0;
        }
        let out = Out { sink, ctx };
        match which {
            metrics_query::START_RECORDING => {
                API_RECORDING.store(true, Ordering::Release);
                start_recording();
                1
            }
            _ if !API_RECORDING.load(Ordering::Acquire) => 0,
            metrics_query::REQUEST => {
                request_metrics(&out, state);
                1
            }
            metrics_query::PROCESS => {
                process_metrics(&out, state);
                1
            }
            _ => 0,
        }
    })
}

/// mod_wsgi 6.1's `request_metrics()` dict, key for key.
fn request_metrics(out: &Out, state: &super::State) {
    let s = sample::take(state);
    let w = &s.window;
    let n = w.requests;
    out.int("pid", std::process::id() as i64);
    // mod_wsgi's start_time equals its stop_time (it advances the baseline first); the
    // window's real start is given here.
    out.float("start_time", s.start_epoch);
    out.float("stop_time", s.stop_epoch);
    out.float("sample_period", s.period);
    out.int("request_count", n as i64);
    out.float("request_throughput", n as f64 / s.period);
    out.float("capacity_utilization", s.capacity_utilization());
    for (name, seconds) in [("cpu_user", s.cpu_user), ("cpu_system", s.cpu_system), ("cpu", s.cpu_user + s.cpu_system)] {
        out.float(&format!("{name}_utilization"), seconds / s.period);
        out.float(&format!("{name}_time"), seconds / s.period);
    }
    out.int("memory_rss", s.rss as i64);
    out.int("memory_max_rss", s.max_rss as i64);
    out.int("request_threads_maximum", s.threads as i64);
    out.int("request_threads_started", s.threads_started as i64);
    out.int("request_threads_active", s.threads_active as i64);
    let completed: Vec<i64> = w.completed[..s.threads].iter().map(|&c| c as i64).collect();
    out.ints("request_threads_completed", &completed);
    out.ints("request_threads_buckets", &completed);
    out.floats("request_threads_busy_time", &s.busy);
    out.floats("request_threads_cpu_time", &w.cpu[..s.threads]);
    out.floats("request_threads_current_elapsed", &s.current);
    out.floats("request_threads_max_duration", &w.longest[..s.threads]);
    let phases: [(&str, &Stat, bool); 8] = [
        ("server", &w.server, true),
        ("queue", &w.queue, s.daemon),
        ("daemon", &w.daemon, s.daemon),
        ("application", &w.application, true),
        ("request", &w.request, true),
        ("gil_wait", &w.python_wait, true),
        ("input_read", &w.input_read, true),
        ("output_write", &w.output_write, true),
    ];
    for (name, stat, present) in phases {
        if present {
            out.float(&format!("{name}_time"), s.mean(stat.sum));
        } else {
            out.none(&format!("{name}_time"));
        }
        if present && n > 0 {
            out.int(&format!("{name}_time_min_us"), (stat.min * 1e6) as i64);
            out.int(&format!("{name}_time_max_us"), (stat.max * 1e6) as i64);
        } else {
            out.none(&format!("{name}_time_min_us"));
            out.none(&format!("{name}_time_max_us"));
        }
        let buckets: Vec<i64> = stat.buckets.iter().map(|&b| b as i64).collect();
        out.ints(&format!("{name}_time_buckets"), &buckets);
    }
    out.int("gil_wait_count", w.python_waits as i64);
    out.int("input_bytes", w.traffic.input_bytes as i64);
    out.int("input_reads", w.traffic.input_reads as i64);
    out.int("output_bytes", w.traffic.output_bytes as i64);
    out.int("output_writes", w.traffic.output_writes as i64);
    for (i, count) in w.statuses.iter().enumerate() {
        out.int(&format!("status_{}xx", i + 1), *count as i64);
    }
}

/// mod_wsgi 6.1's `process_metrics()` keys (the engine adds them to its own dict).
fn process_metrics(out: &Out, state: &super::State) {
    let life = &state.lifetime;
    let now = epoch_now();
    let (user, system) = sample::cpu_times();
    let (rss, max_rss) = sample::memory();
    out.int("pid", std::process::id() as i64);
    // Finished requests' time, and so far of the running ones.
    let mut running_busy = 0.0;
    active::each(|_, running| running_busy += running.began.elapsed().as_secs_f64());
    out.float("request_busy_time", life.busy_ns.load(Ordering::Relaxed) as f64 / 1e9 + running_busy);
    out.int("request_count", life.requests.load(Ordering::Relaxed) as i64);
    out.int("memory_max_rss", max_rss as i64);
    out.int("memory_rss", rss as i64);
    out.float("cpu_user_time", user);
    out.float("cpu_system_time", system);
    out.float("cpu_time", user + system);
    out.float("restart_time", life.started);
    out.float("current_time", now);
    out.int("running_time", (now - life.started).max(0.0) as i64);
    out.int("request_threads", active::threads_started() as i64);
    let mut running = 0;
    active::each(|_, _| running += 1);
    out.int("active_requests", running);
    // `threads`: a list of {thread_id, request_count}, as two parallel lists.
    let started = active::slots_used().min(super::MAX_SLOTS);
    let ids: Vec<i64> = (1..=started as i64).collect();
    let counts: Vec<i64> = life.per_thread[..started].iter().map(|c| c.load(Ordering::Relaxed) as i64).collect();
    out.ints("threads.thread_id", &ids);
    out.ints("threads.request_count", &counts);
}

/// Ours: this process's application groups (`process_metrics()['application_groups']`), as
/// its entry on the status board has them: what `SetHandler wsgi-status` shows of it.
fn groups(out: &Out) {
    for row in super::board::own_rows() {
        let key = |k: &str| format!("{}\u{1f}{k}", row.group);
        out.int(&key("request_count"), row.requests as i64);
        for (i, count) in row.statuses.iter().enumerate() {
            out.int(&key(&format!("status_{}xx", i + 1)), *count as i64);
        }
        out.int(&key("active_requests"), row.active as i64);
        out.float(&key("request_time_total"), row.duration);
        out.float(&key("python_wait_total"), row.wait);
        out.floats(&key("request_time_bounds"), &super::board::BOUNDS);
        let buckets: Vec<i64> = row.buckets.iter().map(|&b| b as i64).collect();
        out.ints(&key("request_time_buckets"), &buckets);
        out.int(&key("thread_states"), row.thread_states as i64);
        match row.objects {
            Some(objects) => out.int(&key("python_objects"), objects as i64),
            None => out.none(&key("python_objects")),
        }
    }
}
