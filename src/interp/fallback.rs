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
            "Application group '{group}' moves to the shared GIL (WSGIPerInterpreterGIL Auto): it imports {}, which an interpreter with its own GIL cannot load (single-phase init, or no per-interpreter GIL support declared). To skip the attempt, pin the group: <WSGIInterpreterOptions application-group={group}> WSGIPerInterpreterGIL Off </WSGIInterpreterOptions>.",
            refused.iter().map(|m| format!("'{m}'")).collect::<Vec<_>>().join(", ")
        ),
    );
    settings::log_lines(level::INFO, traceback);
}

/// Says what to do when an import failed on an extension that loads in one interpreter per
/// process only: packages built with PyO3 (pydantic-core, rpds-py, cryptography, ...), which
/// either refuse a second interpreter ("PyO3 modules do not yet support subinterpreters") or,
/// in newer releases, load and then fail on objects cached from the first (a `TypeError`
/// from `abc`, say). No GIL setting helps; the main interpreter does. The package is found
/// from the traceback: a shared object beside one of its last files that names PyO3 inside.
pub fn advise(group: &str, traceback: &[String]) -> Option<String> {
    if group.is_empty() {
        return None;
    }
    let refused = traceback.iter().any(|l| l.contains("PyO3 modules"));
    let files: Vec<&str> =
        traceback.iter().rev().filter_map(|l| l.trim().strip_prefix("File \"")?.split('"').next()).filter(|f| f.starts_with('/')).take(3).collect();
    let module = files.iter().find_map(|f| pyo3_module_beside(std::path::Path::new(f)));
    if !refused && module.is_none() {
        return None;
    }
    let module = module.map_or_else(|| files.first().map_or("?".to_string(), |f| f.to_string()), |m| format!("'{m}'"));
    Some(format!(
        "Application group '{group}' imports {module}, an extension module built with PyO3, which works in one interpreter per process only: run this application in the main interpreter, WSGIApplicationGroup %{{GLOBAL}} (in a daemon process group of its own if it shares the host)."
    ))
}

/// The dotted name of a PyO3 extension module in the directory of `file` (a package's
/// `__init__.py`), if there is one.
fn pyo3_module_beside(file: &std::path::Path) -> Option<String> {
    let dir = file.parent()?;
    let package = dir.file_name()?.to_string_lossy().into_owned();
    std::fs::read_dir(dir).ok()?.flatten().find_map(|entry| {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".so") {
            return None;
        }
        let data = std::fs::read(entry.path()).ok()?;
        let pyo3 = data.windows(5).any(|w| w == b"pyo3/" || w == b"pyo3-" || w == b"PyO3 ");
        pyo3.then(|| format!("{package}.{}", name.split('.').next().unwrap_or(&name)))
    })
}
