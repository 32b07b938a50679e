//! `WSGIImportScript`, and the `WSGIScriptAlias` scripts preloaded as mod_wsgi preloads
//! them (see `directives::startup_imports::preload_entry`): the scripts each process imports when it starts,
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
    /// `replicas=` of the `WSGIScriptAlias` that preloads it (`None`: as the
    /// `<WSGIInterpreterOptions>` say).
    pub replicas: Option<u32>,
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

extern "C" {
    /// Apache's main server (http_main.h), set once the configuration is read.
    static ap_server_conf: *mut super::apache::server_rec;
}

/// The engine's view of a process's import list: the records and the encoded
/// `<WSGIInterpreterOptions>` settings they point into (kept together so they live as long).
pub struct AbiImports {
    records: Vec<abi::ImportScript>,
    /// Each record's `options` borrows one of these (a Vec's buffer does not move with it).
    _options: Vec<Vec<u8>>,
}

impl AbiImports {
    pub fn as_ptr(&self) -> *const abi::ImportScript {
        self.records.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }
}

/// The engine's view of `entries`, borrowing their strings (keep `entries` alive meanwhile),
/// each with its group's `WSGIPerInterpreterGIL`, replicas and other container settings (from
/// the main server's configuration): every replica of a group imports the script.
pub fn to_abi(entries: &[ImportScript]) -> AbiImports {
    // SAFETY: read after the configuration is read (in a child or a daemon), when Apache has
    // set it; our record is attached to every server_rec.
    let main = unsafe { (!ap_server_conf.is_null()).then(|| super::record::server_config(ap_server_conf)) };
    let options: Vec<Vec<u8>> =
        entries.iter().map(|e| main.map_or_else(Vec::new, |m| m.group_options(&e.process_group, &e.application_group).encode())).collect();
    let records = entries
        .iter()
        .zip(&options)
        .map(|(e, options)| abi::ImportScript {
            script: abi::Bytes::new(e.script.as_bytes()),
            group: abi::Bytes::new(e.application_group.as_bytes()),
            gil_mode: main.map_or(abi::gil_mode::SHARED, |m| m.gil_mode(&e.process_group, &e.application_group).to_abi()),
            replicas: main.map_or(1, |m| m.replicas(e.replicas, &e.process_group, &e.application_group)),
            options: abi::Bytes::new(options),
        })
        .collect();
    AbiImports { records, _options: options }
}
