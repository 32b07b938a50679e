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

use std::cell::RefCell;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, Ordering};

/// Groups counted per process; later ones share the last entry, named [`OTHER`].
const GROUPS: usize = 32;
/// The most bytes of a process group's name and of an application group's name kept.
const PROCESS_GROUP_MAX: usize = 40;
const GROUP_MAX: usize = 80;
const NAME_MAX: usize = PROCESS_GROUP_MAX + 1 + GROUP_MAX;
/// The name of the last entry once a process has more groups: not a valid key (a key always
/// holds the 0x1f separator), so no group can have it.
const OTHER: &[u8] = b"(other groups)";
/// The upper bounds (seconds) of the request-duration histogram, Prometheus's defaults.
pub const BOUNDS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[repr(C)]
struct Group {
    /// 0 free, 1 being named, 2 named (its name may be read).
    state: AtomicU32,
    name_len: AtomicU32,
    /// Atomics, not plain bytes: other processes read them while a slot may be re-used.
    name: [AtomicU8; NAME_MAX],
    requests: AtomicU64,
    statuses: [AtomicU64; 5],
    active: AtomicU64,
    duration_us: AtomicU64,
    wait_us: AtomicU64,
    buckets: [AtomicU64; BOUNDS.len()],
}

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

/// In a child as it exits (not from a signal handler): its slot is free again at once, rather
/// than when its pid is found gone (which a new process with the same pid would hide).
pub fn leave() {
    let slot = MINE.swap(std::ptr::null_mut(), Ordering::AcqRel);
    if !slot.is_null() {
        // SAFETY: this child's slot in the board, mapped for the life of the process.
        unsafe { (*slot).pid.store(0, Ordering::Release) };
    }
}

/// In a daemon right after its fork: the board is not its business (see the top). Unmapped
/// first thing after the fork, so that nothing can have been mapped into its range.
pub fn detach() {
    let old = BOARD.swap(std::ptr::null_mut(), Ordering::AcqRel);
    MINE.store(std::ptr::null_mut(), Ordering::Relaxed);
    let len = LEN.swap(0, Ordering::Relaxed) as usize;
    if !old.is_null() {
        // SAFETY: the mapping inherited from the parent, of the length it recorded; nothing
        // in this freshly forked process has used it.
        unsafe { libc::munmap(old.cast(), len * std::mem::size_of::<Slot>()) };
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
        // Taken as -me while it is cleared (readers skip pids <= 0), then published as me.
        if (pid == 0 || gone) && slot.pid.compare_exchange(pid, -me, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            for group in &slot.groups {
                group.state.store(0, Ordering::Relaxed);
                for counter in [&group.requests, &group.active, &group.duration_us, &group.wait_us].into_iter().chain(&group.statuses).chain(&group.buckets) {
                    counter.store(0, Ordering::Relaxed);
                }
            }
            slot.started.store(super::epoch_now() as u64, Ordering::Relaxed);
            slot.pid.store(me, Ordering::Release);
            MINE.store(slot as *const Slot as *mut Slot, Ordering::Release);
            return;
        }
    }
}

/// A group's name on the board: its process group's and its own, each cut to its share.
fn key(process_group: &str, group: &str) -> Vec<u8> {
    let pg = process_group.as_bytes();
    let g = group.as_bytes();
    let mut key = pg[..pg.len().min(PROCESS_GROUP_MAX)].to_vec();
    key.push(0x1f);
    key.extend_from_slice(&g[..g.len().min(GROUP_MAX)]);
    key
}

