//! Command-line parsing, by hand (no dependency beyond `std` and `libc`).
//!
//! Parsing is pure: it only turns words into a [`Command`] and never looks at the file system,
//! so that it can be unit-tested. Checks that need the file system (does the script exist?) and
//! turning relative paths absolute happen in `setup.rs`.

use crate::options::{self, Arity, OptSpec, Sub};
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
    pub fn name(self) -> &'static str {
        match self {
            Mpm::Event => "event",
            Mpm::Worker => "worker",
            Mpm::Prefork => "prefork",
        }
    }
}

/// `--url-alias URL PATH`. `is_file` is filled in by setup (it needs the file system).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlAlias {
    pub url: String,
    pub path: PathBuf,
    pub is_file: bool,
}

/// Everything `start-server` was told, typed and validated.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    pub script: PathBuf,
    pub port: u16,
    pub host: String,
    /// Whether `--host` was given: the default server root names the host only then, as the
    /// original does (`/tmp/mod_wsgi-localhost:8000:UID` otherwise).
    pub host_given: bool,
    pub server_name: String,
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
    /// The numeric daemon options, as `(option name, value)` in the order of
    /// [`crate::daemon::NUMBERS`].
    pub numbers: Vec<(&'static str, u32)>,
    pub locale: Option<String>,
    pub socket_prefix: Option<PathBuf>,
    pub mpm: Mpm,
    pub callable_object: String,
    pub mount_point: String,
    pub url_aliases: Vec<UrlAlias>,
    pub python_home: Option<PathBuf>,
    pub python_path: Vec<PathBuf>,
    pub log_level: String,
    pub log_to_terminal: bool,
    pub access_log: bool,
    pub setup_only: bool,
    /// `--setenv KEY VALUE`, in order.
    pub setenv: Vec<(String, String)>,
    /// `--include-file`: made absolute by setup.
    pub include_files: Vec<PathBuf>,
    pub compress_responses: bool,
    /// `--max-clients` (daemon mode), else computed as the original does.
    pub max_clients: Option<u32>,
    pub startup_log: bool,
}

impl ServerOptions {
    /// A numeric option's value (`numbers` holds every one the parser knows).
    pub fn number(&self, name: &str) -> u32 {
        self.numbers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v).unwrap_or_else(|| panic!("--{name} is not a numeric option"))
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
        Sub::ModuleConfig => Ok(Command::ModuleConfig { python_home: raw.one("python-home").map(PathBuf::from) }),
        Sub::ModuleLocation => Ok(Command::ModuleLocation),
        Sub::InstallModule => Ok(Command::InstallModule {
            modules_directory: raw.one("modules-directory").map(PathBuf::from),
            python_home: raw.one("python-home").map(PathBuf::from),
        }),
        Sub::StartServer => server_options(&raw).map(|o| Command::StartServer(Box::new(o))),
        Sub::SetupServer => server_options(&raw).map(|o| Command::SetupServer(Box::new(o))),
    }
}

