//! What `start-server` and `setup-server` were told, typed: [`ServerOptions`] and the types of
//! its fields ([`App`], [`Mpm`], [`Flag`], [`List`]...), with the questions the rest of the
//! program asks of them (is a document root served? is there a daemon group?). Filled in by
//! `checks.rs`.

use crate::auth::Auth;
use crate::docroot::DocRoot;
use crate::logs::Logs;
use crate::telemetry::Telemetry;
use crate::tls::Tls;
use std::path::PathBuf;

/// Apache's multi-processing modules we know how to configure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mpm {
    Event,
    Worker,
    Prefork,
}

impl Mpm {
    /// In the original's order of preference, which `--server-mpm` given twice picks from.
    pub const ALL: [Mpm; 3] = [Mpm::Event, Mpm::Worker, Mpm::Prefork];

    pub fn name(self) -> &'static str {
        match self {
            Mpm::Event => "event",
            Mpm::Worker => "worker",
            Mpm::Prefork => "prefork",
        }
    }
}

/// The entry point, as `--application-type` says to read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum App {
    /// A WSGI script file (`script`, the default).
    Script(PathBuf),
    /// A dotted module name, imported (`module`).
    Module(String),
    /// A PasteDeploy configuration file (`paste`).
    Paste(PathBuf),
    /// No application (`static`): the directory given, if any, is the document root.
    Static(Option<PathBuf>),
}

/// `--url-alias URL PATH`. `is_file` is filled in by setup (it needs the file system).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlAlias {
    pub url: String,
    pub path: PathBuf,
    pub is_file: bool,
}

/// `--initial-workers`, `--minimum-spare-workers`, `--maximum-spare-workers`: fractions of
/// `max_clients` for sizing Apache's children in daemon mode, as the original's.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SpareWorkers {
    pub initial: Option<f64>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
}

/// Everything `start-server` was told, typed and validated.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    pub app: App,
    pub port: u16,
    pub host: String,
    /// Whether `--host` was given: the default server root names the host only then, as the
    /// original does (`/tmp/mod_wsgi-localhost:8000:UID` otherwise).
    pub host_given: bool,
    pub server_name: String,
    /// Whether `--server-name` was given: only then, as the original, is the site a name-based
    /// virtual host that refuses other host names.
    pub server_name_given: bool,
    pub server_root: Option<PathBuf>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub processes: u32,
    /// Whether `--processes` was given: as in the original, only then is `processes=` passed
    /// to the daemon group (and `wsgi.multiprocess` true).
    pub processes_given: bool,
    pub threads: u32,
    /// `--embedded-mode`: no daemon process group, the application runs in Apache's children.
    pub embedded: bool,
    /// `--process-group`; by default the group is named `HOST:PORT` (see `daemon.rs`).
    pub process_group: Option<String>,
    /// `--working-directory`; `None`: the current directory (resolved by setup).
    pub working_directory: Option<PathBuf>,
    /// The numeric options, as `(option name, value)`: [`crate::daemon::NUMBERS`] in their
    /// order, then [`SERVER_NUMBERS`].
    pub numbers: Vec<(&'static str, u32)>,
    pub locale: Option<String>,
    pub socket_prefix: Option<PathBuf>,
    pub mpm: Mpm,
    pub callable_object: String,
    pub application_group: Option<String>,
    pub mount_point: String,
    pub url_aliases: Vec<UrlAlias>,
    pub python_home: Option<PathBuf>,
    pub python_path: Vec<PathBuf>,
    pub python_eggs: Option<PathBuf>,
    /// `--switch-interval`, checked to be a positive number, as written.
    pub switch_interval: Option<String>,
    /// `--map-head-to-get`, as `WSGIMapHEADToGET` spells it (`Off`, `On`, `Auto`).
    pub map_head_to_get: &'static str,
    pub log_level: String,
    pub log_to_terminal: bool,
    pub access_log: bool,
    pub startup_log: bool,
    pub logs: Logs,
    pub setup_only: bool,
    /// `--setenv KEY VALUE`, in order.
    pub setenv: Vec<(String, String)>,
    /// `--include-file`: made absolute by setup.
    pub include_files: Vec<PathBuf>,
    pub compress_responses: bool,
    /// `--max-clients` (daemon mode), else computed as the original does.
    pub max_clients: Option<u32>,
    pub spare_workers: SpareWorkers,
    pub docroot: DocRoot,
    pub tls: Option<Tls>,
    pub auth: Auth,
    pub mime_types: Option<PathBuf>,
    pub httpd_executable: Option<PathBuf>,
    pub modules_directory: Option<PathBuf>,
    pub process_name: Option<String>,
    /// mod_wsgi 6.1's telemetry: `--telemetry-service` and the options that go with it.
    pub telemetry: Telemetry,
    /// The switches given that map to one directive each (see [`ServerOptions::flag`]).
    pub flags: Vec<Flag>,
    /// The values of the repeatable one-value options that pass through as they are (see
    /// [`ServerOptions::list`]), as (option, value) in command-line order.
    pub lists: Vec<(List, String)>,
    /// Options given that are ignored, as the original ignores them: one line each, for
    /// stderr.
    pub warnings: Vec<String>,
}

