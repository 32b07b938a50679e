//! Loading a WSGI script file as a module of its group's interpreter.
//!
//! As in mod_wsgi, the module is named `_mod_wsgi_` plus the MD5 of the script's path and lives
//! in that interpreter's `sys.modules`. Its `__mtime__` is the file's mtime in microseconds
//! (an `int`, as mod_wsgi sets it after the script ran). With reloading on, a request reloads
//! the script into a fresh module when that `__mtime__` is not the file's mtime any more, is
//! missing or is not an integer; else, for a WSGI request, when the module's own
//! `reload_required(resource)` returns true (mod_wsgi 4.9 and 6: `resource` is the file the
//! request maps to). Each load and reload is logged (INFO, mod_wsgi 6's words). A script that
//! raised while loading is removed again, so the next request imports it again.

use super::exchange::log_current;
use super::group::Group;
use super::py::{self, PyErrSet, PyObj, PyResult};
use crate::abi::level;
use crate::gil::released;
use crate::pyffi as ffi;
use std::time::SystemTime;

/// What the group remembers of a loaded script: the module as it was when it finished
/// running (not a `sys.modules` look-up, which during a reload would find the new module
/// half-executed). Cloned and dropped only with the GIL held.
pub struct Loaded {
    pub module_name: String,
    module: PyObj,
}

pub enum LoadError {
    /// The file cannot be read (the handler saw it a moment ago: it went away or is unreadable).
    Unreadable(std::io::Error),
    /// The script raised; the exception is set.
    Raised,
    /// The script could not be read or compiled (mod_wsgi's `WSGI0105`: a `SyntaxError` of its
    /// own, not one an import it runs raises); the exception is set.
    Uncompiled,
}

/// When a loaded script is looked at again before it is used.
#[derive(Clone, Copy)]
pub enum Reloading<'a> {
    /// `WSGIScriptReloading Off`: a loaded script is used as it is, without even a stat.
    Off,
    /// Its `__mtime__` is checked; with a resource (a WSGI request: the file it maps to, as
    /// the request has it: bytes), its `reload_required(resource)` is asked too.
    On { resource: Option<&'a [u8]> },
}

/// The script's module, loading or reloading it as needed. Called with the group's GIL held.
///
/// Python runs under none of the group's locks but `loader`, which is only ever waited for
/// without the GIL: a `scripts` guard lives for one map operation, and the module a reload
/// replaces is dropped after every lock is released (its `__del__` methods and weakref
/// callbacks run Python, which may hand the GIL to a thread that then needs `scripts`).
pub fn load(group: &Group, path: &str, reloading: Reloading) -> Result<PyObj, LoadError> {
    let current = cached(group, path);
    let resource = match (reloading, &current) {
        (Reloading::Off, Some(module)) => return Ok(module.clone()),
        (Reloading::Off, None) => None,
        (Reloading::On { resource }, _) => resource,
    };
    let mtime = std::fs::metadata(path).and_then(|m| m.modified()).map_err(LoadError::Unreadable)?;
    let mtime = micros(mtime);
    // The common case takes no loader lock: the cache records a module only once it has run
    // to the end, so what it hands out is never half-loaded.
    if let Some(module) = &current {
        if !reload_required(group, path, module, mtime, resource) {
            return Ok(module.clone());
        }
    }
    match load_exclusively(group, path, mtime, current.as_ref()) {
        Ok((module, replaced)) => {
            drop(current);
            drop(replaced);
            Ok(module)
        }
        Err(e) => {
            // A failed reload: `current` may be the old module's last reference, and its
            // __del__ methods and weakref callbacks must not run with the exception set.
            let (mut t, mut v, mut tb) = (std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
            // SAFETY: under the GIL: the pending exception (if any) is taken out while the
            // module goes, then put back (PyErr_Restore steals the references PyErr_Fetch gave).
            #[allow(deprecated)]
            unsafe {
                ffi::PyErr_Fetch(&mut t, &mut v, &mut tb);
            }
            drop(current);
            // SAFETY: as above.
            #[allow(deprecated)]
            unsafe {
                ffi::PyErr_Restore(t, v, tb);
            }
            Err(e)
        }
    }
}

/// The file's mtime as mod_wsgi's `__mtime__` has it: microseconds since the epoch (APR's).
fn micros(mtime: SystemTime) -> i64 {
    match mtime.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(e) => -(e.duration().as_micros() as i64),
    }
}

