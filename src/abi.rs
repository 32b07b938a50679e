//! The versioned `extern "C"` interface between the module Apache loads and a Python engine.
//!
//! The module is built once; engines are built per Python ABI and loaded with `dlopen` in each
//! child after fork. Everything that crosses between them is in this file and nothing else:
//! plain `#[repr(C)]` records of borrowed byte strings and function pointers. The request is
//! described as the engine needs it (environ source, body reader, response writer, logger), so
//! the same engine can later serve requests that arrive at a daemon process instead of Apache.
//!
//! Any change to a record here bumps [`ABI_VERSION`]; the module refuses an engine of another
//! version at start-up instead of crashing in a child.

use std::ffi::{c_int, c_void};

/// Version of the records below: the one place it is written. Bumped on every incompatible
/// change; the engine's marker ([`MARKER`]) and its table ([`Engine::abi_version`]) are
/// derived from it.
pub const ABI_VERSION: u32 = 23;

/// Every engine file carries this text followed by its [`ABI_VERSION`] as four digits, so the
/// module can check an engine at config time by reading the file, without loading it (which
/// would bring libpython into Apache's parent).
pub const MARKER_PREFIX: &[u8] = b"mod_wsgi-rs-engine-abi:";

/// Length of [`MARKER`]: the prefix and four digits.
pub const MARKER_LEN: usize = MARKER_PREFIX.len() + 4;

/// The marker of this ABI version, [`MARKER_PREFIX`] + [`ABI_VERSION`] as four digits, built at
/// compile time so that the engine can embed it as a static.
pub const MARKER: [u8; MARKER_LEN] = {
    let mut marker = [0u8; MARKER_LEN];
    let mut i = 0;
    while i < MARKER_PREFIX.len() {
        marker[i] = MARKER_PREFIX[i];
        i += 1;
    }
    let mut version = ABI_VERSION;
    let mut digit = MARKER_LEN;
    while digit > MARKER_PREFIX.len() {
        digit -= 1;
        marker[digit] = b'0' + (version % 10) as u8;
        version /= 10;
    }
    marker
};

/// Name of the function an engine exports; it returns a pointer to its static [`Engine`].
/// Not versioned: the table it returns says its version ([`Engine::abi_version`]).
pub const ENTRY_SYMBOL: &[u8] = b"mod_wsgi_engine_entry\0";

/// Signature of [`ENTRY_SYMBOL`].
pub type EntryFn = unsafe extern "C" fn() -> *const Engine;

/// A borrowed byte string: valid for the duration of the call it is passed to.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Bytes {
    pub ptr: *const u8,
    pub len: usize,
}

impl Bytes {
    pub const EMPTY: Bytes = Bytes { ptr: std::ptr::null(), len: 0 };

    pub fn new(s: &[u8]) -> Bytes {
        Bytes { ptr: s.as_ptr(), len: s.len() }
    }

    /// # Safety
    /// `ptr` must point to `len` readable bytes that outlive `'a` (or be null with `len == 0`).
    pub unsafe fn as_slice<'a>(self) -> &'a [u8] {
        if self.ptr.is_null() || self.len == 0 {
            &[]
        } else {
            // SAFETY: the caller guarantees ptr/len describe live memory for 'a.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }

    /// The bytes as text, invalid UTF-8 replaced.
    ///
    /// # Safety
    /// As for [`Bytes::as_slice`].
    pub unsafe fn to_text(self) -> String {
        // SAFETY: forwarded from the caller.
        String::from_utf8_lossy(unsafe { self.as_slice() }).into_owned()
    }
}

/// A name/value pair: an environ entry or a response header.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Pair {
    pub name: Bytes,
    pub value: Bytes,
}

/// Log levels, numbered as Apache's `APLOG_*`.
pub mod level {
    pub const ERR: i32 = 3;
    pub const WARNING: i32 = 4;
    pub const NOTICE: i32 = 5;
    pub const INFO: i32 = 6;
    pub const DEBUG: i32 = 7;
}

/// A `WSGIImportScript`: a script loaded into a group when the child starts.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ImportScript {
    pub script: Bytes,
    /// The application group: a literal name, or empty for `%{GLOBAL}`.
    pub group: Bytes,
    /// `WSGIPerInterpreterGIL` for that group, as [`gil_mode`] (the module resolves it).
    pub gil_mode: c_int,
    /// How many interpreters serve the group ([`replicas`]): each one imports the script.
    pub replicas: u32,
    /// The group's `<WSGIInterpreterOptions>` settings, encoded as [`interpreter_options`].
    pub options: Bytes,
}

