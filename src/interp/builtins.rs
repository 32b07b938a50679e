//! The functions the engine gives every interpreter: `mod_wsgi.process_metrics()` (what this
//! process's scheduler is doing, thread states per group), `mod_wsgi.server_metrics()`
//! (Apache's scoreboard, read by the module) and the error-log writer behind `sys.stdout`,
//! `sys.stderr` and `wsgi.errors` (`bootstrap.py`'s `Log`).

use super::py::{self, PyObj, PyResult};
use super::trampoline::python_trampoline;
use crate::abi;
use crate::gil::scheduler;
use crate::pyffi as ffi;
use std::ffi::{c_int, c_void};

/// A `PyMethodDef` in a static.
#[repr(transparent)]
struct Def(ffi::PyMethodDef);
// SAFETY: immutable; CPython only reads it.
unsafe impl Sync for Def {}

static PROCESS_METRICS: Def =
    Def(ffi::method_args(c"process_metrics", process_metrics, ffi::METH_NOARGS, c"process_metrics() -> dict of this process's metrics"));

static SERVER_METRICS: Def = Def(ffi::method_args(
    c"server_metrics",
    server_metrics,
    ffi::METH_NOARGS,
    c"server_metrics() -> dict of Apache's scoreboard, or None when WSGIServerMetrics (server-metrics= of a daemon group) is off",
));

static REQUEST_METRICS: Def = Def(ffi::method_args(
    c"request_metrics",
    request_metrics,
    ffi::METH_NOARGS,
    c"request_metrics() -> dict of the requests since the last call, or None unless recording (start_recording_metrics()) or while WSGITelemetryService is on",
));

static START_RECORDING_METRICS: Def = Def(ffi::method_args(
    c"start_recording_metrics",
    start_recording_metrics,
    ffi::METH_NOARGS,
    c"start_recording_metrics(): record requests for request_metrics() and process_metrics() from now on",
));

static LOG: Def = Def(ffi::method_args(
    c"log",
    log,
    ffi::METH_VARARGS,
    c"log(level, line): one line (str or bytes) to Apache's error log, attributed to the current request",
));

fn function(def: &'static Def) -> PyResult<PyObj> {
    // SAFETY: a static method definition; no self, no module.
    unsafe {
        PyObj::from_owned(ffi::PyCFunction_NewEx(
            &def.0 as *const ffi::PyMethodDef as *mut ffi::PyMethodDef,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        ))
    }
}

/// `mod_wsgi.process_metrics` for the current interpreter.
pub fn process_metrics_function() -> PyResult<PyObj> {
    function(&PROCESS_METRICS)
}

/// `mod_wsgi.server_metrics` for the current interpreter.
pub fn server_metrics_function() -> PyResult<PyObj> {
    function(&SERVER_METRICS)
}

