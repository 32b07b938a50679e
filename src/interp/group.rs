//! Application groups: the name → interpreter registry.
//!
//! The main interpreter serves `%{GLOBAL}` (the empty name); every other name gets its own
//! sub-interpreter, created once, on first use, even when many threads ask for it at the same
//! moment. A look-up that finds the group takes no GIL and no exclusive lock.
//!
//! With `WSGIPerInterpreterGIL` (Python 3.12+) a group's interpreter gets its own GIL and
//! allocator (`Py_NewInterpreterFromConfig`): its requests run in parallel with those of the
//! main interpreter and of other such groups. A thread only ever holds one GIL: it enters an
//! interpreter through its cached state (`gil::GilGuard`) and leaves it before entering another.

use super::exchange::log_current;
use super::py::{self, PyObj, PyResult};
use super::{error, request_objects, settings};
use crate::abi::interpreter_options::GroupOptions;
use crate::abi::level;
use crate::gil::{self, GilGuard, InterpIndex, MAIN_INTERP};
use crate::pyffi as ffi;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

/// One interpreter and what the engine keeps for it.
pub struct Group {
    pub name: String,
    /// Which of the group's replicas (`replicas.rs`) this interpreter is, from 0.
    pub replica: u32,
    pub index: InterpIndex,
    /// Held while a script is (re)loaded into this interpreter, so that no thread sees a
    /// half-loaded module; taken with the GIL released (see `script.rs`).
    pub loader: Mutex<()>,
    /// Script path → its module name and the mtime it was loaded at.
    pub scripts: Mutex<HashMap<String, super::script::Loaded>>,
    /// A script was loaded into this interpreter once (`scripts` may be empty again after a
    /// failed reload): under `WSGIPerInterpreterGIL Auto` only a first import may move it.
    pub ever_loaded: AtomicBool,
    /// This interpreter's own `wsgi.input` and `start_response` types.
    pub types: request_objects::Types,
    /// `mod_wsgi.subscribe_events()` and `subscribe_shutdown()` callbacks, and the function
    /// that calls them (`bootstrap.py`'s `fire`).
    pub events: Events,
    /// What makes a request's `wsgi.errors` stream (`bootstrap.py`'s `new_errors`), and this
    /// interpreter's `wsgi.file_wrapper` class (owned for good).
    pub new_errors: *mut ffi::PyObject,
    pub file_wrapper: *mut ffi::PyObject,
    /// `bootstrap.py`'s `end_request`: logs what the thread's request left of a line on
    /// `sys.stdout` and `sys.stderr` (owned for good).
    end_request: *mut ffi::PyObject,
    /// The interpreter has its own GIL (`WSGIPerInterpreterGIL`): its requests bypass the
    /// shared GIL's scheduler, and moving a thread in or out of it releases one GIL and takes
    /// another (see [`leave_for`]).
    pub own_gil: bool,
    /// The GIL scheduler's gate of this interpreter's own GIL (`None` for the shared GIL,
    /// whose gate is the scheduler's, or when the scheduler is off).
    pub gate: Option<&'static crate::gil::scheduler::Gate>,
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

impl Group {
    /// A new `wsgi.errors` stream for one request (GIL held, in this interpreter): on Python 3
    /// an `io.TextIOWrapper` of its own, on Python 2 the interpreter's shared stream; closed
    /// when the request ends ([`ErrorsStream`]).
    pub fn new_errors(&self) -> PyResult<ErrorsStream<'_>> {
        // SAFETY: the group's own callable, alive for the interpreter's life.
        let stream = unsafe { PyObj::from_borrowed(self.new_errors)? }.call(&[])?;
        Ok(ErrorsStream { group: self, stream })
    }
}

/// A request's `wsgi.errors`, ended when dropped (GIL held, in its interpreter): what the
/// request left of a line on `sys.stdout` and `sys.stderr` (on this thread) is logged, then
/// the stream is closed: what is left of its line is logged, and later writes raise
/// `RuntimeError`, as in mod_wsgi. An exception pending at that moment is kept as it was.
pub struct ErrorsStream<'a> {
    group: &'a Group,
    pub stream: PyObj,
}

