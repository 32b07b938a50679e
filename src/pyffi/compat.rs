//! Shims for C-API functions that not every supported Python has, after pyo3-ffi's
//! `compat` module: the rest of the engine calls one function whatever the version (start-up
//! with or without PyConfig, the GIL's creation before 3.7, the current interpreter before
//! 3.9). The only other version branches of the engine are Python 2's native strings
//! (`interp/py.rs`) and what bindgen cannot translate (`legacy.rs`).

use crate::pyffi as ffi;

/// The current thread state's interpreter (`PyInterpreterState_Get`, public from 3.9).
///
/// # Safety
/// A thread state must be current (the GIL held).
pub unsafe fn current_interpreter() -> *mut ffi::PyInterpreterState {
    #[cfg(Py_3_9)]
    {
        // SAFETY: forwarded from the caller.
        unsafe { ffi::PyInterpreterState_Get() }
    }
    #[cfg(all(Py_3_8, not(Py_3_9)))]
    {
        extern "C" {
            /// 3.8's name for the same function (exported, with a leading underscore).
            fn _PyInterpreterState_Get() -> *mut ffi::PyInterpreterState;
        }
        // SAFETY: forwarded from the caller.
        unsafe { _PyInterpreterState_Get() }
    }
    #[cfg(not(Py_3_8))]
    {
        // 3.7 has no such function: find the interpreter that owns the current thread state.
        // Only used when interpreters are created or ended, never per request.
        // SAFETY: forwarded from the caller; the lists are walked under the GIL.
        unsafe {
            let current = ffi::PyThreadState_Get();
            let mut interp = ffi::PyInterpreterState_Head();
            while !interp.is_null() {
                let mut tstate = ffi::PyInterpreterState_ThreadHead(interp);
                while !tstate.is_null() {
                    if tstate == current {
                        return interp;
                    }
                    tstate = ffi::PyThreadState_Next(tstate);
                }
                interp = ffi::PyInterpreterState_Next(interp);
            }
            std::ptr::null_mut()
        }
    }
}

/// How Python is to be started (the interpreter directives).
pub struct InitOptions {
    /// `WSGIPythonHome`, or empty.
    pub home: String,
    /// The home is a virtual environment (it has a `pyvenv.cfg`).
    pub venv: bool,
    /// `WSGIPythonOptimize`, or -1.
    pub optimize: i32,
    pub dont_write_bytecode: bool,
    /// `WSGIPythonWarnings` options.
    pub warnings: Vec<String>,
    /// `WSGIPythonHashSeed`: `None` (Python's own), `random` or a number.
    pub hash_seed: Option<String>,
}

/// Starts Python in this process without touching signal handlers (Apache owns them).
/// Python 3.8 and later: through `PyConfig`.
#[cfg(Py_3_8)]
pub fn initialize(o: &InitOptions) -> Result<(), String> {
    use std::ffi::CString;
    // SAFETY: PyConfig is initialised by CPython before use and cleared after; every C string
    // outlives the call it is passed to.
    unsafe {
        let mut config: ffi::PyConfig = std::mem::zeroed();
        ffi::PyConfig_InitPythonConfig(&mut config);
        config.install_signal_handlers = 0;
        config.parse_argv = 0;
        match o.hash_seed.as_deref() {
            Some("random") => config.use_hash_seed = 0,
            Some(seed) => {
                config.use_hash_seed = 1;
                config.hash_seed = seed.parse().map_err(|_| format!("WSGIPythonHashSeed '{seed}' is not a number"))?;
            }
            None => {}
        }
        if o.optimize >= 0 {
            config.optimization_level = o.optimize;
        }
        if o.dont_write_bytecode {
            config.write_bytecode = 0;
        }
        for option in &o.warnings {
            let option = CString::new(option.as_str()).map_err(|e| e.to_string())?;
            let wide = ffi::Py_DecodeLocale(option.as_ptr(), std::ptr::null_mut());
            if !wide.is_null() {
                ffi::PyWideStringList_Append(&mut config.warnoptions, wide);
                ffi::PyMem_RawFree(wide.cast());
            }
        }
        let status = if o.home.is_empty() {
            None
        } else if o.venv {
            // A virtual environment: Python finds pyvenv.cfg from its program path, which sets
            // the base installation as prefix and the venv's site-packages on sys.path.
            let program = CString::new(format!("{}/bin/python", o.home)).map_err(|e| e.to_string())?;
            Some(ffi::PyConfig_SetBytesString(&mut config, &mut config.program_name, program.as_ptr()))
        } else {
            let home = CString::new(o.home.as_str()).map_err(|e| e.to_string())?;
            Some(ffi::PyConfig_SetBytesString(&mut config, &mut config.home, home.as_ptr()))
        };
        if let Some(status) = status {
            if ffi::PyStatus_Exception(status) != 0 {
                ffi::PyConfig_Clear(&mut config);
                return Err(format!("cannot use WSGIPythonHome '{}'", o.home));
            }
        }
        let status = ffi::Py_InitializeFromConfig(&config);
        ffi::PyConfig_Clear(&mut config);
        if ffi::PyStatus_Exception(status) != 0 {
            let reason = if status.err_msg.is_null() {
                "unknown error".to_string()
            } else {
                std::ffi::CStr::from_ptr(status.err_msg).to_string_lossy().into_owned()
            };
            return Err(format!("Python could not be initialised (home '{}'): {reason}", o.home));
        }
    }
    Ok(())
}

