//! Command-line parsing, by hand (no dependency beyond `std` and `libc`).
//!
//! Parsing is pure: it only turns words into a [`Command`] and never looks at the file system,
//! so that it can be unit-tested. Checks that need the file system (does the script exist?) and
//! turning relative paths absolute happen in `setup.rs`.

use crate::auth::Auth;
use crate::docroot::DocRoot;
use crate::logs::Logs;
use crate::options::{self, Arity, OptSpec, Sub};
use crate::telemetry::Telemetry;
use crate::tls::Tls;
use std::path::PathBuf;

/// What the user asked for.
#[derive(Debug)]
pub enum Command {
    /// Print this text to stdout and exit 0.
    Help(String),
    ModuleConfig { python_home: Option<PathBuf> },
    ModuleLocation,
    InstallModule { modules_directory: Option<PathBuf>, python_home: Option<PathBuf> },
    StartServer(Box<ServerOptions>),
    /// `setup-server`: the same options; writes the server root and its `apachectl`.
    SetupServer(Box<ServerOptions>),
}

/// A usage error: shown with a short usage line, exit status 2.
#[derive(Debug)]
pub struct UsageError {
    pub message: String,
    pub usage: String,
}

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
        Flag::ChunkedRequest, Flag::EnableSendfile, Flag::ErrorOverride, Flag::ServerMetrics, Flag::ServerStatus,
        Flag::VerboseDebugging, Flag::DisableReloading, Flag::ReloadOnChanges, Flag::OrphanInterpreter, Flag::Http2,
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
    pub const ALL: [List; 6] = [List::ServerAlias, List::IgnoreActivity, List::TrustProxyHeader, List::TrustProxy, List::PassEnv, List::PythonWarnings];

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
    "server-backlog", "keep-alive-timeout", "limit-request-body", "header-timeout", "header-max-timeout", "header-min-rate",
    "body-timeout", "body-max-timeout", "body-min-rate", "max-log-size",
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

const LOG_LEVELS: &[&str] = &[
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug", "trace1", "trace2", "trace3", "trace4",
    "trace5", "trace6", "trace7", "trace8",
];

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    let Some(first) = args.first() else { return Ok(Command::Help(options::main_help())) };
    let sub = match first.as_str() {
        "-h" | "--help" | "help" => return Ok(Command::Help(options::main_help())),
        "start-server" => Sub::StartServer,
        "setup-server" => Sub::SetupServer,
        "module-config" => Sub::ModuleConfig,
        "module-location" => Sub::ModuleLocation,
        "install-module" => Sub::InstallModule,
        other => {
            return Err(UsageError {
                message: format!("unknown command '{other}'"),
                usage: "usage: mod_wsgi-express {start-server,setup-server,module-config,module-location,install-module} [options]".to_string(),
            })
        }
    };
    let raw = split(sub, &args[1..])?;
    if raw.flag("help") {
        return Ok(Command::Help(options::help(sub)));
    }
    if !matches!(sub, Sub::StartServer | Sub::SetupServer) {
        if let Some(extra) = raw.positional.first() {
            return Err(raw.error(format!("unexpected argument '{extra}'")));
        }
    }
    match sub {
        Sub::ModuleConfig => Ok(Command::ModuleConfig { python_home: raw.path("python-home") }),
        Sub::ModuleLocation => Ok(Command::ModuleLocation),
        Sub::InstallModule => Ok(Command::InstallModule { modules_directory: raw.path("modules-directory"), python_home: raw.path("python-home") }),
        Sub::StartServer => server_options(&raw).map(|o| Command::StartServer(Box::new(o))),
        Sub::SetupServer => server_options(&raw).map(|o| Command::SetupServer(Box::new(o))),
    }
}

/// Options as given, before typing: (option, values) in command-line order, and the rest.
/// The feature modules (`tls.rs`, `docroot.rs`...) read their options from it.
#[derive(Debug)]
pub struct Raw {
    sub: Sub,
    given: Vec<(&'static OptSpec, Vec<String>)>,
    positional: Vec<String>,
}

impl Raw {
    pub fn error(&self, message: String) -> UsageError {
        let usage = format!("{}\nTry 'mod_wsgi-express {} --help'.", options::synopsis(self.sub), self.sub.name());
        UsageError { message, usage }
    }
    /// Whether the option was given (for a switch: whether it is on).
    pub fn flag(&self, name: &str) -> bool {
        self.given.iter().any(|(o, _)| o.name == name)
    }
    /// Last value given, else the table's default.
    pub fn one(&self, name: &str) -> Option<String> {
        let given = self.given.iter().rev().find(|(o, _)| o.name == name).map(|(_, v)| v[0].clone());
        given.or_else(|| options::default_of(name).map(str::to_string))
    }
    /// [`Raw::one`] as a path.
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        self.one(name).map(PathBuf::from)
    }
    /// Every value list given to a repeatable option, in order.
    pub fn all(&self, name: &str) -> Vec<Vec<String>> {
        self.given.iter().filter(|(o, _)| o.name == name).map(|(_, v)| v.clone()).collect()
    }
    /// A number from 0 to `max`, or the usage error naming the option.
    pub fn number(&self, name: &str, max: u32) -> Result<u32, UsageError> {
        let text = self.one(name).unwrap_or_default();
        match text.parse::<u32>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(self.error(format!("invalid --{name} '{text}': must be a number from 0 to {max}"))),
        }
    }
    /// A usage error unless the option that `name` depends on was given too.
    pub fn needs(&self, name: &str, other: &str) -> Result<(), UsageError> {
        if self.flag(name) && !self.flag(other) {
            return Err(self.error(format!("--{name} needs --{other}")));
        }
        Ok(())
    }
}

