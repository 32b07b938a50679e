//! The Python objects a request hands to the application: `start_response` (with its
//! `write`) and `wsgi.input`. Both are instances of small heap types created per interpreter,
//! each holding a pointer to the request's [`Exchange`] and the thread that serves it;
//! [`detach`] clears the pointer when the request ends. Only that thread may reach the
//! Exchange (it is not thread-safe, and its thread releases the GIL during I/O, when another
//! Python thread could run): elsewhere, and after the request, the objects raise.

use super::exchange::{Exchange, SendError};
use super::headers;
use super::py::{self, PyErrSet, PyObj, PyResult};
use crate::pyffi as ffi;
use std::ffi::{c_char, c_int, c_void, CStr};

/// Layout of both object types: the Python header, the exchange pointer and its thread.
#[repr(C)]
struct Handle {
    ob_base: ffi::PyObject,
    exchange: *const c_void,
    owner: libc::pthread_t,
}

/// This interpreter's two types (strong references kept for the interpreter's life).
pub struct Types {
    adapter: *mut ffi::PyObject,
    input: *mut ffi::PyObject,
}

/// A `PyMethodDef` table in a static.
#[repr(transparent)]
struct Methods<const N: usize>([ffi::PyMethodDef; N]);
// SAFETY: immutable after construction; CPython only reads method tables.
unsafe impl<const N: usize> Sync for Methods<N> {}

use ffi::method_kw as method;

const END: ffi::PyMethodDef = ffi::method_end();

static ADAPTER_METHODS: Methods<3> = Methods([
    method(c"start_response", start_response, c"start_response(status, headers, exc_info=None)"),
    method(c"write", write, c"write(data): send bytes before the returned iterable"),
    END,
]);

static INPUT_METHODS: Methods<4> = Methods([
    method(c"read", read, c"read(size=-1)"),
    method(c"readline", readline, c"readline(size=-1)"),
    method(c"readlines", readlines, c"readlines(hint=-1)"),
    END,
]);

fn make_type(name: &'static CStr, methods: *const ffi::PyMethodDef, iterable: bool) -> PyResult<*mut ffi::PyObject> {
    let mut slots = vec![ffi::PyType_Slot { slot: ffi::Py_tp_methods, pfunc: methods as *mut c_void }];
    if iterable {
        slots.push(ffi::PyType_Slot { slot: ffi::Py_tp_iter, pfunc: input_iter as *mut c_void });
        slots.push(ffi::PyType_Slot { slot: ffi::Py_tp_iternext, pfunc: input_next as *mut c_void });
    }
    slots.push(ffi::PyType_Slot { slot: 0, pfunc: std::ptr::null_mut() });
    let mut spec = ffi::PyType_Spec {
        name: name.as_ptr(),
        basicsize: std::mem::size_of::<Handle>() as c_int,
        itemsize: 0,
        flags: ffi::Py_TPFLAGS_DEFAULT as _,
        slots: slots.as_mut_ptr(),
    };
    // SAFETY: the spec and slots are valid for the call; name and methods are static.
    let t = unsafe { ffi::PyType_FromSpec(&mut spec) };
    if t.is_null() {
        Err(PyErrSet)
    } else {
        Ok(t)
    }
}

impl Types {
    /// Creates the types in the current interpreter (GIL held).
    pub fn create() -> PyResult<Types> {
        Ok(Types {
            adapter: make_type(c"mod_wsgi.Adapter", ADAPTER_METHODS.0.as_ptr(), false)?,
            input: make_type(c"mod_wsgi.Input", INPUT_METHODS.0.as_ptr(), true)?,
        })
    }

    fn instance(t: *mut ffi::PyObject, exchange: &Exchange) -> PyResult<PyObj> {
        // SAFETY: t is one of our heap types; GenericAlloc zero-fills and takes a type reference.
        let obj = unsafe { PyObj::from_owned(ffi::PyType_GenericAlloc(t.cast(), 0))? };
        // SAFETY: obj has the Handle layout (basicsize above); pthread_self has no
        // preconditions.
        unsafe {
            let handle = &mut *obj.as_ptr().cast::<Handle>();
            handle.exchange = (exchange as *const Exchange).cast();
            handle.owner = libc::pthread_self();
        }
        Ok(obj)
    }

    /// The object whose bound `start_response` method is passed to the application.
    pub fn adapter(&self, exchange: &Exchange) -> PyResult<PyObj> {
        Types::instance(self.adapter, exchange)
    }

    pub fn input(&self, exchange: &Exchange) -> PyResult<PyObj> {
        Types::instance(self.input, exchange)
    }
}

/// Ends an object's access to its request.
pub fn detach(obj: &PyObj) {
    // SAFETY: obj is an instance of one of our types (Handle layout).
    unsafe { (*obj.as_ptr().cast::<Handle>()).exchange = std::ptr::null() };
}