impl Drop for ErrorsStream<'_> {
    fn drop(&mut self) {
        let (mut t, mut v, mut tb) = (std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: under the GIL: any pending exception is taken out while end_request() and
        // close() run, and put back afterwards (PyErr_Restore steals the references
        // PyErr_Fetch gave).
        #[allow(deprecated)]
        unsafe {
            ffi::PyErr_Fetch(&mut t, &mut v, &mut tb);
        }
        // SAFETY: the group's own callable, alive for the interpreter's life.
        let end_request = unsafe { PyObj::from_borrowed(self.group.end_request) };
        for result in [end_request.and_then(|end| end.call(&[])), self.stream.call_method("close", &[])] {
            if result.is_err() {
                let traceback = error::take_traceback();
                crate::gil::outside(|| traceback.iter().for_each(|line| log_current(level::ERR, line)));
            }
        }
        // SAFETY: as above.
        #[allow(deprecated)]
        unsafe {
            ffi::PyErr_Restore(t, v, tb);
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
    let group = setup("", 0, MAIN_INTERP, false, &Prepared::new("", false, &settings::get().main_options))?;
    GROUPS.write().get_or_insert_with(HashMap::new).insert(String::new(), group);
    Ok(())
}

/// The group for `name`, creating its interpreter on first use. Call without the GIL.
///
/// A group whose set-up fails is not registered: its interpreter is ended, its index is
/// reused by the next group, and the next request for it tries again (and fails again, with
/// the same log lines, while the cause lasts).
///
/// `gil_mode` (`abi::gil_mode`) is the group's `WSGIPerInterpreterGIL`, used when this call
/// creates the interpreter: the first request (or `WSGIImportScript`) for a group decides.
/// `replica` is which of the group's interpreters (`replicas.rs`; 0 for a group of one).
/// `options` are its `<WSGIInterpreterOptions>` settings as the module encoded them
/// (`abi::interpreter_options`), likewise used (and only then decoded) on creation.
pub fn get_or_create(name: &str, replica: u32, gil_mode: std::ffi::c_int, options: &[u8]) -> Result<&'static Group, String> {
    if let Some(group) = lookup_key(&registry_key(name, replica)) {
        return Ok(group);
    }
    // Replicas need an own GIL: a group moved to the shared one (Auto) is one interpreter,
    // whatever replica a request chose before the move. (Checked on a miss only: the set of
    // moved groups is behind a lock.)
    let replica = if replica > 0 && !wants_own_gil(name, gil_mode) { 0 } else { replica };
    let key = registry_key(name, replica);
    if let Some(group) = lookup_key(&key) {
        return Ok(group);
    }
    let mut next_slot = CREATING.lock();
    if let Some(group) = lookup_key(&key) {
        return Ok(group);
    }
    if ABANDONED.lock().contains(&key) {
        return Err(format!(
            "Application group '{name}' is not created again in this process: its set-up failed while threads it started ran on (see the lines logged then)."
        ));
    }
    let index = InterpIndex(*next_slot);
    let own_gil = wants_own_gil(name, gil_mode);
    let prepared = Prepared::new(name, own_gil, &GroupOptions::decode(options));
    let group = create(name, replica, &key, index, own_gil, &prepared)?;
    *next_slot += 1;
    if own_gil {
        gil::heartbeat::watch(index);
    }
    GROUPS.write().get_or_insert_with(HashMap::new).insert(key, group);
    let replica_text = if replica > 0 { format!(" (replica {})", replica + 1) } else { String::new() };
    settings::log(level::INFO, &format!("Create interpreter '{name}'{replica_text}{}.", if own_gil { " with own GIL" } else { "" }));
    Ok(group)
}

/// The registry's key for a replica: the group's name for the first (so that everything that
/// knows a group by its name finds it), the name, a NUL and the replica's number for the
/// others (an Apache configuration string holds no NUL, so no group is named so).
fn registry_key(name: &str, replica: u32) -> String {
    if replica == 0 {
        name.to_string()
    } else {
        format!("{name}\0{replica}")
    }
}

/// Whether a group created with `gil_mode` gets its own GIL: never `%{GLOBAL}` (the main
/// interpreter), and only on Python 3.12+ (before, one warning per process says the setting
/// has no effect; `apache2 -t` said so too).
pub fn wants_own_gil(name: &str, gil_mode: std::ffi::c_int) -> bool {
    if name.is_empty() || gil_mode == crate::abi::gil_mode::SHARED {
        return false;
    }
    if gil_mode == crate::abi::gil_mode::AUTO && FELL_BACK.lock().iter().any(|n| n == name) {
        return false;
    }
    if cfg!(Py_3_12) {
        return true;
    }
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        settings::log(
            level::WARNING,
            &format!("WSGIPerInterpreterGIL requires Python 3.12 or later; it has no effect with Python {}.", env!("MOD_WSGI_ENGINE_PYTHON_VERSION")),
        );
    }
    false
}

