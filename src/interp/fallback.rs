//! `WSGIPerInterpreterGIL Auto` (ours): a group whose application cannot be imported in an
//! interpreter with its own GIL, because an extension module it needs has single-phase init,
//! is moved to the shared GIL in this process before it serves a request.
//!
//! This is safe in-process only because such modules are refused before their init runs
//! (`single_phase.py`): the module's C statics are never touched by the own-GIL interpreter,
//! so the shared-GIL interpreter that replaces it imports the module as if for the first time.
//! (CPython's own refusal, for a module that check misses, comes after the init on 3.12; no
//! fallback follows it there: the log says to pin the group instead.) The interpreter that
//! failed is not ended (requests may still be in it): it is set aside, serves nothing more,
//! and ends with the others when the process exits (`group::all`).

use super::py;
use super::settings;
use crate::abi::level;

/// The extension modules refused so far in the current interpreter (GIL held in it), from
/// `mod_wsgi.refused_extensions`.
pub fn refused_extensions() -> Vec<String> {
    let read = || -> py::PyResult<Vec<String>> {
        let list = py::import("mod_wsgi")?.getattr("refused_extensions")?;
        let mut names = Vec::new();
        // SAFETY: the GIL is held; the list is alive through `list`.
        let len = unsafe { crate::pyffi::PyList_Size(list.as_ptr()) };
        if len < 0 {
            // Not a list (an application rebound it): the SystemError is taken by the caller.
            return Err(py::PyErrSet);
        }
        for i in 0..len {
            // SAFETY: i is in range; the item is borrowed and turned into an owned reference.
            let item = unsafe { py::PyObj::from_borrowed(crate::pyffi::PyList_GetItem(list.as_ptr(), i))? };
            names.push(item.to_text());
        }
        Ok(names)
    };
    read().unwrap_or_else(|_| {
        super::error::take_traceback();
        Vec::new()
    })
}

/// Logs why `group` moves to the shared GIL, with the import's traceback (at info level: the
/// application will be imported again, and fail there with its own traceback if it still
/// fails), and moves it (call without the GIL).
pub fn fall_back(group: &str, refused: &[String], traceback: &[String]) {
    // Several first requests may find the failure at once: the one that moves the group says so.
    if !super::group::set_aside(group) {
        return;
    }
    settings::log(
        level::WARNING,
        &format!(
            "Application group '{group}' moves to the shared GIL (WSGIPerInterpreterGIL Auto): it imports {} with single-phase init, which an interpreter with its own GIL cannot load. To skip the attempt, pin the group: <WSGIInterpreterOptions application-group={group}> WSGIPerInterpreterGIL Off </WSGIInterpreterOptions>.",
            refused.iter().map(|m| format!("'{m}'")).collect::<Vec<_>>().join(", ")
        ),
    );
    settings::log_lines(level::INFO, traceback);
}

/// Says what to do when an import failed on an extension that refuses every interpreter but
/// the first (PyO3-based packages): no GIL setting helps, the main interpreter does.
pub fn advise(group: &str, traceback: &[String]) -> Option<String> {
    let pyo3 = traceback.iter().any(|l| l.contains("PyO3 modules") && (l.contains("subinterpreters") || l.contains("only be initialized once")));
    pyo3.then(|| {
        let module = traceback.iter().rev().find_map(|l| l.trim().strip_prefix("File \"")).and_then(|l| l.split('"').next()).unwrap_or("?");
        format!(
            "Application group '{group}' imports an extension module built with PyO3 (from {module}), which loads in one interpreter per process only: run this application in the main interpreter, WSGIApplicationGroup %{{GLOBAL}} (in a daemon process group of its own if it shares the host)."
        )
    })
}
