//! Inside a daemon process: forked by Apache's parent, it sets up its environment (user,
//! groups, umask, language: `environment.rs`) while still free of Python, then loads the
//! engine for its Python, and serves requests that Apache's children forward over its socket
//! (see `wire.rs`), one connection each.
//!
//! Threads: `threads=` workers wait together for the next connection with a request, new or
//! kept open by its child between requests (`dispatch.rs`); the
//! monitor (`monitor.rs`) watches the timeouts; the main thread waits for a signal, for
//! `maximum-requests`, for the monitor or for a changed script (`reloading.rs`), then stops accepting, lets running requests finish
//! (`graceful-timeout` for a recycle, a short grace for a stop; then the engine interrupts
//! them), finalises Python and `_exit`s. The parent's maintenance callback forks the
//! replacement.

use super::super::apache;
use super::super::engine_loader;
use super::super::hooks::{DEFAULT_PYTHON_CONCURRENCY, DEFAULT_QUEUE_TIMEOUT_MS};
use super::super::log;
use super::super::metrics;
use super::super::record::server_config;
use super::connection::{log_line, read_body, send_file, start_response, write_body, Conn, Io, Pending, Sock};
use super::descriptors;
use super::dispatch::{Connection, Dispatch};
use super::environment;
use super::monitor::{self, Monitor};
use super::options::Timeouts;
use super::read_hello::read_hello;
use super::reloading::{self, ScriptTimes};
use super::request_figures::{daemon_phases, describe_for_metrics, now_micros};
use super::supervisor::{self, Group, Registry};
use super::wire::{self, Hello};
use crate::abi::{self, level};
use std::ffi::c_int;
use std::io::{BufReader, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The environ entry by which Apache's child tells this process that the request is under
/// `WSGIIgnoreActivity On` (see `handler.rs`); removed before the application sees the environ.
pub const IGNORE_ACTIVITY_KEY: &[u8] = b"mod_wsgi.x-ignore_activity";

/// The most requests may run on after SIGTERM before the engine interrupts them (less when
/// `shutdown-timeout` is shorter): APR SIGKILLs a daemon 3 s after SIGTERM, and finalising
/// Python needs the rest.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// A daemon that cannot start waits this long before exiting, so that a broken
/// configuration is not a fork loop (as mod_wsgi).
const START_FAILURE_DELAY: Duration = Duration::from_secs(20);
/// Worker thread stacks without `stack-size=`: Apache's default thread stack size.
const STACK_SIZE: usize = 8 << 20;
/// The signal pipe's byte for `SIGXCPU` (`cpu-time-limit=` reached).
const CPU_LIMIT: u8 = b'C';

/// The write end of the self-pipe the signal handler feeds: `S` stop, `G` graceful stop.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);
/// The group's server, for the engine's process-level log lines.
static LOG_SERVER: AtomicPtr<apache::server_rec> = AtomicPtr::new(std::ptr::null_mut());

/// Runs daemon `n` of group `index` in the freshly forked child; never returns into Apache.
pub fn run(index: usize, n: u32) -> ! {
    let code = catch_unwind(AssertUnwindSafe(|| daemon_main(index, n))).unwrap_or(1);
    // SAFETY: ends this process without running the parent's atexit handlers or pool
    // cleanups, which belong to Apache's parent.
    unsafe { libc::_exit(code) }
}

fn daemon_main(index: usize, n: u32) -> c_int {
    let Some(registry) = supervisor::registry() else { return 1 };
    let token = supervisor::token(index).unwrap_or_default();
    supervisor::forget_tokens();
    let group = &registry.groups[index];
    LOG_SERVER.store(group.server, Ordering::Relaxed);
    let (signals, stop) = match (pipe(), pipe()) {
        (Ok(signals), Ok(stop)) => (signals, stop),
        (Err(e), _) | (_, Err(e)) => return fail(group, None, &format!("cannot create a pipe: {e}")),
    };
    reset_signals(signals.1);
    close_inherited(&registry, index);
    // SAFETY: single-threaded right after fork, nothing but Apache's code has run; the
    // records are this generation's configuration and pconf outlives the process.
    let kept =
        unsafe { descriptors::keep_only(registry.main, group.server, registry.pconf, &[signals.0, signals.1, stop.0, stop.1, group.listener]) };
    if let Err(message) = kept {
        return fail(group, Some(signals.0), &message);
    }
    descriptors::log_kept(group.server, &group.spec.name);
    // `chroot=`: the engine (and the libpython it links) is mapped now, as root, while its
    // files are still reachable; no Python runs before `init`, after the chroot and the
    // switch to the group's user (see `engine_loader::load`).
    let mapped = match group.spec.chroot {
        Some(_) => match load_engine(group) {
            Ok(engine) => Some(engine),
            Err(message) => return fail(group, Some(signals.0), &message),
        },
        None => None,
    };
    if let Err(message) = environment::prepare(&registry, group) {
        return fail(group, Some(signals.0), &message);
    }
    // Seen before the engine imports them: a later change restarts the process (mod_wsgi).
    let scripts = ScriptTimes::default();
    for entry in imports(group) {
        scripts.changed(std::path::Path::new(&entry.script));
    }
    let engine = match start_engine(&registry, group, mapped) {
        Ok(engine) => engine,
        Err(message) => return fail(group, Some(signals.0), &message),
    };
    // SAFETY: the main server's configuration, read-only after start-up.
    let main = unsafe { server_config(registry.main) };
    let switch_interval =
        if group.spec.switch_interval_us > 0 { group.spec.switch_interval_us as f64 / 1e6 } else { main.switch_interval.unwrap_or(0.0) };
    metrics::start(metrics::Settings::new(group.server, &main.telemetry, &group.spec.name, group.spec.threads as usize, switch_interval, engine));
    let jail = group.spec.chroot.as_ref().map(|root| format!(" in chroot '{root}'")).unwrap_or_default();
    log::server(level::INFO, group.server, &format!("Daemon process '{}' ({n}) is serving requests as uid {}{jail}.", group.spec.name, group.uid));
    let name: Arc<str> = Arc::from(group.spec.name.as_str());
    let dispatch = match Dispatch::new(group.listener, stop, group.spec.threads as usize, socket_timeout(group), name.clone(), group.server) {
        Ok(dispatch) => dispatch,
        Err(e) => return fail(group, Some(signals.0), &format!("cannot wait for connections: {e}")),
    };
    let shared = Arc::new(Shared {
        dispatch,
        main: registry.main,
        signals: signals.1,
        completed: AtomicU64::new(0),
        maximum_requests: request_limit(group.spec.maximum_requests, group.spec.maximum_requests_jitter),
        socket_timeout: socket_timeout(group),
        header_buffer_size: group.spec.header_buffer_size,
        name,
        engine,
        token,
        server: group.server,
        monitor: Monitor::new(&group.spec.name, group.server, group.spec.timeouts, engine, signals.1),
        timeouts: group.spec.timeouts,
        scripts,
        restarting: AtomicBool::new(false),
    });
    let stack_size = group.spec.stack_size.unwrap_or(STACK_SIZE);
    let workers: Vec<_> = (0..group.spec.threads)
        .filter_map(|i| {
            let shared = shared.clone();
            let spawned = std::thread::Builder::new().name(format!("wsgi-{i}")).stack_size(stack_size).spawn(move || worker(&shared));
            spawned
                .map_err(|e| {
                    log::server(
                        log::ERR,
                        group.server,
                        &format!(
                            "Daemon process '{}' cannot start worker thread {i} ({e}): it runs with fewer threads than threads= says.",
                            group.spec.name
                        ),
                    )
                })
                .ok()
        })
        .collect();
    if workers.is_empty() {
        return fail(group, Some(signals.0), "no worker thread could be started");
    }
    shared.monitor.start();
    let kind = wait_signal(signals.0, None).unwrap_or(b'S');
    stop_for(&shared, workers, signals.0, kind)
}

fn seconds(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Stops the process for the reason `kind` (a signal pipe byte): a recycle (a graceful
/// signal, `maximum-requests`, `restart-interval`) first waits up to its graceful timeout for
/// the running requests; a stop gives them a reason's grace. Each reason is logged.
///
/// A reaper thread is started first: whatever happens here (a stack dump waiting for a GIL
/// that C code holds, a worker stuck in a socket), the process ends by the time the reason's
/// grace plus `shutdown-timeout` has passed.
fn stop_for(shared: &Shared, workers: Vec<std::thread::JoinHandle<()>>, signals: c_int, kind: u8) -> c_int {
    shared.stop_accepting();
    shared.monitor.stopping();
    let t = &shared.timeouts;
    let name = &shared.name;
    let info = |message: String| log::server(level::INFO, shared.server, &message);
    let graceful = match kind {
        b'G' if shared.maximum_requests > 0 && shared.completed.load(Ordering::SeqCst) >= shared.maximum_requests => {
            info(format!("Maximum requests reached, stopping daemon process '{name}' gracefully (graceful-timeout {} s).", t.graceful));
            Some(t.graceful)
        }
        b'G' => {
            let grace = if t.eviction > 0 { t.eviction } else { t.graceful };
            info(format!(
                "Graceful stop requested, stopping daemon process '{name}' gracefully ({} timeout {grace} s).",
                if t.eviction > 0 { "eviction" } else { "graceful" }
            ));
            Some(grace)
        }
        CPU_LIMIT => {
            // mod_wsgi's lines; the running requests get graceful-timeout (the hard limit,
            // shutdown-timeout later, kills the process if they use it all up).
            let how = if shared.dispatch.active() > 0 { "waiting for in-flight requests to complete in" } else { "triggering immediate shutdown of" };
            info(format!("Exceeded CPU time limit; {how} daemon process '{name}'."));
            Some(t.graceful)
        }
        reloading::SCRIPT_CHANGED => {
            info(format!("Script modified, stopping daemon process '{name}' gracefully (graceful-timeout {} s).", t.graceful));
            Some(t.graceful)
        }
        monitor::RESTART_INTERVAL | monitor::REQUEST_TIMEOUT => Some(t.graceful),
        _ => None,
    };
    // Telemetry's STOPPING goes out now, before the requests drain (mod_wsgi's moment).
    metrics::stopping(shutdown_reason(shared, kind));
    let stop_grace = match kind {
        monitor::INACTIVITY | monitor::DEADLOCK => Duration::ZERO,
        _ => STOP_GRACE.min(seconds(t.shutdown)),
    };
    let interrupt_after = if kind == monitor::REQUEST_TIMEOUT { seconds(t.interrupt) } else { Duration::ZERO };
    let limit = interrupt_after + graceful.map_or(stop_grace, seconds) + seconds(t.shutdown.max(1));
    if !start_reaper(shared, limit) {
        log::server(log::ERR, shared.server, &format!("Daemon process '{name}' cannot start its reaper thread; exiting without finalising Python."));
        // SAFETY: ends the process; see run().
        unsafe { libc::_exit(1) }
    }
    // Every connection taken before the stop is counted from here on (see Dispatch::barrier).
    shared.dispatch.barrier();
    let mut kind = kind;
    if kind == monitor::REQUEST_TIMEOUT {
        let stuck = shared.monitor.timed_out_idents();
        // SAFETY: the engine is initialised; called without the GIL or a Rust lock, from a
        // thread that serves no request, with `stuck` valid for the call. The reaper bounds it.
        unsafe { (shared.engine.dump_stacks)(stuck.as_ptr(), stuck.len()) };
        // mod_wsgi's order: the stuck requests get `interrupt-timeout` more, then only they
        // are interrupted; the others get `graceful-timeout` to finish.
        if let Some(next) = wait_while_active(shared, signals, interrupt_after) {
            kind = next;
        }
        if kind != b'S' {
            // SAFETY: as above.
            let n = unsafe { (shared.engine.interrupt)(stuck.as_ptr(), stuck.len()) };
            if n > 0 {
                info(format!("Interrupted {n} request(s) past request-timeout in daemon process '{name}'."));
            }
        }
    }
    if let (Some(grace), true) = (graceful, kind != b'S') {
        if let Some(next) = wait_while_active(shared, signals, seconds(grace)) {
            kind = next;
        }
        if kind != b'S' {
            let running = shared.dispatch.active();
            if running > 0 {
                info(format!("Graceful timeout of {grace} seconds expired in daemon process '{name}'; interrupting {running} request(s)."));
            }
            return finish(shared, workers, Instant::now());
        }
    }
    if kind == b'S' {
        info(format!("Shutdown requested, stopping daemon process '{name}'."));
    }
    finish(shared, workers, Instant::now() + stop_grace)
}

/// Waits up to `limit` for the running requests to end; a stop signal (`S`) that arrives
/// meanwhile cuts the wait short and is returned.
fn wait_while_active(shared: &Shared, signals: c_int, limit: Duration) -> Option<u8> {
    let deadline = Instant::now() + limit;
    while shared.dispatch.active() > 0 && Instant::now() < deadline {
        if let Some(stop) = wait_signal(signals, Some(Duration::from_millis(20))).filter(|k| *k == b'S') {
            return Some(stop);
        }
    }
    None
}

/// Ends the process after `limit` whatever still runs: the clients of requests stuck past
/// `request-timeout` get their 504 first. False when no thread could be started.
fn start_reaper(shared: &Shared, limit: Duration) -> bool {
    let (monitor, name, server) = (shared.monitor.clone(), shared.name.clone(), shared.server as usize);
    std::thread::Builder::new()
        .name("wsgi-reaper".into())
        .spawn(move || {
            std::thread::sleep(limit);
            log::server(level::INFO, server as *mut apache::server_rec, &format!("Shutdown timeout expired; aborting daemon process '{name}'."));
            monitor.abort_timed_out();
            // SAFETY: ends the process; see run().
            unsafe { libc::_exit(1) }
        })
        .is_ok()
}

/// Interrupts what still runs at `deadline`, joins the workers, finalises Python (the
/// reaper started by [`stop_for`] ends the process if this takes too long).
fn finish(shared: &Shared, workers: Vec<std::thread::JoinHandle<()>>, deadline: Instant) -> c_int {
    while shared.dispatch.active() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if shared.dispatch.active() > 0 {
        // SAFETY: the engine is initialised; stopping may be called from any thread.
        unsafe { (shared.engine.stopping)(0) };
    }
    for worker in workers {
        let _ = worker.join();
    }
    // The last telemetry report, with every request of this process in it.
    metrics::stop();
    metrics::board::leave();
    // SAFETY: called once, on the thread that initialised Python, after the workers ended.
    unsafe { (shared.engine.shutdown)() };
    0
}

/// Logs why the daemon cannot start and waits [`START_FAILURE_DELAY`] before exiting (a stop
/// signal ends the wait: Apache's stop need not SIGKILL it).
fn fail(group: &Group, signals: Option<c_int>, message: &str) -> c_int {
    log::server(log::ERR, group.server, &format!("Daemon process '{}' cannot start: {message}", group.spec.name));
    match signals {
        Some(fd) => {
            let deadline = Instant::now() + START_FAILURE_DELAY;
            while let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
                if wait_signal(fd, Some(left)) == Some(b'S') {
                    break;
                }
            }
        }
        None => std::thread::sleep(START_FAILURE_DELAY),
    }
    1
}

fn pipe() -> std::io::Result<(c_int, c_int)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // The write end never blocks: the signal handler writes to it, and nothing may drain it
    // while the process stops (a full pipe then loses a byte that is not needed).
    // SAFETY: sets a flag on our own descriptor.
    unsafe { libc::fcntl(fds[1], libc::F_SETFL, libc::O_NONBLOCK) };
    Ok((fds[0], fds[1]))
}

extern "C" fn on_signal(signal: c_int) {
    let kind: u8 = match signal {
        libc::SIGUSR1 | libc::SIGWINCH => b'G',
        libc::SIGXCPU => CPU_LIMIT,
        _ => b'S',
    };
    // SAFETY: errno is saved and restored around write(2), which is async-signal-safe.
    unsafe {
        let errno = *libc::__errno_location();
        libc::write(SIGNAL_PIPE.load(Ordering::Relaxed), (&kind as *const u8).cast(), 1);
        *libc::__errno_location() = errno;
    }
}

/// Undoes what the MPM's parent set up: its handlers (the MPM's restart handlers after a
/// restart) and any blocked signals; SIGTERM, SIGINT and SIGHUP stop the daemon, SIGUSR1 and
/// SIGWINCH (Apache's graceful signals, sent to its whole process group) stop it gracefully,
/// as does SIGXCPU (`cpu-time-limit=`), as in mod_wsgi.
fn reset_signals(pipe_write: c_int) {
    SIGNAL_PIPE.store(pipe_write, Ordering::Relaxed);
    // SAFETY: single-threaded right after fork; plain sigaction/sigprocmask calls with
    // initialised structures, and a handler that is async-signal-safe.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        libc::sigemptyset(&mut action.sa_mask);
        action.sa_flags = libc::SA_RESTART;
        action.sa_sigaction = on_signal as extern "C" fn(c_int) as usize;
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR1, libc::SIGWINCH, libc::SIGXCPU] {
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGCHLD, &action, std::ptr::null_mut());
        action.sa_sigaction = libc::SIG_IGN;
        libc::sigaction(libc::SIGPIPE, &action, std::ptr::null_mut());
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
}

