//! Hook registration and the process-level hooks: checking the engine at config time (in the
//! parent, without loading it) and loading it in each child after fork.

use super::apache;
use super::engine_loader::{self, LoadedEngine};
use super::record::server_config;
use super::trampoline::trampoline;
use super::{daemon, environ, handler, imports, log, translate};
use crate::abi;
use std::ffi::{c_char, c_int, c_void};
use std::path::Path;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::OnceLock;

/// `WSGIPythonQueueTimeout` when not set: long enough for any sane burst, short enough that a
/// wedged application shows up as 503s with a log line rather than as hung connections.
pub(super) const DEFAULT_QUEUE_TIMEOUT_MS: u64 = 30_000;

/// `WSGIPythonConcurrency` when not set: `auto` (-1). mod_wsgi has no such gate; ours adapts
/// to the application, so that an admin who swaps the module in gets it (see the engine's
/// `gil/tuner.rs`; `off` restores mod_wsgi's behaviour).
pub(super) const DEFAULT_PYTHON_CONCURRENCY: i32 = -1;

/// A switch interval in seconds as the engine takes it: whole microseconds, at least one.
pub(super) fn switch_interval_us(seconds: f64) -> u64 {
    ((seconds * 1e6).round() as u64).max(1)
}

/// The engine of this child process, once child-init has loaded and initialised it.
static ENGINE: OnceLock<LoadedEngine> = OnceLock::new();

/// The main server, for the engine's process-level log lines (so `LogLevel` applies to them).
static MAIN_SERVER: AtomicPtr<apache::server_rec> = AtomicPtr::new(std::ptr::null_mut());

pub fn engine() -> Option<&'static abi::Engine> {
    ENGINE.get().map(|e| e.table)
}

/// A null-terminated list of module names for hook ordering.
#[repr(transparent)]
struct ModuleNames<const N: usize>([*const c_char; N]);
// SAFETY: immutable pointers to static strings.
unsafe impl<const N: usize> Sync for ModuleNames<N> {}

/// Like mod_wsgi: after mod_alias (so `Alias /static` wins over `WSGIScriptAlias /`), before
/// mod_userdir and mod_vhost_alias.
static TRANSLATE_AFTER: ModuleNames<2> = ModuleNames([c"mod_alias.c".as_ptr(), std::ptr::null()]);
static TRANSLATE_BEFORE: ModuleNames<3> = ModuleNames([c"mod_userdir.c".as_ptr(), c"mod_vhost_alias.c".as_ptr(), std::ptr::null()]);

pub unsafe extern "C" fn register_hooks(pool: *mut apache::apr_pool_t) {
    trampoline("register_hooks", (), || {
        let middle = apache::APR_HOOK_MIDDLE as c_int;
        // SAFETY: registering static functions with static, null-terminated ordering lists.
        unsafe {
            apache::ap_hook_check_config(Some(check_config), std::ptr::null(), std::ptr::null(), middle);
            apache::ap_hook_pre_config(Some(daemon::supervisor::pre_config), std::ptr::null(), std::ptr::null(), middle);
            apache::ap_hook_post_config(Some(daemon::supervisor::post_config), std::ptr::null(), std::ptr::null(), middle);
            apache::ap_hook_post_config(Some(status_board), std::ptr::null(), std::ptr::null(), apache::APR_HOOK_LAST as c_int);
            apache::ap_hook_child_init(Some(child_init), std::ptr::null(), std::ptr::null(), middle);
            apache::ap_hook_child_stopping(Some(child_stopping), std::ptr::null(), std::ptr::null(), middle);
            apache::ap_hook_translate_name(Some(translate::translate_name), TRANSLATE_AFTER.0.as_ptr(), TRANSLATE_BEFORE.0.as_ptr(), middle);
            apache::ap_hook_handler(Some(handler::handler), std::ptr::null(), std::ptr::null(), middle);
            // First, so that our PATH_TRANSLATED lookups end before any other module's hook.
            apache::ap_hook_post_perdir_config(
                Some(environ::post_perdir_config),
                std::ptr::null(),
                std::ptr::null(),
                apache::APR_HOOK_REALLY_FIRST as c_int,
            );
        }
        super::auth::register(pool);
    })
}