/// The group `name` (its first replica) if its interpreter exists (no GIL, a shared lock for
/// a moment).
pub fn lookup(name: &str) -> Option<&'static Group> {
    lookup_key(name)
}

/// Bumped whenever a group leaves the registry (`set_aside`, under the registry's write lock):
/// threads' caches of it are then stale. (A group that joins it is found by a cache miss.)
/// The groups themselves are read under the registry's lock, so the counter needs no more
/// than Acquire/Release.
static REMOVALS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

thread_local! {
    /// The groups this thread has looked up, and `REMOVALS` when it filled it: the request
    /// path finds its group without the registry's lock.
    static SEEN: std::cell::RefCell<(u64, HashMap<String, &'static Group>)> = std::cell::RefCell::new((0, HashMap::new()));
}

fn lookup_key(key: &str) -> Option<&'static Group> {
    let removals = REMOVALS.load(std::sync::atomic::Ordering::Acquire);
    let cached = SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        if seen.0 != removals {
            *seen = (removals, HashMap::new());
        }
        seen.1.get(key).copied()
    });
    if cached.is_some() {
        return cached;
    }
    let found = GROUPS.read().as_ref()?.get(key).copied()?;
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        if seen.0 == removals {
            seen.1.insert(key.to_string(), found);
        }
    });
    Some(found)
}

/// Every group (for shutdown), set-aside ones included, the main interpreter's last.
pub fn all() -> Vec<&'static Group> {
    let mut groups: Vec<_> = GROUPS.read().as_ref().map(|g| g.values().copied().collect()).unwrap_or_default();
    groups.extend(SET_ASIDE.lock().iter().copied());
    groups.sort_by_key(|g| std::cmp::Reverse(g.index.0));
    groups
}

fn create(name: &str, replica: u32, key: &str, index: InterpIndex, own_gil: bool, prepared: &Prepared) -> Result<&'static Group, String> {
    let _main = GilGuard::acquire(MAIN_INTERP);
    let main_tstate = gil::thread_state(MAIN_INTERP);
    // SAFETY: the GIL is held through the main interpreter, whose state is current.
    let tstate = match unsafe { new_interpreter(own_gil, main_tstate) } {
        Ok(tstate) => tstate,
        // The main state is current again, its GIL held.
        Err(why) => return Err(format!("Python could not create a sub interpreter for application group '{name}'{why}")),
    };
    // SAFETY: tstate is the new, current thread state.
    let interp = unsafe { ffi::compat::current_interpreter() };
    gil::register_interpreter(index, interp);
    gil::adopt_current(index, tstate);
    let group = setup(name, replica, index, own_gil, prepared);
    let mut ended = false;
    if group.is_err() {
        // The interpreter ends and its index serves the next group (one in which a site hook
        // started threads that still run is left as it is). The group was never registered,
        // so no other thread can have asked for a state in it: this thread's is the only one
        // the cache knows (a stale one elsewhere would not be handed out anyway: see
        // `gil::forget_interpreter`).
        // SAFETY: the failed interpreter is current on this thread through tstate, the GIL
        // is held, and setup() left no exception set.
        ended = unsafe { super::runtime::end_interpreter(index, tstate, name, own_gil) };
        if !ended {
            // Its threads run on in an interpreter that cannot be ended: trying again would
            // leave one more behind each time.
            ABANDONED.lock().push(key.to_string());
        }
    }
    // SAFETY: back to this thread's main state (from the new interpreter, or from none if it
    // ended); _main's drop releases the GIL through it.
    unsafe { leave_for(own_gil, ended, main_tstate) };
    group
}

