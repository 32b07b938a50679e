//! mod_wsgi-rs engine: the Python side, built once per Python ABI
//! (`mod_wsgi-engine-py3.11.so`, package `engine/`) and loaded by the module with `dlopen` in
//! each Apache child after fork. It exports one symbol, [`abi::ENTRY_SYMBOL`], returning its
//! [`abi::Engine`] table.
//!
//! Its sources: [`interp`] (interpreters, groups, the WSGI protocol), [`gil`] (thread states,
//! GIL guards, the scheduler), [`pyffi`] (the C API, pyo3-ffi or bindgen, and version shims),
//! and [`abi`], the one file it shares with the module (`src/lib.rs`, which never links
//! Python). Nothing under `src/module/` is compiled into an engine.

pub mod abi;
pub mod gil;
pub mod headers;
pub mod interp;
pub mod pyffi;

use abi::{Engine, EngineConfig, Outcome, Request};
use interp::trampoline::trampoline;

static ENGINE: Engine = Engine {
    abi_version: abi::ABI_VERSION,
    python_version: abi::Bytes { ptr: env!("MOD_WSGI_ENGINE_PYTHON_VERSION").as_ptr(), len: env!("MOD_WSGI_ENGINE_PYTHON_VERSION").len() },
    init,
    handle,
    stopping,
    shutdown,
    ending,
    dump_stacks,
    interrupt,
    start_heartbeat,
    progress,
    dump_stacks_nogil,
    dispatch,
    auth,
};

/// The ABI marker the module finds by reading this file (see `abi::MARKER`); kept in the
/// binary by `#[used]`.
#[used]
static ABI_MARKER: [u8; abi::MARKER_LEN] = abi::MARKER;

/// The engine's entry point, looked up by name (`abi::ENTRY_SYMBOL`) by the module.
#[no_mangle]
pub extern "C" fn mod_wsgi_engine_entry() -> *const Engine {
    &ENGINE
}

unsafe extern "C" fn init(config: *const EngineConfig) -> i32 {
    trampoline("init", -1, || {
        // SAFETY: the module passes a config valid for the call.
        let config = unsafe { &*config };
        match interp::runtime::init(config) {
            Ok(()) => {
                interp::runtime::import_scripts(config);
                0
            }
            Err(message) => {
                // SAFETY: the module's logger takes a byte string valid for the call.
                unsafe { (config.log)(abi::level::ERR, abi::Bytes::new(message.as_bytes())) };
                -1
            }
        }
    })
}

unsafe extern "C" fn handle(request: *const Request) -> Outcome {
    trampoline("request handler", Outcome::SERVER_ERROR, || {
        // SAFETY: the module passes a request valid for the call.
        interp::wsgi::handle(unsafe { &*request })
    })
}

unsafe extern "C" fn stopping(graceful: i32) {
    trampoline("stopping", (), || interp::runtime::stopping(graceful != 0))
}

#[cfg(test)]
#[test]
fn abi_marker_spells_the_abi_version() {
    let text = String::from_utf8_lossy(&ABI_MARKER).into_owned();
    assert_eq!(text, format!("mod_wsgi-rs-engine-abi:{:04}", abi::ABI_VERSION));
    assert_eq!(abi::ENTRY_SYMBOL, b"mod_wsgi_engine_entry\0");
}

unsafe extern "C" fn ending() {
    trampoline("ending", (), gil::process_ending)
}

unsafe extern "C" fn dispatch(request: *const Request, ctx: *mut std::ffi::c_void, set: abi::AnswerFn) -> i32 {
    trampoline("dispatch script", -1, || {
        // SAFETY: the module passes a request valid for the call.
        interp::dispatch::dispatch(unsafe { &*request }, ctx, set)
    })
}

unsafe extern "C" fn auth(request: *const Request, question: *const abi::AuthQuestion, ctx: *mut std::ffi::c_void, set: abi::AnswerFn) -> i32 {
    trampoline("access or auth script", abi::auth::ERROR, || {
        // SAFETY: the module passes a request and a question valid for the call, and a
        // callback that takes its ctx.
        unsafe { interp::auth::ask(&*request, &*question, ctx, set) }
    })
}

unsafe extern "C" fn shutdown() {
    trampoline("shutdown", (), interp::runtime::shutdown)
}

unsafe extern "C" fn dump_stacks(idents: *const u64, len: usize) {
    trampoline("dump_stacks", (), || {
        let idents = if idents.is_null() {
            &[][..]
        } else {
            // SAFETY: the module passes `len` idents valid for the call.
            unsafe { std::slice::from_raw_parts(idents, len) }
        };
        interp::stacks::dump(idents)
    })
}

unsafe extern "C" fn interrupt(idents: *const u64, len: usize) -> usize {
    trampoline("interrupt", 0, || {
        let idents: Vec<std::ffi::c_long> = if idents.is_null() {
            Vec::new()
        } else {
            // SAFETY: the module passes `len` idents valid for the call.
            unsafe { std::slice::from_raw_parts(idents, len) }.iter().map(|&i| i as std::ffi::c_long).collect()
        };
        interp::busy::interrupt(&idents)
    })
}

unsafe extern "C" fn start_heartbeat() -> i32 {
    trampoline("start_heartbeat", -1, || match gil::heartbeat::start() {
        Ok(()) => 0,
        Err(_) => -1,
    })
}

unsafe extern "C" fn progress() -> abi::Progress {
    trampoline("progress", abi::Progress::default(), || abi::Progress {
        heartbeats: gil::heartbeat::beats(),
        scripts_ready: interp::wsgi::scripts_ready(),
    })
}

unsafe extern "C" fn dump_stacks_nogil() {
    trampoline("dump_stacks_nogil", (), interp::stacks::dump_nogil)
}
