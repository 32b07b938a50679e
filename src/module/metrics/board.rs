//! The status board behind `SetHandler wsgi-status`: small shared-memory segments that
//! Apache's parent maps in `post_config`, for each generation, before it forks, so that every
//! child of the generation sees every other process's counts.
//!
//! - The children's board: a child takes a slot (by its pid) as it starts and counts, per
//!   process group and application group, the requests it handles: embedded ones, which its
//!   Python ran, and daemon-mode ones it passed on (shown apart, as "proxied").
//! - One board per daemon process group, which only that group's daemons write: each counts
//!   the requests its Python ran, with its own wait for Python and its interpreters' gauges.
//!   A daemon keeps its own group's board and unmaps the children's and every other group's
//!   right after its fork: the applications it runs, perhaps a customer's under the
//!   customer's user, can write nothing that another site's figures come from.
//!
//! Everything in a segment is atomics and bytes published by them: a reader never trusts more
//! than what it checks (names are bounded copies, counts are only shown, a pid is only given
//! to `kill(pid, 0)`), since a daemon's board is written by code the administrator may not
//! trust.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

/// Entries per process: the first `GROUPS - 2` are named by the first groups a process
/// counts; the last two take the requests of any later group, those run here
/// ([`OVERFLOW_RUN`]) and those an Apache child passed on ([`OVERFLOW_PROXIED`]), so that
/// the two kinds never mix.
const GROUPS: usize = 32;
const OVERFLOW_RUN: usize = GROUPS - 1;
const OVERFLOW_PROXIED: usize = GROUPS - 2;
/// The most bytes of a process group's name and of an application group's name kept (the
/// rest is cut: the page and `application_groups` show the first bytes of a longer name).
pub const PROCESS_GROUP_MAX: usize = 64;
pub const GROUP_MAX: usize = 160;
const NAME_MAX: usize = PROCESS_GROUP_MAX + 1 + GROUP_MAX;
/// The application group of the overflow entries, and the process group of the proxied one.
const OTHER: &str = "(other groups)";
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
    /// Gauges the engine reports with each request (see [`Entry::gauges`]), per replica of
    /// the group (later replicas share the last): its interpreter's thread states, and the
    /// objects its garbage collector tracks (-1: not known). Stored, not added; the reader
    /// adds the replicas up.
    thread_states: [AtomicU64; REPLICAS],
    objects: [AtomicI64; REPLICAS],
}

/// Replicas of a group whose gauges are kept apart: as many as a group may have.
const REPLICAS: usize = crate::abi::replicas::MAX as usize;

#[repr(C)]
struct Slot {
    pid: AtomicI32,
    started: AtomicU64,
    groups: [Group; GROUPS],
}

/// A mapped board of `len` slots.
#[derive(Clone, Copy)]
struct Region {
    slots: *mut Slot,
    len: usize,
}

// SAFETY: a Region is the address of shared memory made of atomics, mapped for as long as the
// process keeps it in one of the statics below; any thread may read and update it.
unsafe impl Send for Region {}

impl Region {
    /// Maps `len` zeroed slots (all-zero is a valid Slot: free slots, free groups, zero counts).
    fn map(len: usize) -> Result<Region, String> {
        let len = len.clamp(1, 20000);
        let bytes = len * std::mem::size_of::<Slot>();
        // SAFETY: an anonymous shared mapping of `bytes`, zero-filled by the kernel.
        let map =
            unsafe { libc::mmap(std::ptr::null_mut(), bytes, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1, 0) };
        if map == libc::MAP_FAILED {
            return Err(format!("cannot map the wsgi-status board ({bytes} bytes): {}", std::io::Error::last_os_error()));
        }
        Ok(Region { slots: map.cast(), len })
    }

    /// Unmaps it; nothing may use it afterwards (the callers drop it from their static first).
    fn unmap(self) {
        // SAFETY: a mapping made by `map` with this length (or inherited from the parent
        // that made it), no longer reachable from the statics.
        unsafe { libc::munmap(self.slots.cast(), self.len * std::mem::size_of::<Slot>()) };
    }

    /// The address range it covers, whole pages (as the kernel lists the mapping).
    fn range(&self) -> (usize, usize) {
        // SAFETY: sysconf has no preconditions.
        let page = (unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).max(1) as usize;
        let bytes = (self.len * std::mem::size_of::<Slot>()).div_ceil(page) * page;
        (self.slots as usize, self.slots as usize + bytes)
    }

