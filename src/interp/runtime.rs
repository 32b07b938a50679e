//! Starting and ending Python in a child process.

use super::group::Subscribers;
use super::py::PyObj;
use super::{error, group, py, settings};
use crate::abi::{self, level};
use crate::gil::scheduler::{self, Concurrency};
use crate::gil::{self, InterpIndex, MAIN_INTERP};
use crate::pyffi as ffi;
use parking_lot::Mutex;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

/// Initialises Python in this process: called once, in the child, after fork.
pub fn init(config: &abi::EngineConfig) -> Result<(), String> {
    // SAFETY: the module's byte strings are valid for the call.
    let (home, path, version) = unsafe { (config.python_home.to_text(), config.python_path.to_text(), config.module_version.to_text()) };
    settings::set(settings::Settings {
        python_path: path.split(':').filter(|p| !p.is_empty()).map(str::to_string).collect(),
        // SAFETY: the module's byte string is valid for the call.
        home_path: Some(unsafe { config.home_path.to_text() }).filter(|h| !h.is_empty()),
        multithread: config.multithread != 0,
        multiprocess: config.multiprocess != 0,
        maximum_processes: config.maximum_processes.max(1) as usize,
        restrict_stdin: config.restrict_stdin != 0,
        restrict_stdout: config.restrict_stdout != 0,
        restrict_signal: config.restrict_signal != 0,
        switch_interval: config.switch_interval_us as f64 / 1e6,
        destroy_interpreter: config.destroy_interpreter != 0,
        // SAFETY: the module's byte string is valid for the call.
        main_options: abi::interpreter_options::GroupOptions::decode(unsafe { config.main_options.as_slice() }),
        threads_per_process: config.threads_per_child.max(1) as usize,
        module_version: version,
        // SAFETY: the module's byte string is valid for the call.
        process_group: unsafe { config.process_group.to_text() },
        // SAFETY: the module's byte string is valid for the call.
        apache_version: parse_apache_version(&unsafe { config.server_banner.to_text() }),
        log: config.log,
        scoreboard: config.scoreboard,
        metrics: config.metrics,
        initial_environ: std::env::vars_os().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect(),
    });

    // The thread starting Python is thread 0 (mod_wsgi.thread_id), as in mod_wsgi.
    super::environ::thread_id();
    let concurrency = match config.python_concurrency {
        0 => Concurrency::Unlimited,
        n if n < 0 => Concurrency::Auto,
        n => Concurrency::Fixed(n as usize),
    };
    scheduler::configure(concurrency, Duration::from_millis(config.queue_timeout_ms), config.threads_per_child.max(1) as usize);

    // SAFETY: the module's byte string is valid for the call.
    let warnings = String::from_utf8_lossy(unsafe { config.python_warnings.as_slice() }).lines().map(str::to_string).collect();
    ffi::compat::initialize(&ffi::compat::InitOptions {
        venv: !home.is_empty() && Path::new(&home).join("pyvenv.cfg").is_file(),
        home: home.clone(),
        optimize: config.python_optimize,
        dont_write_bytecode: config.dont_write_bytecode != 0,
        warnings,
        // SAFETY: the module's byte string is valid for the call.
        hash_seed: Some(unsafe { config.hash_seed.to_text() }).filter(|s| !s.is_empty()),
    })?;
    // SAFETY: Python is initialised and this thread holds the GIL through its first state.
    let (interp, tstate) = unsafe { (ffi::compat::current_interpreter(), ffi::PyThreadState_Get()) };
    let registered = group::register_main(interp, tstate);
    if registered.is_err() {
        error::take_traceback();
    }
    // SAFETY: releases the GIL; the state stays this thread's main-interpreter state.
    unsafe { ffi::PyEval_SaveThread() };
    registered?;
    settings::log(
        level::INFO,
        &format!("mod_wsgi-rs/{} initialised Python {}.", settings::get().module_version, env!("MOD_WSGI_ENGINE_PYTHON_VERSION")),
    );
    Ok(())
}

