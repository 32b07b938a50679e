//! Loading a WSGI script file as a module of its group's interpreter.
//!
//! As in mod_wsgi, the module is named `_mod_wsgi_` plus the MD5 of the script's path and lives
//! in that interpreter's `sys.modules`. A script whose mtime changed is executed again into a
//! fresh module before the next request (script reloading); a script that raised while loading
//! is removed again, so the next request imports it again.

use super::group::Group;
use super::py::{self, PyErrSet, PyObj, PyResult};
use crate::gil::released;
use crate::pyffi as ffi;
use std::time::SystemTime;

/// What the group remembers of a loaded script: the module as it was when it finished
/// running (not a `sys.modules` look-up, which during a reload would find the new module
/// half-executed). Cloned and dropped only with the GIL held.
pub struct Loaded {
    pub module_name: String,
    pub mtime: SystemTime,
    module: PyObj,
}

pub enum LoadError {
    /// The file cannot be read (the handler saw it a moment ago: it went away or is unreadable).
    Unreadable(std::io::Error),
    /// The script raised; the exception is set.
    Raised,
}

/// The script's module, loading or reloading it as needed. Called with the group's GIL held.
/// With `reloading` off (`WSGIScriptReloading Off`), a loaded script is used as it is,
/// without even a stat.
///
/// Python runs under none of the group's locks but `loader`, which is only ever waited for
/// without the GIL: a `scripts` guard lives for one map operation, and the module a reload
/// replaces is dropped after every lock is released (its `__del__` methods and weakref
/// callbacks run Python, which may hand the GIL to a thread that then needs `scripts`).
pub fn load(group: &Group, path: &str, reloading: bool) -> Result<PyObj, LoadError> {
    if !reloading {
        if let Some(module) = cached(group, path, None) {
            return Ok(module);
        }
    }
    let mtime = std::fs::metadata(path).and_then(|m| m.modified()).map_err(LoadError::Unreadable)?;
    // The common case takes no loader lock: the cache records a module only once it has run
    // to the end, so what it hands out is never half-loaded.
    if let Some(module) = cached(group, path, Some(mtime)) {
        return Ok(module);
    }
    let (module, replaced) = load_exclusively(group, path, mtime)?;
    drop(replaced);
    Ok(module)
}

/// Loads the script with the group's loader lock held, unless another thread loaded this
/// version while this one waited. Returns the module and the entry it replaced, for the
/// caller to drop once the lock is released.
fn load_exclusively(group: &Group, path: &str, mtime: SystemTime) -> Result<(PyObj, Option<Loaded>), LoadError> {
    // One loader at a time per interpreter; wait for it without the GIL, so the thread that
    // is executing a script (and may release the GIL in its imports) can finish.
    let _loading = match group.loader.try_lock() {
        Some(guard) => guard,
        None => released(|| group.loader.lock()),
    };
    // Another thread may have loaded it while this one waited.
    if let Some(module) = cached(group, path, Some(mtime)) {
        return Ok((module, None));
    }
    let known = group.scripts.lock().get(path).map(|loaded| loaded.module_name.clone());
    let module_name = match known {
        Some(name) => name,
        None => module_name(path).map_err(|_| LoadError::Raised)?,
    };
    let module = execute(path, &module_name, mtime).map_err(|_| LoadError::Raised)?;
    let loaded = Loaded { module_name, mtime, module: module.clone() };
    let replaced = group.scripts.lock().insert(path.to_string(), loaded);
    Ok((module, replaced))
}

/// The loaded module of `path`, if it is loaded (and, given an mtime, loaded at that mtime).
/// Under the lock only a reference is taken (an incref: no Python runs).
fn cached(group: &Group, path: &str, mtime: Option<SystemTime>) -> Option<PyObj> {
    let scripts = group.scripts.lock();
    let loaded = scripts.get(path)?;
    if mtime.is_some_and(|m| m != loaded.mtime) {
        return None;
    }
    Some(loaded.module.clone())
}

/// `_mod_wsgi_` + md5(path), mod_wsgi's naming, computed with the interpreter's own hashlib.
fn module_name(path: &str) -> PyResult<String> {
    let digest = py::import("hashlib")?.call_method("md5", &[&py::bytes(path.as_bytes())?])?.call_method("hexdigest", &[])?;
    Ok(format!("_mod_wsgi_{}", py::utf8(&digest).unwrap_or_default()))
}

/// Compiles and runs the file in a fresh module registered under `name`.
fn execute(path: &str, name: &str, mtime: SystemTime) -> PyResult<PyObj> {
    let source = match std::fs::read(path) {
        Ok(source) => source,
        // SAFETY: static exception type.
        Err(e) => return Err(py::raise(unsafe { ffi::PyExc_OSError }, &format!("cannot read {path}: {e}"))),
    };
    let builtins = py::builtins()?;
    let code = builtins.call_method("compile", &[&py::bytes(&source)?, &py::text(path)?, &py::text("exec")?])?;
    let c_name = py::cstring(name);
    // SAFETY: a new module object.
    let module = unsafe { PyObj::from_owned(ffi::PyModule_New(c_name.as_ptr()))? };
    module.setattr("__file__", &py::text(path)?)?;
    let seconds = mtime.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    // SAFETY: a new float.
    module.setattr("__mtime__", &unsafe { PyObj::from_owned(ffi::PyFloat_FromDouble(seconds))? })?;
    // SAFETY: the module dict is borrowed from a live module; builtins are set for exec.
    let globals = unsafe { PyObj::from_borrowed(ffi::PyModule_GetDict(module.as_ptr()))? };
    py::dict_set(&globals, "__builtins__", &builtins)?;
    // SAFETY: the interpreter's module dict (borrowed).
    let modules = unsafe { ffi::PyImport_GetModuleDict() };
    // SAFETY: live dict, key and value.
    py::check(unsafe { ffi::PyDict_SetItemString(modules, c_name.as_ptr(), module.as_ptr()) })?;
    // SAFETY: code object and globals are live.
    let result = unsafe { PyObj::from_owned(ffi::PyEval_EvalCode(code.as_ptr(), globals.as_ptr(), globals.as_ptr())) };
    if result.is_err() {
        // Leave nothing half-loaded behind: the next request imports the script again.
        // SAFETY: keep the pending exception while removing the entry.
        #[allow(deprecated)]
        unsafe {
            let (mut t, mut v, mut tb) = (std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
            ffi::PyErr_Fetch(&mut t, &mut v, &mut tb);
            if ffi::PyDict_DelItemString(modules, c_name.as_ptr()) < 0 {
                ffi::PyErr_Clear();
            }
            ffi::PyErr_Restore(t, v, tb);
        }
        return Err(PyErrSet);
    }
    Ok(module)
}