    /// Its slots. `'static` rests on who unmaps what: the parent unmaps boards (`create`,
    /// `create_daemon_boards`) single-threaded and never reads them; a daemon unmaps the
    /// ones it does not keep in `enter_daemon`, single-threaded, before anything reads them;
    /// a child or daemon never unmaps the boards it keeps, which are those in the statics.
    fn slots(&self) -> impl Iterator<Item = &'static Slot> + '_ {
        // SAFETY: i < len: a slot of the mapping, mapped for as long as it is reachable from
        // the statics (see above).
        (0..self.len).map(|i| unsafe { &*self.slots.add(i) })
    }

    /// Slot `i`, if there is one.
    fn slot(&self, i: usize) -> Option<&'static Slot> {
        self.slots().nth(i)
    }
}

/// The children's board of this process's generation (null: none, as in a daemon or `apache2 -X`).
static BOARD: AtomicPtr<Slot> = AtomicPtr::new(std::ptr::null_mut());
static LEN: AtomicU64 = AtomicU64::new(0);
/// The daemon process groups' boards, by group name, in the order of the groups.
static DAEMON_BOARDS: Mutex<Vec<(String, Region)>> = Mutex::new(Vec::new());
/// This process's slot, in the children's board or in its daemon group's.
static MINE: AtomicPtr<Slot> = AtomicPtr::new(std::ptr::null_mut());
/// Whether this process is a daemon (its rows are all requests it ran).
static DAEMON: AtomicBool = AtomicBool::new(false);

fn board() -> Option<Region> {
    let slots = BOARD.load(Ordering::Acquire);
    (!slots.is_null()).then(|| Region { slots, len: LEN.load(Ordering::Relaxed) as usize })
}

fn daemon_boards() -> std::sync::MutexGuard<'static, Vec<(String, Region)>> {
    DAEMON_BOARDS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// In the parent: maps a new children's board with room for `processes` (the MPM's hard
/// limit), and unmaps the previous generation's (its children keep their own mapping).
/// The parent is single-threaded here and never reads the board: the pointer and the length
/// need not change as one. Children forked after a failure have no board (never the previous
/// generation's, which its own children still write).
pub fn create(processes: usize) -> Result<(), String> {
    let old = BOARD.swap(std::ptr::null_mut(), Ordering::AcqRel);
    let old_len = LEN.swap(0, Ordering::Relaxed) as usize;
    if !old.is_null() {
        Region { slots: old, len: old_len }.unmap();
    }
    let region = Region::map(processes)?;
    LEN.store(region.len as u64, Ordering::Relaxed);
    BOARD.store(region.slots, Ordering::Release);
    Ok(())
}

/// In the parent, before the daemons of a generation are forked: one board per daemon
/// process group (`name`, `processes`), a slot per daemon of the group (daemon `n` always
/// has slot `n`: the parent forks its replacement only once it is gone). The previous
/// generation's are unmapped (its daemons keep their own). A group whose board cannot be
/// mapped is only missing from the page.
pub fn create_daemon_boards(groups: &[(String, usize)]) -> Result<(), String> {
    let mut boards = daemon_boards();
    for (_, region) in boards.drain(..) {
        region.unmap();
    }
    for (name, processes) in groups {
        boards.push((name.clone(), Region::map(*processes)?));
    }
    Ok(())
}

/// In a child or daemon as it exits: its slot is free again at once, rather than when its pid
/// is found gone (which a new process with the same pid would hide). Two atomic operations:
/// safe from prefork's exit signal handler too.
pub fn leave() {
    let slot = MINE.swap(std::ptr::null_mut(), Ordering::AcqRel);
    if !slot.is_null() {
        // SAFETY: this child's slot in the board, mapped for the life of the process.
        unsafe { (*slot).pid.store(0, Ordering::Release) };
    }
}