/// Closes Apache's listeners (through Apache, which forgets them) and the other groups'
/// sockets, inherited from the parent; `descriptors::keep_only` then closes the rest.
fn close_inherited(registry: &Registry, index: usize) {
    // SAFETY: Apache's own function for a process that must not accept its connections.
    unsafe { apache::ap_close_listeners() };
    for (i, other) in registry.groups.iter().enumerate() {
        if i != index {
            // SAFETY: this process's copy of another group's listener, closed once.
            unsafe { libc::close(other.listener) };
        }
    }
}

unsafe extern "C" fn engine_log(level: c_int, message: abi::Bytes) {
    super::super::trampoline::trampoline("daemon engine log", (), || {
        // SAFETY: the engine passes a byte string valid for the call.
        let text = unsafe { message.to_text() };
        log::server(level, LOG_SERVER.load(Ordering::Relaxed), &text);
    })
}

/// The group's import list (`WSGIImportScript`, and the `WSGIScriptAlias` scripts preloaded
/// for it), with paths as the daemon sees them (inside its `chroot=`, if any).
fn imports(group: &Group) -> Vec<super::super::imports::ImportScript> {
    let mut entries = super::super::imports::for_process_group(&group.spec.name);
    for entry in &mut entries {
        entry.script = environment::import_path(group.spec.chroot.as_deref(), &entry.script);
    }
    entries
}