/// Loads the `WSGIImportScript` scripts into their groups (after Python started, GIL free).
pub fn import_scripts(config: &abi::EngineConfig) {
    let entries = if config.import_scripts.is_null() {
        &[][..]
    } else {
        // SAFETY: the module passes import_scripts_len entries valid for the init call.
        unsafe { std::slice::from_raw_parts(config.import_scripts, config.import_scripts_len) }
    };
    for entry in entries {
        // SAFETY: byte strings valid for the call.
        let (script, group_name) = unsafe { (entry.script.to_text(), entry.group.to_text()) };
        // SAFETY: as above.
        let options = unsafe { entry.options.as_slice() };
        // Every replica of the group imports the script, so that none starts cold.
        let replicas = if entry.replicas > 1 && !group::wants_own_gil(&group_name, entry.gil_mode) {
            super::replicas::warn_shared(&group_name, entry.replicas);
            1
        } else {
            entry.replicas.clamp(1, crate::abi::replicas::MAX)
        };
        if replicas > 1 {
            super::replicas::register(&group_name, replicas);
        }
        for replica in 0..replicas {
            if replica > 0 && !group::wants_own_gil(&group_name, entry.gil_mode) {
                break; // moved to the shared GIL (Auto): one interpreter
            }
            import_script(&script, &group_name, replica, entry.gil_mode, options);
        }
    }
}

/// Loads one `WSGIImportScript` script into one interpreter of its group.
fn import_script(script: &str, group_name: &str, replica: u32, gil_mode: std::ffi::c_int, options: &[u8]) {
    let group = match group::get_or_create(group_name, replica, gil_mode, options) {
        Ok(group) => group,
        Err(message) => {
            settings::log(level::ERR, &message);
            return;
        }
    };
    let gil_guard = gil::GilGuard::acquire(group.index);
    // Auto: only a first import that itself ran into a refused extension moves the group.
    let refused_before = (gil_mode == crate::abi::gil_mode::AUTO && group.own_gil && !group.ever_loaded.load(std::sync::atomic::Ordering::Acquire))
        .then(|| super::fallback::refused_extensions().len());
    match super::script::load(group, script, super::script::Reloading::On { resource: None }) {
        Ok(_) => settings::log(level::INFO, &format!("Imported WSGI script '{script}' into application group '{group_name}'.")),
        Err(super::script::LoadError::Unreadable(e)) => {
            drop(gil_guard);
            settings::log(
                level::ERR,
                &format!("Failed to import WSGI script '{script}' into application group '{group_name}' (WSGIImportScript): it cannot be read: {e}"),
            );
        }
        Err(failure) => {
            // The exception first: nothing else may run while it is set.
            let compiling = matches!(failure, super::script::LoadError::Uncompiled);
            let (lines, traceback) = error::load_failure(script, group_name, None, compiling);
            let refused = refused_before.map(|before| (before, super::fallback::refused_extensions()));
            drop(gil_guard);
            if let Some((before, refused)) = refused.filter(|(before, refused)| refused.len() > *before) {
                // WSGIPerInterpreterGIL Auto: moved to the shared GIL before it serves; again,
                // into its one interpreter there.
                super::fallback::fall_back(group_name, &refused[before..], &traceback);
                return import_script(script, group_name, 0, gil_mode, options);
            }
            settings::log_lines(level::ERR, &[lines, traceback.clone()].concat());
            if let Some(advice) = super::fallback::advise(group_name, &traceback) {
                settings::log(level::ERR, &advice);
            }
        }
    }
}

/// Apache is stopping this child. A graceful stop lets requests finish (queued ones too); a
/// non-graceful one refuses the queue and interrupts Python code still running in requests.
pub fn stopping(graceful: bool) {
    if graceful {
        return;
    }
    scheduler::close();
    let n = super::busy::interrupt_all();
    if n > 0 {
        settings::log(level::INFO, &format!("Child stopping: interrupted {n} request(s) still running Python."));
    }
}

