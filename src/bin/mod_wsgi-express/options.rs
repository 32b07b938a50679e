//! The one table of command-line options.
//!
//! Each option is declared once, here: its name, how many values it takes, its default and its
//! help text. The parser (`cli.rs`) looks options up in this table and reads defaults from it, and
//! the help screens are printed from it, so the three can never disagree.

/// How many values an option takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// A switch: `--setup-only`.
    Flag,
    /// One value: `--port 8000` or `--port=8000`.
    One,
    /// Two values: `--url-alias /static /srv/static` (the first may also be `--url-alias=/static`).
    Two,
}

/// A subcommand, as far as option lookup is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sub {
    StartServer,
    SetupServer,
    ModuleConfig,
    ModuleLocation,
    InstallModule,
}

/// Every subcommand, in the order the top-level help lists them.
pub const ALL: &[Sub] = &[Sub::StartServer, Sub::SetupServer, Sub::ModuleConfig, Sub::ModuleLocation, Sub::InstallModule];
/// `start-server` and `setup-server`: most options.
const SERVER: &[Sub] = &[Sub::StartServer, Sub::SetupServer];

impl Sub {
    pub fn name(self) -> &'static str {
        match self {
            Sub::StartServer => "start-server",
            Sub::SetupServer => "setup-server",
            Sub::ModuleConfig => "module-config",
            Sub::ModuleLocation => "module-location",
            Sub::InstallModule => "install-module",
        }
    }
}

/// One option of the table.
#[derive(Debug)]
pub struct OptSpec {
    /// Long name without the leading `--`, as the original mod_wsgi-express spells it.
    pub name: &'static str,
    pub arity: Arity,
    /// Whether giving it twice accumulates (`--python-path`) rather than the last one winning.
    pub repeatable: bool,
    /// The default, as the text a user would type; `None` when absent means "not set".
    pub default: Option<&'static str>,
    /// How the value is shown in help (`NUMBER`, `URL PATH`...).
    pub metavar: &'static str,
    pub help: &'static str,
    /// The subcommands that accept it.
    pub commands: &'static [Sub],
}

const fn opt(
    name: &'static str,
    arity: Arity,
    default: Option<&'static str>,
    metavar: &'static str,
    help: &'static str,
) -> OptSpec {
    OptSpec { name, arity, repeatable: false, default, metavar, help, commands: SERVER }
}

