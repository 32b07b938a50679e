//! Per-interpreter gauges kept in atomics, indexed by [`InterpIndex`], so that the end of
//! every request can report its interpreter's figures (`abi::GroupFigures`) without a lock:
//! the thread-state cache's `OWNED` list is locked by threads that start and end, and a
//! request must not queue behind them to read one number.
//!
//! Only the first [`COUNTED`] indexes have gauges (24 KiB: more than the groups, replicas
//! (up to 32 each) and fallbacks of any real process); past them, the thread-state count is
//! read under the cache's lock and the object count is not known.
//!
//! An index's gauges go back to "nothing known" when an interpreter is registered in it or
//! forgotten ([`reset`]): an index is reused after an interpreter ends.

use super::thread_state::InterpIndex;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Indexes with gauges.
pub const COUNTED: usize = 1024;

struct Slot {
    /// The cache's thread states in the interpreter: stored (under the cache's lock) each
    /// time the cache's list for the index changes, so it is that list's length.
    thread_states: AtomicUsize,
    /// The last sampled count of objects the interpreter's collector tracks; -1: none yet.
    objects: AtomicI64,
    /// When that sample was claimed, in milliseconds since the epoch (`millis_since_epoch`) plus one; 0: never.
    sampled_at: AtomicU64,
}

impl Slot {
    const fn new() -> Slot {
        Slot { thread_states: AtomicUsize::new(0), objects: AtomicI64::new(-1), sampled_at: AtomicU64::new(0) }
    }
}

static SLOTS: [Slot; COUNTED] = [const { Slot::new() }; COUNTED];

fn slot(index: InterpIndex) -> Option<&'static Slot> {
    SLOTS.get(index.0)
}

/// Records the cache's count of thread states for `index`. Called with the cache's lock held,
/// so that stores for one index come in the order of the changes they report.
pub(super) fn set_thread_states(index: InterpIndex, count: usize) {
    if let Some(slot) = slot(index) {
        slot.thread_states.store(count, Ordering::Relaxed);
    }
}

/// The cache's count of thread states for `index`, when the index has gauges.
pub(super) fn thread_states(index: InterpIndex) -> Option<usize> {
    slot(index).map(|slot| slot.thread_states.load(Ordering::Relaxed))
}

/// The interpreter in `index` is new, or gone: nothing is known of it.
pub(super) fn reset(index: InterpIndex) {
    if let Some(slot) = slot(index) {
        slot.thread_states.store(0, Ordering::Relaxed);
        slot.objects.store(-1, Ordering::Relaxed);
        slot.sampled_at.store(0, Ordering::Relaxed);
    }
}

/// The last count of objects sampled for `index` ([`record_objects`]), -1 when none.
pub fn objects(index: InterpIndex) -> i64 {
    slot(index).map_or(-1, |slot| slot.objects.load(Ordering::Relaxed))
}

/// Whether the caller is to sample `index`'s objects now: true for one caller when none was
/// claimed before or the last claim is at least `every` old. A lost race is a `false`, so two
/// threads never sample the same interpreter at once; the winner records its sample (or
/// nothing, when sampling failed: the last value stays until the next claim).
pub fn claim_sample(index: InterpIndex, every: Duration) -> bool {
    let Some(slot) = slot(index) else { return false };
    let now = millis_since_epoch().saturating_add(1);
    let last = slot.sampled_at.load(Ordering::Relaxed);
    if last != 0 && now.saturating_sub(last) < every.as_millis() as u64 {
        return false;
    }
    slot.sampled_at.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
}

/// Records the count of objects sampled for `index` after a [`claim_sample`].
pub fn record_objects(index: InterpIndex, count: i64) {
    if let Some(slot) = slot(index) {
        slot.objects.store(count, Ordering::Relaxed);
    }
}

/// The clock of the claims: monotonic, from the first look at it in this process.
fn millis_since_epoch() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    // Indexes near the end of the table, which the Python tests never register.

    #[test]
    fn one_claim_per_period() {
        let index = InterpIndex(COUNTED - 1);
        reset(index);
        assert_eq!(objects(index), -1);
        assert!(claim_sample(index, Duration::from_secs(10)), "the first claim wins");
        assert!(!claim_sample(index, Duration::from_secs(10)), "a second claim within the period loses");
        record_objects(index, 1234);
        assert_eq!(objects(index), 1234);
        assert!(claim_sample(index, Duration::ZERO), "a claim after the period wins");
        reset(index);
        assert_eq!(objects(index), -1, "a reused index starts unknown");
        assert!(claim_sample(index, Duration::from_secs(10)), "and is sampled at once");
    }

    #[test]
    fn racing_claims_have_one_winner() {
        let index = InterpIndex(COUNTED - 2);
        reset(index);
        let winners: usize = std::thread::scope(|s| {
            let threads: Vec<_> = (0..8).map(|_| s.spawn(|| claim_sample(index, Duration::from_secs(3600)) as usize)).collect();
            threads.into_iter().map(|t| t.join().unwrap()).sum()
        });
        assert_eq!(winners, 1);
    }

    #[test]
    fn indexes_past_the_table_have_no_gauges() {
        let index = InterpIndex(COUNTED);
        assert!(!claim_sample(index, Duration::ZERO));
        record_objects(index, 5);
        assert_eq!(objects(index), -1);
        assert_eq!(thread_states(index), None);
    }
}