/// Creates an interpreter and its first thread state on this thread, which becomes current
/// (on failure, what CPython said, if anything, as text to append to a message: then `main`
/// is current again, its GIL held). With `own_gil` (3.12+) the
/// interpreter has its own GIL (held on return; the main GIL is released by CPython) and its
/// own allocator, which CPython allows only with `check_multi_interp_extensions` (extensions
/// without multi-phase init refuse to import: "does not support loading in
/// subinterpreters"); `exec` (subprocess), threads and daemon threads stay allowed, `fork`
/// does not (a fork from a thread of a multi-GIL process is not safe in CPython).
///
/// # Safety
/// The GIL must be held through `main`, current on this thread.
unsafe fn new_interpreter(own_gil: bool, main: *mut ffi::PyThreadState) -> Result<*mut ffi::PyThreadState, String> {
    #[cfg(Py_3_12)]
    if own_gil {
        let config = ffi::PyInterpreterConfig {
            use_main_obmalloc: 0,
            allow_fork: 0,
            allow_exec: 1,
            allow_threads: 1,
            allow_daemon_threads: 1,
            check_multi_interp_extensions: 1,
            gil: ffi::PyInterpreterConfig_OWN_GIL,
        };
        let mut tstate = std::ptr::null_mut();
        // SAFETY: forwarded from the caller; the config is valid for the call.
        let status = unsafe { ffi::Py_NewInterpreterFromConfig(&mut tstate, &config) };
        // SAFETY: PyStatus_Exception only reads the status.
        if unsafe { ffi::PyStatus_Exception(status) } != 0 || tstate.is_null() {
            // CPython restores the caller's state; should it have left none current, the
            // main GIL is taken back here.
            // SAFETY: reads this thread's current state, which may be null.
            if unsafe { ffi::compat::current_thread_state_unchecked() }.is_null() {
                // SAFETY: main is this thread's main state, not current.
                unsafe { ffi::PyEval_RestoreThread(main) };
            }
            let why = if status.err_msg.is_null() {
                String::new()
            } else {
                // SAFETY: a PyStatus's err_msg is a static NUL-terminated string when set.
                format!(": {}", unsafe { std::ffi::CStr::from_ptr(status.err_msg) }.to_string_lossy())
            };
            return Err(why);
        }
        OWN_GIL_CREATED.store(true, std::sync::atomic::Ordering::SeqCst);
        return Ok(tstate);
    }
    let _ = (own_gil, main);
    // SAFETY: forwarded from the caller; Py_NewInterpreter makes a new interpreter and a
    // thread state for it on this thread, and makes that state current (or, failing, makes
    // the caller's state current again).
    let tstate = unsafe { ffi::Py_NewInterpreter() };
    if tstate.is_null() {
        return Err(String::new());
    }
    Ok(tstate)
}

/// An interpreter with its own GIL was created in this process (even one whose set-up then
/// failed): see `runtime::shutdown` for what that changes on Python 3.12.
pub static OWN_GIL_CREATED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Groups that `WSGIPerInterpreterGIL Auto` moved to the shared GIL (`fallback.rs`).
static FELL_BACK: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// Their own-GIL interpreters, out of the registry: ended with the others at exit.
static SET_ASIDE: Mutex<Vec<&'static Group>> = Mutex::new(Vec::new());

