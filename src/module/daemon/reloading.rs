//! Process reloading (`WSGIScriptReloading On`, the default, in daemon mode): as mod_wsgi, a
//! daemon process whose WSGI script changed since it loaded it restarts, so that the whole
//! application (its other modules too: Django's settings, views) is loaded afresh by the
//! replacement, where embedded mode only re-executes the script. The request that finds the
//! change is not run: the child is told to connect again (`wire::RESTART`) and is served by
//! another process.
//!
//! The daemon side keeps, per process, the modification time each script had when the
//! process first saw a request for it (or started, for its `WSGIImportScript` scripts): plain
//! Rust, no Python. mod_wsgi compares with the time recorded on the script's module in each
//! interpreter; a process serves its scripts in one interpreter each, so per process and path
//! is the same thing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// The daemon's signal pipe byte (see `process.rs`) for a stop because a script changed: a
/// graceful one (`graceful-timeout`).
pub const SCRIPT_CHANGED: u8 = b'L';

/// The modification times first seen, by script path.
#[derive(Default)]
pub struct ScriptTimes(Mutex<HashMap<PathBuf, SystemTime>>);

impl ScriptTimes {
    /// Notes `script`'s time if this process has none for it yet, and says whether it changed
    /// since: a different time, or a script that can no longer be read (mod_wsgi's rule) where
    /// one was read before. A script never seen is never changed. The lock is not held across
    /// the `stat`.
    pub fn changed(&self, script: &Path) -> bool {
        let now = std::fs::metadata(script).and_then(|m| m.modified()).ok();
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match (seen.get(script), now) {
            (Some(first), Some(now)) => *first != now,
            (Some(_), None) => true,
            (None, Some(now)) => {
                seen.insert(script.to_path_buf(), now);
                false
            }
            (None, None) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ScriptTimes;
    use std::time::{Duration, SystemTime};

    #[test]
    fn a_script_changes_when_its_time_differs_from_the_first_seen() {
        let dir = std::env::temp_dir().join(format!("mod_wsgi-rs-reloading-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("app.wsgi");
        let missing = dir.join("missing.wsgi");
        std::fs::write(&script, "application = None\n").unwrap();
        let times = ScriptTimes::default();
        assert!(!times.changed(&missing), "never seen, unreadable");
        assert!(!times.changed(&script), "first seen");
        assert!(!times.changed(&script), "unchanged");
        let file = std::fs::File::options().write(true).open(&script).unwrap();
        file.set_modified(SystemTime::now() + Duration::from_secs(5)).unwrap();
        assert!(times.changed(&script), "touched");
        assert!(times.changed(&script), "still changed for the requests that follow");
        std::fs::remove_file(&script).unwrap();
        assert!(times.changed(&script), "gone after being seen: mod_wsgi reloads");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
