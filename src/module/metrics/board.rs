//! The status board behind `SetHandler wsgi-status`: a small shared-memory segment that
//! Apache's parent maps in `post_config`, for each generation, before it forks the children,
//! so that every child of the generation sees every other's counts. A child takes a slot
//! (by its pid) as it starts and counts, per process group and application group, the
//! requests it handles: embedded ones, and daemon-mode ones it passes on (a daemon unmaps the
//! board right after its fork: the applications it runs, perhaps a customer's under the
//! customer's user, get no writable memory that Apache's children read).
//!
//! Everything in the segment is atomics and bytes published by them: a reader never trusts
//! more than what it checks (names are bounded copies, counts are only shown).

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering};

/// Groups counted per process; later ones share the last entry, named [`OTHER`].
const GROUPS: usize = 32;
const NAME_MAX: usize = 120;
const OTHER: &[u8] = b"\x1f(other groups)";
/// The upper bounds (seconds) of the request-duration histogram, Prometheus's defaults.
pub const BOUNDS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[repr(C)]
struct Group {
    /// 0 free, 1 being named, 2 named (its name may be read).
    state: AtomicU32,
    name_len: AtomicU32,
    name: UnsafeCell<[u8; NAME_MAX]>,
    requests: AtomicU64,
    statuses: [AtomicU64; 5],
    active: AtomicU64,
    duration_us: AtomicU64,
    wait_us: AtomicU64,
    buckets: [AtomicU64; BOUNDS.len()],
}

// SAFETY: `name` is written only by the thread that moved `state` from 0 to 1, before it
// publishes the entry (state 2, Release); it is read only after an Acquire load of 2.
unsafe impl Sync for Group {}

#[repr(C)]
struct Slot {
    pid: AtomicI32,
    started: AtomicU64,
    groups: [Group; GROUPS],
}

struct Board {
    slots: *mut Slot,
    len: usize,
}

/// The board of this process's generation (null: none, as in a daemon or `apache2 -X`).
static BOARD: AtomicPtr<Slot> = AtomicPtr::new(std::ptr::null_mut());
static LEN: AtomicU64 = AtomicU64::new(0);
/// This child's slot in it.
static MINE: AtomicPtr<Slot> = AtomicPtr::new(std::ptr::null_mut());

fn board() -> Option<Board> {
    let slots = BOARD.load(Ordering::Acquire);
    (!slots.is_null()).then(|| Board { slots, len: LEN.load(Ordering::Relaxed) as usize })
}

/// In the parent: maps a new board with room for `processes` (the MPM's hard limit), and
/// unmaps the previous generation's (its children keep their own mapping).
pub fn create(processes: usize) -> Result<(), String> {
    let len = processes.clamp(1, 20000);
    let bytes = len * std::mem::size_of::<Slot>();
    // SAFETY: an anonymous shared mapping of `bytes`, zero-filled by the kernel: all-zero is
    // a valid Slot (free slots, free groups, zero counts).
    let map = unsafe { libc::mmap(std::ptr::null_mut(), bytes, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1, 0) };
    if map == libc::MAP_FAILED {
        return Err(format!("cannot map the wsgi-status board ({bytes} bytes): {}", std::io::Error::last_os_error()));
    }
    let old = BOARD.swap(map.cast(), Ordering::AcqRel);
    let old_len = LEN.swap(len as u64, Ordering::Relaxed) as usize;
    if !old.is_null() {
        // SAFETY: the previous mapping, made above with this length; nothing in the parent
        // refers to it any more.
        unsafe { libc::munmap(old.cast(), old_len * std::mem::size_of::<Slot>()) };
    }
    Ok(())
}

/// In a daemon right after its fork: the board is not its business (see the top).
pub fn detach() {
    let old = BOARD.swap(std::ptr::null_mut(), Ordering::AcqRel);
    MINE.store(std::ptr::null_mut(), Ordering::Relaxed);
    if !old.is_null() {
        // SAFETY: the mapping inherited from the parent, of the length it recorded; no thread
        // of this freshly forked process uses it.
        unsafe { libc::munmap(old.cast(), LEN.load(Ordering::Relaxed) as usize * std::mem::size_of::<Slot>()) };
    }
}

/// In a child as it starts: takes a free slot, or one whose process is gone, and clears it.
pub fn join() {
    let Some(b) = board() else { return };
    let me = std::process::id() as i32;
    for i in 0..b.len {
        // SAFETY: i < len: a slot of the mapping, which lives as long as the process.
        let slot = unsafe { &*b.slots.add(i) };
        let pid = slot.pid.load(Ordering::Acquire);
        // SAFETY: signal 0 only checks whether the process exists.
        let gone = pid != 0 && unsafe { libc::kill(pid, 0) } != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if (pid == 0 || gone) && slot.pid.compare_exchange(pid, me, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            for group in &slot.groups {
                group.state.store(0, Ordering::Relaxed);
                for counter in [&group.requests, &group.active, &group.duration_us, &group.wait_us].into_iter().chain(&group.statuses).chain(&group.buckets) {
                    counter.store(0, Ordering::Relaxed);
                }
            }
            slot.started.store(super::epoch_now() as u64, Ordering::Release);
            MINE.store(slot as *const Slot as *mut Slot, Ordering::Release);
            return;
        }
    }
}