/// Ends every sub-interpreter (running its atexit callbacks), then finalises Python.
/// Called once, from the child's exit, after Apache's worker threads have stopped, and never
/// from a signal handler (prefork's SIGTERM handler skips it: see the module's `child_exit`).
///
/// An interpreter in which threads the application started are still running (daemon
/// threads) is not ended (see [`end_interpreter`]), and then Python cannot be finalised
/// either: `Py_FinalizeEx` aborts the process while a sub-interpreter remains. The main
/// interpreter's non-daemon threads are then joined and its atexit callbacks run, as
/// `Py_FinalizeEx` would do first, and this returns with the GIL held, so that no Python
/// thread runs again while the process exits.
pub fn shutdown() {
    // Requests still queued for a slot get a 503 instead of waiting on a dying process.
    scheduler::close();
    // No beat may ask for the GIL once Python is being finalised.
    gil::heartbeat::stop();
    // From here on, states of threads that end are deleted below, not by those threads.
    let writes_out = gil::stop_reaping();
    let main = gil::thread_state(MAIN_INTERP);
    // SAFETY: takes the GIL through this thread's main-interpreter state.
    unsafe { ffi::PyEval_RestoreThread(main) };
    // A thread blocked in an error-log write without the GIL would take it back while
    // interpreters end or Python is finalised (CPython ends it then with pthread_exit,
    // through Rust frames), and ending an interpreter may wait for it: Python is left as it
    // is, as with WSGIDestroyInterpreter Off.
    if !settings::get().destroy_interpreter || writes_out > 0 {
        // WSGIDestroyInterpreter Off: the subscribers hear that the process stops, as in
        // mod_wsgi, and Python is left as it is (the process exits without finalising it).
        for group in group::all() {
            if group.index != MAIN_INTERP {
                let own = gil::thread_state(group.index);
                // SAFETY: as below, but the interpreter is left, not ended.
                unsafe {
                    group::enter_from_shared(group.own_gil, own);
                    group.events.fire(Subscribers::Shutdown, "process_stopping", py::dict);
                    group::leave_for(group.own_gil, false, main);
                }
            } else {
                group.events.fire(Subscribers::Shutdown, "process_stopping", py::dict);
            }
        }
        gil::process_ending();
        // SAFETY: releases the GIL taken above through `main`; nothing of Python runs after.
        unsafe { ffi::PyEval_SaveThread() };
        if writes_out > 0 {
            settings::log(level::INFO, &format!("Python is not finalised: {writes_out} error-log write(s) from Python threads are still blocked."));
        } else {
            settings::log(level::INFO, "Python is not finalised: WSGIDestroyInterpreter Off.");
        }
        return;
    }
    for group in group::all() {
        if group.index == MAIN_INTERP {
            continue;
        }
        let own = gil::thread_state(group.index);
        // SAFETY: GIL held; the group's interpreter is ended (or left) with its own state
        // current (and its own GIL, if it has one), then this thread is back in the main
        // interpreter.
        unsafe {
            group::enter_from_shared(group.own_gil, own);
            group.events.fire(Subscribers::Shutdown, "process_stopping", py::dict);
            let ended = end_interpreter(group.index, own, &group.name, group.own_gil);
            group::leave_for(group.own_gil, ended, main);
        }
    }
    if let Some(main_group) = group::all().into_iter().find(|g| g.index == MAIN_INTERP) {
        main_group.events.fire(Subscribers::Shutdown, "process_stopping", py::dict);
    }
    // SAFETY: GIL held in the main interpreter through `main`, current on this thread.
    unsafe { delete_apache_thread_states_on_helper(MAIN_INTERP, main) };
    let left_running = LEFT_RUNNING.lock().join("', '");
    // CPython 3.12 (3.12.1 here) aborts in Py_FinalizeEx ("free(): invalid pointer", in the
    // main interpreter's tuple free list) once a script ran in an interpreter with its own
    // allocator, even after it ended cleanly (objects of such an interpreter left in the main
    // one's free lists, as in CPython's gh-112140/gh-119213, fixed in later 3.12 releases:
    // not pinned down here); 3.13 does not. There the main interpreter is wound down as when
    // an interpreter is left running (its threads joined, its atexit callbacks run), but not
    // finalised: whenever an own-GIL interpreter was created at all, set up or not.
    let own_gil_on_3_12 = cfg!(all(Py_3_12, not(Py_3_13))) && group::OWN_GIL_CREATED.load(std::sync::atomic::Ordering::SeqCst);
    if own_gil_on_3_12 && left_running.is_empty() {
        join_non_daemon_threads();
        run_atexit();
        settings::log(level::INFO, "Python is not finalised: Python 3.12 cannot finalise after an interpreter with its own GIL ran.");
    } else if left_running.is_empty() {
        // Py_FinalizeEx joins the main interpreter's non-daemon threads and stops its daemon
        // threads (they exit when they next ask for the GIL) before deleting their states.
        unrestrict_stdout();
        // SAFETY: GIL held in the main interpreter on this thread.
        unsafe { ffi::Py_FinalizeEx() };
    } else {
        join_non_daemon_threads();
        run_atexit();
        settings::log(level::INFO, &format!("Python is not finalised: interpreter(s) '{left_running}' were left running."));
    }
}