/// The settings of `<WSGIInterpreterOptions>` (mod_wsgi 6) other than the GIL mode, resolved
/// by the module for one application group: `WSGIPythonPath` layers, `WSGISwitchInterval`,
/// `WSGIRestrictStdin`, `WSGIRestrictStdout` and `WSGIRestrictSignal`. A request carries them
/// as one environ entry (read and left out of the application's environ by the engine, as
/// [`gil_mode`]), a `WSGIImportScript` in [`ImportScript::options`], the main interpreter in
/// [`EngineConfig::main_options`]; the first of these that creates a group's interpreter
/// decides, as for its GIL mode. Encoded as `key=value` lines (an Apache configuration value
/// holds no newline), so that the records stay byte strings.
pub mod interpreter_options {
    /// The environ entry, present when a container sets something for the group.
    pub const ENVIRON_KEY: &[u8] = b"mod_wsgi.interpreter_options";

    /// What the containers that match one group set; `None`: the process-wide value.
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct GroupOptions {
        /// `WSGIPythonPath` of every matching container, least specific first (then in
        /// configuration order), each `:`-separated: applied after the process-wide path,
        /// each a layer moved in front of the ones before (so the most specific ends first).
        pub python_path: Vec<String>,
        /// `WSGISwitchInterval` of the most specific container, in seconds.
        pub switch_interval: Option<f64>,
        /// Whether that container selects an application group: then it applies only to an
        /// interpreter with its own GIL (on the shared GIL it would change every group's).
        pub switch_interval_app_scoped: bool,
        pub restrict_stdin: Option<bool>,
        pub restrict_stdout: Option<bool>,
        pub restrict_signal: Option<bool>,
    }

    impl GroupOptions {
        /// Whether no container sets anything for the group.
        pub fn is_empty(&self) -> bool {
            *self == GroupOptions::default()
        }

        /// The `key=value` lines.
        pub fn encode(&self) -> Vec<u8> {
            let mut lines = Vec::new();
            for layer in &self.python_path {
                lines.push(format!("path={layer}"));
            }
            if let Some(seconds) = self.switch_interval {
                lines.push(format!("switch={seconds}"));
                if self.switch_interval_app_scoped {
                    lines.push("switch-scope=app".into());
                }
            }
            for (key, value) in [("stdin", self.restrict_stdin), ("stdout", self.restrict_stdout), ("signal", self.restrict_signal)] {
                if let Some(on) = value {
                    lines.push(format!("{key}={}", on as u8));
                }
            }
            lines.join("\n").into_bytes()
        }

        /// The options `encode` wrote; a line it did not write is ignored.
        pub fn decode(text: &[u8]) -> GroupOptions {
            let mut options = GroupOptions::default();
            for line in String::from_utf8_lossy(text).lines() {
                let Some((key, value)) = line.split_once('=') else { continue };
                match key {
                    "path" => options.python_path.push(value.to_string()),
                    "switch" => options.switch_interval = value.parse().ok().filter(|s: &f64| *s > 0.0),
                    "switch-scope" => options.switch_interval_app_scoped = value == "app",
                    "stdin" => options.restrict_stdin = Some(value == "1"),
                    "stdout" => options.restrict_stdout = Some(value == "1"),
                    "signal" => options.restrict_signal = Some(value == "1"),
                    _ => {}
                }
            }
            options
        }
    }
}