/// The exchange behind `slf`, or a RuntimeError once the request has ended (mod_wsgi's
/// text) or when called from a thread other than the one serving the request.
///
/// # Safety
/// `slf` must be an instance of one of our types, and the GIL held (the pointer is cleared
/// under the GIL, so it cannot change while we look at it).
unsafe fn exchange<'a>(slf: *mut ffi::PyObject) -> PyResult<&'a Exchange<'a>> {
    // SAFETY: Handle layout; the pointer is cleared before the Exchange is dropped.
    let handle = unsafe { &*slf.cast::<Handle>() };
    if handle.exchange.is_null() {
        // SAFETY: static exception type.
        return Err(py::raise(unsafe { ffi::PyExc_RuntimeError }, "request object has expired"));
    }
    // SAFETY: pthread_equal and pthread_self have no preconditions.
    if unsafe { libc::pthread_equal(handle.owner, libc::pthread_self()) } == 0 {
        // SAFETY: static exception type.
        return Err(py::raise(
            unsafe { ffi::PyExc_RuntimeError },
            "request object used from another thread: start_response, write and wsgi.input belong to the thread serving the request",
        ));
    }
    // SAFETY: a non-null pointer is the live Exchange of the request this thread is serving.
    Ok(unsafe { &*handle.exchange.cast::<Exchange>() })
}

/// Runs a method body: a panic becomes a RuntimeError, an `Err` a null return. Every
/// function the engine gives Python goes through it.
pub(super) fn entry(body: impl FnOnce() -> PyResult<PyObj>) -> *mut ffi::PyObject {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(obj)) => obj.into_ptr(),
        Ok(Err(PyErrSet)) => std::ptr::null_mut(),
        Err(_) => {
            // SAFETY: static exception type.
            py::raise(unsafe { ffi::PyExc_RuntimeError }, "internal error in mod_wsgi-rs (a Rust panic)");
            std::ptr::null_mut()
        }
    }
}

/// Positional argument `index`, or keyword `name`, or `None`.
fn arg(args: *mut ffi::PyObject, kwargs: *mut ffi::PyObject, index: usize, name: &CStr) -> PyResult<Option<PyObj>> {
    // SAFETY: args is the call's tuple, kwargs null or its dict; borrowed items are re-owned.
    unsafe {
        if !args.is_null() && (index as ffi::Py_ssize_t) < ffi::PyTuple_Size(args) {
            return PyObj::from_borrowed(ffi::PyTuple_GetItem(args, index as _)).map(Some);
        }
        if !kwargs.is_null() {
            let v = ffi::PyDict_GetItemString(kwargs, name.as_ptr());
            if !v.is_null() {
                return PyObj::from_borrowed(v).map(Some);
            }
        }
    }
    Ok(None)
}

fn size_arg(args: *mut ffi::PyObject, kwargs: *mut ffi::PyObject, name: &CStr) -> PyResult<i64> {
    match arg(args, kwargs, 0, name)? {
        None => Ok(-1),
        Some(v) if v.is_none() => Ok(-1),
        Some(v) => {
            // SAFETY: live object; -1 with an exception set means it was not an int.
            let n = unsafe { ffi::PyLong_AsLongLong(v.as_ptr()) };
            // SAFETY: checks for the exception PyLong_AsLongLong may have set.
            if n == -1 && unsafe { !ffi::PyErr_Occurred().is_null() } {
                return Err(PyErrSet);
            }
            Ok(n)
        }
    }
}

fn type_error(message: &str) -> PyErrSet {
    // SAFETY: static exception type.
    py::raise(unsafe { ffi::PyExc_TypeError }, message)
}

fn value_error(message: &str) -> PyErrSet {
    // SAFETY: static exception type.
    py::raise(unsafe { ffi::PyExc_ValueError }, message)
}

unsafe extern "C" fn start_response(slf: *mut ffi::PyObject, args: *mut ffi::PyObject, kwargs: *mut ffi::PyObject) -> *mut ffi::PyObject {
    entry(|| {
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

        /// A status or header string as bytes, with mod_wsgi's exceptions: a `str` that is not
        /// latin-1 is a ValueError, anything but a native string a TypeError.
        fn native_bytes(obj: &PyObj) -> PyResult<Vec<u8>> {
            if let Some(bytes) = py::latin1_bytes(obj) {
                return Ok(bytes);
            }
            #[cfg(Py_3)]
            // SAFETY: a type check on a live object.
            if unsafe { ffi::PyUnicode_Check(obj.as_ptr()) } != 0 {
                return Err(value_error("unicode object contains non latin-1 characters"));
            }
            let native = if cfg!(Py_3) { "unicode" } else { "byte string" };
            // SAFETY: a live object's type, borrowed.
            let kind = unsafe { PyObj::from_borrowed(ffi::Py_TYPE(obj.as_ptr()).cast()) }?;
            let kind = kind.getattr("__name__").map(|n| n.to_text()).unwrap_or_default();
            Err(type_error(&format!("expected {native} object, value of type {kind} found")))
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
    entry(|| {
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
    entry(|| {
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
    entry(|| {
        // SAFETY: slf is an Input.
        let ex = unsafe { exchange(slf)? };
        let size = size_arg(args, kwargs, c"size")?;
        line(ex, if size < 0 { usize::MAX } else { size as usize })
    })
}

unsafe extern "C" fn readlines(slf: *mut ffi::PyObject, args: *mut ffi::PyObject, kwargs: *mut ffi::PyObject) -> *mut ffi::PyObject {
    entry(|| {
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

unsafe extern "C" fn input_iter(slf: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: returns a new reference to self.
    unsafe { ffi::Py_IncRef(slf) };
    slf
}

unsafe extern "C" fn input_next(slf: *mut ffi::PyObject) -> *mut ffi::PyObject {
    entry(|| {
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

// The exchange pointer and its thread are the only fields after the object header.
const _: () = assert!(
    std::mem::size_of::<Handle>() == std::mem::size_of::<ffi::PyObject>() + std::mem::size_of::<*const c_char>() + std::mem::size_of::<libc::pthread_t>()
);