/// Runs in the parent after the configuration is read, also for `apache2 -t`: a missing
/// engine stops Apache here rather than failing in every child.
unsafe extern "C" fn check_config(
    _pconf: *mut apache::apr_pool_t,
    _plog: *mut apache::apr_pool_t,
    _ptemp: *mut apache::apr_pool_t,
    s: *mut apache::server_rec,
) -> c_int {
    trampoline("check_config", apache::HTTP_INTERNAL_SERVER_ERROR as c_int, || {
        // SAFETY: s is the main server_rec.
        let config = unsafe { server_config(s) };
        if config.restrict_embedded == Some(true) && !super::dispatch::configured() {
            return apache::OK as c_int;
        }
        match engine_loader::engine_for(config.python_home.as_deref().map(Path::new)) {
            Ok(_) => apache::OK as c_int,
            Err(message) => {
                eprintln!("mod_wsgi: {message}");
                log::server(log::ERR, s, &message);
                apache::HTTP_INTERNAL_SERVER_ERROR as c_int
            }
        }
    })
}

fn mpm_query(code: u32) -> c_int {
    let mut value: c_int = 0;
    // SAFETY: ap_mpm_query writes one int.
    let status = unsafe { apache::ap_mpm_query(code as c_int, &mut value) };
    if status == 0 {
        value
    } else {
        0
    }
}

unsafe extern "C" fn process_log(level: c_int, message: abi::Bytes) {
    trampoline("engine log", (), || {
        // SAFETY: the engine passes a valid byte string for the duration of the call.
        let text = unsafe { message.to_text() };
        log::server(level, MAIN_SERVER.load(Ordering::Relaxed), &text);
    })
}

/// Maps this generation's status board (`metrics::board`) in the parent, before the MPM forks
/// the children that share it.
unsafe extern "C" fn status_board(
    _pconf: *mut apache::apr_pool_t,
    _plog: *mut apache::apr_pool_t,
    _ptemp: *mut apache::apr_pool_t,
    s: *mut apache::server_rec,
) -> c_int {
    trampoline("post_config", apache::OK as c_int, || {
        // SAFETY: ap_state_query has no preconditions.
        if unsafe { apache::ap_state_query(apache::AP_SQ_MAIN_STATE as c_int) } == apache::AP_SQ_MS_CREATE_PRE_CONFIG as c_int {
            return apache::OK as c_int;
        }
        if let Err(message) = super::metrics::board::create(mpm_query(apache::AP_MPMQ_HARD_LIMIT_DAEMONS).max(1) as usize) {
            // Only the status page is lost: Apache starts.
            log::server(log::WARNING, s, &message);
        }
        apache::OK as c_int
    })
}