/// Replicas (ours): one application group served by N interpreters of one process, each with
/// its own GIL, so that one site's Python uses several cores without more processes. The
/// module resolves N (`replicas=` of `WSGIApplicationGroup` or `WSGIScriptAlias`, else of the
/// most specific `<WSGIInterpreterOptions>`) and passes it, when above 1, as an environ entry
/// that the engine reads and leaves out of the application's environ (as [`gil_mode`]); the
/// engine picks the replica of each request. A group on the shared GIL has one interpreter.
pub mod replicas {
    /// The environ entry: N as decimal digits.
    pub const ENVIRON_KEY: &[u8] = b"mod_wsgi.replicas";
    /// The most interpreters one group may have in a process.
    pub const MAX: u32 = 32;

    /// N from the environ value (1 when absent or not a number in range).
    pub fn from_environ_value(value: Option<&[u8]>) -> u32 {
        value.and_then(|v| std::str::from_utf8(v).ok()).and_then(|v| v.parse::<u32>().ok()).filter(|n| (1..=MAX).contains(n)).unwrap_or(1)
    }
}

/// `WSGIPerInterpreterGIL` of one application group, resolved by the module (the server
/// value and the most specific `<WSGIInterpreterOptions>` block that sets it), for the engine
/// that creates the group's interpreter. `%{GLOBAL}` is always [`gil_mode::SHARED`].
pub mod gil_mode {
    use std::ffi::c_int;
    /// The interpreter shares the main interpreter's GIL (mod_wsgi 4.x).
    pub const SHARED: c_int = 0;
    /// `On`: its own GIL and allocator (Python 3.12+; ignored, as shared, before).
    pub const OWN: c_int = 1;
    /// `Auto`: as `OWN`, but a group whose first import meets an extension that cannot load
    /// with its own GIL moves to the shared GIL (the engine's `fallback.rs`).
    pub const AUTO: c_int = 2;

    /// The environ entry through which a request tells the engine its group's mode, when it
    /// is not `SHARED`: `On` or `Auto`. The module's handler puts it last (after removing any
    /// entry of that name, which `SetEnv` could have made), a daemon passes the environ on as
    /// it came, and the engine reads it and leaves it out of the application's environ. An
    /// environ entry rather than a field of `Request`, so that a daemon group gets its own
    /// setting (resolved by the child for that daemon's process group) without a change to
    /// the daemon protocol; the first request (or `WSGIImportScript`) that creates a group
    /// decides its mode.
    pub const ENVIRON_KEY: &[u8] = b"mod_wsgi.per_interpreter_gil";

    /// The environ value for a mode (`None` for `SHARED`).
    pub fn environ_value(mode: c_int) -> Option<&'static [u8]> {
        match mode {
            OWN => Some(b"On"),
            AUTO => Some(b"Auto"),
            _ => None,
        }
    }

    /// The mode an environ value stands for.
    pub fn from_environ_value(value: &[u8]) -> c_int {
        match value {
            b"On" => OWN,
            b"Auto" => AUTO,
            _ => SHARED,
        }
    }
}

/// `WSGIPassApacheRequest On` (embedded mode only, as in mod_wsgi): the request's
/// `request_rec` address, as decimal digits in an environ entry that the engine turns into
/// `environ['apache.request_rec']`, a capsule without a name (as mod_wsgi's), for C extensions
/// written against Apache. The module removes any entry of that name that `SetEnv` made, and
/// never sends one to a daemon (which strips it too).
pub mod request_rec {
    pub const ENVIRON_KEY: &[u8] = b"mod_wsgi.request_rec";
    /// The application's environ key.
    pub const PYTHON_KEY: &str = "apache.request_rec";
}