/// Interpreters left running because threads the application started in them were still
/// alive when they were to end (names, for the log). While there is one, Python cannot be
/// finalised.
static LEFT_RUNNING: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Ends the current sub-interpreter, `own` being this thread's state in it (current, GIL
/// held), and forgets its index. The states the cache made for Apache's threads are deleted
/// first: their threads have stopped. Threads the application started are left to Python:
/// non-daemon ones are joined (`threading._shutdown()`, as `Py_EndInterpreter` does); if some
/// are still running after that (daemon threads, or threads started with `_thread`), deleting
/// their states would crash them the next time they take the GIL, and `Py_EndInterpreter`
/// refuses to end an interpreter with other threads (a fatal error): the interpreter is left
/// running, with its atexit callbacks run. mod_wsgi deletes every other state instead and
/// ends the interpreter regardless ("may well cause them to crash", its source says).
///
/// An interpreter with its own GIL that is left running would let its threads run on while the
/// process exits (the shared GIL's are stopped by the exit holding that GIL): a thread of
/// ours takes its GIL for good once this thread gives it up ([`park`]).
///
/// Returns whether the interpreter ended (then no state is current and, with an own GIL, no
/// GIL is held; see `group::leave_for`).
///
/// # Safety
/// The GIL must be held through `own`, this thread's state for `index`, which is current.
pub(super) unsafe fn end_interpreter(index: InterpIndex, own: *mut ffi::PyThreadState, name: &str, own_gil: bool) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe { delete_apache_thread_states_on_helper(index, own) };
    // SAFETY: as above.
    if unsafe { other_thread_states(own) } > 0 {
        join_non_daemon_threads();
    }
    // SAFETY: as above.
    let running = unsafe { other_thread_states(own) };
    if running > 0 {
        run_atexit();
        settings::log(
            level::INFO,
            &format!(
                "Interpreter '{name}' is left running: {running} thread(s) it started are still alive (daemon threads); its atexit callbacks ran."
            ),
        );
        LEFT_RUNNING.lock().push(name.to_string());
        if own_gil {
            // SAFETY: forwarded from the caller: the interpreter is live and stays so.
            park(unsafe { ffi::compat::current_interpreter() });
        }
    } else {
        // SAFETY: `own` is current and now the interpreter's only state.
        unsafe { ffi::Py_EndInterpreter(own) };
    }
    gil::forget_interpreter(index);
    running == 0
}

/// Starts a thread that takes the GIL of `interp` (an interpreter with its own GIL that is
/// left running) as soon as it is free and never gives it back, so that the interpreter's
/// remaining threads stop running Python while the process exits. Best effort: if no thread
/// can be started, they run on.
fn park(interp: *mut ffi::PyInterpreterState) {
    let interp = interp as usize;
    let _ = std::thread::Builder::new().name("wsgi-park".into()).spawn(move || {
        // SAFETY: a new state of the live interpreter for this thread (no GIL needed to make
        // it); entering it takes the interpreter's GIL, which this thread then keeps until the
        // process exits (it never runs Python, so it never gives the GIL up).
        unsafe {
            let tstate = ffi::PyThreadState_New(interp as *mut ffi::PyInterpreterState);
            ffi::PyEval_RestoreThread(tstate);
        }
        loop {
            std::thread::park();
        }
    });
}