/// Loads the engine and starts Python, in the child, after fork.
unsafe extern "C" fn child_init(pchild: *mut apache::apr_pool_t, s: *mut apache::server_rec) {
    trampoline("child_init", (), || {
        MAIN_SERVER.store(s, Ordering::Relaxed);
        daemon::supervisor::close_listeners();
        super::metrics::board::join();
        // SAFETY: s is the main server_rec.
        let config = unsafe { server_config(s) };
        // WSGIRestrictEmbedded On: no Python here, unless dispatch scripts must run here.
        if config.restrict_embedded == Some(true) && !super::dispatch::configured() {
            return;
        }
        // Before Python starts (other modules' child_init may have started threads, mod_http2's
        // workers: a small risk mod_wsgi takes too with putenv).
        set_egg_cache(config.python_eggs.as_deref());
        let hash_seed = config.python_hash_seed.clone().unwrap_or_default();
        // No second read of the engine file in every child: check_config checked it.
        let loaded = engine_loader::locate(config.python_home.as_deref().map(Path::new)).and_then(|p| engine_loader::load(&p));
        let engine = match loaded {
            Ok(engine) => engine,
            Err(message) => return log::server(log::ERR, s, &message),
        };
        let home = config.python_home.clone().unwrap_or_default();
        let path = config.python_path.join(":");
        let warnings = config.python_warnings.join("\n");
        let main_options = config.group_options("", "").encode();
        // Only embedded mode's scripts: the daemons import their own.
        let entries = imports::for_process_group("");
        let imports = imports::to_abi(&entries);
        // SAFETY: returns a static string; unlike the banner, the description always carries
        // the full version, whatever ServerTokens says.
        let banner = unsafe { std::ffi::CStr::from_ptr(apache::ap_get_server_description()) }.to_bytes();
        let threaded = mpm_query(apache::AP_MPMQ_IS_THREADED) != apache::AP_MPMQ_NOT_SUPPORTED as c_int;
        let engine_config = abi::EngineConfig {
            python_home: abi::Bytes::new(home.as_bytes()),
            python_path: abi::Bytes::new(path.as_bytes()),
            home_path: abi::Bytes::EMPTY,
            multithread: threaded as c_int,
            multiprocess: (mpm_query(apache::AP_MPMQ_MAX_DAEMONS) > 1) as c_int,
            python_concurrency: config.python_concurrency.unwrap_or(DEFAULT_PYTHON_CONCURRENCY),
            queue_timeout_ms: config.queue_timeout_ms.unwrap_or(DEFAULT_QUEUE_TIMEOUT_MS),
            threads_per_child: mpm_query(apache::AP_MPMQ_MAX_THREADS).max(1),
            python_optimize: config.python_optimize.unwrap_or(-1),
            restrict_stdin: config.restrict_stdin.unwrap_or(false) as c_int,
            restrict_stdout: config.restrict_stdout.unwrap_or(false) as c_int,
            restrict_signal: config.restrict_signal.unwrap_or(true) as c_int,
            dont_write_bytecode: config.dont_write_bytecode.unwrap_or(false) as c_int,
            python_warnings: abi::Bytes::new(warnings.as_bytes()),
            switch_interval_us: config.switch_interval.map_or(0, switch_interval_us),
            main_options: abi::Bytes::new(&main_options),
            hash_seed: abi::Bytes::new(hash_seed.as_bytes()),
            destroy_interpreter: config.destroy_interpreter.unwrap_or(true) as c_int,
            maximum_processes: mpm_query(apache::AP_MPMQ_MAX_DAEMONS).max(1),
            import_scripts: imports.as_ptr(),
            import_scripts_len: imports.len(),
            module_version: abi::Bytes::new(env!("CARGO_PKG_VERSION").as_bytes()),
            server_banner: abi::Bytes::new(banner),
            process_group: abi::Bytes::EMPTY,
            log: process_log,
            scoreboard: super::scoreboard::read_for_engine,
            metrics: super::metrics::api::query,
        };
        // SAFETY: the engine's init takes a config valid for the call.
        if unsafe { (engine.table.init)(&engine_config) } != 0 {
            return log::server(log::ERR, s, "the Python engine failed to initialise; see the lines above");
        }
        let _ = ENGINE.set(engine);
        if let Some(table) = self::engine() {
            let threads = mpm_query(apache::AP_MPMQ_MAX_THREADS).max(1) as usize;
            super::metrics::start(super::metrics::Settings::new(s, &config.telemetry, "", threads, config.switch_interval.unwrap_or(0.0), table));
        }
        // SAFETY: pchild lives until the child exits; the cleanup finalises Python then.
        unsafe { apache::apr_pool_cleanup_register(pchild, std::ptr::null(), Some(child_exit), Some(apache::apr_pool_cleanup_null)) };
    })
}