/// Process-wide settings, given once to [`Engine::init`] in a child.
#[repr(C)]
pub struct EngineConfig {
    /// `WSGIPythonHome`, or empty for the interpreter's own prefix.
    pub python_home: Bytes,
    /// A daemon group's `home=`: put first on `sys.path` of every interpreter, as mod_wsgi
    /// does ("as when running the script with the Python interpreter"); empty: none.
    pub home_path: Bytes,
    /// `WSGIPythonPath` entries, `:`-separated; each is added with `site.addsitedir`.
    pub python_path: Bytes,
    /// Apache's MPM: whether several threads and several processes serve requests.
    pub multithread: c_int,
    pub multiprocess: c_int,
    /// `WSGIPythonConcurrency`: 0 off (no limit), -1 auto, N a fixed limit.
    pub python_concurrency: c_int,
    /// `WSGIPythonQueueTimeout` in milliseconds: the longest a request waits for a slot.
    pub queue_timeout_ms: u64,
    /// Threads per child (ThreadsPerChild; 1 under prefork): the most `auto` will allow.
    pub threads_per_child: c_int,
    /// `WSGIRestrictStdin` and `WSGIRestrictStdout` (0/1).
    pub restrict_stdin: c_int,
    pub restrict_stdout: c_int,
    /// `WSGIRestrictSignal` (0/1, default 1): `signal.signal()` from an application is ignored
    /// with a log line instead of replacing Apache's handlers.
    pub restrict_signal: c_int,
    /// `WSGISwitchInterval`, or `switch-interval=` of a daemon group, in microseconds
    /// (`sys.setswitchinterval`); 0: Python's own.
    pub switch_interval_us: u64,
    /// The main interpreter's (`%{GLOBAL}`'s) `<WSGIInterpreterOptions>` settings, encoded as
    /// [`interpreter_options`]: it is created at init, before any request names it.
    pub main_options: Bytes,
    /// `WSGIPythonHashSeed`: empty (Python's own), `random` or a number. Given to Python at
    /// start (`PyConfig.hash_seed`; before 3.8 `PYTHONHASHSEED` around the start only), so
    /// that it is not left in the environment subprocesses inherit (as mod_wsgi).
    pub hash_seed: Bytes,
    /// `WSGIDestroyInterpreter` (0/1, default 1): 0 leaves Python as it is at the process's
    /// exit, after the `process_stopping` events.
    pub destroy_interpreter: c_int,
    /// `WSGIPythonOptimize` (-1: not set), `WSGIDontWriteBytecode` (0/1).
    pub python_optimize: c_int,
    pub dont_write_bytecode: c_int,
    /// `WSGIPythonWarnings` options, one per line.
    pub python_warnings: Bytes,
    /// Apache's process and thread limits, for `mod_wsgi.maximum_processes` and
    /// `mod_wsgi.threads_per_process`.
    pub maximum_processes: c_int,
    /// `WSGIImportScript` entries, loaded in order after Python starts.
    pub import_scripts: *const ImportScript,
    pub import_scripts_len: usize,
    /// Version string of the module, for `mod_wsgi.version` and the environ.
    pub module_version: Bytes,
    /// Apache's server banner, for `apache.version`-like keys.
    pub server_banner: Bytes,
    /// The daemon process group this process serves (`mod_wsgi.process_group`); empty in
    /// Apache's own children (embedded mode).
    pub process_group: Bytes,
    /// Logs a process-level line (no request) to the main server's error log.
    pub log: unsafe extern "C" fn(level: c_int, message: Bytes),
    /// Reads Apache's scoreboard for `mod_wsgi.server_metrics()` (see [`ScoreboardFn`]).
    pub scoreboard: ScoreboardFn,
    /// The module's request metrics, for `mod_wsgi.start_recording_metrics()`,
    /// `request_metrics()` and `process_metrics()` (see [`MetricsFn`]).
    pub metrics: MetricsFn,
}

/// What [`MetricsFn`] is asked: to start recording, or for figures.
pub mod metrics_query {
    use std::ffi::c_int;
    pub const START_RECORDING: c_int = 0;
    /// mod_wsgi 6.1's `request_metrics()`: the figures since the last call (drained).
    pub const REQUEST: c_int = 1;
    /// mod_wsgi 6.1's `process_metrics()` keys: counts over the process's life.
    pub const PROCESS: c_int = 2;
    /// Ours: this process's application groups as its status board has them (always kept),
    /// one figure per group and key, named `GROUP` 0x1f `KEY`.
    pub const GROUPS: c_int = 3;
}

/// The kinds of a [`MetricValue`].
pub mod metric_kind {
    use std::ffi::c_int;
    pub const NONE: c_int = 0;
    pub const INT: c_int = 1;
    pub const FLOAT: c_int = 2;
    pub const INTS: c_int = 3;
    pub const FLOATS: c_int = 4;
}