/// Splits words into options (`--opt value`, `--opt=value`) and positional arguments.
fn split(sub: Sub, words: &[String]) -> Result<Raw, UsageError> {
    let mut raw = Raw { sub, given: Vec::new(), positional: Vec::new() };
    let mut it = words.iter();
    while let Some(word) = it.next() {
        if word == "--" {
            raw.positional.extend(it.by_ref().cloned());
            break;
        }
        let Some(body) = word.strip_prefix("--") else {
            if word.starts_with('-') && word.len() > 1 && word != "-h" {
                return Err(raw.error(format!("unknown option '{word}'")));
            }
            if word == "-h" {
                raw.given.push((options::find(sub, "help").expect("help is in the table"), Vec::new()));
            } else {
                raw.positional.push(word.clone());
            }
            continue;
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(spec) = options::find(sub, name) else {
            if let Some(why) = options::unsupported(name).filter(|_| matches!(sub, Sub::StartServer | Sub::SetupServer)) {
                return Err(raw.error(format!("option '--{name}' of mod_wsgi-express is not supported by mod_wsgi-rs yet: {why}")));
            }
            return Err(raw.error(format!("unknown option '--{name}'")));
        };
        let wanted = match spec.arity {
            Arity::Flag => 0,
            Arity::One => 1,
            Arity::Two => 2,
        };
        if wanted == 0 && inline.is_some() {
            return Err(raw.error(format!("option '--{name}' takes no value")));
        }
        let mut values: Vec<String> = inline.into_iter().collect();
        while values.len() < wanted {
            match it.next() {
                Some(v) => values.push(v.clone()),
                None => return Err(raw.error(format!("option '--{name}' needs {}", spec.metavar))),
            }
        }
        raw.given.push((spec, values));
    }
    Ok(raw)
}

fn server_options(raw: &Raw) -> Result<ServerOptions, UsageError> {
    let value = |name: &str| raw.one(name).unwrap_or_default();
    let setenv = setenv(raw)?;
    let (max_clients, spare_workers) = child_sizing(raw)?;
    let port = port(raw, "port")?.unwrap_or(8000);
    let processes = count(raw, "processes")?;
    let numbers = numbers(raw)?;
    let process_group = raw.one("process-group");
    if let Some(name) = &process_group {
        // What WSGIDaemonProcess accepts as a name.
        if name.is_empty() || name.starts_with("%{") || name.contains(['/', '\0']) {
            return Err(raw.error(format!("invalid --process-group '{name}'")));
        }
    }
    let threads = count(raw, "threads")?;
    if processes.checked_mul(threads).is_none() {
        return Err(raw.error("--processes times --threads is too large".to_string()));
    }
    let log_level = value("log-level");
    if !LOG_LEVELS.contains(&log_level.as_str()) {
        return Err(raw.error(format!("invalid --log-level '{log_level}'")));
    }
    let mount_point = value("mount-point");
    if !mount_point.starts_with('/') || mount_point.split('/').any(|part| part == "." || part == "..") {
        return Err(raw.error(format!("invalid --mount-point '{mount_point}': must start with '/' and hold no '.' or '..' parts")));
    }
    let mut url_aliases = Vec::new();
    for v in raw.all("url-alias") {
        if !v[0].starts_with('/') {
            return Err(raw.error(format!("invalid --url-alias URL '{}': must start with '/'", v[0])));
        }
        url_aliases.push(UrlAlias { url: v[0].clone(), path: PathBuf::from(&v[1]), is_file: false });
    }
    let callable_object = value("callable-object");
    if !is_identifier(&callable_object) {
        // The module accepts only a Python identifier; say so now rather than in Apache's log.
        return Err(raw.error(format!("invalid --callable-object '{callable_object}': must be a Python identifier")));
    }
    let mpm = mpm(raw)?;
    let application_group = application_group(raw)?;
    let switch_interval = switch_interval(raw)?;
    let telemetry = Telemetry::parse(raw)?;
    let map_head_to_get = map_head_to_get(raw)?;
    let logs = Logs::parse(raw)?;
    let docroot = DocRoot::parse(raw)?;
    let tls = Tls::parse(raw, port)?;
    let auth = Auth::parse(raw)?;
    let process_name = process_name(raw)?;
    // Last: a bad value (`--port app.wsgi`) is said as such, not as a missing entry point.
    let app = entry_point(raw)?;
    let flags: Vec<Flag> = Flag::ALL.into_iter().filter(|f| raw.flag(f.name())).collect();
    let lists = List::ALL.into_iter().flat_map(|l| raw.all(l.name()).into_iter().map(move |v| (l, v[0].clone()))).collect();
    let mut o = ServerOptions {
        app,
        port,
        host: value("host"),
        host_given: raw.flag("host"),
        server_name: value("server-name"),
        server_name_given: raw.flag("server-name"),
        server_root: raw.path("server-root"),
        user: raw.one("user"),
        group: raw.one("group"),
        processes,
        processes_given: raw.flag("processes"),
        threads,
        embedded: raw.flag("embedded-mode"),
        process_group,
        working_directory: raw.path("working-directory"),
        numbers,
        locale: raw.one("locale").or_else(|| raw.one("lang")),
        socket_prefix: raw.path("socket-prefix"),
        mpm,
        callable_object,
        application_group,
        mount_point,
        url_aliases,
        python_home: raw.path("python-home"),
        python_path: raw.all("python-path").into_iter().map(|v| PathBuf::from(&v[0])).collect(),
        python_eggs: raw.path("python-eggs"),
        switch_interval,
        map_head_to_get,
        log_level,
        log_to_terminal: raw.flag("log-to-terminal"),
        access_log: raw.flag("access-log"),
        startup_log: raw.flag("startup-log"),
        logs,
        setup_only: raw.flag("setup-only"),
        setenv,
        include_files: raw.all("include-file").into_iter().map(|v| PathBuf::from(&v[0])).collect(),
        compress_responses: raw.flag("compress-responses"),
        max_clients,
        spare_workers,
        docroot,
        tls,
        auth,
        mime_types: raw.path("mime-types"),
        httpd_executable: raw.path("httpd-executable"),
        modules_directory: raw.path("modules-directory"),
        process_name,
        telemetry,
        flags,
        lists,
        warnings: Vec::new(),
    };
    ignore_incomplete(raw, &mut o);
    Ok(o)
}

/// The entry point: the last argument or `--entry-point`, read as `--application-type` says.
fn entry_point(raw: &Raw) -> Result<App, UsageError> {
    let kind = raw.one("application-type").unwrap_or_default();
    let given = match (raw.positional.as_slice(), raw.one("entry-point")) {
        ([], None) => None,
        ([one], None) => Some(one.clone()),
        ([], Some(entry)) => Some(entry),
        ([_], Some(_)) => return Err(raw.error("the entry point given twice (--entry-point and as an argument)".to_string())),
        ([_, extra, ..], _) => return Err(raw.error(format!("unexpected argument '{extra}'"))),
    };
    match (kind.as_str(), given) {
        ("static", given) => Ok(App::Static(given.map(PathBuf::from))),
        (_, None) => Err(raw.error("no WSGI script given".to_string())),
        ("script", Some(path)) => Ok(App::Script(PathBuf::from(path))),
        ("paste", Some(path)) => Ok(App::Paste(PathBuf::from(path))),
        ("module", Some(name)) if name.split('.').all(is_identifier) => Ok(App::Module(name)),
        ("module", Some(name)) => Err(raw.error(format!("invalid module name '{name}' for --application-type module: must be a dotted name such as pkg.wsgi"))),
        (other, _) => Err(raw.error(format!("invalid --application-type '{other}': must be script, module, static or paste"))),
    }
}

/// Whether `text` is a Python identifier, as the module and `import` accept.
fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_') && chars.all(|c| c.is_alphanumeric() || c == '_')
}

