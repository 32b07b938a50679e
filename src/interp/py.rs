//! Small owned-reference helpers over pyo3-ffi, so the WSGI code reads as Rust: a [`PyObj`]
//! owns one reference and drops it; a failing call returns `Err(PyErrSet)` with the Python
//! exception left set for the caller to log or propagate. All of this needs the GIL.

use crate::pyffi as ffi;
use std::ffi::CString;
use std::ptr::NonNull;

/// A Python exception is set in the current thread state.
#[derive(Debug)]
pub struct PyErrSet;

pub type PyResult<T> = Result<T, PyErrSet>;

/// One owned (strong) reference.
pub struct PyObj(NonNull<ffi::PyObject>);

impl PyObj {
    /// Takes ownership of a new reference; null means an exception is set.
    ///
    /// # Safety
    /// `ptr` must be a new (owned) reference or null with an exception set, under the GIL.
    pub unsafe fn from_owned(ptr: *mut ffi::PyObject) -> PyResult<PyObj> {
        NonNull::new(ptr).map(PyObj).ok_or(PyErrSet)
    }

    /// Takes a new reference to a borrowed one.
    ///
    /// # Safety
    /// `ptr` must be a live object (or null with an exception set), under the GIL.
    pub unsafe fn from_borrowed(ptr: *mut ffi::PyObject) -> PyResult<PyObj> {
        let obj = NonNull::new(ptr).ok_or(PyErrSet)?;
        // SAFETY: obj is live; we take our own reference.
        unsafe { ffi::Py_IncRef(obj.as_ptr()) };
        Ok(PyObj(obj))
    }

    pub fn as_ptr(&self) -> *mut ffi::PyObject {
        self.0.as_ptr()
    }

    /// Gives up ownership (for APIs that steal a reference).
    pub fn into_ptr(self) -> *mut ffi::PyObject {
        let ptr = self.0.as_ptr();
        std::mem::forget(self);
        ptr
    }

    pub fn getattr(&self, name: &str) -> PyResult<PyObj> {
        let name = cstring(name);
        // SAFETY: live object and C string.
        unsafe { PyObj::from_owned(ffi::PyObject_GetAttrString(self.as_ptr(), name.as_ptr())) }
    }

    pub fn hasattr(&self, name: &str) -> bool {
        let name = cstring(name);
        // SAFETY: live object; HasAttrString never raises.
        unsafe { ffi::PyObject_HasAttrString(self.as_ptr(), name.as_ptr()) != 0 }
    }

    pub fn setattr(&self, name: &str, value: &PyObj) -> PyResult<()> {
        let name = cstring(name);
        // SAFETY: live objects.
        check(unsafe { ffi::PyObject_SetAttrString(self.as_ptr(), name.as_ptr(), value.as_ptr()) })
    }

    /// `self(*args)`.
    pub fn call(&self, args: &[&PyObj]) -> PyResult<PyObj> {
        let tuple = tuple(args)?;
        // SAFETY: live callable and argument tuple.
        unsafe { PyObj::from_owned(ffi::PyObject_Call(self.as_ptr(), tuple.as_ptr(), std::ptr::null_mut())) }
    }

    pub fn call_method(&self, name: &str, args: &[&PyObj]) -> PyResult<PyObj> {
        self.getattr(name)?.call(args)
    }

    pub fn is_none(&self) -> bool {
        // SAFETY: Py_None is the static None object.
        self.as_ptr() == unsafe { ffi::Py_None() }
    }

    /// `str(self)` as Rust text (lossy).
    pub fn to_text(&self) -> String {
        // SAFETY: live object; a failing str() is cleared and reported as such.
        match unsafe { PyObj::from_owned(ffi::PyObject_Str(self.as_ptr())) } {
            Ok(s) => utf8(&s).unwrap_or_else(|| "<unprintable>".into()),
            Err(_) => {
                // SAFETY: under the GIL; discards the str() failure.
                unsafe { ffi::PyErr_Clear() };
                "<unprintable>".into()
            }
        }
    }
}

impl Clone for PyObj {
    fn clone(&self) -> PyObj {
        // SAFETY: self is live; Clone takes another reference.
        unsafe { ffi::Py_IncRef(self.as_ptr()) };
        PyObj(self.0)
    }
}

impl Drop for PyObj {
    fn drop(&mut self) {
        // SAFETY: we own one reference, and every PyObj is dropped under the GIL.
        unsafe { ffi::Py_DecRef(self.as_ptr()) }
    }
}

pub fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

/// 0 from a C-API status call is success; -1 means an exception is set.
pub fn check(status: i32) -> PyResult<()> {
    if status < 0 {
        Err(PyErrSet)
    } else {
        Ok(())
    }
}

