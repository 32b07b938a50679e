//! Apache's scoreboard for `mod_wsgi.server_metrics()`: whether this process may report it,
//! and the function the engine calls to read it ([`read_for_engine`], given to the engine in its `EngineConfig`).
//!
//! The scoreboard is shared memory that Apache's parent creates (core's `pre_mpm` hook, on a
//! non-graceful start) and every process it forks afterwards inherits: Apache's children and,
//! because the supervisor forks them only once it exists, the daemons. Python never reads it:
//! the module copies it into plain records here and hands them over, and the engine builds
//! the Python objects from its own copy.

use super::apache;
use super::trampoline::trampoline;
use crate::abi;
use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};

// The engine names each worker state with a table of this many flags (`builtins.rs`).
const _: () = assert!(apache::SERVER_NUM_STATUS == 11);

/// Whether `mod_wsgi.server_metrics()` reports in this process: `WSGIServerMetrics` in
/// Apache's parent (so in the children it forks), a daemon group's `server-metrics=` in a
/// daemon (set right after its fork). Off by default, as in mod_wsgi: the scoreboard shows
/// every site's clients and request lines.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Sets [`ENABLED`] for this process and the processes it forks from now on.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether this process has Apache's scoreboard (it does once core's `pre_mpm` created it,
/// and keeps it across restarts).
pub fn exists() -> bool {
    // SAFETY: reads one global of httpd.
    unsafe { apache::ap_exists_scoreboard_image() != 0 }
}

/// One worker slot, copied out of shared memory.
struct Worker {
    thread_num: c_int,
    generation: c_int,
    status: c_int,
    access_count: u64,
    bytes_served: u64,
    start_time: i64,
    stop_time: i64,
    last_used: i64,
    client: Vec<u8>,
    request: Vec<u8>,
    vhost: Vec<u8>,
}

/// The whole scoreboard, copied.
struct Copy {
    global: apache::global_score,
    processes: Vec<abi::ScoreProcess>,
    workers: Vec<Worker>,
}

/// A C string in a fixed-size array: up to its NUL, or all of it (another process may be
/// writing it as we read).
fn until_nul(field: &[c_char]) -> Vec<u8> {
    field.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect()
}

/// Copies every slot, empty ones included (mod_wsgi lists `server_limit` processes of
/// `thread_limit` workers each). Other processes keep writing meanwhile: each record is read
/// once, by a volatile copy, and only the copy is looked at.
fn read() -> Option<Copy> {
    if !exists() {
        return None;
    }
    // SAFETY: the scoreboard exists; its global record lives as long as the mapping.
    let global = unsafe { apache::ap_get_scoreboard_global() };
    if global.is_null() {
        return None;
    }
    // SAFETY: as above; a plain-data copy.
    let global = unsafe { std::ptr::read_volatile(global) };
    let (servers, threads) = (global.server_limit.max(0), global.thread_limit.max(0));
    let mut processes = Vec::with_capacity(servers as usize);
    let mut workers = Vec::with_capacity(servers as usize * threads as usize);
    for i in 0..servers {
        // SAFETY: i < server_limit, so Apache returns a slot of the mapping.
        let process = unsafe { apache::ap_get_scoreboard_process(i) };
        if process.is_null() {
            return None;
        }
        // SAFETY: as above.
        let process = unsafe { std::ptr::read_volatile(process) };
        processes.push(abi::ScoreProcess { pid: process.pid, generation: process.generation, quiescing: (process.quiescing != 0) as c_int });
        for j in 0..threads {
            // SAFETY: i < server_limit and j < thread_limit.
            let worker = unsafe { apache::ap_get_scoreboard_worker_from_indexes(i, j) };
            if worker.is_null() {
                return None;
            }
            // SAFETY: as above.
            let w = unsafe { std::ptr::read_volatile(worker) };
            workers.push(Worker {
                thread_num: w.thread_num,
                generation: w.generation,
                status: c_int::from(w.status),
                access_count: w.access_count as u64,
                bytes_served: w.bytes_served.max(0) as u64,
                start_time: w.start_time,
                stop_time: w.stop_time,
                last_used: w.last_used,
                client: until_nul(&w.client),
                request: until_nul(&w.request),
                vhost: until_nul(&w.vhost),
            });
        }
    }
    Some(Copy { global, processes, workers })
}

/// [`abi::ScoreboardFn`], given to the engine in its `EngineConfig`.
///
/// # Safety
/// `sink` must be an engine function that takes `ctx` and a record valid for its call.
pub unsafe extern "C" fn read_for_engine(sink: abi::ScoreboardSink, ctx: *mut c_void) -> c_int {
    trampoline("mod_wsgi.server_metrics()", 0, || {
        if !ENABLED.load(Ordering::Relaxed) {
            return 0;
        }
        let Some(copy) = read() else { return 0 };
        let workers: Vec<abi::ScoreWorker> = copy
            .workers
            .iter()
            .map(|w| abi::ScoreWorker {
                thread_num: w.thread_num,
                generation: w.generation,
                status: w.status,
                access_count: w.access_count,
                bytes_served: w.bytes_served,
                start_time_us: w.start_time,
                stop_time_us: w.stop_time,
                last_used_us: w.last_used,
                client: abi::Bytes::new(&w.client),
                request: abi::Bytes::new(&w.request),
                vhost: abi::Bytes::new(&w.vhost),
            })
            .collect();
        let board = abi::Scoreboard {
            server_limit: copy.global.server_limit,
            thread_limit: copy.global.thread_limit,
            running_generation: copy.global.running_generation,
            restart_time_us: copy.global.restart_time,
            processes: copy.processes.as_ptr(),
            processes_len: copy.processes.len(),
            workers: workers.as_ptr(),
            workers_len: workers.len(),
        };
        // SAFETY: the records borrow `copy` and `workers`, which outlive the call.
        unsafe { sink(ctx, &board) };
        1
    })
}