/// In a daemon right after its fork, first thing (single-threaded, before anything could be
/// mapped into the ranges): unmaps the children's board and every other daemon group's, and
/// takes slot `n` (its number in the group) of its own group's (`index`): the parent decides
/// the slot, so no daemon can crowd its siblings out. Returns that board's address range,
/// which must survive the unmapping of inherited shared memory that follows.
pub fn enter_daemon(index: usize, n: usize) -> Option<(usize, usize)> {
    let old = BOARD.swap(std::ptr::null_mut(), Ordering::AcqRel);
    MINE.store(std::ptr::null_mut(), Ordering::Relaxed);
    let len = LEN.swap(0, Ordering::Relaxed) as usize;
    if !old.is_null() {
        Region { slots: old, len }.unmap();
    }
    let mut boards = daemon_boards();
    let mut own = None;
    for (i, (name, region)) in std::mem::take(&mut *boards).into_iter().enumerate() {
        if i == index {
            own = Some((name, region));
        } else {
            region.unmap();
        }
    }
    let (name, region) = own?;
    DAEMON.store(true, Ordering::Relaxed);
    if let Some(slot) = region.slot(n) {
        let me = std::process::id() as i32;
        slot.pid.store(-me, Ordering::Release);
        claim(slot, me);
    }
    let range = region.range();
    boards.push((name, region));
    Some(range)
}

/// In a child as it starts: takes a slot in the children's board, and makes the daemon
/// groups' boards read-only here (a child only reads them: an embedded application cannot
/// forge a daemon's figures, nor stall its requests).
pub fn join() {
    if let Some(region) = board() {
        take_slot(&region);
    }
    for (_, region) in daemon_boards().iter() {
        let (start, end) = region.range();
        // SAFETY: exactly the board's own mapping (page-aligned by mmap), which nothing in
        // this process writes.
        unsafe { libc::mprotect(start as *mut libc::c_void, end - start, libc::PROT_READ) };
    }
}

/// Takes a free slot of `region`, or one whose process is gone (or was an earlier process
/// with this pid, which ended without leaving), clears it and makes it this process's.
fn take_slot(region: &Region) {
    let me = std::process::id() as i32;
    for slot in region.slots() {
        let pid = slot.pid.load(Ordering::Acquire);
        // Taken as -me while it is cleared (readers skip pids <= 0), then published as me.
        if (pid == 0 || pid == me || gone(pid)) && slot.pid.compare_exchange(pid, -me, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            claim(slot, me);
            return;
        }
    }
}

/// Clears `slot` (held as -me) and publishes it as this process's.
fn claim(slot: &'static Slot, me: i32) {
    for group in &slot.groups {
        group.state.store(0, Ordering::Relaxed);
        for counter in [&group.requests, &group.active, &group.duration_us, &group.wait_us]
            .into_iter()
            .chain(&group.statuses)
            .chain(&group.buckets)
            .chain(&group.thread_states)
        {
            counter.store(0, Ordering::Relaxed);
        }
        for objects in &group.objects {
            objects.store(-1, Ordering::Relaxed);
        }
    }
    slot.started.store(super::epoch_now() as u64, Ordering::Relaxed);
    slot.pid.store(me, Ordering::Release);
    MINE.store(slot as *const Slot as *mut Slot, Ordering::Release);
}