/// Options as given, before typing: (option, values) in command-line order, and the rest.
struct Raw {
    sub: Sub,
    given: Vec<(&'static OptSpec, Vec<String>)>,
    positional: Vec<String>,
}

impl Raw {
    fn error(&self, message: String) -> UsageError {
        let usage = format!("{}\nTry 'mod_wsgi-express {} --help'.", options::synopsis(self.sub), self.sub.name());
        UsageError { message, usage }
    }
    fn flag(&self, name: &str) -> bool {
        self.given.iter().any(|(o, _)| o.name == name)
    }
    /// Last value given, else the table's default.
    fn one(&self, name: &str) -> Option<String> {
        let given = self.given.iter().rev().find(|(o, _)| o.name == name).map(|(_, v)| v[0].clone());
        given.or_else(|| options::default_of(name).map(str::to_string))
    }
    fn all(&self, name: &str) -> Vec<Vec<String>> {
        self.given.iter().filter(|(o, _)| o.name == name).map(|(_, v)| v.clone()).collect()
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
                return Err(raw.error(format!("option '--{name}' of mod_wsgi-express is not supported by mod_wsgi-rs: {why}")));
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
    let script = match (raw.positional.as_slice(), raw.one("entry-point")) {
        ([], None) => return Err(raw.error("no WSGI script given".to_string())),
        ([one], None) => PathBuf::from(one),
        ([], Some(entry)) => PathBuf::from(entry),
        ([_], Some(_)) => return Err(raw.error("the WSGI script given twice (--entry-point and as an argument)".to_string())),
        ([_, extra, ..], _) => return Err(raw.error(format!("unexpected argument '{extra}'"))),
    };
    let mut setenv = Vec::new();
    for v in raw.all("setenv") {
        // What Apache's SetEnv takes as a name.
        if v[0].is_empty() || !v[0].chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
            return Err(raw.error(format!("invalid --setenv name '{}'", v[0])));
        }
        setenv.push((v[0].clone(), v[1].clone()));
    }
    let max_clients = match raw.one("max-clients") {
        None => None,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=100_000).contains(&n) => Some(n),
            _ => return Err(raw.error(format!("invalid --max-clients '{text}': must be a number from 1 to 100000"))),
        },
    };
    if max_clients.is_some() && raw.flag("embedded-mode") {
        return Err(raw.error("--max-clients sizes Apache's children in daemon mode; with --embedded-mode they are sized by --processes and --threads".to_string()));
    }
    let port = value("port");
    let port = match port.parse::<u16>() {
        Ok(p) if p >= 1 => p,
        _ => return Err(raw.error(format!("invalid port '{port}': must be a number from 1 to 65535"))),
    };
    let processes = count(raw, "processes")?;
    let mut numbers = Vec::new();
    for name in crate::daemon::NUMBERS.iter().map(|(name, _)| *name).chain(["server-backlog"]) {
        let text = raw.one(name).unwrap_or_default();
        let n = text.parse::<u32>().map_err(|_| raw.error(format!("invalid --{name} '{text}': must be a number from 0 to {}", u32::MAX)))?;
        numbers.push((name, n));
    }
    if let Some((_, size)) = numbers.iter().find(|(name, _)| *name == "header-buffer-size") {
        if (1..8192).contains(size) {
            return Err(raw.error(format!("invalid --header-buffer-size '{size}': must be 0 (the default) or at least 8192")));
        }
    }
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
    let mpm = match value("mpm").as_str() {
        "event" => Mpm::Event,
        "worker" => Mpm::Worker,
        "prefork" => Mpm::Prefork,
        other => return Err(raw.error(format!("invalid --mpm '{other}': must be event, worker or prefork"))),
    };
    let app_type = value("application-type");
    if app_type != "script" {
        return Err(raw.error(format!("invalid --application-type '{app_type}': only 'script' is supported")));
    }
    let log_level = value("log-level");
    if !LOG_LEVELS.contains(&log_level.as_str()) {
        return Err(raw.error(format!("invalid --log-level '{log_level}'")));
    }
    let mount_point = value("mount-point");
    if !mount_point.starts_with('/') {
        return Err(raw.error(format!("invalid --mount-point '{mount_point}': must start with '/'")));
    }
    let mut url_aliases = Vec::new();
    for v in raw.all("url-alias") {
        if !v[0].starts_with('/') {
            return Err(raw.error(format!("invalid --url-alias URL '{}': must start with '/'", v[0])));
        }
        url_aliases.push(UrlAlias { url: v[0].clone(), path: PathBuf::from(&v[1]), is_file: false });
    }
    let callable_object = value("callable-object");
    // The module accepts only a Python identifier; say so now rather than in Apache's log.
    let mut chars = callable_object.chars();
    let identifier = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_') && chars.all(|c| c.is_alphanumeric() || c == '_');
    if !identifier {
        return Err(raw.error(format!("invalid --callable-object '{callable_object}': must be a Python identifier")));
    }
    Ok(ServerOptions {
        script,
        port,
        host: value("host"),
        host_given: raw.flag("host"),
        server_name: value("server-name"),
        server_root: raw.one("server-root").map(PathBuf::from),
        user: raw.one("user"),
        group: raw.one("group"),
        processes,
        processes_given: raw.flag("processes"),
        threads,
        embedded: raw.flag("embedded-mode"),
        process_group,
        working_directory: raw.one("working-directory").map(PathBuf::from),
        numbers,
        locale: raw.one("locale").or_else(|| raw.one("lang")),
        socket_prefix: raw.one("socket-prefix").map(PathBuf::from),
        mpm,
        callable_object,
        mount_point,
        url_aliases,
        python_home: raw.one("python-home").map(PathBuf::from),
        python_path: raw.all("python-path").into_iter().map(|v| PathBuf::from(&v[0])).collect(),
        log_level,
        log_to_terminal: raw.flag("log-to-terminal"),
        access_log: raw.flag("access-log"),
        setup_only: raw.flag("setup-only"),
        setenv,
        include_files: raw.all("include-file").into_iter().map(|v| PathBuf::from(&v[0])).collect(),
        compress_responses: raw.flag("compress-responses"),
        max_clients,
        startup_log: raw.flag("startup-log"),
    })
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
        assert_eq!(o.script, PathBuf::from("--odd.wsgi"));
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
        assert!(usage_error(&["start-server", "--mpm", "winnt", "x"]).contains("--mpm"));
        assert!(usage_error(&["start-server", "--application-type", "module", "x"]).contains("only 'script'"));
        assert!(usage_error(&["start-server", "--threads", "0", "x"]).contains("--threads"));
        assert!(usage_error(&["start-server", "--log-level", "loud", "x"]).contains("--log-level"));
        assert!(usage_error(&["start-server", "--mount-point", "app", "x"]).contains("--mount-point"));
        assert!(usage_error(&["start-server", "--callable-object", "a.b", "x"]).contains("identifier"));
        assert!(usage_error(&["start-server"]).contains("no WSGI script given"));
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
        assert!(usage_error(&["start-server", "--embedded-mode", "--max-clients", "5", "x"]).contains("--max-clients sizes"));
        assert!(usage_error(&["start-server", "--max-clients", "0", "x"]).contains("invalid --max-clients"));
        assert!(usage_error(&["start-server", "--setenv", "A=B", "c", "x"]).contains("invalid --setenv name"));
        assert!(usage_error(&["start-server", "--entry-point", "a.wsgi", "b.wsgi"]).contains("given twice"));
        assert!(matches!(parse(&args(&["setup-server", "--port", "9", "x"])), Ok(Command::SetupServer(o)) if o.port == 9));
        let refused = usage_error(&["start-server", "--switch-interval", "5", "x"]);
        assert!(refused.contains("'--switch-interval'") && refused.contains("not supported by mod_wsgi-rs"), "{refused}");
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
    fn option_names_are_unique() {
        for (i, o) in options::OPTIONS.iter().enumerate() {
            assert!(options::OPTIONS[i + 1..].iter().all(|p| p.name != o.name), "--{} twice", o.name);
        }
    }
}