/// One named figure: `kind` says which field holds it (lists: `len` items at `ints` or
/// `floats`, valid during the sink call).
#[repr(C)]
pub struct MetricValue {
    pub kind: c_int,
    pub int: i64,
    pub float: f64,
    pub ints: *const i64,
    pub floats: *const f64,
    pub len: usize,
}

/// The engine's receiver of one figure; it copies it before returning.
pub type MetricsSink = unsafe extern "C" fn(ctx: *mut c_void, name: Bytes, value: *const MetricValue);

/// Answers a [`metrics_query`]: each figure goes to `sink` with `ctx`; 1 when answered, 0 for
/// Python's `None` (telemetry is on, which takes the figures, or nothing is recorded).
pub type MetricsFn = unsafe extern "C" fn(query: c_int, sink: MetricsSink, ctx: *mut c_void) -> c_int;

/// Outcome of [`Engine::handle`]: what the module's handler returns to Apache.
///
/// A plain `c_int` across `dlopen`, not a Rust enum: an engine built from other sources could
/// return any value, and an out-of-range enum discriminant would be undefined behaviour. The
/// module maps values it does not know to a 500.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome(pub c_int);

impl Outcome {
    /// The response was produced (possibly cut short by the client going away).
    pub const DONE: Outcome = Outcome(0);
    /// `WSGIErrorOverride`: the application's error status goes to Apache's error pages.
    pub const OVERRIDE: Outcome = Outcome(1);
    /// The application failed after part of the response reached Apache: the module aborts
    /// the connection (no final chunk, no keep-alive), so that the client sees a truncated
    /// response, never one that looks complete.
    pub const ABORTED: Outcome = Outcome(2);
    /// The script or its callable does not exist: Apache sends its 404.
    pub const NOT_FOUND: Outcome = Outcome(404);
    /// Nothing was sent and the application failed: Apache sends its 500.
    pub const SERVER_ERROR: Outcome = Outcome(500);
    /// The request waited too long for a Python slot, or the child is exiting: Apache's 503.
    pub const UNAVAILABLE: Outcome = Outcome(503);
    /// A daemon gave up on the request (`request-timeout`, `queue-timeout`): Apache's 504.
    /// Only a daemon process sends it; engines never return it.
    pub const GATEWAY_TIMEOUT: Outcome = Outcome(504);
}

/// One request as the engine sees it. The callbacks are only valid during [`Engine::handle`].
#[repr(C)]
pub struct Request {
    /// Opaque to the engine; passed back to every callback.
    pub ctx: *mut c_void,
    /// CGI and `mod_wsgi.*` variables, native strings as bytes (decoded as latin-1 by the engine).
    pub environ: *const Pair,
    pub environ_len: usize,
    /// The script file, the callable's name in it and the (expanded) application group.
    pub script: Bytes,
    pub callable: Bytes,
    pub group: Bytes,
    /// Reads up to `len` bytes of the request body into `buf`: the count, 0 at the end, -1 on error.
    /// Called without the GIL.
    pub read: unsafe extern "C" fn(ctx: *mut c_void, buf: *mut u8, len: usize) -> isize,
    /// Sets the status line (`"200 OK"`) and headers; called once, before the first write.
    /// Returns 0; 1 when `WSGIErrorOverride` takes an error status over (the engine sends no
    /// body and returns [`Outcome::Override`]); -1 when Apache refused them (a server error).
    pub start: unsafe extern "C" fn(ctx: *mut c_void, status: Bytes, headers: *const Pair, len: usize) -> c_int,
    /// Writes one body chunk to the client (`Bytes::EMPTY` flushes). 0, or -1 when the client is gone.
    /// Called without the GIL.
    pub write: unsafe extern "C" fn(ctx: *mut c_void, data: Bytes) -> c_int,
    /// Sends `len` bytes of the open file `fd` from `offset` (`wsgi.file_wrapper`), through
    /// Apache's file bucket so that the kernel's sendfile can be used; the module does not
    /// close `fd`. 0, or -1 when the client is gone. Called without the GIL.
    pub send_file: unsafe extern "C" fn(ctx: *mut c_void, fd: c_int, offset: u64, len: u64) -> c_int,
    /// Logs a line to the error log, attributed to this request.
    pub log: unsafe extern "C" fn(ctx: *mut c_void, level: c_int, message: Bytes),
    /// Where the engine writes, as [`Engine::handle`] returns, how long the request waited
    /// for Python (telemetry); null when nobody asks.
    pub python_wait: *mut PythonWait,
    /// Where the engine writes, as [`Engine::handle`] returns, the figures of the interpreter
    /// that served the request (its application group's, for the status page); null when
    /// nobody asks. Left as it was when no interpreter was reached (the group could not be
    /// created, no Python slot).
    pub figures: *mut GroupFigures,
}