/// Finds and maps the engine for the group's Python. A `python-home=` of a chrooted group is
/// a path inside the jail: its version is read there, through the root, before the chroot.
fn load_engine(group: &Group) -> Result<engine_loader::LoadedEngine, String> {
    let home = group.python_home.as_deref().filter(|h| !h.is_empty());
    let home = home.map(|h| engine_loader::jailed(group.spec.chroot.as_deref(), h));
    engine_loader::locate(home.as_deref()).and_then(|p| engine_loader::load(&p))
}

/// Starts Python with the group's settings, in the engine `mapped` before the chroot or else
/// loaded now; the engine imports the group's import list before this returns, so before the
/// first request.
fn start_engine(registry: &Registry, group: &Group, mapped: Option<engine_loader::LoadedEngine>) -> Result<&'static abi::Engine, String> {
    let home = group.python_home.clone().unwrap_or_default();
    let engine = match mapped {
        Some(engine) => engine,
        None => load_engine(group)?,
    };
    // SAFETY: the main server's configuration, read-only after start-up.
    let main = unsafe { server_config(registry.main) };
    let spec = &group.spec;
    // As mod_wsgi: a daemon's base path is its python-path= alone, never WSGIPythonPath
    // (the embedded interpreters' setting).
    let path = spec.python_path.as_deref().unwrap_or_default().join(":");
    let home_path = spec.home.clone().unwrap_or_default();
    let warnings = main.python_warnings.join("\n");
    let main_options = main.group_options(&spec.name, "").encode();
    let hash_seed = main.python_hash_seed.clone().unwrap_or_default();
    // SAFETY: returns a static string.
    let banner = unsafe { std::ffi::CStr::from_ptr(apache::ap_get_server_description()) }.to_bytes();
    let entries = imports(group);
    let imports = super::super::imports::to_abi(&entries);
    let config = abi::EngineConfig {
        python_home: abi::Bytes::new(home.as_bytes()),
        python_path: abi::Bytes::new(path.as_bytes()),
        home_path: abi::Bytes::new(home_path.as_bytes()),
        multithread: (spec.threads > 1) as c_int,
        multiprocess: spec.multiprocess as c_int,
        python_concurrency: main.python_concurrency.unwrap_or(DEFAULT_PYTHON_CONCURRENCY),
        queue_timeout_ms: main.queue_timeout_ms.unwrap_or(DEFAULT_QUEUE_TIMEOUT_MS),
        threads_per_child: spec.threads as c_int,
        restrict_stdin: main.restrict_stdin.unwrap_or(false) as c_int,
        restrict_stdout: main.restrict_stdout.unwrap_or(false) as c_int,
        restrict_signal: main.restrict_signal.unwrap_or(true) as c_int,
        python_optimize: main.python_optimize.unwrap_or(-1),
        dont_write_bytecode: main.dont_write_bytecode.unwrap_or(false) as c_int,
        python_warnings: abi::Bytes::new(warnings.as_bytes()),
        // The group's switch-interval=, else WSGISwitchInterval.
        switch_interval_us: if spec.switch_interval_us > 0 {
            spec.switch_interval_us
        } else {
            main.switch_interval.map_or(0, super::super::hooks::switch_interval_us)
        },
        main_options: abi::Bytes::new(&main_options),
        hash_seed: abi::Bytes::new(hash_seed.as_bytes()),
        destroy_interpreter: main.destroy_interpreter.unwrap_or(true) as c_int,
        maximum_processes: spec.processes as c_int,
        import_scripts: imports.as_ptr(),
        import_scripts_len: imports.len(),
        module_version: abi::Bytes::new(env!("CARGO_PKG_VERSION").as_bytes()),
        server_banner: abi::Bytes::new(banner),
        process_group: abi::Bytes::new(spec.name.as_bytes()),
        log: engine_log,
        scoreboard: super::super::scoreboard::read_for_engine,
        metrics: super::super::metrics::api::query,
    };
    // SAFETY: the engine's init takes a config valid for the call.
    if unsafe { (engine.table.init)(&config) } != 0 {
        return Err("the Python engine failed to initialise; see the lines above".into());
    }
    Ok(engine.table)
}

