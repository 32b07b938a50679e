//! The one table of command-line options.
//!
//! Each option is declared once, here: its name, how many values it takes, its default and its
//! help text. The parser (`cli/`) looks options up in this table and reads defaults from it, and
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

const fn opt(name: &'static str, arity: Arity, default: Option<&'static str>, metavar: &'static str, help: &'static str) -> OptSpec {
    OptSpec { name, arity, repeatable: false, default, metavar, help, commands: SERVER }
}

/// A switch (`--https-only`) of the server commands.
const fn flag(name: &'static str, help: &'static str) -> OptSpec {
    opt(name, Arity::Flag, None, "", help)
}

/// An option of the server commands that may be given more than once, its values accumulating.
const fn many(name: &'static str, arity: Arity, metavar: &'static str, help: &'static str) -> OptSpec {
    OptSpec { repeatable: true, ..opt(name, arity, None, metavar, help) }
}

/// Every option, in the order help shows them.
pub const OPTIONS: &[OptSpec] = &[
    // Where it listens and under which names.
    opt("port", Arity::One, Some("8000"), "NUMBER", "Port to listen on (1-65535)."),
    // Never 0.0.0.0 by default: a development server should not be reachable from the network
    // unless asked for.
    opt("host", Arity::One, Some("127.0.0.1"), "ADDRESS", "Address to listen on."),
    opt(
        "server-name",
        Arity::One,
        Some("localhost"),
        "NAME",
        "ServerName of the generated site. Given, as in the original, requests for other host names get 403 (see --server-alias, --allow-localhost), and a name starting with 'www.' gets its parent domain redirected to it.",
    ),
    many("server-alias", Arity::One, "NAME", "Another host name of the site (ServerAlias; wildcards allowed); with --server-name (ignored without it, as by the original)."),
    flag("allow-localhost", "With --server-name: requests from this machine under other host names are still served."),
    opt("https-port", Arity::One, None, "NUMBER", "Also listen for HTTPS on this port (mod_ssl), with --ssl-certificate-file and --ssl-certificate-key-file."),
    opt("ssl-certificate-file", Arity::One, None, "FILE", "The HTTPS certificate (SSLCertificateFile)."),
    opt("ssl-certificate-key-file", Arity::One, None, "FILE", "The certificate's private key (SSLCertificateKeyFile)."),
    opt("ssl-certificate", Arity::One, None, "PATH", "PATH.crt and PATH.key: both files at once."),
    opt("ssl-certificate-chain-file", Arity::One, None, "FILE", "The CA certificates of the certificate's chain (SSLCertificateChainFile)."),
    opt(
        "ssl-ca-certificate-file",
        Arity::One,
        None,
        "FILE",
        "CA certificates for client authentication (SSLCACertificateFile): HTTPS clients must then present a certificate, on the whole site unless --ssl-verify-client names URLs.",
    ),
    many("ssl-verify-client", Arity::One, "URL", "Require a client certificate under URL only (needs --ssl-ca-certificate-file)."),
    flag("ssl-environment", "Pass mod_ssl's SSL_* variables in the environ of HTTPS requests (SSLOptions +StdEnvVars)."),
    flag("https-only", "Redirect HTTP requests to HTTPS."),
    opt("hsts-policy", Arity::One, None, "PARAMS", "With --https-only: the Strict-Transport-Security header of HTTPS responses."),
    opt("http2", Arity::Flag, None, "", "Enable HTTP/2 (mod_http2: h2 over HTTPS, h2c over HTTP)."),
    opt(
        "server-root",
        Arity::One,
        None,
        "DIRECTORY",
        "Where httpd.conf, logs and the pid file go (default /tmp/mod_wsgi-HOST:PORT:UID).",
    ),
    opt("user", Arity::One, None, "NAME", "User the server children and daemon processes run as (when started as root; default nobody)."),
    opt("group", Arity::One, None, "NAME", "Group the server children and daemon processes run as (when started as root; default nogroup)."),
    // The application.
    opt(
        "application-type",
        Arity::One,
        Some("script"),
        "TYPE",
        "What the entry point is: script (a WSGI script file), module (a dotted module name such as pkg.wsgi, imported from --python-path or the working directory), static (no application: the --document-root, else the directory given, else the current one; --add-handler scripts still run, in a daemon process unless --embedded-mode), paste (a PasteDeploy .ini file; needs PasteDeploy).",
    ),
    opt("entry-point", Arity::One, None, "SCRIPT|MODULE", "The entry point (instead of giving it as the last argument)."),
    opt("callable-object", Arity::One, Some("application"), "NAME", "Name of the WSGI callable in the script or module."),
    opt("application-group", Arity::One, None, "NAME", "WSGIApplicationGroup of the application (default %{GLOBAL}: the main interpreter)."),
    opt("mount-point", Arity::One, Some("/"), "URL", "URL the application is mounted at."),
    many("url-alias", Arity::Two, "URL PATH", "Serve the file or directory PATH at URL."),
    opt(
        "working-directory",
        Arity::One,
        None,
        "DIRECTORY",
        "Working directory of the application, also searched for modules (default: the current directory).",
    ),
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
    many("python-path", Arity::One, "DIRECTORY", "Add DIRECTORY to the Python module search path."),
    many("python-warnings", Arity::One, "SPEC", "A Python warnings filter, as python -W takes it (WSGIPythonWarnings)."),
    opt("python-eggs", Arity::One, None, "DIRECTORY", "PYTHON_EGG_CACHE of the application (python-eggs= of the daemon group; WSGIPythonEggs embedded)."),
    opt("switch-interval", Arity::One, None, "SECONDS", "sys.setswitchinterval of the application's Python (WSGISwitchInterval, switch-interval= of the daemon group)."),
    flag("reload-on-changes", "Daemon mode: restart the daemon processes when a Python file the application loaded changes (checked every second)."),
    flag("disable-reloading", "Never restart or reload because the WSGI script (or entry point) changed (WSGIScriptReloading Off)."),
    flag("orphan-interpreter", "End processes without finalising Python (WSGIDestroyInterpreter Off)."),
    flag("verbose-debugging", "WSGIVerboseDebugging On (accepted by the module with a notice; it has no effect)."),
    // Static files.
    opt(
        "document-root",
        Arity::One,
        None,
        "DIRECTORY",
        "Serve the files of DIRECTORY; the application gets every URL under --mount-point that is not a file there.",
    ),
    opt("directory-index", Arity::One, None, "FILE", "Serve FILE for a directory of the document root (DirectoryIndex) instead of passing it to the application."),
    flag("directory-listing", "List directories of the document root that have no index (Options +Indexes)."),
    many("allow-override", Arity::One, "TYPE", "Directives .htaccess files of the document root and --url-alias directories may hold (AllowOverride; default None)."),
    opt("rewrite-rules", Arity::One, None, "FILE", "Include FILE (mod_rewrite rules) in the document root's <Directory>."),
    many("error-document", Arity::Two, "STATUS URL", "Serve URL for error STATUS (ErrorDocument)."),
    flag("error-override", "Error responses of the application are replaced by Apache's error documents (WSGIErrorOverride)."),
    many("add-handler", Arity::Two, "EXTENSION SCRIPT", "Files of the document root ending in EXTENSION are served by SCRIPT's handle_request() (else its application())."),
    opt("mime-types", Arity::One, None, "FILE", "TypesConfig of the server (default /etc/mime.types)."),
    flag("with-cgi", "Run executable .cgi files of the document root as CGI scripts (mod_cgid)."),
    // Requests.
    opt("limit-request-body", Arity::One, Some("10485760"), "BYTES", "Largest request body accepted (LimitRequestBody); 0: no limit."),
    flag("chunked-request", "Accept request bodies sent with chunked transfer encoding (WSGIChunkedRequest)."),
    opt("map-head-to-get", Arity::One, Some("Auto"), "OFF|ON|AUTO", "Show HEAD requests to the application as GET (WSGIMapHEADToGET)."),
    flag("enable-sendfile", "Send wsgi.file_wrapper files with sendfile() (EnableSendfile and WSGIEnableSendfile)."),
    many("trust-proxy-header", Arity::One, "HEADER", "A proxy header the application may believe (WSGITrustedProxyHeaders)."),
    many("trust-proxy", Arity::One, "ADDRESS/NETWORK", "A proxy those headers are believed from (WSGITrustedProxies)."),
    many("passenv", Arity::One, "NAME", "Pass environment variable NAME of the server into every request's environ (PassEnv)."),
    many("setenv", Arity::Two, "KEY VALUE", "Add KEY=VALUE to every request's WSGI environ (SetEnv)."),
    opt("keep-alive-timeout", Arity::One, Some("2"), "SECONDS", "How long a client connection is kept open for another request (KeepAliveTimeout); 0: no keep-alive."),
    opt("header-timeout", Arity::One, Some("15"), "SECONDS", "Time to receive a request's headers (RequestReadTimeout header=); 0: mod_reqtimeout's own default, as the original."),
    opt("header-max-timeout", Arity::One, Some("30"), "SECONDS", "Longest time to receive the headers when --header-min-rate extends it; 0: no maximum."),
    opt("header-min-rate", Arity::One, Some("500"), "BYTES", "Every this many bytes of headers received extend --header-timeout by a second; 0: never."),
    opt("body-timeout", Arity::One, Some("15"), "SECONDS", "Time to receive a request's body (RequestReadTimeout body=); 0: mod_reqtimeout's own default, as the original."),
    opt("body-max-timeout", Arity::One, Some("0"), "SECONDS", "Longest time to receive the body when --body-min-rate extends it; 0: no maximum."),
    opt("body-min-rate", Arity::One, Some("500"), "BYTES", "Every this many bytes of body received extend --body-timeout by a second; 0: never."),
    opt("compress-responses", Arity::Flag, None, "", "Compress text responses (HTML, plain text, CSS, JavaScript, JSON, XML) with mod_deflate."),
    // Access control.
    opt("host-access-script", Arity::One, None, "SCRIPT", "SCRIPT's allow_access(environ, host) decides which clients may connect (WSGIAccessScript)."),
    opt("auth-user-script", Arity::One, None, "SCRIPT", "Require a user checked by SCRIPT's check_password() (Basic) or get_realm_hash() (Digest) (WSGIAuthUserScript)."),
    opt("auth-type", Arity::One, Some("Basic"), "Basic|Digest", "Authentication scheme of --auth-user-script."),
    opt("auth-group-script", Arity::One, None, "SCRIPT", "With --auth-user-script: the user must be in --auth-group, as SCRIPT's groups_for_user() says (WSGIAuthGroupScript)."),
    opt("auth-group", Arity::One, Some("wsgi"), "NAME", "The group --auth-group-script must find the user in."),
    // Processes and threads.
    opt("server-mpm", Arity::One, Some("event"), "NAME", "Apache MPM: event, worker or prefork; given more than once, the first of event, worker, prefork among them."),
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
    opt("max-clients", Arity::One, None, "NUMBER", "Most client connections Apache's children accept at once (daemon mode; at least processes x threads; default 10 + max(10, 1.5 x processes x threads))."),
    opt("initial-workers", Arity::One, None, "FRACTION", "Daemon mode: Apache's workers started at first, as a fraction (0 to 1) of --max-clients (default 0.2; prefork 0.05)."),
    opt("minimum-spare-workers", Arity::One, None, "FRACTION", "Daemon mode: fewest idle Apache workers, as a fraction of --max-clients (default: --initial-workers)."),
    opt("maximum-spare-workers", Arity::One, None, "FRACTION", "Daemon mode: most idle Apache workers, as a fraction of --max-clients (default 0.6; prefork 0.1)."),
    opt("maximum-requests", Arity::One, Some("0"), "NUMBER", "Restart a process after this many requests; 0: never."),
    opt("request-timeout", Arity::One, Some("60"), "SECONDS", "Restart a daemon process whose requests run longer than this."),
    opt("interrupt-timeout", Arity::One, Some("0"), "SECONDS", "After a request timeout, how long interrupted requests get to end; 0: no interrupt."),
    opt("inactivity-timeout", Arity::One, Some("0"), "SECONDS", "Restart a daemon process idle this long; 0: never."),
    many("ignore-activity", Arity::One, "URL", "Requests under URL do not count as activity for --inactivity-timeout (WSGIIgnoreActivity)."),
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
    opt("response-flush-delay", Arity::One, Some("5"), "MILLISECONDS", "How long a child waits for more of a daemon's response before flushing; 0: at once."),
    flag("server-metrics", "mod_wsgi.server_metrics() returns Apache's scoreboard (WSGIServerMetrics, server-metrics= of the daemon group)."),
    flag("server-status", "Apache's server status at /server-status, for clients on this machine (mod_status)."),
    opt(
        "telemetry-service",
        Arity::One,
        None,
        "unix:PATH",
        "Every process running the application sends mod_wsgi 6.1's telemetry datagrams to the Unix datagram socket PATH (WSGITelemetryService), where the mod_wsgi-telemetry ingester listens (mod_wsgi-telemetry serve --listen unix:PATH); with no one listening they are dropped.",
    ),
    opt("telemetry-interval", Arity::One, Some("1.0"), "SECONDS", "With --telemetry-service: how often each process sends its datagram (interval= of WSGITelemetryService; at least 0.5)."),
    opt(
        "slow-requests",
        Arity::One,
        None,
        "SECONDS",
        "Requests running longer than this are reported to the --telemetry-service (required, as by the original) and logged, one line each (WSGISlowRequests); 0: off.",
    ),
    many(
        "telemetry-options",
        Arity::One,
        "FLAGS",
        "One WSGITelemetryOptions line, as given: +CaptureUserAgent (slow-request datagrams carry the User-Agent), +SlowRequestStacks (a slow request's log line is followed by its Python stack), their - forms, plain names (replacing the flags), None or All.",
    ),
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
    // Logs.
    opt("log-level", Arity::One, Some("info"), "LEVEL", "Apache LogLevel (emerg ... debug, trace1 ... trace8)."),
    opt("log-directory", Arity::One, None, "DIRECTORY", "Where the log files go (default: the server root); overrides --log-to-terminal."),
    opt("log-to-terminal", Arity::Flag, None, "", "Send the error log (and the access log, if enabled) to the terminal."),
    opt("access-log", Arity::Flag, None, "", "Enable the access log."),
    opt("access-log-format", Arity::One, None, "FORMAT", "LogFormat of the access log: common (the default), combined, or a format of its own."),
    opt("error-log-format", Arity::One, None, "FORMAT", "ErrorLogFormat of the error log."),
    opt("error-log-name", Arity::One, Some("error_log"), "NAME", "File name of the error log in the log directory."),
    opt("access-log-name", Arity::One, Some("access_log"), "NAME", "File name of the access log in the log directory."),
    opt("startup-log", Arity::Flag, None, "", "Log Apache's start-up messages to the startup log."),
    opt("startup-log-name", Arity::One, Some("startup_log"), "NAME", "File name of the startup log in the log directory."),
    flag("rotate-logs", "Rotate the log files through rotatelogs (not with --log-to-terminal)."),
    opt("max-log-size", Arity::One, Some("5"), "MB", "With --rotate-logs: size at which a log file is rotated."),
    opt("rotatelogs-executable", Arity::One, None, "FILE", "The rotatelogs program (default: Apache's)."),
    opt("pid-file", Arity::One, None, "FILE", "Where Apache writes its process id (default httpd.pid in the server root)."),
    // The server itself.
    opt("httpd-executable", Arity::One, None, "FILE", "The Apache program to run (default: the one apxs named at build time)."),
    OptSpec {
        commands: &[Sub::StartServer, Sub::SetupServer, Sub::InstallModule],
        ..opt("modules-directory", Arity::One, None, "DIRECTORY", "Apache's modules directory (default: apxs -q LIBEXECDIR); install-module copies the module there.")
    },
    opt("process-name", Arity::One, None, "NAME", "Name Apache's parent process shows (default 'apache2 (mod_wsgi-express)')."),
    opt("setup-only", Arity::Flag, None, "", "Write the configuration and print the Apache command instead of running it."),
    many("include-file", Arity::One, "FILE", "Include FILE at the end of the generated Apache configuration."),
    OptSpec { commands: ALL, ..opt("help", Arity::Flag, None, "", "Show this help and exit.") },
];