/// Takes every interpreter of `name` (all its replicas) out of the registry, and makes the
/// next one created for it, under `WSGIPerInterpreterGIL Auto`, share the main GIL. Call
/// without the GIL. Requests already in the old interpreters finish there. False when another
/// thread moved it first.
pub fn set_aside(name: &str) -> bool {
    let _creating = CREATING.lock();
    {
        let mut fell_back = FELL_BACK.lock();
        if fell_back.iter().any(|n| n == name) {
            return false;
        }
        fell_back.push(name.to_string());
    }
    let mut guard = GROUPS.write();
    let Some(groups) = guard.as_mut() else { return true };
    let prefix = format!("{name}\0");
    let keys: Vec<String> = groups.keys().filter(|k| *k == name || k.starts_with(&prefix)).cloned().collect();
    let mut set_aside = SET_ASIDE.lock();
    REMOVALS.fetch_add(1, std::sync::atomic::Ordering::Release);
    for key in keys {
        if let Some(group) = groups.remove(&key) {
            if group.own_gil {
                set_aside.push(group);
            } else {
                // Already on the shared GIL (another request moved it first): keep it.
                groups.insert(key, group);
            }
        }
    }
    true
}

/// Groups whose set-up failed with threads of theirs still running, so that their
/// interpreter was left as it is: not created again in this process.
static ABANDONED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Moves this thread from a sub-interpreter's state (current, its GIL held), or from none
/// when `ended` (`Py_EndInterpreter` left no state current), to `to` (another interpreter's
/// state of this thread), whose GIL it then holds. Between interpreters that share the GIL a
/// swap (which on 3.12+ releases and takes the one GIL itself); with an own GIL, the GIL is
/// given back and the other one taken, so that a thread never holds two.
///
/// # Safety
/// As described: the state left is current with its GIL held, or none is current after an
/// interpreter ended; `to` belongs to this thread and is not current.
pub unsafe fn leave_for(own_gil: bool, ended: bool, to: *mut ffi::PyThreadState) {
    // SAFETY: forwarded from the caller.
    unsafe {
        if !own_gil {
            ffi::PyThreadState_Swap(to);
            return;
        }
        if !ended {
            ffi::PyEval_SaveThread();
        }
        ffi::PyEval_RestoreThread(to);
    }
}

/// Moves this thread from `from` (current, a shared-GIL interpreter's state, GIL held) into
/// `to`, this thread's state in the interpreter of a group whose GIL is `own_gil`.
///
/// # Safety
/// `from` is current with its GIL held; `to` belongs to this thread and is not current.
pub unsafe fn enter_from_shared(own_gil: bool, to: *mut ffi::PyThreadState) {
    // SAFETY: forwarded from the caller.
    unsafe {
        if own_gil {
            ffi::PyEval_SaveThread();
            ffi::PyEval_RestoreThread(to);
        } else {
            ffi::PyThreadState_Swap(to);
        }
    }
}

/// What a new interpreter is set up with: the process-wide settings, with its group's
/// `<WSGIInterpreterOptions>` settings over them (mod_wsgi 6's rules).
struct Prepared {
    /// `WSGIPythonPath` (or a daemon's `python-path=`), then each container's, least specific
    /// first: each layer is moved in front of the ones before.
    python_path: Vec<Vec<String>>,
    restrict_stdin: bool,
    restrict_stdout: bool,
    restrict_signal: bool,
    /// Seconds; 0: leave the GIL's as it is.
    switch_interval: f64,
}

impl Prepared {
    /// Resolves the settings, before the interpreter exists (no GIL needed). A switch interval
    /// from a container that selects an application group is skipped, with a warning, for an
    /// interpreter on the shared GIL: `sys.setswitchinterval` there would change every
    /// group's (and the main interpreter's, which a `%{GLOBAL}` container may set).
    fn new(name: &str, own_gil: bool, options: &GroupOptions) -> Prepared {
        let s = settings::get();
        let split = |layer: &str| layer.split(':').filter(|p| !p.is_empty()).map(str::to_string).collect::<Vec<_>>();
        let switch_interval = match options.switch_interval {
            Some(seconds) if options.switch_interval_app_scoped && !own_gil && !name.is_empty() => {
                settings::log(level::WARNING, &format!(
                    "Skipping per-interpreter switch interval {seconds:.6}s for '{name}': setting it would mutate the process-global value because this interpreter does not have its own GIL."
                ));
                0.0
            }
            Some(seconds) => seconds,
            None => s.switch_interval,
        };
        Prepared {
            python_path: std::iter::once(s.python_path.clone()).chain(options.python_path.iter().map(|l| split(l))).collect(),
            restrict_stdin: options.restrict_stdin.unwrap_or(s.restrict_stdin),
            restrict_stdout: options.restrict_stdout.unwrap_or(s.restrict_stdout),
            restrict_signal: options.restrict_signal.unwrap_or(s.restrict_signal),
            switch_interval,
        }
    }
}

