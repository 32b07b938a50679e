//! Replicas (ours): one application group served by N interpreters of this process, each with
//! its own GIL, so that one site's Python runs on several cores without more processes.
//!
//! mod_wsgi 6 offers only a recipe for this (a `WSGIDispatchScript` spreading requests over
//! named groups), which needs Python to pick the group. Here the pick is a few atomics: each
//! thread prefers one replica (threads are numbered as they first get here, so they spread
//! evenly), whose interpreter its cached thread state keeps warm, and takes the least busy one
//! instead when its own is busy and another is less so, so that two requests run in parallel
//! even when the two threads that got them prefer the same replica.
//!
//! Replica 1 is the group's own name in the registry (`group::get_or_create`); each replica is
//! a full interpreter that imports the application itself.

use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

/// Requests running in each replica of one group.
struct Set {
    active: Box<[AtomicU32]>,
}

/// Group name → its replicas: the first request for a group fixes their number for the life
/// of the process (as it fixes the interpreter's GIL mode).
static SETS: RwLock<Option<HashMap<String, &'static Set>>> = RwLock::new(None);

/// The next thread's number.
static NEXT_THREAD: AtomicU32 = AtomicU32::new(0);

thread_local! {
    /// This thread's number, from which its preferred replica follows.
    static THREAD: u32 = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
}

/// A request counted in a replica until dropped.
pub struct Active(&'static AtomicU32);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Added to the count of a replica whose interpreter could not be created, so that [`choose`]
/// sends requests elsewhere (see [`retire`]).
const RETIRED: u32 = 1 << 30;

/// Fixes the number of `name`'s replicas before any request (`WSGIImportScript`).
pub fn register(name: &str, replicas: u32) {
    set_for(name, replicas);
}

/// `replica` of `name` could not be created: no request is sent to it again unless every
/// other replica is retired too (the first one never is: requests fall back to it).
pub fn retire(name: &str, replica: u32) {
    if let Some(slot) = SETS.read().as_ref().and_then(|sets| sets.get(name).copied()).and_then(|set| set.active.get(replica as usize)) {
        if slot.load(Ordering::Relaxed) < RETIRED {
            slot.fetch_add(RETIRED, Ordering::Relaxed);
        }
    }
}

/// The replica (0-based) a request to `name`, served by `wanted` replicas, runs in, counted
/// as running there until the returned guard drops. No GIL needed; no lock held after return.
pub fn choose(name: &str, wanted: u32) -> (u32, Active) {
    let set = set_for(name, wanted);
    let active = &set.active;
    let preferred = THREAD.with(|n| *n as usize) % active.len();
    let (mut best, mut load) = (preferred, active[preferred].load(Ordering::Relaxed));
    let mut i = 1;
    while load > 0 && i < active.len() {
        let candidate = (preferred + i) % active.len();
        let candidate_load = active[candidate].load(Ordering::Relaxed);
        if candidate_load < load {
            (best, load) = (candidate, candidate_load);
        }
        i += 1;
    }
    active[best].fetch_add(1, Ordering::Relaxed);
    (best as u32, Active(&active[best]))
}

fn set_for(name: &str, wanted: u32) -> &'static Set {
    if let Some(set) = SETS.read().as_ref().and_then(|sets| sets.get(name).copied()) {
        return set;
    }
    let mut sets = SETS.write();
    let sets = sets.get_or_insert_with(HashMap::new);
    sets.entry(name.to_string()).or_insert_with(|| {
        let active = (0..wanted.max(1)).map(|_| AtomicU32::new(0)).collect();
        Box::leak(Box::new(Set { active }))
    })
}

/// Says once per group that its replicas cannot be had: it shares the main GIL, where more
/// interpreters would only queue for the same lock.
pub fn warn_shared(name: &str, wanted: u32) {
    static WARNED: parking_lot::Mutex<Vec<String>> = parking_lot::Mutex::new(Vec::new());
    let mut warned = WARNED.lock();
    if warned.iter().any(|w| w == name) {
        return;
    }
    warned.push(name.to_string());
    drop(warned);
    super::settings::log(
        crate::abi::level::WARNING,
        &format!(
            "replicas={wanted} for application group '{name}' has no effect: its interpreter shares the main GIL (WSGIPerInterpreterGIL Off, %{{GLOBAL}}, or Python before 3.12), so one interpreter serves it."
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_preferred_replica_sends_the_request_to_an_idle_one() {
        let (first, a) = choose("t-idle", 2);
        // The same thread again: its preferred replica is busy, the other idle.
        let (second, b) = choose("t-idle", 2);
        assert_ne!(first, second);
        // Both busy alike: back to the preferred one.
        let (third, _c) = choose("t-idle", 2);
        assert_eq!(third, first);
        drop((a, b));
    }

    #[test]
    fn the_first_request_fixes_the_number_of_replicas() {
        let seen: std::collections::HashSet<u32> = (0..8)
            .map(|_| choose("t-fixed", 3))
            .map(|(r, guard)| {
                std::mem::forget(guard);
                r
            })
            .collect();
        assert_eq!(seen.len(), 3);
        let (r, _g) = choose("t-fixed", 5);
        assert!(r < 3);
    }
}