/// Whether process `pid` (> 0) is gone. A pid read from a daemon's board is only given to
/// signal 0, which checks that it exists (EPERM: it does, under another user).
fn gone(pid: i32) -> bool {
    // SAFETY: signal 0 sends nothing.
    pid > 0 && unsafe { libc::kill(pid, 0) } != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
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
        // A child's daemon-mode requests (never a daemon's own) are the proxied kind.
        let proxied = !process_group.is_empty() && !DAEMON.load(Ordering::Relaxed);
        let entry = find_or_add(slot, &key(process_group, group), proxied);
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

fn find_or_add(slot: &'static Slot, key: &[u8], proxied: bool) -> &'static Group {
    let mut i = 0;
    while i < OVERFLOW_PROXIED {
        let group = &slot.groups[i];
        match name_or_wait(group) {
            Some(name) if name == key => return group,
            Some(_) => i += 1,
            // Free: name it, unless another thread took it first (then look at what it named).
            None => {
                if publish(group, key) {
                    return group;
                }
            }
        }
    }
    // Every entry is named: the overflow entry of the request's kind.
    let (i, overflow) = if proxied { (OVERFLOW_PROXIED, self::key(OTHER, OTHER)) } else { (OVERFLOW_RUN, self::key("", OTHER)) };
    let group = &slot.groups[i];
    if name_or_wait(group).is_none() {
        publish(group, &overflow);
    }
    group
}

/// An entry's name once it is named (None: free). Another thread of this process may be
/// naming it (a few instructions; it may be the very group being looked for, which must not
/// get a second entry): waited for, within a bound (a daemon's board is its own
/// application's to write, and a state stuck at 1 must not stall its requests for good).
fn name_or_wait(group: &Group) -> Option<Vec<u8>> {
    let mut state = group.state.load(Ordering::Acquire);
    let mut spins = 0u32;
    while state == 1 && spins < 1 << 20 {
        std::hint::spin_loop();
        spins += 1;
        state = group.state.load(Ordering::Acquire);
    }
    match state {
        0 => None,
        2 => Some(name(group)),
        // Stuck: an entry no key matches.
        _ => Some(Vec::new()),
    }
}

/// Names a free entry `key`; false when another thread took it first.
fn publish(group: &Group, key: &[u8]) -> bool {
    if group.state.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed).is_err() {
        return false;
    }
    for (byte, &b) in group.name.iter().zip(key) {
        byte.store(b, Ordering::Relaxed);
    }
    group.name_len.store(key.len().min(NAME_MAX) as u32, Ordering::Relaxed);
    group.state.store(2, Ordering::Release);
    true
}

impl Entry {
    /// What the engine reported of the group's interpreter (replica) that served the
    /// request: its thread states, and the objects its collector tracks (-1: not known).
    pub fn gauges(&self, figures: &crate::abi::GroupFigures) {
        // No interpreter was reached (a served request always has a thread state).
        if figures.thread_states == 0 {
            return;
        }
        let replica = (figures.replica as usize).min(REPLICAS - 1);
        self.group.thread_states[replica].store(figures.thread_states, Ordering::Relaxed);
        if figures.objects >= 0 {
            self.group.objects[replica].store(figures.objects, Ordering::Relaxed);
        }
    }

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
    pub thread_states: u64,
    /// None: not known.
    pub objects: Option<u64>,
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
        self.thread_states = self.thread_states.max(other.thread_states);
        self.objects = self.objects.max(other.objects);
    }

    /// Whether Apache's child passed these requests on to a daemon process group, rather than
    /// running them (a child's row with a process group).
    pub fn proxied(&self, process: &Process) -> bool {
        process.daemon.is_none() && !self.process_group.is_empty()
    }
}

/// One process's rows.
pub struct Process {
    pub pid: i32,
    pub started: u64,
    /// The daemon process group it belongs to; None for an Apache child.
    pub daemon: Option<String>,
    pub rows: Vec<Row>,
}

/// Everything on the boards now: the live children of this generation, then the live daemons
/// of each daemon process group.
pub fn read() -> Option<Vec<Process>> {
    let children = board()?;
    let mut processes = read_region(&children, None);
    let daemons: Vec<(String, Region)> = daemon_boards().iter().map(|(name, region)| (name.clone(), *region)).collect();
    for (name, region) in daemons {
        processes.extend(read_region(&region, Some(&name)));
    }
    Some(processes)
}

/// This process's rows of requests it ran (not those an Apache child passed on to daemons),
/// cumulative cut: one row per application group.
pub fn own_rows() -> Vec<Row> {
    let slot = MINE.load(Ordering::Acquire);
    if slot.is_null() {
        return Vec::new();
    }
    // SAFETY: this process's slot in a board, mapped for the life of the process.
    let slot: &Slot = unsafe { &*slot };
    let daemon = DAEMON.load(Ordering::Relaxed);
    let mut rows: Vec<Row> = Vec::new();
    for g in slot.groups.iter().filter(|g| g.state.load(Ordering::Acquire) == 2) {
        let row = read_group(g);
        if !daemon && !row.process_group.is_empty() {
            continue;
        }
        match rows.iter_mut().find(|r| r.group == row.group) {
            Some(r) => r.add(&row),
            None => rows.push(row),
        }
    }
    rows
}