/// Every option, in the order help shows them.
pub const OPTIONS: &[OptSpec] = &[
    opt("port", Arity::One, Some("8000"), "NUMBER", "Port to listen on (1-65535)."),
    // Never 0.0.0.0 by default: a development server should not be reachable from the network
    // unless asked for.
    opt("host", Arity::One, Some("127.0.0.1"), "ADDRESS", "Address to listen on."),
    opt("server-name", Arity::One, Some("localhost"), "NAME", "ServerName of the generated site."),
    opt(
        "server-root",
        Arity::One,
        None,
        "DIRECTORY",
        "Where httpd.conf, logs and the pid file go (default /tmp/mod_wsgi-HOST:PORT:UID).",
    ),
    opt("user", Arity::One, None, "NAME", "User the server children and daemon processes run as (when started as root; default nobody)."),
    opt("group", Arity::One, None, "NAME", "Group the server children and daemon processes run as (when started as root; default nogroup)."),
    opt(
        "processes",
        Arity::One,
        Some("1"),
        "NUMBER",
        "Number of daemon processes (with --embedded-mode: of Apache child processes).",
    ),
    opt("threads", Arity::One, Some("5"), "NUMBER", "Number of request threads per daemon (or, embedded, per child) process."),
    opt(
        "embedded-mode",
        Arity::Flag,
        None,
        "",
        "Run the application in Apache's child processes instead of a daemon process group.",
    ),
    opt("process-group", Arity::One, None, "NAME", "Name of the daemon process group (default HOST:PORT)."),
    opt(
        "working-directory",
        Arity::One,
        None,
        "DIRECTORY",
        "Working directory of the application, also searched for modules (default: the current directory).",
    ),
    opt("maximum-requests", Arity::One, Some("0"), "NUMBER", "Restart a process after this many requests; 0: never."),
    opt("request-timeout", Arity::One, Some("60"), "SECONDS", "Restart a daemon process whose requests run longer than this."),
    opt("interrupt-timeout", Arity::One, Some("0"), "SECONDS", "After a request timeout, how long interrupted requests get to end; 0: no interrupt."),
    opt("inactivity-timeout", Arity::One, Some("0"), "SECONDS", "Restart a daemon process idle this long; 0: never."),
    opt("restart-interval", Arity::One, Some("0"), "SECONDS", "Restart daemon processes after running this long; 0: never."),
    opt("graceful-timeout", Arity::One, Some("15"), "SECONDS", "How long requests may finish when a daemon process restarts."),
    opt("eviction-timeout", Arity::One, Some("0"), "SECONDS", "As --graceful-timeout, for a graceful restart of Apache; 0: the same."),
    opt("shutdown-timeout", Arity::One, Some("5"), "SECONDS", "How long a stopping daemon process may take before it is killed."),
    opt("connect-timeout", Arity::One, Some("15"), "SECONDS", "How long a child tries to connect to a daemon process."),
    opt("socket-timeout", Arity::One, Some("60"), "SECONDS", "Timeout of reads and writes on sockets (Apache's Timeout too)."),
    opt("queue-timeout", Arity::One, Some("45"), "SECONDS", "Answer 504 to a request that waited this long for a daemon process."),
    opt("daemon-backlog", Arity::One, Some("100"), "NUMBER", "Listen backlog of the daemon processes' socket."),
    opt("server-backlog", Arity::One, Some("500"), "NUMBER", "Listen backlog of Apache's own socket (ListenBacklog)."),
    opt("header-buffer-size", Arity::One, Some("0"), "NUMBER", "Longest response header line a daemon may send; 0: 32768, else at least 8192."),
    opt("startup-timeout", Arity::One, Some("15"), "SECONDS", "Restart a daemon process whose application has not loaded this long after its first request; 0: never."),
    opt("deadlock-timeout", Arity::One, Some("60"), "SECONDS", "Restart a daemon process whose Python made no progress (GIL held) this long; 0: never."),
    opt("cpu-time-limit", Arity::One, Some("0"), "SECONDS", "Recycle a daemon process after this much CPU time; 0: no limit."),
    opt("send-buffer-size", Arity::One, Some("0"), "NUMBER", "SO_SNDBUF of the daemon socket; 0: the system's, else at least 512."),
    opt("receive-buffer-size", Arity::One, Some("0"), "NUMBER", "SO_RCVBUF of the daemon socket; 0: the system's, else at least 512."),
    opt("response-buffer-size", Arity::One, Some("0"), "NUMBER", "Flush a daemon's response to the client after this many bytes; 0: the default."),
    opt("response-socket-timeout", Arity::One, Some("0"), "SECONDS", "Write timeout to the client while passing a daemon's response; 0: --socket-timeout."),
    opt(
        "locale",
        Arity::One,
        None,
        "NAME",
        "LANG and LC_ALL of the server (default: this process's locale; a UTF-8 one instead of C or POSIX).",
    ),
    opt("lang", Arity::One, None, "NAME", "The --locale, when that is not given (as the original)."),
    opt(
        "socket-prefix",
        Arity::One,
        None,
        "DIRECTORY",
        "Directory of the daemon processes' sockets (default: the server root).",
    ),
    opt("mpm", Arity::One, Some("event"), "NAME", "Apache MPM: event, worker or prefork."),
    opt("application-type", Arity::One, Some("script"), "TYPE", "How the WSGI application is given; only 'script'."),
    opt("callable-object", Arity::One, Some("application"), "NAME", "Name of the WSGI callable in the script."),
    opt("mount-point", Arity::One, Some("/"), "URL", "URL the application is mounted at."),
    OptSpec {
        repeatable: true,
        ..opt("url-alias", Arity::Two, None, "URL PATH", "Serve the file or directory PATH at URL.")
    },
    OptSpec {
        commands: &[Sub::StartServer, Sub::SetupServer, Sub::ModuleConfig, Sub::InstallModule],
        ..opt(
            "python-home",
            Arity::One,
            None,
            "DIRECTORY",
            "Python installation or virtual environment (WSGIPythonHome; default: the virtual environment mod_wsgi-express was installed into, if any).",
        )
    },
    OptSpec {
        commands: &[Sub::InstallModule],
        ..opt("modules-directory", Arity::One, None, "DIRECTORY", "Where to install the module (default: Apache's modules directory, apxs -q LIBEXECDIR).")
    },
    OptSpec {
        repeatable: true,
        ..opt("python-path", Arity::One, None, "DIRECTORY", "Add DIRECTORY to the Python module search path.")
    },
    opt("log-level", Arity::One, Some("info"), "LEVEL", "Apache LogLevel (emerg ... debug, trace1 ... trace8)."),
    opt("log-to-terminal", Arity::Flag, None, "", "Send the error log (and the access log, if enabled) to the terminal."),
    opt("access-log", Arity::Flag, None, "", "Enable the access log (access_log in the server root)."),
    opt("setup-only", Arity::Flag, None, "", "Write the configuration and print the Apache command instead of running it."),
    opt("entry-point", Arity::One, None, "SCRIPT", "The WSGI script (instead of giving it as the last argument)."),
    OptSpec {
        repeatable: true,
        ..opt("setenv", Arity::Two, None, "KEY VALUE", "Add KEY=VALUE to every request's WSGI environ (SetEnv).")
    },
    OptSpec {
        repeatable: true,
        ..opt("include-file", Arity::One, None, "FILE", "Include FILE at the end of the generated Apache configuration.")
    },
    opt("compress-responses", Arity::Flag, None, "", "Compress text responses (HTML, plain text, CSS, JavaScript, JSON, XML) with mod_deflate."),
    opt("max-clients", Arity::One, None, "NUMBER", "Most client connections Apache's children accept at once (daemon mode; default 10 + max(10, 1.5 x processes x threads))."),
    opt("startup-log", Arity::Flag, None, "", "Log Apache's start-up messages to startup_log in the server root."),
    OptSpec { commands: ALL, ..opt("help", Arity::Flag, None, "", "Show this help and exit.") },
];