pub fn none() -> PyObj {
    // SAFETY: Py_None is static; from_borrowed takes a reference.
    unsafe { PyObj::from_borrowed(ffi::Py_None()).expect("None exists") }
}

pub fn boolean(value: bool) -> PyObj {
    // SAFETY: PyBool_FromLong returns a new reference to True or False.
    unsafe { PyObj::from_owned(ffi::PyBool_FromLong(value as _)).expect("bool") }
}

pub fn int(value: i64) -> PyResult<PyObj> {
    // SAFETY: plain constructor.
    unsafe { PyObj::from_owned(ffi::PyLong_FromLongLong(value)) }
}

/// A native string (PEP 3333): on Python 2, `str`, the bytes as they are.
#[cfg(not(Py_3))]
pub fn latin1(bytes: &[u8]) -> PyResult<PyObj> {
    self::bytes(bytes)
}

/// A native string (PEP 3333): each byte is one code point, i.e. latin-1.
#[cfg(Py_3)]
pub fn latin1(bytes: &[u8]) -> PyResult<PyObj> {
    // SAFETY: pointer and length describe `bytes`; latin-1 decoding cannot fail.
    unsafe { PyObj::from_owned(ffi::PyUnicode_DecodeLatin1(bytes.as_ptr().cast(), bytes.len() as _, std::ptr::null())) }
}

#[cfg(not(Py_3))]
pub fn text(s: &str) -> PyResult<PyObj> {
    bytes(s.as_bytes())
}

#[cfg(Py_3)]
pub fn text(s: &str) -> PyResult<PyObj> {
    // SAFETY: pointer and length describe valid UTF-8.
    unsafe { PyObj::from_owned(ffi::PyUnicode_FromStringAndSize(s.as_ptr().cast(), s.len() as _)) }
}

/// A file's path as Python's `os.fsdecode` makes it (the file system encoding, undecodable
/// bytes as surrogates); on Python 2, `str`, the bytes as they are.
#[cfg(not(Py_3))]
pub fn fs_path(path: &[u8]) -> PyResult<PyObj> {
    bytes(path)
}

/// A file's path as Python's `os.fsdecode` makes it (the file system encoding, undecodable
/// bytes as surrogates).
#[cfg(Py_3)]
pub fn fs_path(path: &[u8]) -> PyResult<PyObj> {
    // SAFETY: pointer and length describe `path`; CPython copies it.
    unsafe { PyObj::from_owned(ffi::PyUnicode_DecodeFSDefaultAndSize(path.as_ptr().cast(), path.len() as _)) }
}

pub fn bytes(data: &[u8]) -> PyResult<PyObj> {
    // SAFETY: pointer and length describe `data`; CPython copies it.
    unsafe { PyObj::from_owned(ffi::PyBytes_FromStringAndSize(data.as_ptr().cast(), data.len() as _)) }
}

pub fn tuple(items: &[&PyObj]) -> PyResult<PyObj> {
    // SAFETY: a new tuple of the right size, each slot filled once with a new reference.
    unsafe {
        let t = PyObj::from_owned(ffi::PyTuple_New(items.len() as _))?;
        for (i, item) in items.iter().enumerate() {
            ffi::PyTuple_SetItem(t.as_ptr(), i as _, (*item).clone().into_ptr());
        }
        Ok(t)
    }
}

pub fn dict() -> PyResult<PyObj> {
    // SAFETY: plain constructor.
    unsafe { PyObj::from_owned(ffi::PyDict_New()) }
}

pub fn dict_set(dict: &PyObj, key: &str, value: &PyObj) -> PyResult<()> {
    let key = cstring(key);
    // SAFETY: live dict and value; the dict takes its own references.
    check(unsafe { ffi::PyDict_SetItemString(dict.as_ptr(), key.as_ptr(), value.as_ptr()) })
}

/// The `builtins` module (`__builtin__` on Python 2).
pub fn builtins() -> PyResult<PyObj> {
    import(if cfg!(Py_3) { "builtins" } else { "__builtin__" })
}

/// `import name`.
pub fn import(name: &str) -> PyResult<PyObj> {
    let name = cstring(name);
    // SAFETY: C string module name.
    unsafe { PyObj::from_owned(ffi::PyImport_ImportModule(name.as_ptr())) }
}

/// The bytes of a `bytes` object, or `None` for any other type.
pub fn as_bytes(obj: &PyObj) -> Option<&[u8]> {
    // SAFETY: type check first; the buffer lives as long as `obj`.
    unsafe {
        if ffi::PyBytes_Check(obj.as_ptr()) == 0 {
            return None;
        }
        let data = ffi::PyBytes_AsString(obj.as_ptr()) as *const u8;
        let len = ffi::PyBytes_Size(obj.as_ptr()) as usize;
        Some(std::slice::from_raw_parts(data, len))
    }
}

