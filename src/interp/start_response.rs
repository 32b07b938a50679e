//! `start_response(status, headers, exc_info=None)` and the `write(data)` callable it returns
//! (PEP 3333): validation of what the application says, with mod_wsgi's exception types, and
//! the first step of the response.

use super::exchange::{Exchange, SendError};
use super::headers;
use super::py::{self, PyErrSet, PyObj, PyResult};
use super::request_objects::{arg, exchange, type_error, value_error, Methods, END};
use super::trampoline::python_trampoline;
use crate::pyffi::{self as ffi, method_kw};

pub(super) static METHODS: Methods<3> = Methods([
    method_kw(c"start_response", start_response, c"start_response(status, headers, exc_info=None)"),
    method_kw(c"write", write, c"write(data): send bytes before the returned iterable"),
    END,
]);


unsafe extern "C" fn start_response(slf: *mut ffi::PyObject, args: *mut ffi::PyObject, kwargs: *mut ffi::PyObject) -> *mut ffi::PyObject {
    python_trampoline(|| {
        // SAFETY: slf is an Adapter.
        let ex = unsafe { exchange(slf)? };
        let status = arg(args, kwargs, 0, c"status")?.ok_or_else(|| type_error("start_response() missing 'status'"))?;
        let headers = arg(args, kwargs, 1, c"headers")?.ok_or_else(|| type_error("start_response() missing 'headers'"))?;
        let exc_info = arg(args, kwargs, 2, c"exc_info")?.filter(|e| !e.is_none());

        if let Some(exc_info) = exc_info {
            if ex.state.borrow().headers_sent {
                return Err(reraise(&exc_info));
            }
        } else if ex.state.borrow().headers_sent {
            // SAFETY: static exception type.
            return Err(py::raise(unsafe { ffi::PyExc_RuntimeError }, "headers have already been sent"));
        }

        /// A status or header string as bytes, with mod_wsgi 6's exceptions: a `str` that is
        /// not latin-1 raises the codec's `UnicodeEncodeError` (a `ValueError`, as 4.9 raised,
        /// now saying which character), anything but a `str` a `TypeError` (`must be str, not
        /// bytes`). Python 2 takes byte strings.
        fn native_bytes(obj: &PyObj) -> PyResult<Vec<u8>> {
            if let Some(bytes) = py::latin1_bytes(obj) {
                return Ok(bytes);
            }
            #[cfg(Py_3)]
            // SAFETY: a type check on a live object; the encode, failing, leaves its
            // UnicodeEncodeError set for the application.
            if unsafe { ffi::PyUnicode_Check(obj.as_ptr()) } != 0 {
                return unsafe { PyObj::from_owned(ffi::PyUnicode_AsLatin1String(obj.as_ptr())) }.map(|b| py::as_bytes(&b).unwrap_or_default().to_vec());
            }
            let native = if cfg!(Py_3) { "str" } else { "byte string" };
            Err(type_error(&format!("must be {native}, not {}", py::type_name(obj))))
        }
        let status_bytes = native_bytes(&status)?;
        headers::check_status(&status_bytes).map_err(|e| value_error(&e))?;
        // SAFETY: type check on a live object.
        if unsafe { ffi::PyList_Check(headers.as_ptr()) } == 0 {
            return Err(type_error("response headers must be a list"));
        }
        let mut parsed = Vec::new();
        let mut content_length = None;
        // SAFETY: a list; items are borrowed then re-owned.
        let count = unsafe { ffi::PyList_Size(headers.as_ptr()) };
        for i in 0..count {
            // SAFETY: i is in range.
            let item = unsafe { PyObj::from_borrowed(ffi::PyList_GetItem(headers.as_ptr(), i))? };
            // SAFETY: type and size checks on a live object.
            if unsafe { ffi::PyTuple_Check(item.as_ptr()) == 0 || ffi::PyTuple_Size(item.as_ptr()) != 2 } {
                return Err(type_error("list of tuple values expected for response headers, each of (name, value)"));
            }
            // SAFETY: a 2-tuple.
            let (name, value) = unsafe {
                (PyObj::from_borrowed(ffi::PyTuple_GetItem(item.as_ptr(), 0))?, PyObj::from_borrowed(ffi::PyTuple_GetItem(item.as_ptr(), 1))?)
            };
            let (name, value) = (native_bytes(&name)?, native_bytes(&value)?);
            headers::check_header(&name, &value).map_err(|e| value_error(&e))?;
            let Some(value) = headers::for_apache(&name, value) else { continue };
            if name.eq_ignore_ascii_case(b"content-length") {
                let n = std::str::from_utf8(&value).ok().and_then(|v| v.trim().parse::<u64>().ok());
                content_length = Some(n.ok_or_else(|| value_error("Content-Length must be a non-negative integer"))?);
            }
            parsed.push((name, value));
        }
        {
            let mut state = ex.state.borrow_mut();
            state.status = Some(status_bytes);
            state.headers = parsed;
            state.content_length = content_length;
        }
        // SAFETY: slf is live; returns the bound write method.
        unsafe { PyObj::from_owned(ffi::PyObject_GetAttrString(slf, c"write".as_ptr())) }
    })
}

/// Raises the exception in an `exc_info` tuple (PEP 3333: headers were already sent).
fn reraise(exc_info: &PyObj) -> PyErrSet {
    // SAFETY: exc_info is a tuple of (type, value, traceback); Restore steals the references
    // we take here.
    unsafe {
        if ffi::PyTuple_Check(exc_info.as_ptr()) == 0 || ffi::PyTuple_Size(exc_info.as_ptr()) != 3 {
            return type_error("exc_info must be a tuple of (type, value, traceback)");
        }
        let items: Vec<*mut ffi::PyObject> = (0..3).map(|i| ffi::PyTuple_GetItem(exc_info.as_ptr(), i)).collect();
        for &item in &items {
            ffi::Py_IncRef(item);
        }
        #[allow(deprecated)]
        ffi::PyErr_Restore(items[0], items[1], items[2]);
    }
    PyErrSet
}

unsafe extern "C" fn write(slf: *mut ffi::PyObject, args: *mut ffi::PyObject, kwargs: *mut ffi::PyObject) -> *mut ffi::PyObject {
    python_trampoline(|| {
        // SAFETY: slf is an Adapter.
        let ex = unsafe { exchange(slf)? };
        let data = arg(args, kwargs, 0, c"data")?.ok_or_else(|| type_error("write() missing 'data'"))?;
        let bytes = py::as_bytes(&data).ok_or_else(|| type_error("write() argument must be a bytes object"))?;
        // write() is for streaming: what it sends goes out at once.
        send(ex, bytes, true)?;
        if ex.state.borrow().client_gone {
            // SAFETY: static exception type.
            return Err(py::raise(unsafe { ffi::PyExc_OSError }, "failed to write data: the client closed the connection"));
        }
        Ok(py::none())
    })
}

/// Sends a chunk, turning a refusal into a Python exception.
pub fn send(ex: &Exchange, data: &[u8], flush: bool) -> PyResult<()> {
    ex.write(data, flush).map_err(raise_send_error)
}

/// Raises the Python exception that stands for a response Apache would not take.
pub fn raise_send_error(error: SendError) -> PyErrSet {
    let message = match error {
        SendError::NoStatus => "response has not been started: call start_response() first",
        SendError::Refused => "Apache refused the response status or headers",
    };
    // SAFETY: static exception type.
    py::raise(unsafe { ffi::PyExc_RuntimeError }, message)
}