/// Deletes the states the thread-state cache made in the current interpreter (`index`) for
/// Apache's threads other than the one `keep` belongs to, whose threads have stopped (those
/// that ended before the child's exit began deleted their own; the MPM has joined its workers
/// before the child exits; a group whose set-up failed only has its creator's).
/// Both `Py_EndInterpreter` (which requires its state to be the last one) and
/// `threading._shutdown` (which on 3.9 to 3.12 waits until the thread that first imported
/// `threading`, often a worker thread, has no state left) need them gone. Other states are
/// not touched: their threads may be running.
///
/// # Safety
/// The GIL must be held in the interpreter of `index` (through `keep`, or a state that the
/// cache does not know).
unsafe fn delete_apache_thread_states(index: InterpIndex, keep: *mut ffi::PyThreadState) {
    // The states are listed first, while no Python runs, and deleted after: clearing one runs
    // its thread-locals' finalisers, which may release the GIL, and meanwhile a thread the
    // application started may end and free its own state, the one a walk would go on from.
    // The listed states are the cache's, which nothing else frees once the child is exiting.
    let mut cached = Vec::new();
    // SAFETY: forwarded from the caller; the list is walked under the GIL, with no call in
    // the walk that could release it.
    unsafe {
        let mut other = ffi::PyInterpreterState_ThreadHead(ffi::compat::current_interpreter());
        while !other.is_null() {
            if other != keep && gil::is_cached(index, other) {
                cached.push(other);
            }
            other = ffi::PyThreadState_Next(other);
        }
    }
    for state in cached {
        // SAFETY: a state the cache made for an Apache thread that has stopped, still in this
        // interpreter (only its own thread, or this loop, deletes it); the GIL is held.
        unsafe {
            ffi::PyThreadState_Clear(state);
            ffi::PyThreadState_Delete(state);
        }
    }
}

/// [`delete_apache_thread_states`] for the current interpreter (`index`), done on a thread of
/// its own.
///
/// Other Apache threads' states may be the ones the `PyGILState` API bound to their threads
/// (up to 3.11 the first state of a thread, its main one; from 3.12 the one it made current
/// last, of any interpreter), and from 3.12 `PyThreadState_Delete` of a bound state clears the
/// *calling* thread's binding: done here, this thread would be left without one while the
/// interpreter ends or Python finalises, and a `PyGILState_Ensure` there (an extension's
/// atexit or free function) would create a second state and deadlock or abort with "non-NULL
/// old thread state". A short-lived thread loses nothing by it. Usually there is nothing to
/// delete: Apache's threads delete their own states when they end (`gil::thread_state`),
/// except those that end after the child's exit began and h2 workers not joined by then.
///
/// # Safety
/// The GIL must be held through `keep`, this thread's state for `index`, which is current.
unsafe fn delete_apache_thread_states_on_helper(index: InterpIndex, keep: *mut ffi::PyThreadState) {
    // SAFETY: forwarded from the caller.
    let interp = unsafe { ffi::compat::current_interpreter() } as usize;
    let kept = keep as usize;
    let delete = move || {
        // SAFETY: a new state of the (live) interpreter for this thread, entered, used to
        // delete the cached states under the GIL, then cleared and deleted as current.
        unsafe {
            let tstate = ffi::PyThreadState_New(interp as *mut ffi::PyInterpreterState);
            ffi::PyEval_RestoreThread(tstate);
            delete_apache_thread_states(index, kept as *mut ffi::PyThreadState);
            ffi::PyThreadState_Clear(tstate);
            ffi::PyThreadState_DeleteCurrent();
        }
    };
    // SAFETY: this thread's state is saved (GIL released) for the helper to take it, and
    // restored after the helper ended.
    unsafe {
        ffi::PyEval_SaveThread();
        let helper = std::thread::Builder::new().name("wsgi-states".into()).spawn(delete);
        // A panic in the helper (there is nothing in it that panics) is not retried here.
        let started = helper.map(|h| drop(h.join())).is_ok();
        ffi::PyEval_RestoreThread(keep);
        if !started && cfg!(not(Py_3_12)) {
            // No thread could be started: before 3.12 deleting them here is as good. From
            // 3.12 they are left (Py_FinalizeEx deletes the main interpreter's without
            // unbinding; Py_EndInterpreter refuses other states, and the interpreter is then
            // left running, as for an application's daemon threads).
            delete_apache_thread_states(index, keep);
        }
    }
}

