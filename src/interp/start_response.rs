//! `start_response(status, headers, exc_info=None)` and the `write(data)` callable it returns
//! (PEP 3333): validation of what the application says, with mod_wsgi's exception types, and
//! the first step of the response.

use super::exchange::{Exchange, SendError};
use super::py::{self, PyErrSet, PyObj, PyResult};
use super::request_objects::{arg, exchange, exchange_or, type_error, value_error, Methods, END};
use super::trampoline::python_trampoline;
use crate::headers;
use crate::pyffi::{self as ffi, method_kw};

pub(super) static METHODS: Methods<3> = Methods([
    method_kw(c"start_response", start_response, c"start_response(status, headers, exc_info=None)"),
    method_kw(c"write", write, c"write(data): send bytes before the returned iterable"),
    END,
]);

unsafe extern "C" fn start_response(slf: *mut ffi::PyObject, args: *mut ffi::PyObject, kwargs: *mut ffi::PyObject) -> *mut ffi::PyObject {
    python_trampoline(|| {
        // SAFETY: slf is an Adapter.
        let ex = unsafe { exchange_or(slf, "start_response() called after request completed")? };
        let (status, headers, exc_info) = arguments(args, kwargs)?;
        if let Some(exc_info) = &exc_info {
            // SAFETY: a type check on a live object.
            if unsafe { ffi::PyTuple_Check(exc_info.as_ptr()) } == 0 {
                // SAFETY: static exception type.
                return Err(py::raise(unsafe { ffi::PyExc_RuntimeError }, "start_response() argument 'exc_info' must be a 3-tuple or None"));
            }
            if ex.state.borrow().headers_sent {
                return Err(reraise(exc_info));
            }
        } else if ex.state.borrow().headers_sent {
            // SAFETY: static exception type.
            return Err(py::raise(unsafe { ffi::PyExc_RuntimeError }, "start_response() called more than once without exc_info"));
        }
        let status_bytes = native_bytes(&status)?;
        headers::check_status(&status_bytes).map_err(|e| value_error(&e))?;
        let mut parsed = Vec::new();
        let mut content_length = None;
        let mut bad_content_length = None;
        for item in list_items(&headers)? {
            // SAFETY: a type check on a live object.
            if unsafe { ffi::PyTuple_Check(item.as_ptr()) } == 0 {
                return Err(type_error(&format!("each header must be a 2-tuple, not {}", py::type_name(&item))));
            }
            // SAFETY: a tuple.
            let len = unsafe { ffi::PyTuple_Size(item.as_ptr()) };
            if len != 2 {
                return Err(value_error(&format!("each header must be a 2-tuple, got length {len}")));
            }
            // SAFETY: a 2-tuple; the items are borrowed, then owned.
            let (name, value) = unsafe {
                (PyObj::from_borrowed(ffi::PyTuple_GetItem(item.as_ptr(), 0))?, PyObj::from_borrowed(ffi::PyTuple_GetItem(item.as_ptr(), 1))?)
            };
            let name = native_bytes(&name)?;
            let value = native_bytes(&value)?;
            headers::check_header(&name, &value).map_err(|e| value_error(&e))?;
            let Some(value) = headers::for_apache(&name, value) else { continue };
            if name.eq_ignore_ascii_case(b"content-length") {
                // Checked when the response starts, as mod_wsgi 6 does (the application can
                // still replace the headers until then).
                match std::str::from_utf8(&value).ok().and_then(|v| v.trim().parse::<u64>().ok()) {
                    Some(n) => content_length = Some(n),
                    None => bad_content_length = Some(value.clone()),
                }
            }
            parsed.push((name, value));
        }
        {
            let mut state = ex.state.borrow_mut();
            state.status = Some(status_bytes);
            state.headers = parsed;
            state.content_length = content_length;
            state.bad_content_length = bad_content_length;
        }
        // SAFETY: slf is live; returns the bound write method.
        unsafe { PyObj::from_owned(ffi::PyObject_GetAttrString(slf, c"write".as_ptr())) }
    })
}

/// `(status, headers[, exc_info])`, positional only, with the messages CPython's argument
/// parsing gives mod_wsgi 6's `start_response`; `headers` must be a list (or a subclass).
fn arguments(args: *mut ffi::PyObject, kwargs: *mut ffi::PyObject) -> PyResult<(PyObj, PyObj, Option<PyObj>)> {
    // SAFETY: kwargs is null or the call's dict; args the call's tuple.
    unsafe {
        if !kwargs.is_null() && ffi::PyDict_Size(kwargs) > 0 {
            return Err(type_error("start_response() takes no keyword arguments"));
        }
        let given = if args.is_null() { 0 } else { ffi::PyTuple_Size(args) };
        if given < 2 {
            return Err(type_error(&format!("start_response() takes at least 2 arguments ({given} given)")));
        }
        if given > 3 {
            return Err(type_error(&format!("start_response() takes at most 3 arguments ({given} given)")));
        }
        let item = |i| PyObj::from_borrowed(ffi::PyTuple_GetItem(args, i));
        let (status, headers) = (item(0)?, item(1)?);
        if ffi::PyList_Check(headers.as_ptr()) == 0 {
            return Err(type_error(&format!("start_response() argument 2 must be list, not {}", py::type_name(&headers))));
        }
        let exc_info = if given == 3 { Some(item(2)?).filter(|e| !e.is_none()) } else { None };
        Ok((status, headers, exc_info))
    }
}

