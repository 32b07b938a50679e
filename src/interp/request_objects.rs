//! The Python objects a request hands to the application (`start_response` with its `write`,
//! in `start_response.rs`, and `wsgi.input`, in `input.rs`): small heap types created per
//! interpreter, each instance holding a pointer to the request's [`Exchange`] and the thread
//! that serves it; [`detach`] clears the pointer when the request ends. Only that thread may
//! reach the Exchange (it is not thread-safe, and its thread releases the GIL during I/O, when
//! another Python thread could run): elsewhere, and after the request, the objects raise.

use super::exchange::Exchange;
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
pub(super) struct Methods<const N: usize>(pub(super) [ffi::PyMethodDef; N]);
// SAFETY: immutable after construction; CPython only reads method tables.
unsafe impl<const N: usize> Sync for Methods<N> {}

/// The all-null entry that ends a method table.
pub(super) const END: ffi::PyMethodDef = ffi::method_end();

fn make_type(name: &'static CStr, methods: *const ffi::PyMethodDef, iterable: bool) -> PyResult<*mut ffi::PyObject> {
    let mut slots = vec![ffi::PyType_Slot { slot: ffi::Py_tp_methods, pfunc: methods as *mut c_void }];
    if iterable {
        slots.push(ffi::PyType_Slot { slot: ffi::Py_tp_iter, pfunc: super::input::iter as *mut c_void });
        slots.push(ffi::PyType_Slot { slot: ffi::Py_tp_iternext, pfunc: super::input::next as *mut c_void });
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
            adapter: make_type(c"mod_wsgi.Adapter", super::start_response::METHODS.0.as_ptr(), false)?,
            input: make_type(c"mod_wsgi.Input", super::input::METHODS.0.as_ptr(), true)?,
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
pub(super) unsafe fn exchange<'a>(slf: *mut ffi::PyObject) -> PyResult<&'a Exchange<'a>> {
    // SAFETY: forwarded from the caller.
    unsafe { exchange_or(slf, "request object has expired") }
}

/// As [`exchange`], with `expired` as the RuntimeError's message once the request is over.
///
/// # Safety
/// As for [`exchange`].
pub(super) unsafe fn exchange_or<'a>(slf: *mut ffi::PyObject, expired: &str) -> PyResult<&'a Exchange<'a>> {
    // SAFETY: Handle layout; the pointer is cleared before the Exchange is dropped.
    let handle = unsafe { &*slf.cast::<Handle>() };
    if handle.exchange.is_null() {
        // SAFETY: static exception type.
        return Err(py::raise(unsafe { ffi::PyExc_RuntimeError }, expired));
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

/// Positional argument `index`, or keyword `name`, or `None`.
pub(super) fn arg(args: *mut ffi::PyObject, kwargs: *mut ffi::PyObject, index: usize, name: &CStr) -> PyResult<Option<PyObj>> {
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

pub(super) fn size_arg(args: *mut ffi::PyObject, kwargs: *mut ffi::PyObject, name: &CStr) -> PyResult<i64> {
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

pub(super) fn type_error(message: &str) -> PyErrSet {
    // SAFETY: static exception type.
    py::raise(unsafe { ffi::PyExc_TypeError }, message)
}

pub(super) fn value_error(message: &str) -> PyErrSet {
    // SAFETY: static exception type.
    py::raise(unsafe { ffi::PyExc_ValueError }, message)
}

// The exchange pointer and its thread are the only fields after the object header.
const _: () = assert!(
    std::mem::size_of::<Handle>()
        == std::mem::size_of::<ffi::PyObject>() + std::mem::size_of::<*const c_char>() + std::mem::size_of::<libc::pthread_t>()
);