/// The MPM is stopping this child: on a non-graceful stop, the engine interrupts Python code
/// still running in requests so that the child exits before Apache has to SIGKILL it.
unsafe extern "C" fn child_stopping(_pchild: *mut apache::apr_pool_t, graceful: c_int) {
    trampoline("child_stopping", (), || {
        if in_prefork_exit_signal_handler() {
            mark_ending();
            return;
        }
        if let Some(engine) = engine() {
            // SAFETY: the engine is initialised; stopping may be called from any thread.
            unsafe { (engine.stopping)(graceful) };
        }
    })
}

/// `WSGIPythonEggs` (or a daemon's `python-eggs=`) as `PYTHON_EGG_CACHE`, as mod_wsgi sets
/// it: every interpreter's `os.environ` starts from the process environment.
pub(super) fn set_egg_cache(eggs: Option<&str>) {
    if let Some(eggs) = eggs {
        std::env::set_var("PYTHON_EGG_CACHE", eggs);
    }
}

/// Ends the engine's interpreters and finalises Python, where that is safe (see
/// [`in_prefork_exit_signal_handler`]); otherwise the process just ends.
unsafe extern "C" fn child_exit(_data: *mut c_void) -> apache::apr_status_t {
    trampoline("child exit", 0, || {
        // First: thread-local destructors that run from here on must not take locks.
        super::metrics::process_ending();
        // Two atomic stores: safe in prefork's signal handler too.
        super::metrics::board::leave();
        if in_prefork_exit_signal_handler() {
            mark_ending();
            return 0;
        }
        // The last telemetry report, before Python ends (mod_wsgi's order).
        super::metrics::stop();
        if let Some(engine) = engine() {
            // SAFETY: called once, when the child's pool is destroyed.
            unsafe { (engine.shutdown)() };
        }
        0
    })
}

/// Tells the engine, from prefork's exit signal handler, that the process is ending: a thread
/// that ends from now on (an h2 worker joined by the child pool's cleanup) must not wait for
/// the GIL, which the interrupted code may hold. Elsewhere the engine's `shutdown` does this
/// itself, after Apache's threads have ended and deleted their own thread states.
fn mark_ending() {
    if let Some(engine) = engine() {
        // SAFETY: async-signal-safe (one atomic store), callable from any thread.
        unsafe { (engine.ending)() };
    }
}

/// Whether this is prefork's SIGTERM or SIGHUP handler (`just_die`), which exits the child
/// through `clean_child_exit`, running the child_stopping hooks and the child pool's
/// cleanups inside the handler, wherever the signal interrupted the child: in the middle of
/// a request, in `malloc`, holding the GIL or one of the engine's locks. Finalising Python
/// there can wait forever on what the interrupted code holds, so nothing is done.
///
/// The test: `apr_signal` installs handlers without `SA_NODEFER`, so the signal being
/// handled is blocked in the thread's mask until the handler returns, and prefork's child
/// otherwise runs with both unblocked (it restores its mask after child_init). Its graceful
/// exits (SIGWINCH, the pod, `MaxConnectionsPerChild`) leave the accept loop and run the
/// cleanups outside any handler. Threaded MPMs exit their children from the main thread after
/// the workers stopped, never from a handler, but with SIGHUP blocked for good: the test is
/// for prefork only.
fn in_prefork_exit_signal_handler() -> bool {
    if mpm_query(apache::AP_MPMQ_IS_THREADED) != apache::AP_MPMQ_NOT_SUPPORTED as c_int {
        return false;
    }
    // SAFETY: a zeroed sigset_t is a valid output buffer; with a null new set,
    // pthread_sigmask only reads this thread's mask (async-signal-safe), and sigismember only
    // reads the set.
    unsafe {
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask) == 0
            && (libc::sigismember(&mask, libc::SIGTERM) == 1 || libc::sigismember(&mask, libc::SIGHUP) == 1)
    }
}