/// Python 2.7 to 3.7: through the pre-PEP 587 globals, then `Py_InitializeEx(0)` (no signal
/// handlers). A failure there is fatal to the child, as it is for any 3.7 embedding.
///
/// Before 3.7, `Py_InitializeEx` creates no GIL: until `PyEval_InitThreads` does, taking and
/// releasing the GIL are no-ops, so Apache's worker threads would all run Python at once (and
/// crash within a second). It is called here, as mod_wsgi does, so that on every version this
/// returns with the GIL created and held by the calling thread, which `runtime::init` releases.
#[cfg(not(Py_3_8))]
pub fn initialize(o: &InitOptions) -> Result<(), String> {
    /// A string for the pre-initialisation API that lives as long as the process (Python
    /// keeps the pointers): `wchar_t*` on Python 3, `char*` on Python 2.
    #[cfg(Py_3)]
    fn wide(text: &str) -> Result<*mut libc::wchar_t, String> {
        let c = std::ffi::CString::new(text).map_err(|e| e.to_string())?;
        // SAFETY: a valid C string; the result is never freed, on purpose.
        let w = unsafe { ffi::Py_DecodeLocale(c.as_ptr(), std::ptr::null_mut()) };
        if w.is_null() {
            Err(format!("cannot decode '{text}'"))
        } else {
            Ok(w)
        }
    }
    #[cfg(not(Py_3))]
    fn wide(text: &str) -> Result<*mut std::ffi::c_char, String> {
        Ok(std::ffi::CString::new(text).map_err(|e| e.to_string())?.into_raw())
    }
    // SAFETY: the pre-initialisation globals and setters, called before Py_InitializeEx on
    // the only thread that uses Python yet.
    unsafe {
        if !o.home.is_empty() {
            if o.venv {
                ffi::Py_SetProgramName(wide(&format!("{}/bin/python", o.home))?);
            } else {
                ffi::Py_SetPythonHome(wide(&o.home)?);
            }
        }
        if o.optimize >= 0 {
            ffi::Py_OptimizeFlag = o.optimize;
        }
        if o.dont_write_bytecode {
            ffi::Py_DontWriteBytecodeFlag = 1;
        }
        for option in &o.warnings {
            ffi::PySys_AddWarnOption(wide(option)?);
        }
        // Before 3.8 only the environment sets the seed: set for the start, then removed, so
        // that subprocesses do not inherit it (as mod_wsgi 4.9 removes it).
        let previous = std::env::var_os("PYTHONHASHSEED");
        if let Some(seed) = &o.hash_seed {
            std::env::set_var("PYTHONHASHSEED", seed);
        }
        ffi::Py_InitializeEx(0);
        if o.hash_seed.is_some() {
            match previous {
                Some(value) => std::env::set_var("PYTHONHASHSEED", value),
                None => std::env::remove_var("PYTHONHASHSEED"),
            }
        }
        #[cfg(not(Py_3_7))]
        ffi::PyEval_InitThreads();
    }
    Ok(())
}

/// This thread's current thread state, or null when none is current (no GIL needed):
/// `_PyThreadState_UncheckedGet` on 3.12, `PyThreadState_GetUnchecked` from 3.13 (pyo3-ffi
/// binds neither). Only needed around own-GIL interpreters, which exist from 3.12.
///
/// # Safety
/// None beyond calling into an initialised Python.
#[cfg(Py_3_12)]
pub unsafe fn current_thread_state_unchecked() -> *mut ffi::PyThreadState {
    extern "C" {
        #[cfg(Py_3_13)]
        fn PyThreadState_GetUnchecked() -> *mut ffi::PyThreadState;
        #[cfg(not(Py_3_13))]
        fn _PyThreadState_UncheckedGet() -> *mut ffi::PyThreadState;
    }
    #[cfg(Py_3_13)]
    {
        // SAFETY: reads the calling thread's current state only.
        unsafe { PyThreadState_GetUnchecked() }
    }
    #[cfg(not(Py_3_13))]
    {
        // SAFETY: reads the calling thread's current state only.
        unsafe { _PyThreadState_UncheckedGet() }
    }
}
