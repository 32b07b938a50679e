//! Application groups: the name → interpreter registry.
//!
//! The main interpreter serves `%{GLOBAL}` (the empty name); every other name gets its own
//! sub-interpreter, created once, on first use, even when many threads ask for it at the same
//! moment. A look-up that finds the group takes no GIL and no exclusive lock.

use super::py::{self, PyObj, PyResult};
use super::{error, request_objects, settings};
use crate::abi::level;
use crate::gil::{self, GilGuard, InterpIndex, MAIN_INTERP};
use parking_lot::{Mutex, RwLock};
use crate::pyffi as ffi;
use std::collections::HashMap;

/// One interpreter and what the engine keeps for it.
pub struct Group {
    pub name: String,
    pub index: InterpIndex,
    /// Held while a script is (re)loaded into this interpreter, so that no thread sees a
    /// half-loaded module; taken with the GIL released (see `script.rs`).
    pub loader: Mutex<()>,
    /// Script path → its module name and the mtime it was loaded at.
    pub scripts: Mutex<HashMap<String, super::script::Loaded>>,
    /// This interpreter's own `wsgi.input` and `start_response` types.
    pub types: request_objects::Types,
    /// `mod_wsgi.subscribe_events()` and `subscribe_shutdown()` callbacks, and the function
    /// that calls them (`bootstrap.py`'s `fire`).
    pub events: Events,
    /// This interpreter's `wsgi.errors` stream and `wsgi.file_wrapper` class (owned for good).
    pub errors: *mut ffi::PyObject,
    pub file_wrapper: *mut ffi::PyObject,
}

/// The subscriber lists of one interpreter (Python lists, owned for the interpreter's life).
pub struct Events {
    requests: *mut ffi::PyObject,
    shutdown: *mut ffi::PyObject,
    fire: *mut ffi::PyObject,
}

/// Which subscribers an event goes to.
#[derive(Clone, Copy)]
pub enum Subscribers {
    /// `mod_wsgi.subscribe_events()`: request_started, request_finished, request_exception.
    Requests,
    /// `mod_wsgi.subscribe_shutdown()`: process_stopping.
    Shutdown,
}

impl Events {
    fn list(&self, which: Subscribers) -> *mut ffi::PyObject {
        match which {
            Subscribers::Requests => self.requests,
            Subscribers::Shutdown => self.shutdown,
        }
    }

    /// Whether anybody subscribed (GIL held, in this interpreter).
    pub fn any(&self, which: Subscribers) -> bool {
        // SAFETY: the list is this interpreter's, alive as long as the group; the GIL is held.
        unsafe { ffi::PyList_Size(self.list(which)) > 0 }
    }

    /// Calls the subscribers with `name` and `kwargs` (GIL held, in this interpreter).
    /// Cheap when nobody subscribed.
    pub fn fire(&self, which: Subscribers, name: &str, kwargs: impl FnOnce() -> PyResult<PyObj>) {
        if !self.any(which) {
            return;
        }
        let callbacks = self.list(which);
        let call = || -> PyResult<()> {
            // SAFETY: both are live objects owned by this group.
            let (fire, list) = unsafe { (PyObj::from_borrowed(self.fire)?, PyObj::from_borrowed(callbacks)?) };
            fire.call(&[&list, &py::text(name)?, &kwargs()?])?;
            Ok(())
        };
        if call().is_err() {
            settings::log_lines(level::ERR, &error::take_traceback());
        }
    }
}

// SAFETY: the type objects in `types` are only touched with this interpreter's GIL held.
unsafe impl Sync for Group {}
// SAFETY: as above.
unsafe impl Send for Group {}

/// Groups live until the process exits, so the registry hands out `&'static Group`.
static GROUPS: RwLock<Option<HashMap<String, &'static Group>>> = RwLock::new(None);
/// Serialises creation, so each interpreter is created at most once; holds the next free
/// index. Python runs while it is held (the new interpreter's set-up), so it is only ever
/// waited for without the GIL (`get_or_create`'s contract): the holder can always get the GIL.
static CREATING: Mutex<usize> = Mutex::new(1);

/// Registers the main interpreter: called by `runtime::init` with the GIL held on this thread.
pub fn register_main(interp: *mut ffi::PyInterpreterState, tstate: *mut ffi::PyThreadState) -> Result<(), String> {
    gil::register_interpreter(MAIN_INTERP, interp);
    gil::adopt_current(MAIN_INTERP, tstate);
    let group = setup("", MAIN_INTERP)?;
    GROUPS.write().get_or_insert_with(HashMap::new).insert(String::new(), group);
    Ok(())
}

/// The group for `name`, creating its interpreter on first use. Call without the GIL.
///
/// A group whose set-up fails is not registered: its interpreter is ended, its index is
/// reused by the next group, and the next request for it tries again (and fails again, with
/// the same log lines, while the cause lasts).
pub fn get_or_create(name: &str) -> Result<&'static Group, String> {
    if let Some(group) = lookup(name) {
        return Ok(group);
    }
    let mut next_slot = CREATING.lock();
    if let Some(group) = lookup(name) {
        return Ok(group);
    }
    let index = InterpIndex(*next_slot);
    let group = create(name, index)?;
    *next_slot += 1;
    GROUPS.write().get_or_insert_with(HashMap::new).insert(name.to_string(), group);
    settings::log(level::INFO, &format!("Create interpreter '{name}'."));
    Ok(group)
}

fn lookup(name: &str) -> Option<&'static Group> {
    GROUPS.read().as_ref()?.get(name).copied()
}

