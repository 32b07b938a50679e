//! The requests running now, one entry per worker thread ("slot", as mod_wsgi numbers its
//! request threads): what a slow-request report and the in-flight part of a thread's busy
//! time are made from. Each slot has its own lock, taken briefly by its own thread at the
//! start and end of a request and by the reporter when it looks; no Python runs under it.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::sync::OnceLock;
use std::time::Instant;

/// What is known of a running request, for reports about it: its fields one after another in
/// one buffer, copied from borrowed bytes. Made for every request while slow requests are
/// reported, so one allocation, not one per field (measured: eleven allocations and their
/// frees were most of what telemetry added to a hello request,
/// `bench/telemetry_instructions.sh`).
#[derive(Clone, Default)]
pub struct Describe {
    /// At most 11 x [`FIELD_MAX`] bytes: its offsets fit in u32.
    buf: Vec<u8>,
    /// Where each field ends in `buf`, in the order of [`Describe::new`]'s arguments.
    ends: [u32; 11],
}

/// The most bytes of a field kept (the datagram's longest text field is 511 bytes).
const FIELD_MAX: usize = 8192;

impl Describe {
    /// method, scheme, hostname, SCRIPT_NAME, PATH_INFO, protocol, peer address, User-Agent,
    /// log id, process group, application group.
    /// Each field is kept to its first [`FIELD_MAX`] bytes (reports show less).
    pub fn new(fields: [&[u8]; 11]) -> Describe {
        let fields = fields.map(|f| &f[..f.len().min(FIELD_MAX)]);
        let mut buf = Vec::with_capacity(fields.iter().map(|f| f.len()).sum());
        let mut ends = [0u32; 11];
        for (end, field) in ends.iter_mut().zip(fields) {
            buf.extend_from_slice(field);
            *end = buf.len() as u32;
        }
        Describe { buf, ends }
    }

    fn field(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.buf.get(start..self.ends[i] as usize).unwrap_or_default()
    }
    pub fn method(&self) -> &[u8] {
        self.field(0)
    }
    pub fn scheme(&self) -> &[u8] {
        self.field(1)
    }
    pub fn hostname(&self) -> &[u8] {
        self.field(2)
    }
    pub fn script_name(&self) -> &[u8] {
        self.field(3)
    }
    pub fn path_info(&self) -> &[u8] {
        self.field(4)
    }
    pub fn protocol(&self) -> &[u8] {
        self.field(5)
    }
    pub fn peer_ip(&self) -> &[u8] {
        self.field(6)
    }
    pub fn user_agent(&self) -> &[u8] {
        self.field(7)
    }
    pub fn log_id(&self) -> &[u8] {
        self.field(8)
    }
    pub fn process_group(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.field(9))
    }
    pub fn application_group(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.field(10))
    }
}

/// A running request.
pub struct Running {
    pub began: Instant,
    /// Epoch seconds at `began`.
    pub began_epoch: f64,
    /// `pthread_self()` of its thread, for its Python stack.
    pub thread: u64,
    pub describe: Describe,
    /// Whether its slow-request line was logged.
    pub reported_slow: bool,
    /// Requests in flight when it started, itself included.
    pub active_at_start: u64,
}

/// Room for this many request threads at once (more than the wire's per-thread arrays hold:
/// a daemon may have thousands of threads, and mod_http2's workers come and go).
const TABLE: usize = 4096;

fn table() -> &'static [Mutex<Option<Box<Running>>>] {
    static TABLE_SLOTS: OnceLock<Vec<Mutex<Option<Box<Running>>>>> = OnceLock::new();
    TABLE_SLOTS.get_or_init(|| (0..TABLE).map(|_| Mutex::new(None)).collect())
}

/// Slots never taken start at NEXT; slots of threads that ended are in FREE.
static NEXT: AtomicUsize = AtomicUsize::new(0);
static FREE: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// How many threads have taken a slot (for `request_threads_started`).
static TAKEN: AtomicUsize = AtomicUsize::new(0);

/// A thread's slot, given back when the thread ends.
struct Held(Cell<Option<usize>>);

impl Drop for Held {
    fn drop(&mut self) {
        // Not while the process exits: prefork's exit runs thread-local destructors from its
        // signal handler, on a thread that may hold this very lock.
        if super::ending() {
            return;
        }
        if let Some(slot) = self.0.get() {
            // No request of this thread can be running: its entry is stale if any.
            super::lock(&table()[slot]).take();
            super::lock(&FREE).push(slot);
        }
    }
}

thread_local! {
    static SLOT: Held = const { Held(Cell::new(None)) };
}

/// The calling thread's slot, taken on its first request (the lowest free one, so that the
/// per-thread figures, which cover the first slots, describe live threads, see `super::MAX_SLOTS`); `None`
/// past [`TABLE`] threads at once (their requests are counted, but not seen running).
pub fn my_slot() -> Option<usize> {
    SLOT.try_with(|held| {
        if held.0.get().is_none() {
            let reused = {
                let mut free = super::lock(&FREE);
                free.sort_unstable_by(|a, b| b.cmp(a));
                free.pop()
            };
            let slot = reused.or_else(|| {
                let next = NEXT.fetch_add(1, Ordering::Relaxed);
                (next < TABLE).then_some(next)
            });
            if slot.is_some() {
                TAKEN.fetch_add(1, Ordering::Relaxed);
            }
            held.0.set(slot);
        }
        held.0.get()
    })
    .ok()
    .flatten()
}

/// How many worker threads have served a request.
pub fn threads_started() -> usize {
    TAKEN.load(Ordering::Relaxed)
}

/// How many slots have ever been used (the highest one plus one).
pub fn slots_used() -> usize {
    NEXT.load(Ordering::Relaxed).min(TABLE)
}

/// Marks `slot` running `running`; false (and nothing changed) when it already runs one: a
/// request handled inside another on its thread (a subrequest from an output filter) is not
/// tracked, and the outer one stays.
pub fn enter(slot: usize, running: Running) -> bool {
    let mut entry = super::lock(&table()[slot]);
    if entry.is_some() {
        return false;
    }
    *entry = Some(Box::new(running));
    true
}

pub fn leave(slot: usize) -> Option<Box<Running>> {
    super::lock(&table()[slot]).take()
}

/// Calls `f` on each running request (slot, entry), one slot locked at a time (only the
/// slots ever taken: the reporter looks ten times a second).
pub fn each(mut f: impl FnMut(usize, &mut Running)) {
    for (i, entry) in table()[..slots_used()].iter().enumerate() {
        if let Some(running) = super::lock(entry).as_mut() {
            f(i, running);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Describe;

    #[test]
    fn a_description_gives_each_field_back() {
        let d = Describe::new([b"GET", b"https", b"example.com", b"/app", b"/x", b"HTTP/1.1", b"10.0.0.1", b"", b"id", b"site", b"example.com|/app"]);
        assert_eq!(
            (d.method(), d.scheme(), d.hostname(), d.script_name(), d.path_info()),
            (&b"GET"[..], &b"https"[..], &b"example.com"[..], &b"/app"[..], &b"/x"[..])
        );
        assert_eq!((d.protocol(), d.peer_ip(), d.user_agent(), d.log_id()), (&b"HTTP/1.1"[..], &b"10.0.0.1"[..], &b""[..], &b"id"[..]));
        assert_eq!((d.process_group(), d.application_group()), ("site".into(), "example.com|/app".into()));
        assert!(Describe::default().method().is_empty() && Describe::default().application_group().is_empty());
    }
}
