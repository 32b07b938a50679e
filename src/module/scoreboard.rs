//! Apache's scoreboard for `mod_wsgi.server_metrics()`: whether this process may report it,
//! and the function the engine calls to read it ([`read_for_engine`], given to the engine in its `EngineConfig`).
//!
//! The scoreboard is shared memory that Apache's parent creates (core's `pre_mpm` hook, on a
//! non-graceful start) and every process it forks afterwards inherits: Apache's children and,
//! because the supervisor forks them only once it exists, the daemons. Python never reads it:
//! the module copies it into plain records here and hands them over, and the engine builds
//! the Python objects from its own copy.
//!
//! A daemon runs an application, often a customer's under the customer's user, that has no
//! business with Apache's scoreboard: inherited writable, it could write pids into process
//! slots that Apache's parent (root) later signals, and read every site's clients and request
//! lines. So a daemon unmaps it right after its fork, or with `server-metrics=On` keeps it
//! read-only ([`confine_in_daemon`]); mod_wsgi leaves it mapped writable.

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
/// and keeps it across restarts; a daemon without `server-metrics=On` has none, see
/// [`confine_in_daemon`]).
pub fn exists() -> bool {
    // SAFETY: reads one global of httpd.
    unsafe { apache::ap_exists_scoreboard_image() != 0 }
}

/// What [`confine_in_daemon`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Confined {
    /// There was no scoreboard to confine.
    Absent,
    /// The scoreboard was the process's own memory (Apache's one-process mode, `-X`), which
    /// nothing else sees: left as it is, and hidden unless it is to be read.
    Private,
    /// The shared mapping `start..end` was unmapped, or made read-only and sealed.
    Shared { start: usize, end: usize },
    /// It was to be read (`server-metrics=On`) but could not be sealed read-only, for the
    /// reason given: it was unmapped instead, so this daemon has no metrics.
    Unsealable(String),
}

/// In a daemon right after its fork (single-threaded, before it drops privileges or loads
/// Python): unmaps the scoreboard's shared memory and makes this process see no scoreboard,
/// or, with `readable` (the group's `server-metrics=On`), makes it read-only, so that any
/// write faults. An error says why neither could be done, and the caller must not go on to
/// run the application (fail safe).
///
/// The shared memory starts at `ap_scoreboard_image->global` and holds
/// `ap_calc_scoreboard_size()` bytes (APR's allocator puts a small header before it); the
/// region changed is the one mapping of `/proc/self/maps` that holds them, which must be
/// shared and hold nothing else (it starts and ends within a page of the scoreboard).
pub fn confine_in_daemon(readable: bool) -> Result<Confined, String> {
    // SAFETY: reads one global of httpd; this process is single-threaded.
    let image = unsafe { std::ptr::addr_of!(apache::ap_scoreboard_image).read() };
    if image.is_null() {
        return Ok(Confined::Absent);
    }
    // SAFETY: image is Apache's scoreboard record, process-local memory set up with it.
    let global = unsafe { (*image).global };
    if global.is_null() {
        return Err("Apache's scoreboard record has no shared memory address".into());
    }
    // SAFETY: asks the MPM for its hard limits (what the scoreboard was sized with; they do
    // not change across restarts) and records them in scoreboard.c's own variables.
    let calculated = unsafe { apache::ap_calc_scoreboard_size() };
    // SAFETY: global is the scoreboard's first record, mapped (readable) in this process.
    let limits = unsafe { std::ptr::read_volatile(global) };
    let len = usize::try_from(calculated).unwrap_or(0).max(layout_size(limits.server_limit, limits.thread_limit));
    let (begin, page) = (global as usize, page_size());
    let maps = read_maps("Apache's scoreboard")?;
    let (start, end) = match find_region(&maps, begin, len, page)? {
        Region::Private => {
            if !readable {
                hide();
            }
            return Ok(Confined::Private);
        }
        Region::Shared { start, end } => (start, end),
    };
    let mut readable = readable;
    let mut unsealed = None;
    if readable {
        // SAFETY: start..end is exactly one mapping of this process, the scoreboard's, which
        // nothing in this process writes (a daemon runs no MPM code).
        if unsafe { libc::mprotect(start as *mut c_void, end - start, libc::PROT_READ) } != 0 {
            return Err(format!("cannot make Apache's scoreboard ({start:#x}-{end:#x}) read-only: {}", std::io::Error::last_os_error()));
        }
        // mprotect alone can be undone by the application (the memory is shared and was
        // mapped writable); sealed, it cannot. Without a kernel that seals (Linux 6.10+),
        // the scoreboard is unmapped instead: no metrics, never a writable scoreboard.
        if let Err(reason) = seal(start, end) {
            unsealed = Some(reason);
            readable = false;
        }
    }
    if !readable {
        hide();
        // SAFETY: as above; nothing refers to it any more (the scoreboard pointer is NULL).
        if unsafe { libc::munmap(start as *mut c_void, end - start) } != 0 {
            return Err(format!("cannot unmap Apache's scoreboard ({start:#x}-{end:#x}): {}", std::io::Error::last_os_error()));
        }
    }
    // Checked, not assumed: what the kernel now says of the range.
    let now = read_maps("Apache's scoreboard")?;
    let left: Vec<Mapping> = mappings(&now).filter(|m| m.start < end && m.end > start).collect();
    let ok = if readable { !left.is_empty() && left.iter().all(|m| m.perms == *b"r--s") } else { left.is_empty() };
    if !ok {
        return Err(format!(
            "Apache's scoreboard ({start:#x}-{end:#x}) is still {} after {}",
            if left.is_empty() {
                "unmapped".to_string()
            } else {
                left.iter().map(|m| String::from_utf8_lossy(&m.perms).into_owned()).collect::<Vec<_>>().join(",")
            },
            if readable { "mprotect" } else { "munmap" }
        ));
    }
    Ok(match unsealed {
        Some(reason) => Confined::Unsealable(reason),
        None => Confined::Shared { start, end },
    })
}