/// A `str` (or `unicode`) as text, or `None` for other types (Python 2).
#[cfg(not(Py_3))]
pub fn utf8(obj: &PyObj) -> Option<String> {
    if let Some(b) = as_bytes(obj) {
        return Some(String::from_utf8_lossy(b).into_owned());
    }
    // SAFETY: type check first; a failed encode is cleared.
    unsafe {
        if ffi::PyUnicode_Check(obj.as_ptr()) == 0 {
            return None;
        }
        match PyObj::from_owned(ffi::PyUnicode_AsUTF8String(obj.as_ptr())) {
            Ok(b) => as_bytes(&b).map(|b| String::from_utf8_lossy(b).into_owned()),
            Err(_) => {
                ffi::PyErr_Clear();
                None
            }
        }
    }
}

/// A `str` as UTF-8 text, or `None` for other types (or lone surrogates).
#[cfg(Py_3)]
pub fn utf8(obj: &PyObj) -> Option<String> {
    let mut size: ffi::Py_ssize_t = 0;
    // SAFETY: type check first; the UTF-8 buffer is cached on the object.
    unsafe {
        if ffi::PyUnicode_Check(obj.as_ptr()) == 0 {
            return None;
        }
        let data = ffi::PyUnicode_AsUTF8AndSize(obj.as_ptr(), &mut size);
        if data.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        Some(String::from_utf8_lossy(std::slice::from_raw_parts(data as *const u8, size as usize)).into_owned())
    }
}

/// A native `str` as bytes (PEP 3333 on Python 2: status and headers are byte strings;
/// `unicode` is refused, as mod_wsgi refuses it).
#[cfg(not(Py_3))]
pub fn latin1_bytes(obj: &PyObj) -> Option<Vec<u8>> {
    as_bytes(obj).map(<[u8]>::to_vec)
}

/// A `str` encoded as latin-1 (the only encoding PEP 3333 allows for headers), or `None`.
#[cfg(Py_3)]
pub fn latin1_bytes(obj: &PyObj) -> Option<Vec<u8>> {
    // SAFETY: type check first; a failed encode is cleared.
    unsafe {
        if ffi::PyUnicode_Check(obj.as_ptr()) == 0 {
            return None;
        }
        match PyObj::from_owned(ffi::PyUnicode_AsLatin1String(obj.as_ptr())) {
            Ok(b) => as_bytes(&b).map(<[u8]>::to_vec),
            Err(_) => {
                ffi::PyErr_Clear();
                None
            }
        }
    }
}

/// Raises `exc_type(message)` and returns the marker for the caller to propagate.
pub fn raise(exc_type: *mut ffi::PyObject, message: &str) -> PyErrSet {
    let message = cstring(message);
    // SAFETY: exc_type is one of CPython's static exception types.
    unsafe { ffi::PyErr_SetString(exc_type, message.as_ptr()) };
    PyErrSet
}

/// `Some(b)` when `obj` is `True` or `False` itself (not merely truthy), else `None`.
pub fn as_bool(obj: &PyObj) -> Option<bool> {
    [true, false].into_iter().find(|&b| boolean(b).as_ptr() == obj.as_ptr())
}

/// Every item `obj` yields, or `Err` when it is not iterable or its iteration raised (the
/// exception is left set).
pub fn collect(obj: &PyObj) -> PyResult<Vec<PyObj>> {
    // SAFETY: live object; a new iterator reference or null with an exception.
    let iter = unsafe { PyObj::from_owned(ffi::PyObject_GetIter(obj.as_ptr())) }?;
    let mut items = Vec::new();
    loop {
        // SAFETY: live iterator; null is the end, or an error when one is set.
        let item = unsafe { ffi::PyIter_Next(iter.as_ptr()) };
        if item.is_null() {
            // SAFETY: checks whether null meant an error.
            return if unsafe { ffi::PyErr_Occurred() }.is_null() { Ok(items) } else { Err(PyErrSet) };
        }
        // SAFETY: PyIter_Next returned a new reference.
        items.push(unsafe { PyObj::from_owned(item) }?);
    }
}

/// The name of `obj`'s type, for messages.
pub fn type_name(obj: &PyObj) -> String {
    // SAFETY: a live object's type is live; a missing __name__ is cleared.
    let name = unsafe { PyObj::from_borrowed(ffi::Py_TYPE(obj.as_ptr()).cast()) }.and_then(|t| t.getattr("__name__")).map(|n| n.to_text());
    name.unwrap_or_else(|_| {
        // SAFETY: under the GIL; discards the lookup failure.
        unsafe { ffi::PyErr_Clear() };
        "object".into()
    })
}
