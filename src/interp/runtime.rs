//! Starting and ending Python in a child process.

use super::group::Subscribers;
use super::{error, group, py, settings};
use crate::abi::{self, level};
use crate::gil::scheduler::{self, Concurrency};
use crate::gil::{self, MAIN_INTERP};
use std::time::Duration;
use crate::pyffi as ffi;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Initialises Python in this process: called once, in the child, after fork.
pub fn init(config: &abi::EngineConfig) -> Result<(), String> {
    // SAFETY: the module's byte strings are valid for the call.
    let (home, path, version) =
        unsafe { (config.python_home.to_text(), config.python_path.to_text(), config.module_version.to_text()) };
    settings::set(settings::Settings {
        python_path: path.split(':').filter(|p| !p.is_empty()).map(str::to_string).collect(),
        multithread: config.multithread != 0,
        multiprocess: config.multiprocess != 0,
        maximum_processes: config.maximum_processes.max(1) as usize,
        restrict_stdin: config.restrict_stdin != 0,
        restrict_stdout: config.restrict_stdout != 0,
        restrict_signal: config.restrict_signal != 0,
        threads_per_process: config.threads_per_child.max(1) as usize,
        module_version: version,
        // SAFETY: the module's byte string is valid for the call.
        process_group: unsafe { config.process_group.to_text() },
        // SAFETY: the module's byte string is valid for the call.
        apache_version: parse_apache_version(&unsafe { config.server_banner.to_text() }),
        log: config.log,
        initial_environ: std::env::vars_os()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect(),
    });

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
        let group = match group::get_or_create(&group_name) {
            Ok(group) => group,
            Err(message) => {
                settings::log(level::ERR, &message);
                continue;
            }
        };
        let _gil = gil::GilGuard::acquire(group.index);
        match super::script::load(group, &script, true) {
            Ok(_) => settings::log(level::INFO, &format!("Imported WSGI script '{script}' into application group '{group_name}'.")),
            Err(_) => {
                settings::log(level::ERR, &format!("Failed to import WSGI script '{script}' into application group '{group_name}' (WSGIImportScript)."));
                for line in error::take_traceback() {
                    settings::log(level::ERR, &line);
                }
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
pub fn shutdown() {
    // Requests still queued for a slot get a 503 instead of waiting on a dying process.
    scheduler::close();
    let main = gil::thread_state(MAIN_INTERP);
    // SAFETY: takes the GIL through this thread's main-interpreter state.
    unsafe { ffi::PyEval_RestoreThread(main) };
    for group in group::all() {
        if group.index == MAIN_INTERP {
            continue;
        }
        let own = gil::thread_state(group.index);
        // SAFETY: GIL held; Py_EndInterpreter needs its own state current.
        unsafe {
            ffi::PyThreadState_Swap(own);
            group.events.fire(Subscribers::Shutdown, "process_stopping", py::dict);
            delete_other_thread_states(own);
            ffi::Py_EndInterpreter(own);
            gil::forget_interpreter(group.index);
            ffi::PyThreadState_Swap(main);
        }
    }
    if let Some(main_group) = group::all().into_iter().find(|g| g.index == MAIN_INTERP) {
        main_group.events.fire(Subscribers::Shutdown, "process_stopping", py::dict);
    }
    // SAFETY: GIL held in the main interpreter through `main`.
    unsafe { delete_other_thread_states(main) };
    // SAFETY: GIL held in the main interpreter on this thread.
    unsafe { ffi::Py_FinalizeEx() };
}

/// Deletes every thread state of the current interpreter but `own`, the current one.
///
/// Worker threads have stopped by the time a child exits, but their cached states remain, and
/// both `Py_EndInterpreter` (which requires its state to be the last one) and
/// `threading._shutdown` (which waits for the state lock of the thread that first imported
/// `threading`, often a worker thread) need them gone.
///
/// # Safety
/// The GIL must be held through `own`, and no other thread may use these states again.
pub(super) unsafe fn delete_other_thread_states(own: *mut ffi::PyThreadState) {
    // SAFETY: forwarded from the caller; states are cleared under the GIL, then deleted.
    unsafe {
        let interp = ffi::compat::current_interpreter();
        let mut other = ffi::PyInterpreterState_ThreadHead(interp);
        while !other.is_null() {
            let next = ffi::PyThreadState_Next(other);
            if other != own {
                ffi::PyThreadState_Clear(other);
                ffi::PyThreadState_Delete(other);
            }
            other = next;
        }
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