/// Other names of options, as the original accepts them: (alias, the option's name).
pub const ALIASES: &[(&str, &str)] = &[("mpm", "server-mpm"), ("ssl-port", "https-port")];

/// Options of the original mod_wsgi-express that this one cannot honour: refused by name, with
/// the reason, rather than reported as unknown or silently dropped.
pub const UNSUPPORTED: &[(&str, &str)] = &[
    ("proxy-mount-point", PROXY),
    ("proxy-url-alias", PROXY),
    ("proxy-virtual-host", PROXY),
    ("proxy-timeout", PROXY),
    ("enable-telemetry", TELEMETRY),
    ("telemetry-ui-port", TELEMETRY_UI),
    ("free-threading", "no engine of mod_wsgi-rs runs a free-threaded (PEP 703) Python"),
    ("service-script", SERVICES),
    ("service-user", SERVICES),
    ("service-group", SERVICES),
    ("service-log-file", SERVICES),
    ("debug-mode", DEBUG),
    ("enable-debugger", DEBUG),
    ("debugger-startup", DEBUG),
    ("enable-coverage", DEBUG),
    ("coverage-directory", DEBUG),
    ("enable-profiler", DEBUG),
    ("profiler-directory", DEBUG),
    ("enable-recorder", DEBUG),
    ("recorder-directory", DEBUG),
    ("enable-gdb", DEBUG),
    ("gdb-executable", DEBUG),
    ("enable-docs", "mod_wsgi's documentation pages are not shipped with mod_wsgi-rs"),
    ("with-php5", "there is no mod_php5 for Apache 2.4 here"),
    ("envvars-script", "start-server runs Apache itself, with no shell script that could source it"),
    ("shell-executable", "the generated apachectl is a bash script (it needs bash's exec -a)"),
];