/// mod_wsgi's `wsgi_reload_required`: the module's `__mtime__` (missing, or not an integer:
/// reload) against the file's, then its `reload_required(resource)` when there is a resource.
/// A callback that raises is logged with its traceback and does not reload (mod_wsgi 6: a
/// systematically failing one must not reload on every request).
fn reload_required(group: &Group, path: &str, module: &PyObj, mtime: i64, resource: Option<&[u8]>) -> bool {
    // SAFETY: a live module's dict, borrowed for this function (the module is held).
    let dict = unsafe { ffi::PyModule_GetDict(module.as_ptr()) };
    let key = py::cstring("__mtime__");
    // SAFETY: live dict; a borrowed item or null (never an exception set), turned into an
    // owned reference: converting it may run its __index__, which may change the dict.
    let Ok(object) = (unsafe { PyObj::from_borrowed(ffi::PyDict_GetItemString(dict, key.as_ptr())) }) else {
        return true;
    };
    // SAFETY: a live object; -1 with an exception set means not an integer (or too large).
    let recorded = unsafe { ffi::PyLong_AsLongLong(object.as_ptr()) };
    // SAFETY: under the GIL.
    let integer = recorded != -1 || unsafe { ffi::PyErr_Occurred().is_null() };
    if !integer {
        // SAFETY: under the GIL; the conversion's error is dropped.
        unsafe { ffi::PyErr_Clear() };
    }
    // With no exception set (it may be the object's last reference).
    drop(object);
    if !integer || recorded != mtime {
        return true;
    }
    let Some(resource) = resource else { return false };
    let key = py::cstring("reload_required");
    // SAFETY: as above; the borrowed callable is turned into an owned reference, since the
    // call below may change the dict.
    let Ok(callback) = (unsafe { PyObj::from_borrowed(ffi::PyDict_GetItemString(dict, key.as_ptr())) }) else {
        return false;
    };
    let answer = py::fs_path(resource).and_then(|resource| callback.call(&[&resource])).and_then(|result| {
        // SAFETY: a live object; -1 means its __bool__ raised.
        match unsafe { ffi::PyObject_IsTrue(result.as_ptr()) } {
            -1 => Err(PyErrSet),
            n => Ok(n == 1),
        }
    });
    match answer {
        Ok(reload) => reload,
        Err(PyErrSet) => {
            let headline = super::error::headline(path, &group.name, Some(&String::from_utf8_lossy(resource)));
            let traceback = super::error::take_traceback();
            crate::gil::outside(|| {
                log_current(level::ERR, &headline);
                traceback.iter().for_each(|line| log_current(level::ERR, line));
            });
            false
        }
    }
}