/// This process's `maximum-requests`: the group's, plus (`maximum-requests-jitter=`) a random
/// 0..=jitter chosen once at start, so that the processes of a group, started together, do
/// not all recycle together. 0 stays 0 (never).
fn request_limit(maximum: u64, jitter: u64) -> u64 {
    if maximum == 0 || jitter == 0 {
        return maximum;
    }
    let mut random = [0u8; 8];
    // SAFETY: getrandom writes at most 8 bytes into the array.
    let n = unsafe { libc::getrandom(random.as_mut_ptr().cast(), random.len(), libc::GRND_NONBLOCK) };
    // Without random bytes (a kernel without getrandom, or its pool not yet ready early in
    // boot), the pid spreads the processes as well.
    let random = if n == 8 { u64::from_le_bytes(random) } else { u64::from(std::process::id()) };
    maximum.saturating_add(random % jitter.saturating_add(1))
}

/// The I/O timeout on a connection from an Apache child: `socket-timeout=`, else the group's
/// server's `Timeout` (as mod_wsgi); `None`: none.
fn socket_timeout(group: &Group) -> Option<Duration> {
    match group.spec.timeouts.socket {
        0 => {
            // SAFETY: the server record is read-only configuration.
            let timeout = unsafe { (*group.server).timeout };
            (timeout > 0).then(|| Duration::from_micros(timeout as u64))
        }
        seconds => Some(Duration::from_secs(seconds)),
    }
}