/// `mod_wsgi.request_metrics` and `mod_wsgi.start_recording_metrics` for the current
/// interpreter.
pub fn recording_functions() -> PyResult<[(&'static str, PyObj); 2]> {
    Ok([("request_metrics", function(&REQUEST_METRICS)?), ("start_recording_metrics", function(&START_RECORDING_METRICS)?)])
}

/// One figure from the module, owned.
enum Figure {
    None,
    Int(i64),
    Float(f64),
    Ints(Vec<i64>),
    Floats(Vec<f64>),
}

/// The module's sink: copies each figure into the `Vec<(String, Figure)>` behind `ctx`.
unsafe extern "C" fn collect_figure(ctx: *mut c_void, name: abi::Bytes, value: *const abi::MetricValue) {
    // SAFETY: ctx is the Vec passed to the query below; name and value are valid for the call,
    // and a list's `len` items are readable at its pointer.
    unsafe {
        let figures = &mut *ctx.cast::<Vec<(String, Figure)>>();
        let v = &*value;
        let list = |p: *const i64| if p.is_null() { Vec::new() } else { std::slice::from_raw_parts(p, v.len).to_vec() };
        let figure = match v.kind {
            abi::metric_kind::INT => Figure::Int(v.int),
            abi::metric_kind::FLOAT => Figure::Float(v.float),
            abi::metric_kind::INTS => Figure::Ints(list(v.ints)),
            abi::metric_kind::FLOATS => {
                Figure::Floats(if v.floats.is_null() { Vec::new() } else { std::slice::from_raw_parts(v.floats, v.len).to_vec() })
            }
            _ => Figure::None,
        };
        figures.push((name.to_text(), figure));
    }
}

/// Asks the module (`abi::MetricsFn`); `None` when it answers Python's None.
fn query_metrics(query: c_int) -> Option<Vec<(String, Figure)>> {
    let ask = super::settings::get().metrics;
    let mut figures: Vec<(String, Figure)> = Vec::new();
    // SAFETY: the module's function with our sink and the Vec it fills; it takes short locks
    // no thread holds while waiting for the GIL, and never blocks on the network.
    let answered = unsafe { ask(query, collect_figure, (&mut figures as *mut Vec<(String, Figure)>).cast()) };
    (answered == 1).then_some(figures)
}

fn figure_object(figure: &Figure) -> PyResult<PyObj> {
    match figure {
        Figure::None => Ok(py::none()),
        Figure::Int(v) => py::int(*v),
        Figure::Float(v) => float(*v),
        Figure::Ints(values) => {
            let list = new_list()?;
            for v in values {
                append(&list, &py::int(*v)?)?;
            }
            Ok(list)
        }
        Figure::Floats(values) => {
            let list = new_list()?;
            for v in values {
                append(&list, &float(*v)?)?;
            }
            Ok(list)
        }
    }
}

/// Puts `figures` into `d`: mod_wsgi 6.1's `threads` list of dicts comes as two parallel
/// lists, `threads.thread_id` and `threads.request_count`.
fn add_figures(d: &PyObj, figures: &[(String, Figure)]) -> PyResult<()> {
    let mut ids: &[i64] = &[];
    let mut counts: &[i64] = &[];
    for (name, figure) in figures {
        match (name.as_str(), figure) {
            ("threads.thread_id", Figure::Ints(v)) => ids = v,
            ("threads.request_count", Figure::Ints(v)) => counts = v,
            _ => py::dict_set(d, name, &figure_object(figure)?)?,
        }
    }
    if figures.iter().any(|(name, _)| name == "threads.thread_id") {
        let threads = new_list()?;
        for (id, count) in ids.iter().zip(counts) {
            let t = py::dict()?;
            py::dict_set(&t, "thread_id", &py::int(*id)?)?;
            py::dict_set(&t, "request_count", &py::int(*count)?)?;
            append(&threads, &t)?;
        }
        py::dict_set(d, "threads", &threads)?;
    }
    Ok(())
}

/// `GROUP` 0x1f `KEY` figures as a dict of dicts.
fn nested_figures(figures: &[(String, Figure)]) -> PyResult<PyObj> {
    let outer = py::dict()?;
    let mut inner: Vec<(&str, PyObj)> = Vec::new();
    for (name, figure) in figures {
        let Some((group, key)) = name.rsplit_once('\u{1f}') else { continue };
        let d = match inner.iter().find(|(g, _)| *g == group) {
            Some((_, d)) => d,
            None => {
                let d = py::dict()?;
                py::dict_set(&outer, group, &d)?;
                inner.push((group, d));
                &inner.last().expect("just pushed").1
            }
        };
        py::dict_set(d, key, &figure_object(figure)?)?;
    }
    Ok(outer)
}

unsafe extern "C" fn request_metrics(_slf: *mut ffi::PyObject, _args: *mut ffi::PyObject) -> *mut ffi::PyObject {
    python_trampoline(|| -> PyResult<PyObj> {
        let Some(figures) = query_metrics(abi::metrics_query::REQUEST) else { return Ok(py::none()) };
        let d = py::dict()?;
        add_figures(&d, &figures)?;
        Ok(d)
    })
}

unsafe extern "C" fn start_recording_metrics(_slf: *mut ffi::PyObject, _args: *mut ffi::PyObject) -> *mut ffi::PyObject {
    python_trampoline(|| -> PyResult<PyObj> {
        query_metrics(abi::metrics_query::START_RECORDING);
        Ok(py::none())
    })
}

/// The error-log writer for the current interpreter.
pub fn log_function() -> PyResult<PyObj> {
    function(&LOG)
}

unsafe extern "C" fn log(_slf: *mut ffi::PyObject, args: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let write = || -> PyResult<PyObj> {
        // SAFETY: args is the call's tuple; items are borrowed then re-owned.
        let (level, line) = unsafe {
            if ffi::PyTuple_Size(args) != 2 {
                return Err(py::raise(ffi::PyExc_TypeError, "log() takes a level and a line"));
            }
            (PyObj::from_borrowed(ffi::PyTuple_GetItem(args, 0))?, PyObj::from_borrowed(ffi::PyTuple_GetItem(args, 1))?)
        };
        // SAFETY: live object; -1 with an exception means not an int.
        let level = unsafe { ffi::PyLong_AsLong(level.as_ptr()) };
        // SAFETY: checks the exception PyLong_AsLong may have set.
        if level == -1 && unsafe { !ffi::PyErr_Occurred().is_null() } {
            return Err(py::PyErrSet);
        }
        // A line of the streams' binary layer (bytes), or text.
        let text = match py::as_bytes(&line) {
            Some(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            None => py::utf8(&line).unwrap_or_else(|| line.to_text()),
        };
        // SAFETY: a function Python called: this thread holds the GIL of the current state.
        unsafe { crate::gil::outside_from_python(|| super::exchange::log_current(level as i32, &text)) };
        Ok(py::none())
    };
    python_trampoline(write)
}

unsafe extern "C" fn process_metrics(_slf: *mut ffi::PyObject, _args: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let build = || -> PyResult<PyObj> {
        let m = scheduler::metrics();
        let d = py::dict()?;
        py::dict_set(&d, "pid", &py::int(std::process::id() as i64)?)?;
        py::dict_set(&d, "python_concurrency_mode", &py::text(m.mode)?)?;
        py::dict_set(&d, "python_concurrency", &py::int(m.counts.limit as i64)?)?;
        py::dict_set(&d, "python_active", &py::int(m.counts.active as i64)?)?;
        py::dict_set(&d, "python_queued", &py::int(m.counts.queued as i64)?)?;
        py::dict_set(&d, "python_peak_active", &py::int(m.counts.peak_active as i64)?)?;
        py::dict_set(&d, "python_peak_queued", &py::int(m.counts.peak_queued as i64)?)?;
        // The gates of own GILs (WSGIPythonConcurrency applies to each GIL), one per
        // interpreter: a group's replicas each have one.
        let gates = py::dict()?;
        for group in super::group::all() {
            if let Some(gate) = group.gate {
                let c = gate.counts();
                let g = py::dict()?;
                py::dict_set(&g, "python_concurrency", &py::int(c.limit as i64)?)?;
                py::dict_set(&g, "python_active", &py::int(c.active as i64)?)?;
                py::dict_set(&g, "python_queued", &py::int(c.queued as i64)?)?;
                py::dict_set(&g, "python_peak_active", &py::int(c.peak_active as i64)?)?;
                py::dict_set(&g, "python_peak_queued", &py::int(c.peak_queued as i64)?)?;
                py::dict_set(&gates, &format!("{}#{}", group.name, group.replica + 1), &g)?;
            }
        }
        py::dict_set(&d, "own_gil_gates", &gates)?;
        // Thread states per application group ('' is %{GLOBAL}), a group's replicas summed.
        let counts = crate::gil::thread_state_counts();
        let groups = super::group::all();
        let mut per_group: Vec<(&str, usize)> = Vec::new();
        for group in &groups {
            let n = counts.get(group.index.0).copied().unwrap_or(0);
            match per_group.iter_mut().find(|(name, _)| *name == group.name) {
                Some((_, total)) => *total += n,
                None => per_group.push((&group.name, n)),
            }
        }
        let states = py::dict()?;
        for (name, n) in per_group {
            py::dict_set(&states, name, &py::int(n as i64)?)?;
        }
        py::dict_set(&d, "thread_states", &states)?;
        py::dict_set(&d, "interpreters", &py::int(groups.len() as i64)?)?;
        // Ours: each application group's requests as the status page has them.
        if let Some(figures) = query_metrics(abi::metrics_query::GROUPS) {
            py::dict_set(&d, "application_groups", &nested_figures(&figures)?)?;
        }
        // mod_wsgi 6.1's keys, while requests are recorded (start_recording_metrics(), not
        // while telemetry takes them).
        if let Some(figures) = query_metrics(abi::metrics_query::PROCESS) {
            add_figures(&d, &figures)?;
        }
        Ok(d)
    };
    python_trampoline(build)
}

/// One worker slot, owned.
struct Worker {
    record: abi::ScoreWorker,
    client: Vec<u8>,
    request: Vec<u8>,
    vhost: Vec<u8>,
}

/// The scoreboard as the module handed it over, copied before any Python object is made.
struct Board {
    server_limit: c_int,
    thread_limit: c_int,
    running_generation: c_int,
    restart_time_us: i64,
    processes: Vec<abi::ScoreProcess>,
    workers: Vec<Worker>,
}

/// [`abi::ScoreboardSink`]: copies the module's records into the [`Board`] behind `ctx`.
unsafe extern "C" fn copy_board(ctx: *mut c_void, board: *const abi::Scoreboard) {
    super::trampoline::trampoline("server metrics", (), || {
        // SAFETY: ctx is the Option<Board> passed below; board is valid for this call, its
        // arrays of the lengths it gives (or null when empty).
        let (out, b) = unsafe { (&mut *ctx.cast::<Option<Board>>(), &*board) };
        let processes = if b.processes_len == 0 || b.processes.is_null() {
            Vec::new()
        } else {
            // SAFETY: as above.
            unsafe { std::slice::from_raw_parts(b.processes, b.processes_len) }.to_vec()
        };
        let workers: &[abi::ScoreWorker] = if b.workers_len == 0 || b.workers.is_null() {
            &[]
        } else {
            // SAFETY: as above.
            unsafe { std::slice::from_raw_parts(b.workers, b.workers_len) }
        };
        let workers = workers
            .iter()
            // SAFETY: the strings are valid for this call.
            .map(|w| unsafe {
                Worker {
                    record: *w,
                    client: w.client.as_slice().to_vec(),
                    request: w.request.as_slice().to_vec(),
                    vhost: w.vhost.as_slice().to_vec(),
                }
            })
            .collect();
        *out = Some(Board {
            server_limit: b.server_limit,
            thread_limit: b.thread_limit,
            running_generation: b.running_generation,
            restart_time_us: b.restart_time_us,
            processes,
            workers,
        });
    })
}

/// mod_wsgi's flag for each of Apache's worker states (`mod_status`'s letters), indexed by
/// the `SERVER_*` number: DEAD 0, STARTING 1, READY 2, BUSY_READ 3, BUSY_WRITE 4,
/// BUSY_KEEPALIVE 5, BUSY_LOG 6, BUSY_DNS 7, CLOSING 8, GRACEFUL 9, IDLE_KILL 10.
const STATUS_FLAGS: [&str; 11] = [".", "S", "_", "R", "W", "K", "L", "D", "C", "G", "I"];

fn float(value: f64) -> PyResult<PyObj> {
    // SAFETY: plain constructor.
    unsafe { PyObj::from_owned(ffi::PyFloat_FromDouble(value)) }
}

fn seconds(us: i64) -> PyResult<PyObj> {
    float(us as f64 / 1e6)
}

fn append(list: &PyObj, item: &PyObj) -> PyResult<()> {
    // SAFETY: live list and item; the list takes its own reference.
    py::check(unsafe { ffi::PyList_Append(list.as_ptr(), item.as_ptr()) })
}

fn new_list() -> PyResult<PyObj> {
    // SAFETY: plain constructor.
    unsafe { PyObj::from_owned(ffi::PyList_New(0)) }
}

/// `mod_wsgi.server_metrics()`: None unless the module reports the scoreboard for this
/// process; else mod_wsgi's dict, with its keys, in its order, and its types.
unsafe extern "C" fn server_metrics(_slf: *mut ffi::PyObject, _args: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let build = || -> PyResult<PyObj> {
        let read = super::settings::get().scoreboard;
        let mut board: Option<Board> = None;
        // SAFETY: the module's function, called with our sink and the Option it fills; it
        // only reads shared memory (no blocking), so the GIL may stay held.
        let reported = unsafe { read(copy_board, (&mut board as *mut Option<Board>).cast()) };
        let Some(board) = board.filter(|_| reported == 1) else { return Ok(py::none()) };
        let now_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0);
        let d = py::dict()?;
        py::dict_set(&d, "server_limit", &py::int(board.server_limit.into())?)?;
        py::dict_set(&d, "thread_limit", &py::int(board.thread_limit.into())?)?;
        py::dict_set(&d, "running_generation", &py::int(board.running_generation.into())?)?;
        py::dict_set(&d, "restart_time", &seconds(board.restart_time_us)?)?;
        py::dict_set(&d, "current_time", &seconds(now_us)?)?;
        // Whole seconds, truncated, as mod_wsgi.
        py::dict_set(&d, "running_time", &py::int(((now_us - board.restart_time_us) as f64 / 1e6) as i64)?)?;
        let processes = new_list()?;
        let per_process = board.thread_limit.max(0) as usize;
        for (i, process) in board.processes.iter().enumerate() {
            let p = py::dict()?;
            py::dict_set(&p, "process_num", &py::int(i as i64)?)?;
            py::dict_set(&p, "pid", &py::int(process.pid.into())?)?;
            py::dict_set(&p, "generation", &py::int(process.generation.into())?)?;
            py::dict_set(&p, "quiescing", &py::boolean(process.quiescing != 0))?;
            let workers = new_list()?;
            for worker in board.workers.iter().skip(i * per_process).take(per_process) {
                let r = &worker.record;
                let w = py::dict()?;
                py::dict_set(&w, "thread_num", &py::int(r.thread_num.into())?)?;
                py::dict_set(&w, "generation", &py::int(r.generation.into())?)?;
                let flag = usize::try_from(r.status).ok().and_then(|s| STATUS_FLAGS.get(s)).copied().unwrap_or("?");
                py::dict_set(&w, "status", &py::text(flag)?)?;
                py::dict_set(&w, "access_count", &py::int(r.access_count as i64)?)?;
                py::dict_set(&w, "bytes_served", &py::int(r.bytes_served as i64)?)?;
                py::dict_set(&w, "start_time", &seconds(r.start_time_us)?)?;
                py::dict_set(&w, "stop_time", &seconds(r.stop_time_us)?)?;
                py::dict_set(&w, "last_used", &seconds(r.last_used_us)?)?;
                py::dict_set(&w, "client", &py::latin1(&worker.client)?)?;
                py::dict_set(&w, "request", &py::latin1(&worker.request)?)?;
                py::dict_set(&w, "vhost", &py::latin1(&worker.vhost)?)?;
                append(&workers, &w)?;
            }
            py::dict_set(&p, "workers", &workers)?;
            append(&processes, &p)?;
        }
        py::dict_set(&d, "processes", &processes)?;
        Ok(d)
    };
    python_trampoline(build)
}