thread_local! {
    /// This thread's last groups and their entries (no allocation or scan per request).
    static CACHE: RefCell<Vec<(String, String, &'static Group)>> = const { RefCell::new(Vec::new()) };
}

/// A group's entry in this child's slot, for one request: counted when dropped, with the
/// status set by [`Entry::end`] (a 500 if the request never got that far).
pub struct Entry {
    group: &'static Group,
    status: i32,
}

/// Counts a request of `group` (in `process_group`, empty for embedded mode) as running.
pub fn begin(process_group: &str, group: &str) -> Option<Entry> {
    let slot = MINE.load(Ordering::Acquire);
    if slot.is_null() {
        return None;
    }
    // SAFETY: this child's slot in the board, mapped for the life of the process.
    let slot: &'static Slot = unsafe { &*slot };
    let cached = CACHE.with(|c| c.borrow().iter().find(|(p, g, _)| p == process_group && g == group).map(|(_, _, e)| *e));
    let entry = cached.unwrap_or_else(|| {
        let entry = find_or_add(slot, &key(process_group, group));
        CACHE.with(|c| {
            let mut c = c.borrow_mut();
            if c.len() == 8 {
                c.remove(0);
            }
            c.push((process_group.to_string(), group.to_string(), entry));
        });
        entry
    });
    entry.active.fetch_add(1, Ordering::Relaxed);
    Some(Entry { group: entry, status: 500 })
}

/// A copy of an entry's name (read after an Acquire load of state 2; another process may be
/// re-using the slot meanwhile: the copy is then only wrong, never unsafe).
fn name(group: &Group) -> Vec<u8> {
    let len = (group.name_len.load(Ordering::Relaxed) as usize).min(NAME_MAX);
    group.name[..len].iter().map(|b| b.load(Ordering::Relaxed)).collect()
}

fn find_or_add(slot: &'static Slot, key: &[u8]) -> &'static Group {
    let mut i = 0;
    while i < GROUPS {
        let group = &slot.groups[i];
        let mut state = group.state.load(Ordering::Acquire);
        // Being named by another thread of this child (a few instructions): it may be this
        // very group, which must not get a second entry.
        while state == 1 {
            std::hint::spin_loop();
            state = group.state.load(Ordering::Acquire);
        }
        if state == 2 {
            if name(group) == key {
                return group;
            }
            i += 1;
            continue;
        }
        // Free: name it, unless another thread took it first (then look at what it named).
        if group.state.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            continue;
        }
        let key = if i == GROUPS - 1 { OTHER } else { key };
        for (byte, &b) in group.name.iter().zip(key) {
            byte.store(b, Ordering::Relaxed);
        }
        group.name_len.store(key.len().min(NAME_MAX) as u32, Ordering::Relaxed);
        group.state.store(2, Ordering::Release);
        return group;
    }
    &slot.groups[GROUPS - 1]
}

impl Entry {
    /// The request ended with `status` after `seconds`, having waited `wait` for Python.
    pub fn end(mut self, status: i32, seconds: f64, wait: f64) {
        self.status = status;
        self.record(seconds, wait);
        std::mem::forget(self);
    }

    fn record(&self, seconds: f64, wait: f64) {
        let (g, status) = (self.group, self.status);
        g.active.fetch_sub(1, Ordering::Relaxed);
        g.requests.fetch_add(1, Ordering::Relaxed);
        let class = super::status_class(status);
        g.statuses[class].fetch_add(1, Ordering::Relaxed);
        g.duration_us.fetch_add((seconds.max(0.0) * 1e6) as u64, Ordering::Relaxed);
        g.wait_us.fetch_add((wait.max(0.0) * 1e6) as u64, Ordering::Relaxed);
        if let Some(i) = BOUNDS.iter().position(|&b| seconds <= b) {
            g.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Entry {
    /// A request that ended without [`Entry::end`] (a panic): counted as a 500.
    fn drop(&mut self) {
        self.record(0.0, 0.0);
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

impl Row {
    fn add(&mut self, other: &Row) {
        self.requests = self.requests.saturating_add(other.requests);
        for (a, b) in self.statuses.iter_mut().zip(other.statuses) {
            *a = a.saturating_add(b);
        }
        self.active = self.active.saturating_add(other.active);
        self.duration += other.duration;
        self.wait += other.wait;
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a = a.saturating_add(b);
        }
    }
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
            let key = String::from_utf8_lossy(&name(g)).into_owned();
            let (process_group, group) = key.split_once('\u{1f}').map_or(("*".to_string(), key.clone()), |(p, a)| (p.to_string(), a.to_string()));
            let mut buckets = [0u64; BOUNDS.len()];
            let mut running = 0u64;
            for (i, b) in g.buckets.iter().enumerate() {
                running = running.saturating_add(b.load(Ordering::Relaxed));
                buckets[i] = running;
            }
            // Counts only grow but are read one by one: the total is at least what the
            // buckets hold. A count past i64 (a write gone wrong) reads as 0.
            let sane = |v: u64| if v > i64::MAX as u64 { 0 } else { v };
            let row = Row {
                process_group,
                group,
                requests: sane(g.requests.load(Ordering::Relaxed)).max(running),
                statuses: std::array::from_fn(|i| sane(g.statuses[i].load(Ordering::Relaxed))),
                active: sane(g.active.load(Ordering::Relaxed)),
                duration: g.duration_us.load(Ordering::Relaxed) as f64 / 1e6,
                wait: g.wait_us.load(Ordering::Relaxed) as f64 / 1e6,
                buckets,
            };
            // One row per group: a second entry with the same name (a slot being re-used) is
            // added in.
            match rows.iter_mut().find(|r: &&mut Row| r.process_group == row.process_group && r.group == row.group) {
                Some(r) => r.add(&row),
                None => rows.push(row),
            }
        }
        processes.push(Process { pid, started: slot.started.load(Ordering::Relaxed), rows });
    }
    Some(processes)
}