fn setenv(raw: &Raw) -> Result<Vec<(String, String)>, UsageError> {
    let mut setenv = Vec::new();
    for v in raw.all("setenv") {
        // What Apache's SetEnv takes as a name.
        if v[0].is_empty() || !v[0].chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
            return Err(raw.error(format!("invalid --setenv name '{}'", v[0])));
        }
        setenv.push((v[0].clone(), v[1].clone()));
    }
    Ok(setenv)
}

/// `--max-clients` and the spare-worker fractions: they size Apache's children in daemon
/// mode only (with `--embedded-mode` they are ignored, see [`ignore_incomplete`]).
fn child_sizing(raw: &Raw) -> Result<(Option<u32>, SpareWorkers), UsageError> {
    let max_clients = match raw.one("max-clients") {
        None => None,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=100_000).contains(&n) => Some(n),
            _ => return Err(raw.error(format!("invalid --max-clients '{text}': must be a number from 1 to 100000"))),
        },
    };
    let fraction = |name: &str| match raw.one(name) {
        None => Ok(None),
        Some(text) => match text.parse::<f64>() {
            Ok(f) if (0.0..=1.0).contains(&f) => Ok(Some(f)),
            _ => Err(raw.error(format!("invalid --{name} '{text}': must be a fraction from 0 to 1"))),
        },
    };
    let spare = SpareWorkers { initial: fraction("initial-workers")?, minimum: fraction("minimum-spare-workers")?, maximum: fraction("maximum-spare-workers")? };
    Ok((max_clients, spare))
}

/// A port option, if given: 1 to 65535.
pub fn port(raw: &Raw, name: &str) -> Result<Option<u16>, UsageError> {
    let Some(text) = raw.one(name) else { return Ok(None) };
    match text.parse::<u16>() {
        Ok(p) if p >= 1 => Ok(Some(p)),
        _ if name == "port" => Err(raw.error(format!("invalid port '{text}': must be a number from 1 to 65535"))),
        _ => Err(raw.error(format!("invalid --{name} '{text}': must be a number from 1 to 65535"))),
    }
}

/// The numeric options of the daemon group and of Apache, checked.
fn numbers(raw: &Raw) -> Result<Vec<(&'static str, u32)>, UsageError> {
    let mut numbers = Vec::new();
    for name in crate::daemon::NUMBERS.iter().map(|(name, _)| *name).chain(SERVER_NUMBERS.iter().copied()) {
        // Apache's ceiling for LimitRequestBody.
        let max = if name == "limit-request-body" { 2_147_483_647 } else { u32::MAX };
        numbers.push((name, raw.number(name, max)?));
    }
    if let Some((_, size)) = numbers.iter().find(|(name, _)| *name == "header-buffer-size") {
        if (1..8192).contains(size) {
            return Err(raw.error(format!("invalid --header-buffer-size '{size}': must be 0 (the default) or at least 8192")));
        }
    }
    Ok(numbers)
}

/// `--server-mpm` (or `--mpm`): given more than once, the first of event, worker and prefork
/// that was named, as the original picks among the ones available.
fn mpm(raw: &Raw) -> Result<Mpm, UsageError> {
    let named: Vec<String> = match raw.all("server-mpm") {
        given if given.is_empty() => vec![raw.one("server-mpm").unwrap_or_default()],
        given => given.into_iter().map(|v| v[0].clone()).collect(),
    };
    if let Some(bad) = named.iter().find(|n| Mpm::ALL.iter().all(|m| m.name() != n.as_str())) {
        return Err(raw.error(format!("invalid --server-mpm '{bad}': must be event, worker or prefork")));
    }
    Ok(Mpm::ALL.into_iter().find(|m| named.iter().any(|n| n == m.name())).unwrap_or(Mpm::Event))
}

/// `--application-group`: a name (written quoted), or one of mod_wsgi's `%{...}` forms
/// (`%{GLOBAL}`, `%{ENV:NAME}`...), which is written as one bare word: no spaces, quotes or
/// backslashes in it.
fn application_group(raw: &Raw) -> Result<Option<String>, UsageError> {
    match raw.one("application-group") {
        Some(name) if name.is_empty() || name.contains('\0') => Err(raw.error(format!("invalid --application-group '{name}'"))),
        Some(name) if name.starts_with("%{") && (!name.ends_with('}') || name.contains(|c: char| c.is_whitespace() || "\"'\\".contains(c))) => {
            Err(raw.error(format!("invalid --application-group '{name}': a %{{...}} form is one word, with no spaces, quotes or backslashes")))
        }
        other => Ok(other),
    }
}