/// Figures of one application group's interpreter in this process, as the engine knows them
/// at the end of a request it served (see [`Request::figures`]). The engine fills them from
/// atomics, without a lock; only the occasional `objects` sample runs Python.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupFigures {
    /// Python thread states the engine keeps for the interpreter (one per Apache thread that
    /// has served it, while the thread lives).
    pub thread_states: u64,
    /// Objects tracked by the interpreter's garbage collector (`len(gc.get_objects())`),
    /// sampled at most every few seconds; -1 when not known: before Python 3.9 the collector
    /// is the process's, not the interpreter's, and it is not sampled then.
    pub objects: i64,
    /// Which of the group's replicas the interpreter is (0 without replicas): the module adds
    /// up a group's replicas.
    pub replica: u32,
}

// The layout both sides compile against (a change here bumps ABI_VERSION).
const _: () = assert!(std::mem::size_of::<GroupFigures>() == 24 && std::mem::offset_of!(GroupFigures, replica) == 16);

impl Default for GroupFigures {
    fn default() -> GroupFigures {
        GroupFigures { thread_states: 0, objects: -1, replica: 0 }
    }
}

/// How long a request waited for Python: for a slot of the GIL scheduler and for the GIL,
/// summed over its waits (at its start and after each release for Apache's I/O).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PythonWait {
    pub nanos: u64,
    pub count: u64,
}

/// What [`Engine::progress`] reports to a daemon's monitor: counters it compares between
/// two looks (never clock times, so the engine and the module need not share a clock).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Times the heartbeat thread ([`Engine::start_heartbeat`]) has had the GIL: when it stops
    /// growing, no thread can take the GIL (`deadlock-timeout`).
    pub heartbeats: u64,
    /// Requests that found their WSGI script loaded (loaded it, or found it loaded):
    /// `startup-timeout` ends with the first.
    pub scripts_ready: u64,
}