/// Waits for a byte from the signal pipe (`None`: wait for ever).
fn wait_signal(fd: c_int, timeout: Option<Duration>) -> Option<u8> {
    let millis = timeout.map_or(-1, |t| t.as_millis() as c_int);
    let mut poll = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    loop {
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut poll, 1, millis) };
        if ready < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if ready <= 0 {
            return None;
        }
        let mut byte = 0u8;
        // SAFETY: reads one byte into a local.
        if unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) } == 1 {
            return Some(byte);
        }
        if timeout.is_some() {
            return None;
        }
    }
}

/// What the worker threads share.
struct Shared {
    /// The connections, new and kept open, and the workers waiting for them.
    dispatch: Dispatch,
    /// Apache's main server (its configuration holds `WSGIPerInterpreterGIL`).
    main: *mut apache::server_rec,
    signals: c_int,
    /// Requests that ended (see [`Shared::request_ending`]).
    completed: AtomicU64,
    /// `maximum-requests` for this process (see [`request_limit`]).
    maximum_requests: u64,
    /// See [`socket_timeout`].
    socket_timeout: Option<Duration>,
    /// `header-buffer-size=`: the longest line of a response head (see [`start_response`]).
    header_buffer_size: usize,
    /// The group's name, for log lines.
    name: Arc<str>,
    engine: &'static abi::Engine,
    token: [u8; 16],
    server: *mut apache::server_rec,
    monitor: Arc<Monitor>,
    timeouts: Timeouts,
    /// See `reloading.rs`.
    scripts: ScriptTimes,
    /// A changed script was found: the process is stopping for it (logged once).
    restarting: AtomicBool,
}