/// The `mseal` system call's number (the same in every Linux architecture's table).
const SYS_MSEAL: libc::c_long = 462;

/// Seals `start..end` (already read-only): no later `mprotect`, `munmap` or `mremap` of it
/// succeeds. Checked, not assumed: making it writable again must now fail.
fn seal(start: usize, end: usize) -> Result<(), String> {
    // SAFETY: a plain system call on a range of this process's own mapping; no memory is
    // read or written.
    if unsafe { libc::syscall(SYS_MSEAL, start, end - start, 0usize) } != 0 {
        return Err(format!("the kernel cannot seal it read-only ({}; mseal needs Linux 6.10)", std::io::Error::last_os_error()));
    }
    // SAFETY: as above; on success this would make the range writable, which the check
    // below undoes at once (single-threaded: nothing runs meanwhile).
    if unsafe { libc::mprotect(start as *mut c_void, end - start, libc::PROT_READ | libc::PROT_WRITE) } == 0 {
        // SAFETY: as above.
        unsafe { libc::mprotect(start as *mut c_void, end - start, libc::PROT_READ) };
        return Err("sealing it read-only did not hold".into());
    }
    Ok(())
}

/// This process sees no scoreboard from now on: `ap_exists_scoreboard_image()` is false, so
/// [`exists`] and [`read`] say so (and `mod_wsgi.server_metrics()` is `None`).
fn hide() {
    // SAFETY: httpd's global, written in a single-threaded process; its record stays
    // allocated (leaked), as nothing else may still point into it.
    unsafe { std::ptr::addr_of_mut!(apache::ap_scoreboard_image).write(std::ptr::null_mut()) };
}

/// The scoreboard's size from its own limits, as `ap_calc_scoreboard_size` computes it (each
/// part rounded up to APR's default alignment), in case the MPM's answer were smaller.
fn layout_size(server_limit: c_int, thread_limit: c_int) -> usize {
    let align = |n: usize| (n + 7) & !7;
    let (servers, threads) = (server_limit.max(0) as usize, thread_limit.max(0) as usize);
    align(std::mem::size_of::<apache::global_score>())
        + align(std::mem::size_of::<apache::process_score>()) * servers
        + align(std::mem::size_of::<apache::worker_score>()) * servers * threads
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

/// This process's `/proc/self/maps`, read to find `what`.
pub(crate) fn read_maps(what: &str) -> Result<String, String> {
    read_proc_self("maps", what)
}

/// This process's `/proc/self/FILE` (`maps`, `smaps`), read to find `what`.
pub(crate) fn read_proc_self(file: &str, what: &str) -> Result<String, String> {
    std::fs::read_to_string(format!("/proc/self/{file}")).map_err(|e| format!("cannot read /proc/self/{file} to find {what}: {e}"))
}

/// One line of `/proc/self/maps` (also read by `daemon/inherited.rs`, for the other shared
/// memory a daemon must not keep).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mapping<'a> {
    pub start: usize,
    pub end: usize,
    /// `rw-s`, `r--p`...
    pub perms: [u8; 4],
    /// What backs it: a path (`/dev/zero (deleted)`, `/dev/shm/...`), `SYSV0000abcd (deleted)`,
    /// `[heap]`..., empty for anonymous memory.
    pub name: &'a str,
}

/// The mappings of `maps`, a `/proc/self/maps` text; lines that do not parse are skipped.
pub(crate) fn mappings(maps: &str) -> impl Iterator<Item = Mapping<'_>> + '_ {
    maps.lines().filter_map(|line| {
        // start-end perms offset dev inode, then the name: padded, and it may hold spaces.
        let mut rest = line;
        let mut field = || {
            let trimmed = rest.trim_start();
            let (field, after) = trimmed.split_at(trimmed.find(|c: char| c.is_ascii_whitespace()).unwrap_or(trimmed.len()));
            rest = after;
            Some(field).filter(|f| !f.is_empty())
        };
        let (start, end) = field()?.split_once('-')?;
        let perms: [u8; 4] = field()?.as_bytes().try_into().ok()?;
        let (_offset, _device, _inode) = (field()?, field()?, field()?);
        Some(Mapping { start: usize::from_str_radix(start, 16).ok()?, end: usize::from_str_radix(end, 16).ok()?, perms, name: rest.trim() })
    })
}