/// The table an engine exports through [`ENTRY_SYMBOL`].
#[repr(C)]
pub struct Engine {
    pub abi_version: u32,
    /// `"3.11"`: the Python this engine was built for.
    pub python_version: Bytes,
    /// Initialises Python in this process. 0 on success.
    pub init: unsafe extern "C" fn(config: *const EngineConfig) -> c_int,
    /// Serves one request on the calling thread.
    pub handle: unsafe extern "C" fn(request: *const Request) -> Outcome,
    /// The child is stopping (Apache's `child_stopping`): a non-graceful stop interrupts
    /// Python code that is still running, so that the child can exit in time.
    pub stopping: unsafe extern "C" fn(graceful: c_int),
    /// Ends every interpreter and finalises Python; called once, when the child exits.
    pub shutdown: unsafe extern "C" fn(),
    /// The process has begun to end: threads that end from now on leave their thread states
    /// to `shutdown`. Async-signal-safe (one atomic store): called even from prefork's exit
    /// signal handler, where nothing else of the engine may run.
    pub ending: unsafe extern "C" fn(),
    /// Logs (through [`EngineConfig::log`]) the Python stack of each of the `len` threads in
    /// `idents` (`pthread_self` values of threads serving requests), taking the GIL in each
    /// one's interpreter and releasing it before logging. Called without the GIL, from a
    /// thread that serves no request (a daemon's monitor).
    pub dump_stacks: unsafe extern "C" fn(idents: *const u64, len: usize),
    /// Raises `SystemExit` in those of the `len` threads in `idents` (`pthread_self`
    /// values) that are serving a request; how many. Called without the GIL, from a thread
    /// that serves no request (a daemon's main thread on `request-timeout`).
    pub interrupt: unsafe extern "C" fn(idents: *const u64, len: usize) -> usize,
    /// Starts the heartbeat thread, which takes the GIL briefly every second (a daemon's
    /// `deadlock-timeout`); it stops by itself when [`Engine::shutdown`] begins. 0 on success
    /// (or when already started), -1 when no thread could be started.
    pub start_heartbeat: unsafe extern "C" fn() -> c_int,
    /// The counters a daemon's monitor watches. Lock-free and without the GIL: callable
    /// while the GIL is stuck.
    pub progress: unsafe extern "C" fn() -> Progress,
    /// Logs the Python stack of every thread of every interpreter *without* taking the GIL
    /// (CPython's faulthandler dump), for a `deadlock-timeout`: whoever holds the GIL shows.
    /// Best effort (a line says so when this Python cannot do it). Called from a thread that
    /// serves no request.
    pub dump_stacks_nogil: unsafe extern "C" fn(),
    /// Runs a `WSGIDispatchScript` (the request's `script`, in its `group`; `callable` is
    /// unused): each answer goes to `set` with `ctx` ([`dispatch`]). 0, or -1 after logging
    /// why through the request's `log`. Called without the GIL, before the request is served.
    pub dispatch: unsafe extern "C" fn(request: *const Request, ctx: *mut c_void, set: AnswerFn) -> c_int,
    /// Asks an access or auth script (`WSGIAccessScript`, `WSGIAuthUserScript`,
    /// `WSGIAuthGroupScript`: the request's `script`, in its `group`) the `question`; the
    /// answer is one of [`auth`]'s results, with any names it carries given to `set` with
    /// `ctx` first. Called without the GIL, in Apache's access and auth phases.
    pub auth: unsafe extern "C" fn(request: *const Request, question: *const AuthQuestion, ctx: *mut c_void, set: AnswerFn) -> c_int,
}

/// What an access or auth script is asked ([`Engine::auth`]).
#[repr(C)]
pub struct AuthQuestion {
    /// One of [`auth`]'s kinds.
    pub kind: c_int,
    /// The user (`check_password`, `get_realm_hash`, `groups_for_user`).
    pub user: Bytes,
    /// The password (`check_password`) or the realm (`get_realm_hash`).
    pub secret: Bytes,
    /// The client's host name or address (`allow_access`).
    pub host: Bytes,
}

/// mod_wsgi's access and auth hooks: what is asked ([`AuthQuestion::kind`]), what comes back
/// ([`Engine::auth`]'s result) and what is handed over on the way (the `which` of its
/// [`AnswerFn`]).
pub mod auth {
    use std::ffi::c_int;
    /// `allow_access(environ, host)` of a `WSGIAccessScript`.
    pub const ALLOW_ACCESS: c_int = 0;
    /// `check_password(environ, user, password)` of a `WSGIAuthUserScript` (Basic).
    pub const CHECK_PASSWORD: c_int = 1;
    /// `get_realm_hash(environ, user, realm)` of a `WSGIAuthUserScript` (Digest).
    pub const GET_REALM_HASH: c_int = 2;
    /// `groups_for_user(environ, user)` of a `WSGIAuthGroupScript`.
    pub const GROUPS_FOR_USER: c_int = 3;

    /// True: allowed, the password is right, the user's hash or groups were found.
    pub const YES: c_int = 1;
    /// False: refused, the password is wrong.
    pub const NO: c_int = 0;
    /// None: no opinion (access), no such user (auth).
    pub const UNKNOWN: c_int = 2;
    /// The script raised, is missing its function, or answered something it may not; the
    /// reason is logged. Apache's 500.
    pub const ERROR: c_int = -1;
    /// No Python slot could be had, or the process is stopping: Apache's 503 where the phase
    /// can say so (the access checker), else a 500 (the providers).
    pub const NO_SLOT: c_int = -2;