/// The items of a list, each owned.
fn list_items(list: &PyObj) -> PyResult<Vec<PyObj>> {
    // SAFETY: a list (checked by the caller); each index is in range and its item re-owned.
    unsafe { (0..ffi::PyList_Size(list.as_ptr())).map(|i| PyObj::from_borrowed(ffi::PyList_GetItem(list.as_ptr(), i))).collect() }
}

/// A status or header string as bytes, with mod_wsgi 6's exceptions: a `str` that is not
/// latin-1 raises the codec's `UnicodeEncodeError` (a `ValueError`, as 4.9 raised, now saying
/// which character), anything but a `str` a `TypeError` (`must be str, not bytes`). Python 2
/// takes byte strings.
fn native_bytes(obj: &PyObj) -> PyResult<Vec<u8>> {
    if let Some(bytes) = py::latin1_bytes(obj) {
        return Ok(bytes);
    }
    #[cfg(Py_3)]
    // SAFETY: a type check on a live object.
    if unsafe { ffi::PyUnicode_Check(obj.as_ptr()) } != 0 {
        // SAFETY: a str; the encode, failing, leaves its UnicodeEncodeError set for the
        // application.
        let encoded = unsafe { PyObj::from_owned(ffi::PyUnicode_AsLatin1String(obj.as_ptr())) };
        return encoded.map(|b| py::as_bytes(&b).unwrap_or_default().to_vec());
    }
    let native = if cfg!(Py_3) { "str" } else { "byte string" };
    Err(type_error(&format!("must be {native}, not {}", py::type_name(obj))))
}

/// Raises the exception of an `exc_info` tuple once headers are out (PEP 3333). Only a real
/// `(class, value, traceback)` is restored: anything else would crash the interpreter when the
/// exception is normalised or printed (as it crashes mod_wsgi), so it is a `TypeError`.
fn reraise(exc_info: &PyObj) -> PyErrSet {
    // SAFETY: a tuple (checked by the caller).
    let len = unsafe { ffi::PyTuple_Size(exc_info.as_ptr()) };
    if len != 3 {
        return type_error(&format!("function takes exactly 3 arguments ({len} given)"));
    }
    // SAFETY: a 3-tuple; the items are borrowed for the checks.
    let items: Vec<*mut ffi::PyObject> = (0..3).map(|i| unsafe { ffi::PyTuple_GetItem(exc_info.as_ptr(), i) }).collect();
    // SAFETY: live objects. Only a real type (not any object with __bases__, which
    // IsSubclass accepts and CPython's unwind would then crash on), then IsSubclass, which
    // raises TypeError (cleared) when it cannot tell.
    let is_class = unsafe {
        let is_type = ffi::PyObject_IsInstance(items[0], std::ptr::addr_of_mut!(ffi::PyType_Type).cast());
        if is_type != 1 {
            ffi::PyErr_Clear();
            false
        } else {
            match ffi::PyObject_IsSubclass(items[0], ffi::PyExc_BaseException) {
                1 => true,
                0 => false,
                _ => {
                    ffi::PyErr_Clear();
                    false
                }
            }
        }
    };
    if !is_class {
        return type_error("start_response() argument 'exc_info' must be (exception class, value, traceback)");
    }
    // SAFETY: a live object, borrowed into a new reference.
    let traceback = unsafe { PyObj::from_borrowed(items[2]) };
    if let Ok(traceback) = traceback {
        // The interpreter's own traceback type (types.TracebackType), compared by identity.
        let kind = py::import("types").and_then(|t| t.getattr("TracebackType"));
        // SAFETY: a live object's type, compared by address with a live type object.
        let real = kind.map(|k| unsafe { ffi::Py_TYPE(traceback.as_ptr()).cast() == k.as_ptr() }).unwrap_or_else(|_| {
            // SAFETY: under the GIL; the failed look-up is dropped (the tuple is refused).
            unsafe { ffi::PyErr_Clear() };
            false
        });
        if !traceback.is_none() && !real {
            return type_error("start_response() argument 'exc_info' must be (exception class, value, traceback)");
        }
    }
    // SAFETY: checked items; PyErr_Restore steals the references taken here.
    unsafe {
        for &item in &items {
            ffi::Py_IncRef(item);
        }
        let (value, traceback) = (items[1], items[2]);
        let none = ffi::Py_None();
        #[allow(deprecated)]
        ffi::PyErr_Restore(
            items[0],
            value,
            if traceback == none {
                ffi::Py_DecRef(none);
                std::ptr::null_mut()
            } else {
                traceback
            },
        );
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
        SendError::NoStatus => "start_response() must be called before response content is produced",
        SendError::Refused => "Apache refused the response status or headers",
        SendError::BadContentLength(value) => {
            let value = String::from_utf8_lossy(&value).into_owned();
            return value_error(&format!("invalid Content-Length header value: {value:?}").replace('"', "'"));
        }
    };
    // SAFETY: static exception type.
    py::raise(unsafe { ffi::PyExc_RuntimeError }, message)
}