// SAFETY: the server record is read-only configuration; everything else is Sync.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

impl Shared {
    /// A request is about to send its END: `maximum-requests` (mod_wsgi's rule) counts it
    /// now. At the limit the process stops accepting before the child can see the END (so a
    /// client's next request goes to another process), and recycles gracefully: requests
    /// still running get `graceful-timeout`.
    fn request_ending(&self) {
        let done = self.completed.fetch_add(1, Ordering::SeqCst) + 1;
        if self.maximum_requests > 0 && done >= self.maximum_requests {
            self.stop_accepting();
            if done == self.maximum_requests {
                // SAFETY: writes one byte to our own signal pipe.
                unsafe { libc::write(self.signals, b"G".as_ptr().cast(), 1) };
            }
        }
    }

    fn stop_accepting(&self) {
        self.dispatch.stop();
    }
}

fn worker(shared: &Shared) {
    while let Some((connection, active)) = shared.dispatch.next() {
        let reusable = match catch_unwind(AssertUnwindSafe(|| serve(shared, &connection))) {
            Ok(Ok(reusable)) => reusable,
            Ok(Err(message)) => {
                log::server(log::ERR, shared.server, &message);
                false
            }
            Err(_) => {
                log::server(
                    log::ERR,
                    shared.server,
                    &format!("internal error in mod_wsgi-rs serving a request in daemon process '{}' (a Rust panic)", shared.name),
                );
                false
            }
        };
        if reusable {
            shared.dispatch.park(connection);
        }
        drop(active);
    }
}

