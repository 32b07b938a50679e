//! The WSGI environ dict: the module's CGI variables as native strings, plus `wsgi.*`.

use super::exchange::Exchange;
use super::group::Group;
use super::py::{self, PyObj, PyResult};
use super::settings;

/// This thread's number in the process (`mod_wsgi.thread_id`), as mod_wsgi hands them out: in
/// the order threads first need one, from 0 (the thread that started Python takes it, so a
/// prefork child's requests see 0 and a threaded child's 1, 2, ...).
pub fn thread_id() -> u64 {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    thread_local!(static ID: Cell<Option<u64>> = const { Cell::new(None) });
    ID.with(|id| match id.get() {
        Some(n) => n,
        None => {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            id.set(Some(n));
            n
        }
    })
}

/// Builds the environ for one request (GIL held, in the request's interpreter).
pub fn build(ex: &Exchange, group: &Group, input: &PyObj, errors: &PyObj) -> PyResult<PyObj> {
    let environ = py::dict()?;
    let request = ex.request;
    let pairs = if request.environ.is_null() {
        &[][..]
    } else {
        // SAFETY: the module passes environ_len pairs valid for the request.
        unsafe { std::slice::from_raw_parts(request.environ, request.environ_len) }
    };
    let mut https = false;
    for pair in pairs {
        // SAFETY: byte strings valid for the request.
        let (name, value) = unsafe { (pair.name.as_slice(), pair.value.as_slice()) };
        if name == crate::abi::gil_mode::ENVIRON_KEY
            || name == crate::abi::replicas::ENVIRON_KEY
            || name == crate::abi::interpreter_options::ENVIRON_KEY
        {
            continue; // the module's word to the engine, not the application's
        }
        if name == crate::abi::request_rec::ENVIRON_KEY {
            // WSGIPassApacheRequest: the address the module wrote, as mod_wsgi's capsule; never
            // in a daemon, where no request_rec of this process exists.
            let embedded = settings::get().process_group.is_empty();
            let address = embedded.then_some(value).and_then(|v| std::str::from_utf8(v).ok()).and_then(|v| v.parse::<usize>().ok());
            if let Some(address) = address.filter(|a| *a != 0) {
                // SAFETY: a capsule over the request the module is serving, alive for the
                // whole WSGI call; without a name or destructor, as mod_wsgi makes it.
                let capsule = unsafe { PyObj::from_owned(crate::pyffi::PyCapsule_New(address as *mut std::ffi::c_void, std::ptr::null(), None))? };
                py::dict_set(&environ, crate::abi::request_rec::PYTHON_KEY, &capsule)?;
            }
            continue;
        }
        if name == b"HTTPS" {
            // Said as wsgi.url_scheme, then left out, as mod_wsgi 4.9 and 6.1 do.
            https = matches!(value.to_ascii_lowercase().as_slice(), b"on" | b"1");
            continue;
        }
        if name == b"PATH" {
            // Apache's own search path is not the application's business (mod_wsgi).
            continue;
        }
        let key = py::latin1(name)?;
        let value = py::latin1(value)?;
        // SAFETY: live dict, key and value.
        py::check(unsafe { crate::pyffi::PyDict_SetItem(environ.as_ptr(), key.as_ptr(), value.as_ptr()) })?;
    }
    let s = settings::get();
    py::dict_set(&environ, "wsgi.version", &py::tuple(&[&py::int(1)?, &py::int(0)?])?)?;
    py::dict_set(&environ, "wsgi.url_scheme", &py::text(if https { "https" } else { "http" })?)?;
    py::dict_set(&environ, "wsgi.multithread", &py::boolean(s.multithread))?;
    py::dict_set(&environ, "wsgi.multiprocess", &py::boolean(s.multiprocess))?;
    py::dict_set(&environ, "wsgi.run_once", &py::boolean(false))?;
    py::dict_set(&environ, "wsgi.input", input)?;
    py::dict_set(&environ, "wsgi.input_terminated", &py::boolean(true))?;
    // SAFETY: the group's own class, alive for the interpreter's life.
    let file_wrapper = unsafe { PyObj::from_borrowed(group.file_wrapper)? };
    py::dict_set(&environ, "wsgi.errors", errors)?;
    py::dict_set(&environ, "wsgi.file_wrapper", &file_wrapper)?;
    py::dict_set(&environ, "mod_wsgi.version", &settings::mod_wsgi_version()?)?;
    py::dict_set(&environ, "mod_wsgi.thread_id", &py::int(thread_id() as i64)?)?;
    let (major, minor, patch) = s.apache_version;
    py::dict_set(&environ, "apache.version", &py::tuple(&[&py::int(major)?, &py::int(minor)?, &py::int(patch)?])?)?;
    Ok(environ)
}
