//! Process-wide engine settings, copied out of the module's `EngineConfig` at init.

use crate::abi;
use std::sync::OnceLock;

/// The mod_wsgi version whose API this engine offers (`mod_wsgi.version` in every interpreter
/// and in the environ): applications test it to find features, so it names the mod_wsgi
/// release whose behaviour we match, not our own version.
pub const MOD_WSGI_API_VERSION: (i64, i64, i64) = (4, 9, 4);

/// `MOD_WSGI_API_VERSION` as a Python tuple.
pub fn mod_wsgi_version() -> super::py::PyResult<super::py::PyObj> {
    let (major, minor, patch) = MOD_WSGI_API_VERSION;
    super::py::tuple(&[&super::py::int(major)?, &super::py::int(minor)?, &super::py::int(patch)?])
}

pub struct Settings {
    pub python_path: Vec<String>,
    /// A daemon group's `home=`, first on every interpreter's `sys.path` (mod_wsgi).
    pub home_path: Option<String>,
    pub multithread: bool,
    pub multiprocess: bool,
    pub maximum_processes: usize,
    /// `WSGIRestrictStdin` and `WSGIRestrictStdout` (both default Off, as mod_wsgi 4.9 and 6 behave).
    pub restrict_stdin: bool,
    pub restrict_stdout: bool,
    /// `WSGIRestrictSignal` (default On).
    pub restrict_signal: bool,
    /// `sys.setswitchinterval` for every interpreter, in seconds; 0: Python's own.
    pub switch_interval: f64,
    /// `WSGIDestroyInterpreter` (default On): finalise Python at exit.
    pub destroy_interpreter: bool,
    /// The main interpreter's `<WSGIInterpreterOptions>` settings (see `group::Prepared`).
    pub main_options: abi::interpreter_options::GroupOptions,
    pub threads_per_process: usize,
    pub module_version: String,
    /// `mod_wsgi.process_group`: the daemon group's name, empty when embedded.
    pub process_group: String,
    /// Apache's version from its banner (`Apache/2.4.71 (Debian)`), for `apache.version`.
    pub apache_version: (i64, i64, i64),
    pub log: unsafe extern "C" fn(level: i32, message: abi::Bytes),
    /// The module's scoreboard reader, for `mod_wsgi.server_metrics()`.
    pub scoreboard: abi::ScoreboardFn,
    /// The module's request metrics, for `mod_wsgi.request_metrics()` and the rest.
    pub metrics: abi::MetricsFn,
    /// The process environment as the child started, before any application changed it:
    /// every new interpreter starts its `os.environ` from this (see `group.rs`).
    pub initial_environ: Vec<(Vec<u8>, Vec<u8>)>,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

pub fn set(settings: Settings) {
    let _ = SETTINGS.set(settings);
}

pub fn get() -> &'static Settings {
    SETTINGS.get().expect("the engine is initialised before it serves")
}

/// Logs process-level lines (a traceback) together, the GIL released once around them.
pub fn log_lines(level: i32, lines: &[String]) {
    crate::gil::outside(|| lines.iter().for_each(|line| log(level, line)));
}

/// Logs a process-level line through the module.
pub fn log(level: i32, message: &str) {
    if let Some(s) = SETTINGS.get() {
        // SAFETY: the module's log callback takes a byte string valid for the call.
        crate::gil::outside(|| unsafe { (s.log)(level, abi::Bytes::new(message.as_bytes())) })
    }
}