/// Switches kept in [`ServerOptions::flags`]: each turns one thing on. Typed, so that a
/// misspelt switch does not compile; `Flag::name` is the option's name in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flag {
    ChunkedRequest,
    EnableSendfile,
    ErrorOverride,
    ServerMetrics,
    ServerStatus,
    VerboseDebugging,
    DisableReloading,
    ReloadOnChanges,
    OrphanInterpreter,
    Http2,
    AllowLocalhost,
}

impl Flag {
    pub const ALL: [Flag; 11] = [
        Flag::ChunkedRequest,
        Flag::EnableSendfile,
        Flag::ErrorOverride,
        Flag::ServerMetrics,
        Flag::ServerStatus,
        Flag::VerboseDebugging,
        Flag::DisableReloading,
        Flag::ReloadOnChanges,
        Flag::OrphanInterpreter,
        Flag::Http2,
        Flag::AllowLocalhost,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Flag::ChunkedRequest => "chunked-request",
            Flag::EnableSendfile => "enable-sendfile",
            Flag::ErrorOverride => "error-override",
            Flag::ServerMetrics => "server-metrics",
            Flag::ServerStatus => "server-status",
            Flag::VerboseDebugging => "verbose-debugging",
            Flag::DisableReloading => "disable-reloading",
            Flag::ReloadOnChanges => "reload-on-changes",
            Flag::OrphanInterpreter => "orphan-interpreter",
            Flag::Http2 => "http2",
            Flag::AllowLocalhost => "allow-localhost",
        }
    }
}

/// Repeatable one-value options kept in [`ServerOptions::lists`], typed as [`Flag`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum List {
    ServerAlias,
    IgnoreActivity,
    TrustProxyHeader,
    TrustProxy,
    PassEnv,
    PythonWarnings,
}

impl List {
    pub const ALL: [List; 6] =
        [List::ServerAlias, List::IgnoreActivity, List::TrustProxyHeader, List::TrustProxy, List::PassEnv, List::PythonWarnings];

    pub fn name(self) -> &'static str {
        match self {
            List::ServerAlias => "server-alias",
            List::IgnoreActivity => "ignore-activity",
            List::TrustProxyHeader => "trust-proxy-header",
            List::TrustProxy => "trust-proxy",
            List::PassEnv => "passenv",
            List::PythonWarnings => "python-warnings",
        }
    }
}

/// Numeric options of Apache itself (the daemon's are [`crate::daemon::NUMBERS`]).
pub const SERVER_NUMBERS: &[&str] = &[
    "server-backlog",
    "keep-alive-timeout",
    "limit-request-body",
    "header-timeout",
    "header-max-timeout",
    "header-min-rate",
    "body-timeout",
    "body-max-timeout",
    "body-min-rate",
    "max-log-size",
];

impl ServerOptions {
    /// A numeric option's value (`numbers` holds every one the parser knows).
    pub fn number(&self, name: &str) -> u32 {
        self.numbers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v).unwrap_or_else(|| panic!("--{name} is not a numeric option"))
    }

    /// Whether the switch was given.
    pub fn flag(&self, flag: Flag) -> bool {
        self.flags.contains(&flag)
    }

    /// The values given to the option, in order.
    pub fn list(&self, list: List) -> Vec<&str> {
        self.lists.iter().filter(|(l, _)| *l == list).map(|(_, v)| v.as_str()).collect()
    }

    /// Whether requests are served from a document root, the application getting what is
    /// not a file there (as the original always does), rather than the whole mount point
    /// going to the application (`WSGIScriptAlias`, which keeps the module's own reloading
    /// of the script).
    pub fn serves_document_root(&self) -> bool {
        matches!(self.app, App::Static(_)) || self.docroot.is_wanted()
    }

    /// Whether the application is reached through the generated `handler.wsgi` (which loads
    /// the entry point as the type says and runs the change monitor) rather than directly.
    pub fn uses_handler_script(&self) -> bool {
        match self.app {
            App::Static(_) => false,
            App::Script(_) => self.serves_document_root() || self.flag(Flag::ReloadOnChanges),
            App::Module(_) | App::Paste(_) => true,
        }
    }

    /// Whether Python serves anything: the application, or (for a static site too, as in the
    /// original) the `--add-handler` scripts.
    pub fn runs_python(&self) -> bool {
        !matches!(self.app, App::Static(_)) || !self.docroot.handlers.is_empty()
    }

    /// Whether there is a daemon process group: Python runs, and not `--embedded-mode`.
    pub fn daemon_mode(&self) -> bool {
        !self.embedded && self.runs_python()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{self, Arity, Sub};

    #[test]
    fn typed_switches_and_lists_are_options_of_the_table() {
        for flag in Flag::ALL {
            let spec = options::find(Sub::StartServer, flag.name()).unwrap_or_else(|| panic!("--{} is not in the table", flag.name()));
            assert_eq!(spec.arity, Arity::Flag, "--{}", flag.name());
        }
        for list in List::ALL {
            let spec = options::find(Sub::StartServer, list.name()).unwrap_or_else(|| panic!("--{} is not in the table", list.name()));
            assert!(spec.repeatable && spec.arity == Arity::One, "--{}", list.name());
        }
    }
}