/// How many states of the current interpreter there are besides `own`.
///
/// # Safety
/// The GIL must be held through `own`, which is current.
unsafe fn other_thread_states(own: *mut ffi::PyThreadState) -> usize {
    let mut count = 0;
    // SAFETY: forwarded from the caller; the list is walked under the GIL.
    unsafe {
        let mut state = ffi::PyInterpreterState_ThreadHead(ffi::compat::current_interpreter());
        while !state.is_null() {
            count += usize::from(state != own);
            state = ffi::PyThreadState_Next(state);
        }
    }
    count
}

/// Joins the current interpreter's non-daemon threads, as `Py_EndInterpreter` and
/// `Py_FinalizeEx` do first (GIL held). `current_thread()` first, as mod_wsgi does: Python 2's
/// `_shutdown` ends by removing the calling thread from `threading`'s table, and raises if it
/// was never there.
fn join_non_daemon_threads() {
    call_if_imported("threading", &["current_thread", "_shutdown"]);
}

/// `WSGIRestrictStdout On`: `sys.stdout` becomes `None` before `Py_FinalizeEx` (GIL held, main
/// interpreter), which flushes it and would log `Exception ignored in: <mod_wsgi.Restricted
/// ...>` with its `OSError` for every child that ends (as mod_wsgi 6 does).
fn unrestrict_stdout() {
    let Ok(sys) = py::import("sys") else {
        // SAFETY: GIL held; the failed import's exception is dropped.
        unsafe { ffi::PyErr_Clear() };
        return;
    };
    let restricted = sys.getattr("stdout").map(|out| py::type_name(&out) == "Restricted");
    if restricted.unwrap_or(false) && sys.setattr("stdout", &py::none()).is_ok() {
        return;
    }
    // SAFETY: GIL held; a failed look-up (or none) is dropped.
    unsafe { ffi::PyErr_Clear() };
}

/// Runs (and clears) the current interpreter's atexit callbacks (GIL held).
fn run_atexit() {
    call_if_imported("atexit", &["_run_exitfuncs"]);
}

/// Calls `functions` of `module`, in order, if the current interpreter imported it (GIL
/// held); an exception goes to the error log and ends the calls.
fn call_if_imported(module: &str, functions: &[&str]) {
    let key = py::cstring(module);
    // SAFETY: GIL held; sys.modules and the module are borrowed references, turned into owned
    // ones (a null module means it was never imported).
    let module = unsafe { PyObj::from_borrowed(ffi::PyDict_GetItemString(ffi::PyImport_GetModuleDict(), key.as_ptr())) };
    let Ok(module) = module else { return };
    if functions.iter().try_for_each(|f| module.call_method(f, &[]).map(drop)).is_err() {
        settings::log_lines(level::ERR, &error::take_traceback());
    }
}

/// `Apache/2.4.71 (Debian)` → (2, 4, 71); zeros where the banner hides the version.
fn parse_apache_version(banner: &str) -> (i64, i64, i64) {
    let numbers: Vec<i64> = banner
        .strip_prefix("Apache/")
        .unwrap_or("")
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .next()
        .unwrap_or("")
        .split('.')
        .filter_map(|n| n.parse().ok())
        .collect();
    (numbers.first().copied().unwrap_or(0), numbers.get(1).copied().unwrap_or(0), numbers.get(2).copied().unwrap_or(0))
}