fn key(process_group: &str, group: &str) -> Vec<u8> {
    let mut key = process_group.as_bytes().to_vec();
    key.push(0x1f);
    key.extend_from_slice(group.as_bytes());
    key.truncate(NAME_MAX);
    key
}

/// A group's entry in this child's slot, for one request.
pub struct Entry(&'static Group);

/// Counts a request of `group` (in `process_group`, empty for embedded mode) as running.
pub fn begin(process_group: &str, group: &str) -> Option<Entry> {
    let slot = MINE.load(Ordering::Acquire);
    if slot.is_null() {
        return None;
    }
    // SAFETY: this child's slot in the board, mapped for the life of the process.
    let slot: &'static Slot = unsafe { &*slot };
    let key = key(process_group, group);
    let entry = find_or_add(slot, &key);
    entry.active.fetch_add(1, Ordering::Relaxed);
    Some(Entry(entry))
}

fn name(group: &Group) -> &[u8] {
    let len = (group.name_len.load(Ordering::Relaxed) as usize).min(NAME_MAX);
    // SAFETY: called after an Acquire load of state 2: the name is written and stays so.
    unsafe { &(&*group.name.get())[..len] }
}

fn find_or_add(slot: &'static Slot, key: &[u8]) -> &'static Group {
    for (i, group) in slot.groups.iter().enumerate() {
        match group.state.load(Ordering::Acquire) {
            2 if name(group) == key => return group,
            2 => continue,
            // Being named by another thread of this child: it may be this very group, but a
            // second entry for it is only a split row, never a lost count.
            1 => continue,
            _ => {
                if group.state.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed).is_err() {
                    continue;
                }
                let key = if i == GROUPS - 1 { OTHER } else { key };
                let name = group.name.get().cast::<u8>();
                // SAFETY: this thread owns the entry (state 1) until it publishes it below;
                // the copy fits (key <= NAME_MAX).
                unsafe { std::ptr::copy_nonoverlapping(key.as_ptr(), name, key.len()) };
                group.name_len.store(key.len() as u32, Ordering::Relaxed);
                group.state.store(2, Ordering::Release);
                return group;
            }
        }
    }
    &slot.groups[GROUPS - 1]
}

impl Entry {
    /// The request ended with `status` after `seconds`, having waited `wait` for Python.
    pub fn end(self, status: i32, seconds: f64, wait: f64) {
        let g = self.0;
        g.active.fetch_sub(1, Ordering::Relaxed);
        g.requests.fetch_add(1, Ordering::Relaxed);
        let class = match status {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            _ => 4,
        };
        g.statuses[class].fetch_add(1, Ordering::Relaxed);
        g.duration_us.fetch_add((seconds.max(0.0) * 1e6) as u64, Ordering::Relaxed);
        g.wait_us.fetch_add((wait.max(0.0) * 1e6) as u64, Ordering::Relaxed);
        if let Some(i) = BOUNDS.iter().position(|&b| seconds <= b) {
            g.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One group's counts in one process, as read.
pub struct Row {
    pub process_group: String,
    pub group: String,
    pub requests: u64,
    pub statuses: [u64; 5],
    pub active: u64,
    pub duration: f64,
    pub wait: f64,
    /// Requests at or under each of [`BOUNDS`] (cumulative, as Prometheus has them).
    pub buckets: [u64; BOUNDS.len()],
}

/// One process's rows.
pub struct Process {
    pub pid: i32,
    pub started: u64,
    pub rows: Vec<Row>,
}

/// Everything on the board now: the live processes of this generation.
pub fn read() -> Option<Vec<Process>> {
    let b = board()?;
    let mut processes = Vec::new();
    for i in 0..b.len {
        // SAFETY: i < len: a slot of the mapping.
        let slot = unsafe { &*b.slots.add(i) };
        let pid = slot.pid.load(Ordering::Acquire);
        // SAFETY: signal 0 only checks whether the process exists.
        if pid <= 0 || (unsafe { libc::kill(pid, 0) } != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)) {
            continue;
        }
        let mut rows = Vec::new();
        for g in &slot.groups {
            if g.state.load(Ordering::Acquire) != 2 {
                continue;
            }
            let key = String::from_utf8_lossy(name(g)).into_owned();
            let (process_group, group) = key.split_once('\u{1f}').map_or((String::new(), key.clone()), |(p, a)| (p.to_string(), a.to_string()));
            let mut buckets = [0; BOUNDS.len()];
            let mut running = 0;
            for (i, b) in g.buckets.iter().enumerate() {
                running += b.load(Ordering::Relaxed);
                buckets[i] = running;
            }
            rows.push(Row {
                process_group,
                group,
                requests: g.requests.load(Ordering::Relaxed),
                statuses: std::array::from_fn(|i| g.statuses[i].load(Ordering::Relaxed)),
                active: g.active.load(Ordering::Relaxed),
                duration: g.duration_us.load(Ordering::Relaxed) as f64 / 1e6,
                wait: g.wait_us.load(Ordering::Relaxed) as f64 / 1e6,
                buckets,
            });
        }
        processes.push(Process { pid, started: slot.started.load(Ordering::Relaxed), rows });
    }
    Some(processes)
}