    /// `check_password` returned a user name: Apache's user becomes it.
    pub const USER_NAME: c_int = 0;
    /// `get_realm_hash`'s hash (hex MD5 of `user:realm:password`).
    pub const REALM_HASH: c_int = 1;
    /// One group of `groups_for_user`'s answer (once per group).
    pub const GROUP: c_int = 2;
}

/// Receives one answer of a dispatch, access or auth script: `which` is one of [`dispatch`]'s
/// or [`auth`]'s constants, the value is valid for the call only.
pub type AnswerFn = unsafe extern "C" fn(ctx: *mut c_void, which: c_int, value: Bytes);

/// What a `WSGIDispatchScript` function answered (the `which` of [`AnswerFn`]).
pub mod dispatch {
    use std::ffi::c_int;
    pub const PROCESS_GROUP: c_int = 0;
    pub const APPLICATION_GROUP: c_int = 1;
    pub const CALLABLE_OBJECT: c_int = 2;
}

// SAFETY: an Engine is an immutable static table of function pointers and a static string.
unsafe impl Sync for Engine {}

/// Copies Apache's scoreboard into plain records and hands them to `sink` (with `ctx`), valid
/// for that call only. 1 when `sink` was called; 0 when server metrics are off for this
/// process (`WSGIServerMetrics`, or a daemon group's `server-metrics=`) or there is no
/// scoreboard. Reads shared memory only, never blocks: callable with the GIL held.
pub type ScoreboardFn = unsafe extern "C" fn(sink: ScoreboardSink, ctx: *mut c_void) -> c_int;

/// The engine's receiver of a [`Scoreboard`]; it copies what it needs before returning.
pub type ScoreboardSink = unsafe extern "C" fn(ctx: *mut c_void, scoreboard: *const Scoreboard);

/// Apache's scoreboard as one read saw it (`global_score`, then every slot of `process_score`
/// and `worker_score`, empty ones included, as mod_wsgi reports them). Times are `apr_time_t`:
/// microseconds since the epoch, 0 when never set.
#[repr(C)]
pub struct Scoreboard {
    pub server_limit: c_int,
    pub thread_limit: c_int,
    pub running_generation: c_int,
    pub restart_time_us: i64,
    /// `server_limit` records.
    pub processes: *const ScoreProcess,
    pub processes_len: usize,
    /// `thread_limit` records per process, process by process: worker `j` of process `i` is
    /// `workers[i * thread_limit + j]`.
    pub workers: *const ScoreWorker,
    pub workers_len: usize,
}

/// One `process_score` slot.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ScoreProcess {
    pub pid: c_int,
    pub generation: c_int,
    /// The process is going down gracefully (0/1).
    pub quiescing: c_int,
}

/// One `worker_score` slot. The strings are borrowed for the sink's call; Apache writes them
/// latin-1 (as mod_wsgi decodes them).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ScoreWorker {
    pub thread_num: c_int,
    pub generation: c_int,
    /// Apache's `SERVER_*` status number (`SERVER_DEAD` 0 ... `SERVER_IDLE_KILL` 10).
    pub status: c_int,
    pub access_count: u64,
    pub bytes_served: u64,
    pub start_time_us: i64,
    pub stop_time_us: i64,
    pub last_used_us: i64,
    pub client: Bytes,
    pub request: Bytes,
    pub vhost: Bytes,
}

#[cfg(test)]
mod tests {
    use super::interpreter_options::GroupOptions;
    use proptest::prelude::*;

    proptest! {
        /// Whatever a configuration can hold (no newline in a value) comes back as it went.
        #[test]
        fn group_options_round_trip(
            python_path in proptest::collection::vec("[^\n\r]+", 0..4),
            switch_interval in proptest::option::of(1e-6f64..10.0),
            switch_interval_app_scoped: bool,
            restrict in proptest::array::uniform3(proptest::option::of(any::<bool>())),
        ) {
            let options = GroupOptions {
                python_path,
                switch_interval,
                switch_interval_app_scoped: switch_interval_app_scoped && switch_interval.is_some(),
                restrict_stdin: restrict[0],
                restrict_stdout: restrict[1],
                restrict_signal: restrict[2],
            };
            prop_assert_eq!(GroupOptions::decode(&options.encode()), options);
        }
    }
}