const PROXY: &str = "proxying to other servers (mod_proxy) is not generated yet";
const TELEMETRY: &str = "it runs the mod_wsgi-telemetry ingester and its web UI as a managed service, a WSGIDaemonProcess with threads=0, which mod_wsgi-rs refuses; run 'mod_wsgi-telemetry serve --listen unix:PATH' yourself and pass --telemetry-service unix:PATH";
const TELEMETRY_UI: &str = "it is the port of the web UI that --enable-telemetry starts, and --enable-telemetry runs the mod_wsgi-telemetry ingester as a managed service (a WSGIDaemonProcess with threads=0), which mod_wsgi-rs refuses; run 'mod_wsgi-telemetry serve --listen unix:PATH' yourself and pass --telemetry-service unix:PATH";
const SERVICES: &str = "managed services need a WSGIDaemonProcess with threads=0, which mod_wsgi-rs refuses";
const DEBUG: &str = "there is no single-process debug mode (--debug-mode), which it belongs to";

/// Why the original's option `name` is refused, if it is one of [`UNSUPPORTED`].
pub fn unsupported(name: &str) -> Option<&'static str> {
    UNSUPPORTED.iter().find(|(n, _)| *n == name).map(|(_, why)| *why)
}

/// The option called `name` (or one of its [`ALIASES`]) if `sub` accepts it.
pub fn find(sub: Sub, name: &str) -> Option<&'static OptSpec> {
    let name = ALIASES.iter().find(|(alias, _)| *alias == name).map_or(name, |(_, real)| real);
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
        Sub::StartServer => "usage: mod_wsgi-express start-server [options] (script.wsgi | module | directory)".to_string(),
        Sub::SetupServer => "usage: mod_wsgi-express setup-server [options] (script.wsgi | module | directory)".to_string(),
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
        for (alias, _) in ALIASES.iter().filter(|(_, real)| *real == o.name) {
            out.push_str(&format!(" Also --{alias}."));
        }
        if let Some(d) = o.default {
            out.push_str(&format!(" [default: {d}]"));
        }
        out.push('\n');
    }
    if SERVER.contains(&sub) {
        let names: Vec<String> = UNSUPPORTED.iter().map(|(n, _)| format!("--{n}")).collect();
        out.push_str(&format!(
            "\nOptions of the original mod_wsgi-express not supported by mod_wsgi-rs yet (refused by name):\n  {}\n",
            names.join(", ")
        ));
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