/// Every group (for shutdown), the main interpreter's last.
pub fn all() -> Vec<&'static Group> {
    let mut groups: Vec<_> = GROUPS.read().as_ref().map(|g| g.values().copied().collect()).unwrap_or_default();
    groups.sort_by_key(|g| std::cmp::Reverse(g.index.0));
    groups
}

fn create(name: &str, index: InterpIndex) -> Result<&'static Group, String> {
    let _main = GilGuard::acquire(MAIN_INTERP);
    let main_tstate = gil::thread_state(MAIN_INTERP);
    // SAFETY: the GIL is held through the main interpreter; Py_NewInterpreter makes a new
    // interpreter and a thread state for it on this thread, and makes that state current.
    let tstate = unsafe { ffi::Py_NewInterpreter() };
    if tstate.is_null() {
        // Py_NewInterpreter made the main state current again.
        return Err(format!("Python could not create a sub interpreter for application group '{name}'"));
    }
    // SAFETY: tstate is the new, current thread state.
    let interp = unsafe { ffi::compat::current_interpreter() };
    gil::register_interpreter(index, interp);
    gil::adopt_current(index, tstate);
    let group = setup(name, index);
    if group.is_err() {
        // The interpreter ends and its index serves the next group (one in which a site hook
        // started threads that still run is left as it is). The group was never registered,
        // so no other thread can have asked for a state in it: this thread's is the only one
        // the cache knows (a stale one elsewhere would not be handed out anyway: see
        // `gil::forget_interpreter`).
        // SAFETY: the failed interpreter is current on this thread through tstate, the GIL
        // is held, and setup() left no exception set.
        unsafe { super::runtime::end_interpreter(index, tstate, name) };
    }
    // SAFETY: back to this thread's main state; _main's drop releases the GIL through it.
    unsafe { ffi::PyThreadState_Swap(main_tstate) };
    group
}

/// Prepares a fresh interpreter (current on this thread, GIL held) for applications.
fn setup(name: &str, index: InterpIndex) -> Result<&'static Group, String> {
    let run = || -> PyResult<(request_objects::Types, Events, [*mut ffi::PyObject; 2])> {
        let s = settings::get();
        let bootstrap = run_bootstrap()?;
        let environ: Vec<PyObj> = s
            .initial_environ
            .iter()
            .map(|(k, v)| py::tuple(&[&py::bytes(k)?, &py::bytes(v)?]))
            .collect::<PyResult<_>>()?;
        let environ = list(&environ)?;
        let path = list(&s.python_path.iter().map(|p| py::text(p)).collect::<PyResult<Vec<_>>>()?)?;
        let version = settings::mod_wsgi_version()?;
        let limits = (py::int(s.maximum_processes as i64)?, py::int(s.threads_per_process as i64)?);
        let lists = bootstrap.call(&[
            &py::text(name)?,
            &py::boolean(index == MAIN_INTERP),
            &environ,
            &path,
            &version,
            &super::builtins::process_metrics_function()?,
            &super::builtins::server_metrics_function()?,
            &super::builtins::log_function()?,
            &py::boolean(s.restrict_stdin),
            &py::boolean(s.restrict_stdout),
            &py::boolean(s.restrict_signal),
            &limits.0,
            &limits.1,
            &py::text(&s.process_group)?,
            // SAFETY: a new float object.
            &unsafe { PyObj::from_owned(ffi::PyFloat_FromDouble(s.switch_interval))? },
        ])?;
        // SAFETY: setup() returns a 5-tuple; each item is kept (one reference) for good.
        let item = |i| unsafe { PyObj::from_borrowed(ffi::PyTuple_GetItem(lists.as_ptr(), i)).map(PyObj::into_ptr) };
        let events = Events { requests: item(0)?, shutdown: item(1)?, fire: item(2)? };
        Ok((request_objects::Types::create()?, events, [item(3)?, item(4)?]))
    };
    match run() {
        Ok((types, events, [errors, file_wrapper])) => Ok(Box::leak(Box::new(Group {
            name: name.to_string(),
            index,
            loader: Mutex::new(()),
            scripts: Mutex::new(HashMap::new()),
            types,
            events,
            errors,
            file_wrapper,
        }))),
        Err(_) => {
            let lines = error::take_traceback();
            Err(format!("Failed to set up interpreter for application group '{name}':\n{}", lines.join("\n")))
        }
    }
}

/// Compiles `bootstrap.py` in this interpreter and returns its `setup` function.
fn run_bootstrap() -> PyResult<PyObj> {
    let source = py::cstring(include_str!("bootstrap.py"));
    let globals = py::dict()?;
    let builtins = py::builtins()?;
    py::dict_set(&globals, "__builtins__", &builtins)?;
    // SAFETY: C source string and a live globals dict; the result is a new reference.
    let _ = unsafe {
        PyObj::from_owned(ffi::PyRun_StringFlags(
            source.as_ptr(),
            ffi::Py_file_input,
            globals.as_ptr(),
            globals.as_ptr(),
            std::ptr::null_mut(),
        ))?
    };
    let key = py::cstring("setup");
    // SAFETY: live dict; the borrowed result is turned into an owned one.
    unsafe { PyObj::from_borrowed(ffi::PyDict_GetItemString(globals.as_ptr(), key.as_ptr())) }
}

fn list(items: &[PyObj]) -> PyResult<PyObj> {
    // SAFETY: a new list filled slot by slot with new references (SetItem steals them).
    unsafe {
        let l = PyObj::from_owned(ffi::PyList_New(items.len() as _))?;
        for (i, item) in items.iter().enumerate() {
            ffi::PyList_SetItem(l.as_ptr(), i as _, item.clone().into_ptr());
        }
        Ok(l)
    }
}
