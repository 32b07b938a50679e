//! Command-line parsing, by hand (no dependency beyond `std` and `libc`).
//!
//! Parsing is pure: it only turns words into a [`Command`] and never looks at the file system,
//! so that it can be unit-tested. Checks that need the file system (does the script exist?) and
//! turning relative paths absolute happen in `setup.rs`.
//!
//! This file picks the subcommand. The rest, in the order a command line goes through it:
//! `raw.rs` splits the words into options and arguments ([`Raw`]), `checks.rs` types and checks
//! the values of `start-server` and `setup-server` into the [`ServerOptions`] of
//! `server_options.rs`, and `ignored.rs` drops, with a warning each, what the original ignores.

mod checks;
mod ignored;
mod raw;
mod server_options;

pub use checks::port;
pub use raw::Raw;
pub use server_options::{App, Flag, List, Mpm, ServerOptions};

use crate::options::{self, Sub};
use checks::server_options;
use raw::split;
use std::path::PathBuf;

/// What the user asked for.
#[derive(Debug)]
pub enum Command {
    /// Print this text to stdout and exit 0.
    Help(String),
    ModuleConfig {
        python_home: Option<PathBuf>,
    },
    ModuleLocation,
    InstallModule {
        modules_directory: Option<PathBuf>,
        python_home: Option<PathBuf>,
    },
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    pub(super) fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }
    pub(super) fn server(words: &[&str]) -> ServerOptions {
        match parse(&args(words)) {
            Ok(Command::StartServer(o)) => *o,
            other => panic!("expected start-server, got {other:?}"),
        }
    }
    pub(super) fn usage_error(words: &[&str]) -> String {
        match parse(&args(words)) {
            Err(e) => e.message,
            Ok(c) => panic!("expected a usage error, got {c:?}"),
        }
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

    /// Every option of the original mod_wsgi-express 6.1 (`src/express/options.py`), hidden
    /// ones included.
    const ORIGINAL: &[&str] = &[
        "application-type",
        "entry-point",
        "application-group",
        "process-group",
        "host",
        "port",
        "http2",
        "https-port",
        "ssl-port",
        "ssl-certificate-file",
        "ssl-certificate-key-file",
        "ssl-certificate",
        "ssl-ca-certificate-file",
        "ssl-verify-client",
        "ssl-certificate-chain-file",
        "ssl-environment",
        "https-only",
        "hsts-policy",
        "server-name",
        "server-alias",
        "allow-localhost",
        "processes",
        "threads",
        "max-clients",
        "initial-workers",
        "minimum-spare-workers",
        "maximum-spare-workers",
        "limit-request-body",
        "maximum-requests",
        "startup-timeout",
        "shutdown-timeout",
        "restart-interval",
        "cpu-time-limit",
        "graceful-timeout",
        "eviction-timeout",
        "deadlock-timeout",
        "inactivity-timeout",
        "ignore-activity",
        "request-timeout",
        "interrupt-timeout",
        "connect-timeout",
        "socket-timeout",
        "proxy-timeout",
        "queue-timeout",
        "header-timeout",
        "header-max-timeout",
        "header-min-rate",
        "body-timeout",
        "body-max-timeout",
        "body-min-rate",
        "server-backlog",
        "daemon-backlog",
        "send-buffer-size",
        "receive-buffer-size",
        "header-buffer-size",
        "response-buffer-size",
        "response-socket-timeout",
        "response-flush-delay",
        "enable-sendfile",
        "disable-reloading",
        "reload-on-changes",
        "user",
        "group",
        "callable-object",
        "map-head-to-get",
        "document-root",
        "directory-index",
        "directory-listing",
        "allow-override",
        "mount-point",
        "url-alias",
        "error-document",
        "error-override",
        "proxy-mount-point",
        "proxy-url-alias",
        "proxy-virtual-host",
        "trust-proxy-header",
        "trust-proxy",
        "keep-alive-timeout",
        "compress-responses",
        "server-metrics",
        "telemetry-service",
        "enable-telemetry",
        "telemetry-ui-port",
        "telemetry-interval",
        "slow-requests",
        "switch-interval",
        "free-threading",
        "telemetry-options",
        "server-status",
        "host-access-script",
        "auth-user-script",
        "auth-type",
        "auth-group-script",
        "auth-group",
        "include-file",
        "rewrite-rules",
        "envvars-script",
        "lang",
        "locale",
        "setenv",
        "passenv",
        "working-directory",
        "pid-file",
        "server-root",
        "server-mpm",
        "log-directory",
        "log-level",
        "access-log",
        "startup-log",
        "verbose-debugging",
        "log-to-terminal",
        "access-log-format",
        "error-log-format",
        "error-log-name",
        "access-log-name",
        "startup-log-name",
        "rotate-logs",
        "max-log-size",
        "rotatelogs-executable",
        "python-path",
        "python-eggs",
        "python-warnings",
        "shell-executable",
        "httpd-executable",
        "process-name",
        "modules-directory",
        "mime-types",
        "socket-prefix",
        "add-handler",
        "chunked-request",
        "with-php5",
        "with-cgi",
        "service-script",
        "service-user",
        "service-group",
        "service-log-file",
        "orphan-interpreter",
        "embedded-mode",
        "enable-docs",
        "debug-mode",
        "enable-debugger",
        "debugger-startup",
        "enable-coverage",
        "coverage-directory",
        "enable-profiler",
        "profiler-directory",
        "enable-recorder",
        "recorder-directory",
        "enable-gdb",
        "gdb-executable",
        "setup-only",
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
}
