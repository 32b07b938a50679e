//! `WSGIImportScript`, and the `WSGIScriptAlias` scripts preloaded as mod_wsgi preloads
//! them (see `directives::preload_entry`): the scripts each process imports when it starts,
//! before its first request. One list in configuration order, across the main server and the virtual hosts (as
//! mod_wsgi's): each entry names the process group it is for, the empty name for Apache's own
//! children (embedded mode), else a daemon group, so a process imports only its own entries.
//!
//! The list is filled while the configuration is read and emptied before it is read again
//! (`pre_config`); Apache's children and the daemons inherit it by fork.

use crate::abi;
use std::sync::Mutex;

/// One `WSGIImportScript`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportScript {
    pub script: String,
    /// The daemon group, or empty for embedded mode (`%{GLOBAL}`).
    pub process_group: String,
    /// The application group, or empty for `%{GLOBAL}`.
    pub application_group: String,
}

static LIST: Mutex<Vec<ImportScript>> = Mutex::new(Vec::new());

/// Forgets the previous configuration's entries.
pub fn clear() {
    LIST.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// Adds an entry; one already listed (the same script for the same groups: a
/// `WSGIImportScript` and the alias that serves it) is not listed twice, since importing it
/// again would only find the module loaded and log a second line.
pub fn push(entry: ImportScript) {
    let mut list = LIST.lock().unwrap_or_else(|e| e.into_inner());
    if !list.contains(&entry) {
        list.push(entry);
    }
}

/// The entries for `process_group` (empty: embedded mode), in configuration order.
pub fn for_process_group(process_group: &str) -> Vec<ImportScript> {
    LIST.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|e| e.process_group == process_group).cloned().collect()
}

/// The engine's view of `entries`, borrowing their strings (keep `entries` alive meanwhile).
pub fn to_abi(entries: &[ImportScript]) -> Vec<abi::ImportScript> {
    entries
        .iter()
        .map(|e| abi::ImportScript { script: abi::Bytes::new(e.script.as_bytes()), group: abi::Bytes::new(e.application_group.as_bytes()) })
        .collect()
}
