//! Python stacks of given threads, for the daemon's `request-timeout` log lines (mod_wsgi
//! logs the stack of a request it gives up on, so that the cause shows in the error log).
//!
//! Called from the daemon's monitor thread, which serves no request: for each interpreter
//! in which one of the threads is serving (see `busy.rs`), it takes the GIL there, formats
//! `sys._current_frames()[ident]` with `traceback.format_stack`, and gives the GIL back
//! before any line is written to the error log (a write that can block).

use super::py::{self, PyObj};
use super::{busy, settings};
use crate::abi::level;
use crate::gil::GilGuard;
use crate::pyffi as ffi;

/// Logs the Python stack of each thread in `idents` (thread idents as `busy.rs` records them:
/// `pthread_self`), one error-log line per source line, under a header naming the thread.
/// Threads that are not serving a request are logged as such.
pub fn dump(idents: &[u64]) {
    for &ident in idents {
        let ident = ident as std::ffi::c_long;
        let lines = match busy::interpreter_of(ident) {
            Some(index) => {
                let _gil = GilGuard::acquire(index);
                format_stack(ident)
            }
            None => vec!["(the thread is not running Python code of a request)".to_string()],
        };
        settings::log(level::ERR, &format!("Python stack of thread {} (most recent call last):", ident as u64));
        for line in lines {
            settings::log(level::ERR, &line);
        }
    }
}

/// The formatted stack of thread `ident` in the current interpreter (GIL held).
fn format_stack(ident: std::ffi::c_long) -> Vec<String> {
    let formatted = (|| {
        let frames = py::import("sys").ok()?.call_method("_current_frames", &[]).ok()?;
        let frame = frames.call_method("get", &[&py::int(ident as u64 as i64).ok()?]).ok()?;
        if frame.is_none() {
            return Some("(no Python frame: the thread is outside Python code)".to_string());
        }
        let lines: PyObj = py::import("traceback").ok()?.call_method("format_stack", &[&frame]).ok()?;
        py::utf8(&py::text("").ok()?.call_method("join", &[&lines]).ok()?)
    })();
    match formatted {
        Some(text) => text.lines().map(str::to_string).collect(),
        None => {
            // SAFETY: under the GIL: whatever failed while formatting is dropped.
            unsafe { ffi::PyErr_Clear() };
            vec!["(the stack could not be formatted)".to_string()]
        }
    }
}

/// CPython's `_Py_DumpTracebackThreads(fd, interp, current)`, the faulthandler's dump.
type DumpThreads = unsafe extern "C" fn(std::ffi::c_int, *mut ffi::PyInterpreterState, *mut ffi::PyThreadState) -> *const std::ffi::c_char;

/// Logs the stack of every thread of every interpreter without taking the GIL, for a
/// `deadlock-timeout`: the GIL cannot be had then, and the thread holding it is the one the
/// admin needs to see. This is what `faulthandler.dump_traceback_later` does from its
/// watchdog thread: CPython's dump reads the thread states and frames as they are, unlocked.
/// It is only sound because nothing is running: every thread but the GIL's holder waits for
/// the GIL, and the holder has been stuck (in a C call) for the whole timeout. Which GIL is
/// stuck is the one the heartbeat waits for (`heartbeat::waiting_on`): for the main GIL, the
/// interpreters that share it are read (those with their own GIL run on and are not; no
/// interpreter is made or ended meanwhile, since that takes the main GIL); for an own GIL,
/// only that interpreter is read, found through our registry rather than by walking
/// CPython's list, which the running ones may change. The dump goes to an anonymous memory
/// file, read back and logged after.
///
/// `_Py_DumpTracebackThreads` is private: looked up at run time (3.13 no longer exports it;
/// Python 2 has none), and a line says so when it is missing.
pub fn dump_nogil() {
    const NAME: &std::ffi::CStr = c"_Py_DumpTracebackThreads";
    // SAFETY: dlsym with a valid C string; libpython is loaded with RTLD_GLOBAL (the module
    // loads the engine, and so its libpython, that way).
    let symbol = unsafe { libc::dlsym(libc::RTLD_DEFAULT, NAME.as_ptr()) };
    if symbol.is_null() {
        settings::log(level::ERR, "Python stacks cannot be read without the GIL on this Python (no _Py_DumpTracebackThreads).");
        return;
    }
    // SAFETY: the symbol is CPython's function of this signature (3.3 and later).
    let dump: DumpThreads = unsafe { std::mem::transmute::<*mut std::ffi::c_void, DumpThreads>(symbol) };
    // SAFETY: memfd_create with a valid name; the descriptor is owned by the File below.
    let fd = unsafe { libc::memfd_create(c"wsgi-stacks".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        settings::log(level::ERR, &format!("Python stacks cannot be read: {}", std::io::Error::last_os_error()));
        return;
    }
    // SAFETY: fd was just opened and is owned by nothing else.
    let file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    if let Some(stuck) = crate::gil::heartbeat::waiting_on().filter(|i| *i != crate::gil::MAIN_INTERP) {
        let name = super::group::all().iter().find(|g| g.index == stuck).map_or_else(String::new, |g| g.name.clone());
        let interp = crate::gil::interpreter_of(stuck);
        let header = format!("Interpreter of application group '{name}' (its own GIL, held all this time):\n");
        // SAFETY: fd is ours; the interpreter is alive (interpreters here live until the
        // process ends) and frozen: its GIL's holder is stuck and every other thread of it
        // waits for that GIL (see the function's comment).
        unsafe {
            libc::write(fd, header.as_ptr().cast(), header.len());
            let failed = dump(fd, interp, std::ptr::null_mut());
            if !failed.is_null() {
                let line = format!("({})\n", std::ffi::CStr::from_ptr(failed).to_string_lossy());
                libc::write(fd, line.as_ptr().cast(), line.len());
            }
        }
        return log_dump(file);
    }
    let mut index = 0;
    let own_gil: Vec<usize> = super::group::all().iter().filter(|g| g.own_gil).map(|g| crate::gil::interpreter_of(g.index) as usize).collect();
    // SAFETY: walks the interpreter list unlocked (interpreters are made and ended only with
    // the GIL held, which nobody is getting now) and dumps each one's threads to our file;
    // see the function's comment for why reading them without the GIL is tolerable here.
    unsafe {
        let mut interp = ffi::PyInterpreterState_Head();
        while !interp.is_null() {
            let header = format!("Interpreter {index}:\n");
            libc::write(fd, header.as_ptr().cast(), header.len());
            let failed = if own_gil.contains(&(interp as usize)) {
                c"has its own GIL and runs on: not read".as_ptr()
            } else {
                dump(fd, interp, std::ptr::null_mut())
            };
            if !failed.is_null() {
                let reason = std::ffi::CStr::from_ptr(failed).to_string_lossy().into_owned();
                let line = format!("({reason})\n");
                libc::write(fd, line.as_ptr().cast(), line.len());
            }
            interp = ffi::PyInterpreterState_Next(interp);
            index += 1;
        }
    }
    log_dump(file);
}

/// Logs what the dump wrote to `file`.
fn log_dump(mut file: std::fs::File) {
    let mut bytes = Vec::new();
    // What could be read is logged, valid UTF-8 or not.
    let _ = std::io::Seek::rewind(&mut file).and_then(|()| std::io::Read::read_to_end(&mut file, &mut bytes));
    let text = String::from_utf8_lossy(&bytes);
    settings::log(level::ERR, "Python stacks of all threads (read without the GIL; most recent call first):");
    for line in text.lines().filter(|line| !line.is_empty()) {
        settings::log(level::ERR, line);
    }
}
