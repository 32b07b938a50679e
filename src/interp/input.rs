//! `wsgi.input`: `read`, `readline`, `readlines` and iteration over the request body, which
//! never block past its end and read from Apache with the GIL released.

use super::exchange::Exchange;
use super::py::{self, PyErrSet, PyObj, PyResult};
use super::request_objects::{exchange, size_arg, Methods, END};
use super::trampoline::python_trampoline;
use crate::pyffi::{self as ffi, method_kw};

pub(super) static METHODS: Methods<4> = Methods([
    method_kw(c"read", read, c"read(size=-1)"),
    method_kw(c"readline", readline, c"readline(size=-1)"),
    method_kw(c"readlines", readlines, c"readlines(hint=-1)"),
    END,
]);

fn read_error() -> PyErrSet {
    // SAFETY: static exception type.
    py::raise(unsafe { ffi::PyExc_OSError }, "request data read error")
}

/// Takes up to `n` buffered bytes.
fn take(ex: &Exchange, n: usize) -> PyResult<PyObj> {
    let mut state = ex.state.borrow_mut();
    let n = n.min(state.input_buffer.len());
    let chunk: Vec<u8> = state.input_buffer.drain(..n).collect();
    drop(state);
    py::bytes(&chunk)
}

unsafe extern "C" fn read(slf: *mut ffi::PyObject, args: *mut ffi::PyObject, kwargs: *mut ffi::PyObject) -> *mut ffi::PyObject {
    python_trampoline(|| {
        // SAFETY: slf is an Input.
        let ex = unsafe { exchange(slf)? };
        let size = size_arg(args, kwargs, c"size")?;
        // Larger reads go through the growing buffer: a huge size (or CONTENT_LENGTH) must
        // not allocate its whole length before a single byte arrived.
        if size > 0 && size <= (1 << 20) && ex.input_buffered() == 0 {
            return read_direct(ex, size as usize);
        }
        let wanted = if size < 0 { usize::MAX } else { size as usize };
        if !ex.fill_input(wanted) {
            return Err(read_error());
        }
        take(ex, wanted)
    })
}

/// `read(n)` with nothing buffered, the common case of an application reading its body in
/// blocks: Apache's bytes go straight into the `bytes` object returned, with no buffer in
/// between (one copy instead of three).
fn read_direct(ex: &Exchange, wanted: usize) -> PyResult<PyObj> {
    // SAFETY: a new, uninitialised bytes object of `wanted` bytes; nobody else can see it
    // until we return it, so filling it without the GIL is safe.
    let mut obj = unsafe { ffi::PyBytes_FromStringAndSize(std::ptr::null(), wanted as ffi::Py_ssize_t) };
    if obj.is_null() {
        return Err(PyErrSet);
    }
    // SAFETY: the buffer of the bytes object just created, `wanted` bytes long.
    let buffer = unsafe { std::slice::from_raw_parts_mut(ffi::PyBytes_AsString(obj).cast::<u8>(), wanted) };
    let filled = match ex.read_into(buffer) {
        Some(n) => n,
        None => {
            // SAFETY: drops the reference we own.
            unsafe { ffi::Py_DecRef(obj) };
            return Err(read_error());
        }
    };
    // SAFETY: shrinking a bytes object only we hold; on failure it is freed and null.
    if filled < wanted && unsafe { ffi::_PyBytes_Resize(&mut obj, filled as ffi::Py_ssize_t) } != 0 {
        return Err(PyErrSet);
    }
    // SAFETY: `obj` is our new reference.
    unsafe { PyObj::from_owned(obj) }
}

/// One line (up to and including `\n`), at most `limit` bytes; empty at the end of the body.
fn line(ex: &Exchange, limit: usize) -> PyResult<PyObj> {
    let mut scanned = 0;
    loop {
        let (found, buffered, done) = {
            let state = ex.state.borrow();
            let found = state.input_buffer[scanned..].iter().position(|&b| b == b'\n').map(|i| scanned + i + 1);
            (found, state.input_buffer.len(), state.input_done)
        };
        if let Some(end) = found {
            return take(ex, end.min(limit));
        }
        if buffered >= limit || done {
            return take(ex, limit);
        }
        scanned = buffered;
        if !ex.fill_input(buffered + 1) {
            return Err(read_error());
        }
    }
}

unsafe extern "C" fn readline(slf: *mut ffi::PyObject, args: *mut ffi::PyObject, kwargs: *mut ffi::PyObject) -> *mut ffi::PyObject {
    python_trampoline(|| {
        // SAFETY: slf is an Input.
        let ex = unsafe { exchange(slf)? };
        let size = size_arg(args, kwargs, c"size")?;
        line(ex, if size < 0 { usize::MAX } else { size as usize })
    })
}

unsafe extern "C" fn readlines(slf: *mut ffi::PyObject, args: *mut ffi::PyObject, kwargs: *mut ffi::PyObject) -> *mut ffi::PyObject {
    python_trampoline(|| {
        // SAFETY: slf is an Input.
        let ex = unsafe { exchange(slf)? };
        let hint = size_arg(args, kwargs, c"hint")?;
        // SAFETY: a new, empty list.
        let lines = unsafe { PyObj::from_owned(ffi::PyList_New(0))? };
        let mut total = 0usize;
        loop {
            let l = line(ex, usize::MAX)?;
            let len = py::as_bytes(&l).map_or(0, <[u8]>::len);
            if len == 0 {
                break;
            }
            // SAFETY: appends a live object to our list.
            py::check(unsafe { ffi::PyList_Append(lines.as_ptr(), l.as_ptr()) })?;
            total += len;
            if hint > 0 && total >= hint as usize {
                break;
            }
        }
        Ok(lines)
    })
}

pub(super) unsafe extern "C" fn iter(slf: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: returns a new reference to self.
    unsafe { ffi::Py_IncRef(slf) };
    slf
}

pub(super) unsafe extern "C" fn next(slf: *mut ffi::PyObject) -> *mut ffi::PyObject {
    python_trampoline(|| {
        // SAFETY: slf is an Input.
        let ex = unsafe { exchange(slf)? };
        let l = line(ex, usize::MAX)?;
        if py::as_bytes(&l).is_some_and(<[u8]>::is_empty) {
            // Null without an exception set ends the iteration.
            return Err(PyErrSet);
        }
        Ok(l)
    })
}