fn switch_interval(raw: &Raw) -> Result<Option<String>, UsageError> {
    let Some(text) = raw.one("switch-interval") else { return Ok(None) };
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds.is_finite() => Ok(Some(text)),
        _ => Err(raw.error(format!("invalid --switch-interval '{text}': must be a positive number of seconds"))),
    }
}

fn map_head_to_get(raw: &Raw) -> Result<&'static str, UsageError> {
    let text = raw.one("map-head-to-get").unwrap_or_default();
    match text.to_ascii_lowercase().as_str() {
        "off" => Ok("Off"),
        "on" => Ok("On"),
        "auto" => Ok("Auto"),
        _ => Err(raw.error(format!("invalid --map-head-to-get '{text}': must be Off, On or Auto"))),
    }
}

fn process_name(raw: &Raw) -> Result<Option<String>, UsageError> {
    match raw.one("process-name") {
        Some(name) if name.is_empty() || name.contains('\0') => Err(raw.error(format!("invalid --process-name '{name}'"))),
        other => Ok(other),
    }
}

/// Options that mean something only with another, or that another overrides: the original
/// accepts them and ignores them then, and so does this one, with a warning each (those whose
/// silent omission would leave something open are refused instead, where they are parsed).
/// `--embedded-mode` also turns script reloading off, as in the original.
fn ignore_incomplete(raw: &Raw, o: &mut ServerOptions) {
    let mut warnings = Vec::new();
    let without = [
        ("rotatelogs-executable", "rotate-logs"), ("max-log-size", "rotate-logs"),
        ("access-log-format", "access-log"), ("access-log-name", "access-log"), ("startup-log-name", "startup-log"),
        ("auth-type", "auth-user-script"), ("auth-group", "auth-group-script"),
        ("server-alias", "server-name"), ("allow-localhost", "server-name"),
        ("https-only", "https-port"), ("ssl-environment", "https-port"), ("hsts-policy", "https-only"),
    ];
    for (name, needed) in without {
        if raw.flag(name) && !raw.flag(needed) {
            warnings.push(format!("--{name} is ignored without --{needed}"));
        }
    }
    // An empty --telemetry-service is none, as in the original.
    if raw.flag("telemetry-interval") && o.telemetry.service.is_none() {
        warnings.push("--telemetry-interval is ignored without --telemetry-service".to_string());
    }
    if !o.server_name_given {
        o.lists.retain(|(l, _)| *l != List::ServerAlias);
        o.flags.retain(|f| *f != Flag::AllowLocalhost);
    }
    if o.logs.rotate && crate::logs::to_terminal(o) {
        warnings.push("--rotate-logs is ignored with --log-to-terminal (without --log-directory, the logs go to the terminal)".to_string());
        o.logs.rotate = false;
    }
    if o.embedded {
        for name in ["max-clients", "initial-workers", "minimum-spare-workers", "maximum-spare-workers"] {
            if raw.flag(name) {
                warnings.push(format!("--{name} is ignored with --embedded-mode (Apache's children are sized by --processes and --threads)"));
            }
        }
        o.max_clients = None;
        o.spare_workers = SpareWorkers::default();
    }
    if o.flag(Flag::ReloadOnChanges) {
        let overridden = if o.flag(Flag::DisableReloading) {
            Some("--disable-reloading")
        } else if o.embedded {
            Some("--embedded-mode")
        } else if matches!(o.app, App::Static(_)) {
            Some("--application-type static")
        } else {
            None
        };
        if let Some(other) = overridden {
            warnings.push(format!("--reload-on-changes is ignored with {other} (it restarts daemon processes running an application)"));
            o.flags.retain(|f| *f != Flag::ReloadOnChanges);
        }
    }
    if o.embedded && !o.flag(Flag::DisableReloading) {
        o.flags.push(Flag::DisableReloading);
    }
    o.warnings = warnings;
}