#[derive(Debug, PartialEq, Eq)]
enum Region {
    /// Private memory of this process (a copy-on-write copy after the fork).
    Private,
    /// The shared mapping, page-aligned bounds, that holds the scoreboard and nothing else.
    Shared { start: usize, end: usize },
}

/// The mapping of `maps` that holds the `len` bytes at `begin`.
fn find_region(maps: &str, begin: usize, len: usize, page: usize) -> Result<Region, String> {
    let what = format!("Apache's scoreboard ({begin:#x}, {len} bytes)");
    let end = begin.checked_add(len).ok_or_else(|| format!("{what} ends past the address space"))?;
    let mapping = mappings(maps).find(|m| m.start <= begin && begin < m.end).ok_or_else(|| format!("{what} is in no mapping of /proc/self/maps"))?;
    match mapping.perms[3] {
        b'p' => return Ok(Region::Private),
        b's' => {}
        _ => return Err(format!("{what} is in a mapping of unknown kind: {}", String::from_utf8_lossy(&mapping.perms))),
    }
    if end > mapping.end {
        return Err(format!("{what} does not fit in its mapping {:#x}-{:#x}", mapping.start, mapping.end));
    }
    if begin - mapping.start >= page || mapping.end - end >= page || mapping.start % page != 0 || mapping.end % page != 0 {
        return Err(format!("{what} is not alone in its mapping {:#x}-{:#x}", mapping.start, mapping.end));
    }
    Ok(Region::Shared { start: mapping.start, end: mapping.end })
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

#[cfg(test)]
mod tests {
    use super::{find_region, mappings, Mapping, Region};

    const MAPS: &str = "\
5581c1a00000-5581c1a2a000 r--p 00000000 08:01 1234       /usr/sbin/apache2
5581c2b00000-5581c2d00000 rw-p 00000000 00:00 0          [heap]
7f1c2a000000-7f1c2a005000 rw-s 00000000 00:01 5678       /dev/zero (deleted)
7f1c2a005000-7f1c2a006000 rw-s 00000000 00:01 5679       /dev/zero (deleted)
7f1c2b000000-7f1c2b100000 rw-s 00000000 00:01 5680       /dev/zero (deleted)
";

    #[test]
    fn the_shared_mapping_that_holds_only_the_scoreboard() {
        // APR's 8-byte header, then the scoreboard, rounded up to the page.
        let found = find_region(MAPS, 0x7f1c2a000008, 0x4800, 4096);
        assert_eq!(found, Ok(Region::Shared { start: 0x7f1c2a000000, end: 0x7f1c2a005000 }));
    }

    #[test]
    fn private_memory_is_a_copy() {
        assert_eq!(find_region(MAPS, 0x5581c2b00100, 0x4800, 4096), Ok(Region::Private));
    }

    #[test]
    fn anything_else_is_an_error() {
        // Not mapped at all.
        assert!(find_region(MAPS, 0x1000, 16, 4096).unwrap_err().contains("in no mapping"));
        // Running into the next mapping.
        assert!(find_region(MAPS, 0x7f1c2a000008, 0x5000, 4096).unwrap_err().contains("does not fit"));
        // A mapping much larger than the scoreboard holds something else too.
        assert!(find_region(MAPS, 0x7f1c2b000008, 0x4800, 4096).unwrap_err().contains("not alone"));
        assert!(find_region(MAPS, 0x7f1c2b0f0000, 0x4800, 4096).unwrap_err().contains("not alone"));
        assert!(find_region(MAPS, usize::MAX - 4, 16, 4096).unwrap_err().contains("past the address space"));
    }

    #[test]
    fn each_line_with_its_name() {
        let found: Vec<Mapping> = mappings(MAPS).collect();
        assert_eq!(found.len(), 5);
        assert_eq!(found[0], Mapping { start: 0x5581c1a00000, end: 0x5581c1a2a000, perms: *b"r--p", name: "/usr/sbin/apache2" });
        assert_eq!(found[2].name, "/dev/zero (deleted)");
        assert_eq!(found[4].perms, *b"rw-s");
        let anonymous = "7f1c2a000000-7f1c2a005000 rw-s 00000000 00:01 5678 \n7f1c2a005000-7f1c2a006000 rw-p 00000000 00:00 0\n";
        let found: Vec<Mapping> = mappings(anonymous).collect();
        assert_eq!(found.iter().map(|m| (m.perms, m.name)).collect::<Vec<_>>(), [(*b"rw-s", ""), (*b"rw-p", "")]);
        // Lines cut short are skipped, not misread.
        assert_eq!(mappings("7f1c2a000000-7f1c2a005000 rw-s 00000000\ngarbage\n").count(), 0);
    }
}