/// Options of the original mod_wsgi-express that this one cannot honour: refused by name, with
/// the reason, rather than reported as unknown or silently dropped.
pub const UNSUPPORTED: &[(&str, &str)] = &[
    ("response-flush-delay", "daemon responses have no response-flush-delay"),
    ("python-eggs", "not passed on to the daemon processes by this mod_wsgi-express yet"),
    ("switch-interval", "not passed on to the daemon processes by this mod_wsgi-express yet"),
    ("debug-mode", "there is no single-process debug mode"),
];

/// Why the original's option `name` is refused, if it is one of [`UNSUPPORTED`].
pub fn unsupported(name: &str) -> Option<&'static str> {
    UNSUPPORTED.iter().find(|(n, _)| *n == name).map(|(_, why)| *why)
}

/// The option called `name` if `sub` accepts it.
pub fn find(sub: Sub, name: &str) -> Option<&'static OptSpec> {
    OPTIONS.iter().find(|o| o.name == name && o.commands.contains(&sub))
}

/// The default of a declared option; panics on a name missing from the table (a programming
/// error the unit tests catch).
pub fn default_of(name: &str) -> Option<&'static str> {
    OPTIONS.iter().find(|o| o.name == name).unwrap_or_else(|| panic!("option --{name} is not in the table")).default
}

/// Synopsis of a subcommand: the first line of its help, and what usage errors show.
pub fn synopsis(sub: Sub) -> String {
    match sub {
        Sub::StartServer => "usage: mod_wsgi-express start-server [options] script.wsgi".to_string(),
        Sub::SetupServer => "usage: mod_wsgi-express setup-server [options] script.wsgi".to_string(),
        Sub::ModuleConfig => "usage: mod_wsgi-express module-config [--python-home DIRECTORY]".to_string(),
        Sub::ModuleLocation => "usage: mod_wsgi-express module-location".to_string(),
        Sub::InstallModule => "usage: mod_wsgi-express install-module [--modules-directory DIRECTORY] [--python-home DIRECTORY]".to_string(),
    }
}

/// Full help of a subcommand, generated from the table.
pub fn help(sub: Sub) -> String {
    let mut out = synopsis(sub);
    out.push_str("\n\noptions:\n");
    for o in OPTIONS.iter().filter(|o| find(sub, o.name).is_some()) {
        let left = if o.metavar.is_empty() { format!("--{}", o.name) } else { format!("--{} {}", o.name, o.metavar) };
        out.push_str(&format!("  {left:<30} {}", o.help));
        if o.repeatable {
            out.push_str(" May be repeated.");
        }
        if let Some(d) = o.default {
            out.push_str(&format!(" [default: {d}]"));
        }
        out.push('\n');
    }
    if SERVER.contains(&sub) {
        let names: Vec<String> = UNSUPPORTED.iter().map(|(n, _)| format!("--{n}")).collect();
        out.push_str(&format!("\nOptions of the original mod_wsgi-express refused as unsupported:\n  {}\n", names.join(", ")));
    }
    out
}

/// Top-level help: the subcommands.
pub fn main_help() -> String {
    "usage: mod_wsgi-express COMMAND [options]\n\n\
     commands:\n  \
     start-server    Generate an Apache configuration for a WSGI script and run Apache in the foreground.\n  \
     setup-server    Generate it, with an apachectl script (start, stop, restart, graceful, configtest).\n  \
     module-config   Print the LoadModule line (and WSGIPythonHome) for an existing Apache configuration.\n  \
     module-location Print the path of the Apache module.\n  \
     install-module  Copy the module and its engines into Apache's modules directory; print the lines to use.\n\n\
     Run 'mod_wsgi-express COMMAND --help' for the options of a command.\n"
        .to_string()
}