/// Prepares a fresh interpreter (current on this thread, GIL held) for applications.
fn setup(name: &str, replica: u32, index: InterpIndex, own_gil: bool, p: &Prepared) -> Result<&'static Group, String> {
    let run = || -> PyResult<(request_objects::Types, Events, [*mut ffi::PyObject; 3])> {
        let s = settings::get();
        let bootstrap = run_bootstrap()?;
        let environ: Vec<PyObj> = s.initial_environ.iter().map(|(k, v)| py::tuple(&[&py::bytes(k)?, &py::bytes(v)?])).collect::<PyResult<_>>()?;
        let environ = list(&environ)?;
        let layer = |dirs: &Vec<String>| list(&dirs.iter().map(|d| py::text(d)).collect::<PyResult<Vec<_>>>()?);
        let path = list(&p.python_path.iter().map(layer).collect::<PyResult<Vec<_>>>()?)?;
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
            &py::boolean(p.restrict_stdin),
            &py::boolean(p.restrict_stdout),
            &py::boolean(p.restrict_signal),
            &limits.0,
            &limits.1,
            &py::text(&s.process_group)?,
            // SAFETY: a new float object.
            &unsafe { PyObj::from_owned(ffi::PyFloat_FromDouble(p.switch_interval))? },
            &py::boolean(own_gil),
            &s.home_path.as_deref().map_or_else(|| Ok(py::none()), py::text)?,
        ])?;
        // mod_wsgi 6.1's recording API, beside setup()'s attributes.
        let module = py::import("mod_wsgi")?;
        for (name, function) in super::builtins::recording_functions()? {
            module.setattr(name, &function)?;
        }
        // SAFETY: setup() returns a 6-tuple; each item is kept (one reference) for good.
        let item = |i| unsafe { PyObj::from_borrowed(ffi::PyTuple_GetItem(lists.as_ptr(), i)).map(PyObj::into_ptr) };
        let events = Events { requests: item(0)?, shutdown: item(1)?, fire: item(2)? };
        Ok((request_objects::Types::create()?, events, [item(3)?, item(4)?, item(5)?]))
    };
    match run() {
        Ok((types, events, [new_errors, file_wrapper, end_request])) => Ok(Box::leak(Box::new(Group {
            name: name.to_string(),
            replica,
            index,
            loader: Mutex::new(()),
            scripts: Mutex::new(HashMap::new()),
            ever_loaded: AtomicBool::new(false),
            types,
            events,
            new_errors,
            file_wrapper,
            end_request,
            own_gil,
            gate: if own_gil { crate::gil::scheduler::own_gate() } else { None },
        }))),
        Err(_) => {
            let lines = error::take_traceback();
            Err(format!("Failed to set up interpreter for application group '{name}':\n{}", lines.join("\n")))
        }
    }
}

/// Compiles `single_phase.py` and `bootstrap.py` in this interpreter, into one namespace,
/// and returns the latter's `setup` function.
fn run_bootstrap() -> PyResult<PyObj> {
    let globals = py::dict()?;
    let builtins = py::builtins()?;
    py::dict_set(&globals, "__builtins__", &builtins)?;
    for text in [include_str!("single_phase.py"), include_str!("bootstrap.py")] {
        let source = py::cstring(text);
        // SAFETY: C source string and a live globals dict; the result is a new reference.
        let _ = unsafe {
            PyObj::from_owned(ffi::PyRun_StringFlags(source.as_ptr(), ffi::Py_file_input, globals.as_ptr(), globals.as_ptr(), std::ptr::null_mut()))?
        };
    }
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