fn read_region(region: &Region, daemon: Option<&str>) -> Vec<Process> {
    let mut processes = Vec::new();
    for slot in region.slots() {
        let pid = slot.pid.load(Ordering::Acquire);
        if pid <= 0 || gone(pid) {
            continue;
        }
        // One process per pid: a second slot with the same pid (a daemon's forgery; a slot
        // being re-used) is added in, so that no series is written twice.
        let at = match processes.iter().position(|p: &Process| p.pid == pid) {
            Some(at) => at,
            None => {
                processes.push(Process { pid, started: slot.started.load(Ordering::Relaxed), daemon: daemon.map(str::to_string), rows: Vec::new() });
                processes.len() - 1
            }
        };
        let rows = &mut processes[at].rows;
        for g in &slot.groups {
            if g.state.load(Ordering::Acquire) != 2 {
                continue;
            }
            let mut row = read_group(g);
            // What a daemon wrote of its process group is not trusted: the group is the board's.
            if let Some(name) = daemon {
                row.process_group = name.to_string();
            }
            // One row per group: a second entry with the same name is added in.
            match rows.iter_mut().find(|r| r.process_group == row.process_group && r.group == row.group) {
                Some(r) => r.add(&row),
                None => rows.push(row),
            }
        }
    }
    processes
}

fn read_group(g: &Group) -> Row {
    let key = String::from_utf8_lossy(&name(g)).into_owned();
    let (process_group, group) = key.split_once('\u{1f}').map_or(("*".to_string(), key.clone()), |(p, a)| (p.to_string(), a.to_string()));
    let mut buckets = [0u64; BOUNDS.len()];
    let mut running = 0u64;
    for (i, b) in g.buckets.iter().enumerate() {
        running = running.saturating_add(b.load(Ordering::Relaxed));
        buckets[i] = running;
    }
    // Counts only grow but are read one by one: the total is at least what the buckets
    // hold. A count past i64 (a write gone wrong) reads as 0.
    let sane = |v: u64| if v > i64::MAX as u64 { 0 } else { v };
    let seconds = |us: &AtomicU64| sane(us.load(Ordering::Relaxed)) as f64 / 1e6;
    Row {
        process_group,
        group,
        requests: sane(g.requests.load(Ordering::Relaxed)).max(running),
        statuses: std::array::from_fn(|i| sane(g.statuses[i].load(Ordering::Relaxed))),
        active: sane(g.active.load(Ordering::Relaxed)),
        duration: seconds(&g.duration_us),
        wait: seconds(&g.wait_us),
        buckets,
        thread_states: g.thread_states.iter().fold(0u64, |n, t| n.saturating_add(sane(t.load(Ordering::Relaxed)))),
        // The replicas' counts that are known, added up; None when none is.
        objects: g
            .objects
            .iter()
            .filter_map(|o| u64::try_from(o.load(Ordering::Relaxed)).ok())
            .fold(None, |n: Option<u64>, o| Some(n.unwrap_or(0).saturating_add(o))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::GroupFigures;

    /// A group's replicas report their gauges apart; the reader adds them up, and a replica
    /// whose objects are not known (-1) leaves the others' count alone.
    #[test]
    fn replicas_gauges_add_up() {
        let region = Region::map(1).unwrap();
        take_slot(&region);
        for (thread_states, objects, replica) in [(2, 100, 0), (3, -1, 1), (4, 50, 9)] {
            let entry = begin("", "g").unwrap();
            entry.gauges(&GroupFigures { thread_states, objects, replica });
            entry.end(200, 0.001, 0.0);
        }
        // A request that reached no interpreter changes nothing.
        let entry = begin("", "g").unwrap();
        entry.gauges(&GroupFigures::default());
        entry.end(503, 0.001, 0.0);
        let rows = own_rows();
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!((row.requests, row.statuses[1], row.statuses[4], row.thread_states, row.objects), (4, 3, 1, 9, Some(150)));
    }
}

#[cfg(test)]
mod reading {
    use super::*;

    /// Two slots that claim one pid (a daemon's forgery, or a slot being re-used) and two
    /// entries of one name read as one process with one row; a daemon board's rows carry the
    /// board's process group, whatever the daemon wrote.
    #[test]
    fn one_process_per_pid_and_one_row_per_group() {
        let region = Region::map(2).unwrap();
        for slot in region.slots() {
            slot.pid.store(std::process::id() as i32, Ordering::Release);
            for (i, n) in [(0, 3), (1, 4)] {
                assert!(publish(&slot.groups[i], &key("forged", "g")));
                slot.groups[i].requests.store(n, Ordering::Relaxed);
            }
        }
        let processes = read_region(&region, Some("site"));
        assert_eq!(processes.len(), 1);
        let rows = &processes[0].rows;
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].process_group.as_str(), rows[0].group.as_str(), rows[0].requests), ("site", "g", 14));
    }
}