/// Loads the script with the group's loader lock held, unless another thread replaced the
/// module this one found (`stale`, or loaded one when there was none) while it waited.
/// Returns the module and the entry it replaced, for the caller to drop once the lock is
/// released.
fn load_exclusively(group: &Group, path: &str, mtime: i64, stale: Option<&PyObj>) -> Result<(PyObj, Option<Loaded>), LoadError> {
    // One loader at a time per interpreter; wait for it without the GIL, so the thread that
    // is executing a script (and may release the GIL in its imports) can finish.
    let _loading = match group.loader.try_lock() {
        Some(guard) => guard,
        None => released(|| group.loader.lock()),
    };
    // Another thread may have (re)loaded it while this one waited.
    if let Some(module) = cached(group, path) {
        if stale.map_or(true, |stale| stale.as_ptr() != module.as_ptr()) {
            return Ok((module, None));
        }
    }
    let known = group.scripts.lock().get(path).map(|loaded| loaded.module_name.clone());
    let reloading = known.is_some();
    let module_name = match known {
        Some(name) => name,
        None => module_name(path).map_err(|_| LoadError::Raised)?,
    };
    let context = super::error::interpreter_context(&group.name);
    let verb = if reloading { "Reloading" } else { "Loading" };
    log_current(level::INFO, &format!("{verb} WSGI script '{path}' into {context}."));
    let module = match execute(path, &module_name, mtime) {
        Ok(module) => module,
        Err(failure) => {
            // As mod_wsgi, whose failed reload leaves no module in sys.modules: the next
            // request loads the script afresh. The old module is dropped once the `scripts`
            // guard is gone (only `loader` is held, as while the script ran).
            let removed = group.scripts.lock().remove(path);
            // SAFETY: under the GIL: the pending exception is taken out while the entry (a
            // reference to the old module, which may be its last one should the caller hold
            // none: its __del__ methods may run Python) is dropped, then put back
            // (PyErr_Restore steals the references PyErr_Fetch gave). The caller drops its own
            // reference the same way (`load`).
            #[allow(deprecated)]
            unsafe {
                let (mut t, mut v, mut tb) = (std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
                ffi::PyErr_Fetch(&mut t, &mut v, &mut tb);
                drop(removed);
                ffi::PyErr_Restore(t, v, tb);
            }
            return Err(failure);
        }
    };
    let loaded = Loaded { module_name, module: module.clone() };
    let replaced = group.scripts.lock().insert(path.to_string(), loaded);
    group.ever_loaded.store(true, std::sync::atomic::Ordering::Release);
    Ok((module, replaced))
}

/// The loaded module of `path`, if it is loaded. Under the lock only a reference is taken
/// (an incref: no Python runs).
fn cached(group: &Group, path: &str) -> Option<PyObj> {
    group.scripts.lock().get(path).map(|loaded| loaded.module.clone())
}

/// `_mod_wsgi_` + md5(path), mod_wsgi's naming, computed with the interpreter's own hashlib.
fn module_name(path: &str) -> PyResult<String> {
    let digest = py::import("hashlib")?.call_method("md5", &[&py::bytes(path.as_bytes())?])?.call_method("hexdigest", &[])?;
    Ok(format!("_mod_wsgi_{}", py::utf8(&digest).unwrap_or_default()))
}

/// Compiles and runs the file in a fresh module registered under `name`: `Uncompiled` when it
/// cannot be read or compiled, `Raised` when running it (or making its module) raised.
fn execute(path: &str, name: &str, mtime: i64) -> Result<PyObj, LoadError> {
    let source = match std::fs::read(path) {
        Ok(source) => source,
        Err(e) => {
            // SAFETY: static exception type.
            py::raise(unsafe { ffi::PyExc_OSError }, &format!("cannot read {path}: {e}"));
            return Err(LoadError::Uncompiled);
        }
    };
    let builtins = py::builtins().map_err(|_| LoadError::Raised)?;
    let code =
        (|| builtins.call_method("compile", &[&py::bytes(&source)?, &py::text(path)?, &py::text("exec")?]))().map_err(|_| LoadError::Uncompiled)?;
    run_code(path, name, mtime, &builtins, &code).map_err(|_| LoadError::Raised)
}

/// Runs compiled `code` in a fresh module registered under `name`.
fn run_code(path: &str, name: &str, mtime: i64, builtins: &PyObj, code: &PyObj) -> PyResult<PyObj> {
    let c_name = py::cstring(name);
    // SAFETY: a new module object.
    let module = unsafe { PyObj::from_owned(ffi::PyModule_New(c_name.as_ptr()))? };
    module.setattr("__file__", &py::text(path)?)?;
    // SAFETY: the module dict is borrowed from a live module; builtins are set for exec.
    let globals = unsafe { PyObj::from_borrowed(ffi::PyModule_GetDict(module.as_ptr()))? };
    py::dict_set(&globals, "__builtins__", builtins)?;
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
    // After the script ran, as mod_wsgi sets it (whatever the script set is replaced).
    module.setattr("__mtime__", &py::int(mtime)?)?;
    Ok(module)
}