/// A positive count (`--processes`, `--threads`), at most 100000: Apache's own ceiling for
/// ThreadLimit; past its other limits Apache lowers the value itself, with a warning.
fn count(raw: &Raw, name: &str) -> Result<u32, UsageError> {
    let text = raw.one(name).unwrap_or_default();
    match text.parse::<u32>() {
        Ok(n) if (1..=100_000).contains(&n) => Ok(n),
        _ => Err(raw.error(format!("invalid --{name} '{text}': must be a number from 1 to 100000"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }
    fn server(words: &[&str]) -> ServerOptions {
        match parse(&args(words)) {
            Ok(Command::StartServer(o)) => *o,
            other => panic!("expected start-server, got {other:?}"),
        }
    }
    fn usage_error(words: &[&str]) -> String {
        match parse(&args(words)) {
            Err(e) => e.message,
            Ok(c) => panic!("expected a usage error, got {c:?}"),
        }
    }

    #[test]
    fn defaults_come_from_the_table() {
        let o = server(&["start-server", "/srv/app.wsgi"]);
        assert_eq!((o.port, o.host.as_str(), o.host_given), (8000, "127.0.0.1", false));
        assert_eq!((o.processes, o.threads, o.mpm), (1, 5, Mpm::Event));
        assert_eq!((o.callable_object.as_str(), o.mount_point.as_str()), ("application", "/"));
        assert_eq!(o.log_level, "info");
        assert!(o.server_root.is_none() && o.user.is_none() && !o.setup_only && !o.access_log);
    }

    #[test]
    fn both_option_forms() {
        let a = server(&["start-server", "--port", "9000", "--host=::1", "app.wsgi", "--threads=3", "--processes", "2"]);
        assert_eq!((a.port, a.host.as_str(), a.host_given, a.threads, a.processes), (9000, "::1", true, 3, 2));
        let b = server(&["start-server", "--port=9001", "--url-alias", "/s", "/srv/s", "--url-alias=/t", "/srv/t", "x"]);
        assert_eq!(b.port, 9001);
        assert_eq!(b.url_aliases.iter().map(|u| u.url.as_str()).collect::<Vec<_>>(), ["/s", "/t"]);
        let c = server(&["start-server", "--python-path", "/a", "--python-path=/b", "--setup-only", "x"]);
        assert_eq!(c.python_path, [PathBuf::from("/a"), PathBuf::from("/b")]);
        assert!(c.setup_only);
    }

    #[test]
    fn last_value_wins_and_double_dash_ends_options() {
        let o = server(&["start-server", "--port", "1", "--port", "2", "--", "--odd.wsgi"]);
        assert_eq!(o.port, 2);
        assert_eq!(o.app, App::Script(PathBuf::from("--odd.wsgi")));
    }

    #[test]
    fn rejects_unknown_options_and_bad_values() {
        assert!(usage_error(&["start-server", "--nope", "x"]).contains("unknown option '--nope'"));
        assert!(usage_error(&["start-server", "-x", "x"]).contains("unknown option"));
        assert!(usage_error(&["module-config", "--port", "1"]).contains("unknown option"));
        for port in ["0", "65536", "-1", "http", ""] {
            assert!(usage_error(&["start-server", "--port", port, "x"]).contains("invalid port"), "{port}");
        }
        assert!(usage_error(&["start-server", "--port=70000", "x"]).contains("invalid port"));
        assert!(usage_error(&["start-server", "x", "--port"]).contains("needs NUMBER"));
        assert!(usage_error(&["start-server", "--setup-only=yes", "x"]).contains("takes no value"));
        assert!(usage_error(&["start-server", "--mpm", "winnt", "x"]).contains("--server-mpm 'winnt'"));
        assert!(usage_error(&["start-server", "--application-type", "wsgi", "x"]).contains("must be script, module, static or paste"));
        assert!(usage_error(&["start-server", "--threads", "0", "x"]).contains("--threads"));
        assert!(usage_error(&["start-server", "--log-level", "loud", "x"]).contains("--log-level"));
        assert!(usage_error(&["start-server", "--mount-point", "app", "x"]).contains("--mount-point"));
        assert!(usage_error(&["start-server", "--callable-object", "a.b", "x"]).contains("identifier"));
        assert!(usage_error(&["start-server"]).contains("no WSGI script given"));
        // A value taken for the entry point is said as a bad value, not as a missing script.
        assert!(usage_error(&["start-server", "--port", "app.wsgi"]).contains("invalid port 'app.wsgi'"));
        assert!(usage_error(&["start-server", "--threads", "app.wsgi"]).contains("invalid --threads 'app.wsgi'"));
        assert!(usage_error(&["start-server", "--log-level", "app.wsgi"]).contains("invalid --log-level"));
        for group in ["%{ENV:A B}", "%{ENV:A\"}", "%{ENV:A'}", "%{ENV:A\\}", "%{ENV:A"] {
            assert!(usage_error(&["start-server", "--application-group", group, "x"]).contains("invalid --application-group"), "{group}");
        }
        assert_eq!(server(&["start-server", "--application-group", "%{ENV:SITE}", "x"]).application_group.as_deref(), Some("%{ENV:SITE}"));
        assert_eq!(server(&["start-server", "--application-group", "a b", "x"]).application_group.as_deref(), Some("a b"));
        assert!(usage_error(&["start-server", "a", "b"]).contains("unexpected argument 'b'"));
        assert!(usage_error(&["serve"]).contains("unknown command"));
    }

    #[test]
    fn daemon_options() {
        let o = server(&["start-server", "x"]);
        assert!(!o.embedded && !o.processes_given && o.process_group.is_none() && o.working_directory.is_none());
        for (name, default) in [
            ("maximum-requests", 0), ("request-timeout", 60), ("inactivity-timeout", 0), ("restart-interval", 0),
            ("graceful-timeout", 15), ("shutdown-timeout", 5), ("connect-timeout", 15), ("socket-timeout", 60),
            ("queue-timeout", 45), ("daemon-backlog", 100), ("server-backlog", 500), ("header-buffer-size", 0),
        ] {
            assert_eq!(o.number(name), default, "--{name}");
        }
        let o = server(&["start-server", "--embedded-mode", "--processes", "1", "--request-timeout=5", "--lang", "C", "x"]);
        assert!(o.embedded && o.processes_given);
        assert_eq!((o.number("request-timeout"), o.locale.as_deref()), (5, Some("C")));
        let o = server(&["start-server", "--lang", "C", "--locale", "C.UTF-8", "x"]);
        assert_eq!(o.locale.as_deref(), Some("C.UTF-8"), "--locale wins over --lang");
        assert!(usage_error(&["start-server", "--request-timeout", "-1", "x"]).contains("--request-timeout"));
        assert!(usage_error(&["start-server", "--header-buffer-size", "100", "x"]).contains("at least 8192"));
        assert!(usage_error(&["start-server", "--process-group", "a/b", "x"]).contains("--process-group"));
        assert!(usage_error(&["start-server", "--max-clients", "0", "x"]).contains("invalid --max-clients"));
        assert!(usage_error(&["start-server", "--setenv", "A=B", "c", "x"]).contains("invalid --setenv name"));
        assert!(usage_error(&["start-server", "--entry-point", "a.wsgi", "b.wsgi"]).contains("given twice"));
        assert!(matches!(parse(&args(&["setup-server", "--port", "9", "x"])), Ok(Command::SetupServer(o)) if o.port == 9));
        let refused = usage_error(&["start-server", "--debug-mode", "x"]);
        assert!(refused.contains("'--debug-mode'") && refused.contains("not supported by mod_wsgi-rs yet: "), "{refused}");
        // Only start-server knows them; module-config says "unknown".
        assert!(usage_error(&["module-config", "--startup-timeout", "1"]).contains("unknown option"));
    }

    #[test]
    fn help_and_module_config() {
        assert!(matches!(parse(&[]), Ok(Command::Help(h)) if h.contains("start-server")));
        assert!(matches!(parse(&args(&["--help"])), Ok(Command::Help(_))));
        assert!(matches!(parse(&args(&["start-server", "--help"])), Ok(Command::Help(h)) if h.contains("--url-alias URL PATH")));
        assert!(matches!(parse(&args(&["module-config"])), Ok(Command::ModuleConfig { python_home: None })));
        let home = parse(&args(&["module-config", "--python-home=/opt/venv"]));
        assert!(matches!(home, Ok(Command::ModuleConfig { python_home: Some(h) }) if h == Path::new("/opt/venv")));
    }

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

    #[test]
    fn option_names_are_unique() {
        for (i, o) in options::OPTIONS.iter().enumerate() {
            assert!(options::OPTIONS[i + 1..].iter().all(|p| p.name != o.name), "--{} twice", o.name);
        }
    }

    /// Every option of the original mod_wsgi-express 6.1 (`src/express/options.py`), hidden
    /// ones included.
    const ORIGINAL: &[&str] = &[
        "application-type", "entry-point", "application-group", "process-group", "host", "port", "http2",
        "https-port", "ssl-port", "ssl-certificate-file", "ssl-certificate-key-file", "ssl-certificate",
        "ssl-ca-certificate-file", "ssl-verify-client", "ssl-certificate-chain-file", "ssl-environment",
        "https-only", "hsts-policy", "server-name", "server-alias", "allow-localhost", "processes", "threads",
        "max-clients", "initial-workers", "minimum-spare-workers", "maximum-spare-workers", "limit-request-body",
        "maximum-requests", "startup-timeout", "shutdown-timeout", "restart-interval", "cpu-time-limit",
        "graceful-timeout", "eviction-timeout", "deadlock-timeout", "inactivity-timeout", "ignore-activity",
        "request-timeout", "interrupt-timeout", "connect-timeout", "socket-timeout", "proxy-timeout",
        "queue-timeout", "header-timeout", "header-max-timeout", "header-min-rate", "body-timeout",
        "body-max-timeout", "body-min-rate", "server-backlog", "daemon-backlog", "send-buffer-size",
        "receive-buffer-size", "header-buffer-size", "response-buffer-size", "response-socket-timeout",
        "response-flush-delay", "enable-sendfile", "disable-reloading", "reload-on-changes", "user", "group",
        "callable-object", "map-head-to-get", "document-root", "directory-index", "directory-listing",
        "allow-override", "mount-point", "url-alias", "error-document", "error-override", "proxy-mount-point",
        "proxy-url-alias", "proxy-virtual-host", "trust-proxy-header", "trust-proxy", "keep-alive-timeout",
        "compress-responses", "server-metrics", "telemetry-service", "enable-telemetry", "telemetry-ui-port",
        "telemetry-interval", "slow-requests", "switch-interval", "free-threading", "telemetry-options",
        "server-status", "host-access-script", "auth-user-script", "auth-type", "auth-group-script", "auth-group",
        "include-file", "rewrite-rules", "envvars-script", "lang", "locale", "setenv", "passenv",
        "working-directory", "pid-file", "server-root", "server-mpm", "log-directory", "log-level", "access-log",
        "startup-log", "verbose-debugging", "log-to-terminal", "access-log-format", "error-log-format",
        "error-log-name", "access-log-name", "startup-log-name", "rotate-logs", "max-log-size",
        "rotatelogs-executable", "python-path", "python-eggs", "python-warnings", "shell-executable",
        "httpd-executable", "process-name", "modules-directory", "mime-types", "socket-prefix", "add-handler",
        "chunked-request", "with-php5", "with-cgi", "service-script", "service-user", "service-group",
        "service-log-file", "orphan-interpreter", "embedded-mode", "enable-docs", "debug-mode", "enable-debugger",
        "debugger-startup", "enable-coverage", "coverage-directory", "enable-profiler", "profiler-directory",
        "enable-recorder", "recorder-directory", "enable-gdb", "gdb-executable", "setup-only",
    ];

    #[test]
    fn every_option_of_the_original_is_honoured_or_refused_by_name() {
        assert_eq!(ORIGINAL.len(), 152);
        for name in ORIGINAL {
            let honoured = options::find(Sub::StartServer, name).is_some();
            let refused = options::unsupported(name).is_some();
            assert!(honoured != refused, "--{name}: honoured {honoured}, refused {refused}");
            if refused {
                let message = usage_error(&["start-server", &format!("--{name}"), "x"]);
                assert!(message.contains(&format!("'--{name}' of mod_wsgi-express is not supported by mod_wsgi-rs yet: ")), "{message}");
            }
        }
        // The refused ones are all the original's, so that the table cannot hide a typo.
        for (name, _) in options::UNSUPPORTED {
            assert!(ORIGINAL.contains(name), "--{name} is not an option of the original");
        }
        let help = options::help(Sub::StartServer);
        assert!(help.contains("--debug-mode") && help.contains("Also --mpm."), "{help}");
    }

    #[test]
    fn application_types() {
        assert_eq!(server(&["start-server", "--application-type", "module", "pkg.wsgi"]).app, App::Module("pkg.wsgi".into()));
        assert_eq!(server(&["start-server", "--application-type=paste", "site.ini"]).app, App::Paste("site.ini".into()));
        assert_eq!(server(&["start-server", "--application-type", "static"]).app, App::Static(None));
        let o = server(&["start-server", "--application-type", "static", "/srv/www"]);
        assert_eq!(o.app, App::Static(Some("/srv/www".into())));
        assert!(o.serves_document_root() && !o.uses_handler_script() && !o.daemon_mode());
        let o = server(&["start-server", "--entry-point", "app.wsgi"]);
        assert!(!o.serves_document_root() && !o.uses_handler_script() && o.daemon_mode(), "a script alone is aliased directly");
        assert!(server(&["start-server", "--document-root", "/srv/www", "app.wsgi"]).uses_handler_script());
        assert!(server(&["start-server", "--reload-on-changes", "app.wsgi"]).uses_handler_script());
        assert!(server(&["start-server", "--directory-index", "index.html", "app.wsgi"]).serves_document_root());
        assert!(usage_error(&["start-server", "--application-type", "module", "pkg/wsgi.py"]).contains("dotted name"));
        assert!(usage_error(&["start-server", "--application-type", "module", "pkg..wsgi"]).contains("dotted name"));
        assert!(usage_error(&["start-server", "--application-type", "module"]).contains("no WSGI script given"));
    }

    #[test]
    fn server_mpm_takes_the_originals_precedence_and_mpm_is_its_alias() {
        assert_eq!(server(&["start-server", "--server-mpm", "worker", "x"]).mpm, Mpm::Worker);
        assert_eq!(server(&["start-server", "--mpm=prefork", "x"]).mpm, Mpm::Prefork);
        assert_eq!(server(&["start-server", "--server-mpm", "prefork", "--server-mpm", "worker", "x"]).mpm, Mpm::Worker);
        assert_eq!(server(&["start-server", "--mpm", "prefork", "--server-mpm", "event", "x"]).mpm, Mpm::Event);
    }

    #[test]
    fn https_options() {
        let o = server(&["start-server", "--https-port", "8443", "--ssl-certificate", "/etc/site", "--https-only", "--hsts-policy", "max-age=60", "x"]);
        let tls = o.tls.expect("https");
        assert_eq!((tls.port, tls.certificate.as_path(), tls.key.as_path()), (8443, Path::new("/etc/site.crt"), Path::new("/etc/site.key")));
        assert!(tls.https_only && tls.hsts_policy.as_deref() == Some("max-age=60"));
        let o = server(&["start-server", "--ssl-port", "8443", "--ssl-certificate-file", "c.pem", "--ssl-certificate-key-file", "k.pem", "x"]);
        assert_eq!(o.tls.map(|t| (t.port, t.certificate, t.key)), Some((8443, "c.pem".into(), "k.pem".into())));
        assert!(usage_error(&["start-server", "--https-port", "8443", "x"]).contains("needs a certificate"));
        assert!(usage_error(&["start-server", "--ssl-certificate", "/etc/site", "x"]).contains("--ssl-certificate needs --https-port"));
        assert!(usage_error(&["start-server", "--ssl-verify-client", "/p", "x"]).contains("--ssl-verify-client needs --https-port"));
        assert!(usage_error(&["start-server", "--https-port", "8000", "--ssl-certificate", "c", "x"]).contains("also the HTTP --port"));
        let both = ["start-server", "--https-port", "1", "--ssl-certificate", "c", "--ssl-certificate-file", "d", "x"];
        assert!(usage_error(&both).contains("not both"));
        let verify = ["start-server", "--https-port", "1", "--ssl-certificate", "c", "--ssl-verify-client", "/p", "x"];
        assert!(usage_error(&verify).contains("--ssl-verify-client needs --ssl-ca-certificate-file"));
    }

    #[test]
    fn options_that_need_another_are_ignored_alone_with_a_warning_as_the_original() {
        for (words, warning) in [
            (&["--server-alias", "a.example"][..], "--server-alias is ignored without --server-name"),
            (&["--allow-localhost"][..], "--allow-localhost is ignored without --server-name"),
            (&["--auth-type", "Digest"][..], "--auth-type is ignored without --auth-user-script"),
            (&["--auth-type", "NTLM"][..], "--auth-type is ignored without --auth-user-script"),
            (&["--auth-group", "staff"][..], "--auth-group is ignored without --auth-group-script"),
            (&["--access-log-format", "combined"][..], "--access-log-format is ignored without --access-log"),
            (&["--access-log-name", "hits"][..], "--access-log-name is ignored without --access-log"),
            (&["--startup-log-name", "boot"][..], "--startup-log-name is ignored without --startup-log"),
            (&["--max-log-size", "9"][..], "--max-log-size is ignored without --rotate-logs"),
            (&["--rotatelogs-executable", "/bin/rl"][..], "--rotatelogs-executable is ignored without --rotate-logs"),
            (&["--rotate-logs", "--log-to-terminal"][..], "--rotate-logs is ignored with --log-to-terminal"),
            (&["--https-only"][..], "--https-only is ignored without --https-port"),
            (&["--ssl-environment"][..], "--ssl-environment is ignored without --https-port"),
            (&["--https-port", "1", "--ssl-certificate", "c", "--hsts-policy", "max-age=1"][..], "--hsts-policy is ignored without --https-only"),
            (&["--max-clients", "5", "--embedded-mode"][..], "--max-clients is ignored with --embedded-mode"),
            (&["--initial-workers", "0.5", "--embedded-mode"][..], "--initial-workers is ignored with --embedded-mode"),
            (&["--reload-on-changes", "--disable-reloading"][..], "--reload-on-changes is ignored with --disable-reloading"),
            (&["--reload-on-changes", "--embedded-mode"][..], "--reload-on-changes is ignored with --embedded-mode"),
        ] {
            let o = server(&[&["start-server"][..], words, &["x"]].concat());
            assert!(o.warnings.len() == 1 && o.warnings[0].starts_with(warning), "{words:?}: {:?}", o.warnings);
        }
        assert!(server(&["start-server", "x"]).warnings.is_empty());
        // What is ignored is not used.
        let o = server(&["start-server", "--server-alias", "a", "--allow-localhost", "--reload-on-changes", "--embedded-mode", "--max-clients", "9", "x"]);
        assert!(o.list(List::ServerAlias).is_empty() && !o.flag(Flag::AllowLocalhost) && !o.flag(Flag::ReloadOnChanges) && o.max_clients.is_none());
        let o = server(&["start-server", "--application-type", "static", "--reload-on-changes"]);
        assert!(!o.flag(Flag::ReloadOnChanges) && o.warnings[0].contains("--application-type static"), "{:?}", o.warnings);
        let o = server(&["start-server", "--rotate-logs", "--log-to-terminal", "x"]);
        assert!(!o.logs.rotate, "no rotatelogs is needed for the terminal");
        assert!(server(&["start-server", "--rotate-logs", "--log-to-terminal", "--log-directory", "/l", "x"]).logs.rotate);
        // Refused still: what would leave something open if it were ignored.
        assert!(usage_error(&["start-server", "--auth-group-script", "g.py", "x"]).contains("--auth-group-script needs --auth-user-script"));
    }

    #[test]
    fn embedded_mode_turns_script_reloading_off_as_the_original() {
        assert!(server(&["start-server", "--embedded-mode", "x"]).flag(Flag::DisableReloading));
        assert!(!server(&["start-server", "x"]).flag(Flag::DisableReloading));
    }

    #[test]
    fn values_are_checked() {
        for (words, wanted) in [
            (&["--initial-workers", "1.5"][..], "fraction from 0 to 1"),
            (&["--switch-interval", "0"][..], "positive number"),
            (&["--map-head-to-get", "maybe"][..], "Off, On or Auto"),
            (&["--auth-user-script", "u.py", "--auth-type", "NTLM"][..], "Basic or Digest"),
            (&["--error-document", "200", "/ok.html"][..], "400 to 599"),
            (&["--error-log-name", "../x"][..], "file name"),
            (&["--limit-request-body", "3000000000"][..], "0 to 2147483647"),
            (&["--keep-alive-timeout", "-1"][..], "--keep-alive-timeout"),
            (&["--allow-override", "All;"][..], "--allow-override"),
            (&["--mount-point", "/a/../b"][..], "--mount-point"),
            (&["--add-handler", ".a b", "h.py"][..], "--add-handler"),
        ] {
            let message = usage_error(&[&["start-server"][..], words, &["x"]].concat());
            assert!(message.contains(wanted), "{words:?}: {message}");
        }
        let o = server(&["start-server", "--map-head-to-get", "off", "--switch-interval", "0.001", "--trust-proxy", "10.0.0.0/8", "--trust-proxy=::1", "--http2", "x"]);
        assert_eq!((o.map_head_to_get, o.switch_interval.as_deref()), ("Off", Some("0.001")));
        assert_eq!(o.list(List::TrustProxy), ["10.0.0.0/8", "::1"]);
        assert!(o.flag(Flag::Http2) && !o.flag(Flag::ServerStatus));
    }

    /// The telemetry options are checked as the original (6.1.1) checks them, and the rest as
    /// the module's directives will.
    #[test]
    fn telemetry_options_are_checked_as_the_originals() {
        let o = server(&["start-server", "x"]);
        assert_eq!((o.telemetry.service.as_ref(), o.telemetry.interval, o.telemetry.slow_requests), (None, 1.0, None));
        let o = server(&[
            "start-server", "--telemetry-service", "unix:/run/t.sock", "--telemetry-interval", " 2_5 ", "--slow-requests", "1.5",
            "--telemetry-options", "+CaptureUserAgent", "--telemetry-options=-captureuseragent +SlowRequestStacks", "x",
        ]);
        assert_eq!(o.telemetry.service.as_deref(), Some(Path::new("/run/t.sock")));
        assert_eq!((o.telemetry.interval, o.telemetry.slow_requests), (25.0, Some(1.5)));
        assert_eq!(o.telemetry.options, ["+CaptureUserAgent", "-captureuseragent +SlowRequestStacks"]);
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
        fn tel<'a>(words: &[&'a str]) -> Vec<&'a str> {
            [&["start-server", "--telemetry-service", "unix:/t"][..], words, &["x"]].concat()
        }
        for (words, wanted) in [
            (vec!["start-server", "--telemetry-service", "udp:10.0.0.1:9000", "x"], "--telemetry-service must be 'unix:/path' (remote 'udp:host:port' targets are no longer supported)"),
            (vec!["start-server", "--telemetry-service", "unix:", "x"], "no socket path"),
            (vec!["start-server", "--slow-requests", "2", "x"], "--slow-requests requires --telemetry-service"),
            // As the original: an empty target is none.
            (vec!["start-server", "--telemetry-service", "", "--slow-requests", "2", "x"], "--slow-requests requires --telemetry-service"),
            // The sign is checked first, as the original does.
            (vec!["start-server", "--slow-requests", "-1", "x"], "--slow-requests threshold must be non-negative"),
            (tel(&["--slow-requests", "-0.5"]), "--slow-requests threshold must be non-negative"),
            (tel(&["--slow-requests", "soon"]), "invalid --slow-requests 'soon'"),
            (tel(&["--slow-requests", "inf"]), "invalid --slow-requests 'inf'"),
            (vec!["start-server", "--telemetry-interval", "often", "x"], "invalid --telemetry-interval 'often'"),
            (tel(&["--telemetry-interval", "0.4"]), "WSGITelemetryService interval must be at least 0.5 seconds"),
            (tel(&["--telemetry-interval", "nan"]), "WSGITelemetryService interval must be at least 0.5 seconds"),
            (tel(&["--telemetry-options", ""]), "WSGITelemetryOptions: at least one flag required"),
            (tel(&["--telemetry-options", "+Bogus"]), "WSGITelemetryOptions: unknown flag 'Bogus'"),
            (tel(&["--telemetry-options", "+All"]), "'All' may not have a +/- prefix"),
            (tel(&["--telemetry-options", "+CaptureUserAgent SlowRequestStacks"]), "cannot mix +/- form"),
            (tel(&["--telemetry-options", "All\nListen 9"]), "--telemetry-options"),
            (tel(&["--telemetry-options", "\"All"]), "unterminated"),
        ] {
            let message = usage_error(&words);
            assert!(message.contains(wanted), "{words:?}: {message}");
        }
        // Without a service the interval means nothing: ignored with a warning, as the original
        // ignores it (its value still read as a number); the options are still written.
        let o = server(&["start-server", "--telemetry-interval", "0.1", "--telemetry-options", "All", "x"]);
        assert_eq!(o.warnings, ["--telemetry-interval is ignored without --telemetry-service"]);
        assert_eq!(o.telemetry.options, ["All"]);
    }
}