/// Serves one forwarded request: hello, then the engine, then END. True when the connection
/// may carry the child's next request: the request ended cleanly and nothing else holds it.
fn serve(shared: &Shared, connection: &Connection) -> Result<bool, String> {
    let io_error = |e: std::io::Error| format!("daemon request failed: {e}");
    let stream = &connection.stream;
    let Some(mut hello) = read_hello(stream, &shared.token, shared.socket_timeout, connection.reused)? else {
        // The child let a kept connection go.
        return Ok(false);
    };
    // `chroot=`: the script as the jail sees it (or mod_wsgi's refusal, a 500, below).
    let jailed = environment::jail_request(&mut hello);
    if jailed.is_ok() && script_changed(shared, &hello) {
        // Not a request of this process's: it is not counted, and the child sends it again
        // on a new connection.
        wire::write_frame(&mut &**stream, wire::RESTART, &[]).and_then(|()| (&**stream).flush()).map_err(io_error)?;
        return Ok(false);
    }
    // WSGIIgnoreActivity: this request does not count for inactivity-timeout. The entry is
    // the child's word to this process, never the application's.
    let counts_as_activity = !hello.environ.iter().any(|(k, v)| k == IGNORE_ACTIVITY_KEY && v == b"1");
    hello.environ.retain(|(k, _)| k != IGNORE_ACTIVITY_KEY);
    let reader = BufReader::with_capacity(8 << 10, Sock(stream.clone()));
    let conn = Arc::new(Conn {
        io: Mutex::new(Io { reader, writer: BufWriter::with_capacity(8 << 10, Sock(stream.clone())), stream: stream.clone() }),
        pending: Mutex::new(Pending::default()),
        dead: AtomicBool::new(false),
        ended: AtomicBool::new(false),
        start_queued: AtomicBool::new(false),
        error_override: hello.error_override,
        counts_as_activity,
        header_buffer_size: shared.header_buffer_size,
        group: shared.name.clone(),
        server: shared.server,
        monitor: shared.monitor.clone(),
        meter: Default::default(),
    });
    if let Err(message) = jailed {
        log::server(log::ERR, shared.server, &message);
        return Ok(end(shared, conn, abi::Outcome::SERVER_ERROR));
    }
    if queue_timed_out(shared, &hello) {
        return Ok(end(shared, conn, abi::Outcome::GATEWAY_TIMEOUT));
    }
    let running = shared.monitor.begin(describe(&hello), conn.clone(), counts_as_activity);
    if !conn.send(wire::READY, &[], true) {
        // The child is gone already: the application does not run for nobody.
        return Ok(false);
    }
    let mut environ = hello.environ;
    // The group's WSGIPerInterpreterGIL as this process's configuration says (the main
    // server's, as the child resolved it), never as the connection says: the first request
    // for a group fixes its interpreter's mode for the life of the process. Its replicas
    // (`abi::replicas`) stay as the child resolved them: a directory's `replicas=` is known
    // only there.
    // So are its other container settings (`abi::interpreter_options`).
    // And never a request_rec address (`abi::request_rec`): that is of another process.
    environ.retain(|(k, _)| k != abi::gil_mode::ENVIRON_KEY && k != abi::interpreter_options::ENVIRON_KEY && k != abi::request_rec::ENVIRON_KEY);
    // SAFETY: the main server's configuration, read-only after start-up.
    let main = unsafe { server_config(shared.main) };
    let application_group = String::from_utf8_lossy(&hello.group);
    environ.extend(main.interpreter_entries(&shared.name, &application_group));
    let daemon_start = now_micros();
    environ.push((b"mod_wsgi.daemon_start".to_vec(), daemon_start.to_string().into_bytes()));
    let phases = daemon_phases(&environ, daemon_start);
    let pairs: Vec<abi::Pair> = environ.iter().map(|(k, v)| abi::Pair { name: abi::Bytes::new(k), value: abi::Bytes::new(v) }).collect();
    let mut python_wait = abi::PythonWait::default();
    // The serving interpreter's figures, written by the engine as it returns.
    let mut figures = abi::GroupFigures::default();
    let request = abi::Request {
        ctx: Arc::as_ptr(&conn).cast_mut().cast(),
        environ: pairs.as_ptr(),
        environ_len: pairs.len(),
        script: abi::Bytes::new(&hello.script),
        callable: abi::Bytes::new(&hello.callable),
        group: abi::Bytes::new(&hello.group),
        read: read_body,
        start: start_response,
        write: write_body,
        send_file,
        log: log_line,
        python_wait: &mut python_wait,
        figures: &mut figures,
    };
    let tracker = metrics::begin(phases.0, Some(phases.1), Some(phases.2), || describe_for_metrics(&shared.name, &hello.group, &environ));
    // On the group's status board from here (see metrics::board); a return without `end`
    // counts as a 500.
    let began = std::time::Instant::now();
    let entry = metrics::board::begin(&shared.name, &application_group);
    // SAFETY: the request and everything it points to outlive the call.
    let mut outcome = unsafe { (shared.engine.handle)(&request) };
    if running.timed_out() && outcome == abi::Outcome::SERVER_ERROR {
        // Interrupted after request-timeout before any response: mod_wsgi's 504.
        outcome = abi::Outcome::GATEWAY_TIMEOUT;
    }
    drop(running);
    let status = conn.meter.status(outcome);
    if let Some(tracker) = tracker {
        let (traffic, input, output) = conn.meter.totals();
        tracker.finish(status, traffic, input, output, python_wait);
    }
    if let Some(entry) = entry {
        entry.gauges(&figures);
        entry.end(status, began.elapsed().as_secs_f64(), python_wait.nanos as f64 / 1e9);
    }
    Ok(end(shared, conn, outcome))
}

/// Ends a request with `outcome`: `maximum-requests` counts it, the END frame says whether
/// the daemon keeps the connection, and lines the child could not take go to the log here.
/// True when the connection may carry the child's next request.
fn end(shared: &Shared, conn: Arc<Conn>, outcome: abi::Outcome) -> bool {
    shared.request_ending();
    let keep = shared.dispatch.may_keep();
    conn.send(wire::END, &wire::end(outcome.0, keep), true);
    conn.log_pending_locally();
    keep && conn.finished()
}

/// `queue-timeout=`: a request that waited longer than this since Apache read it (in the
/// listen backlog, for a free thread) gets a 504 without running (mod_wsgi's rule and line).
fn queue_timed_out(shared: &Shared, hello: &Hello) -> bool {
    let limit = shared.timeouts.queue;
    if limit == 0 {
        return false;
    }
    let started =
        hello.environ.iter().find(|(k, _)| k == b"mod_wsgi.request_start").and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse::<u128>().ok());
    let Some(started) = started else { return false };
    if now_micros().saturating_sub(started) <= u128::from(limit) * 1_000_000 {
        return false;
    }
    log::server(log::ERR, shared.server, &format!("Queue timeout expired for WSGI daemon process '{}': {}", shared.name, describe(hello)));
    true
}

/// Process reloading (see `reloading.rs`): whether this request's script changed since this
/// process loaded it, with `WSGIScriptReloading On` (the child's `mod_wsgi.script_reloading`).
/// If so the process stops accepting at once (so that the child's retry goes to another
/// process, or waits in the backlog for the replacement) and, the first time, logs mod_wsgi's
/// line and stops gracefully: the requests it is running finish within `graceful-timeout`.
fn script_changed(shared: &Shared, hello: &Hello) -> bool {
    let reloading = hello.environ.iter().find(|(k, _)| k == b"mod_wsgi.script_reloading").map(|(_, v)| &v[..]) != Some(b"0");
    if !reloading || !shared.scripts.changed(std::path::Path::new(std::ffi::OsStr::from_bytes(&hello.script))) {
        return false;
    }
    shared.stop_accepting();
    if !shared.restarting.swap(true, Ordering::SeqCst) {
        log::server(
            level::INFO,
            shared.server,
            &format!(
                "Forcing restart of daemon process '{}' due to modification of script '{}'.",
                shared.name,
                String::from_utf8_lossy(&hello.script)
            ),
        );
        // SAFETY: writes one byte to our own signal pipe.
        unsafe { libc::write(shared.signals, [reloading::SCRIPT_CHANGED].as_ptr().cast(), 1) };
    }
    true
}

/// The request as the monitor's log lines name it: URL, script, application group.
fn describe(hello: &Hello) -> String {
    let uri = hello.environ.iter().find(|(k, _)| k == b"REQUEST_URI").map(|(_, v)| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
    format!("'{uri}' (script '{}', application group '{}')", String::from_utf8_lossy(&hello.script), String::from_utf8_lossy(&hello.group))
}

/// mod_wsgi's `shutdown_reason` for a stop for `kind` (telemetry's field 130).
fn shutdown_reason(shared: &Shared, kind: u8) -> &'static str {
    match kind {
        b'G' if shared.maximum_requests > 0 && shared.completed.load(Ordering::SeqCst) >= shared.maximum_requests => "maximum_requests",
        b'G' if shared.timeouts.eviction > 0 => "eviction_signal",
        b'G' => "graceful_signal",
        CPU_LIMIT => "cpu_time_limit",
        reloading::SCRIPT_CHANGED => "script_reload",
        monitor::RESTART_INTERVAL => "restart_interval",
        monitor::REQUEST_TIMEOUT => "request_timeout",
        monitor::INACTIVITY => "inactivity_timeout",
        monitor::DEADLOCK => "deadlock_timeout",
        monitor::STARTUP => "startup_timeout",
        _ => "shutdown_signal",
    }
}
