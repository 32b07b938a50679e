//! The options of `start-server` and `setup-server`, from [`Raw`] to [`ServerOptions`]: each
//! value typed and checked, a bad one said as a usage error naming the option. The feature
//! modules check their own options (`tls.rs`, `docroot.rs`, `logs.rs`, `auth.rs`,
//! `telemetry.rs`); what is ignored is dropped last, by `ignored.rs`.

use super::ignored::ignore_incomplete;
use super::raw::Raw;
use super::server_options::{App, Flag, List, Mpm, ServerOptions, SpareWorkers, UrlAlias, SERVER_NUMBERS};
use super::UsageError;
use crate::auth::Auth;
use crate::docroot::DocRoot;
use crate::logs::Logs;
use crate::telemetry::Telemetry;
use crate::tls::Tls;
use std::path::PathBuf;

const LOG_LEVELS: &[&str] = &[
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug", "trace1", "trace2", "trace3", "trace4", "trace5", "trace6", "trace7",
    "trace8",
];

pub(super) fn server_options(raw: &Raw) -> Result<ServerOptions, UsageError> {
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
        ("module", Some(name)) => {
            Err(raw.error(format!("invalid module name '{name}' for --application-type module: must be a dotted name such as pkg.wsgi")))
        }
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
    let spare = SpareWorkers {
        initial: fraction("initial-workers")?,
        minimum: fraction("minimum-spare-workers")?,
        maximum: fraction("maximum-spare-workers")?,
    };
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
    use crate::cli::tests::{args, server, usage_error};
    use crate::cli::{parse, Command};
    use std::path::Path;

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
    fn daemon_options() {
        let o = server(&["start-server", "x"]);
        assert!(!o.embedded && !o.processes_given && o.process_group.is_none() && o.working_directory.is_none());
        for (name, default) in [
            ("maximum-requests", 0),
            ("request-timeout", 60),
            ("inactivity-timeout", 0),
            ("restart-interval", 0),
            ("graceful-timeout", 15),
            ("shutdown-timeout", 5),
            ("connect-timeout", 15),
            ("socket-timeout", 60),
            ("queue-timeout", 45),
            ("daemon-backlog", 100),
            ("server-backlog", 500),
            ("header-buffer-size", 0),
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
        let o =
            server(&["start-server", "--https-port", "8443", "--ssl-certificate", "/etc/site", "--https-only", "--hsts-policy", "max-age=60", "x"]);
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
        let o = server(&[
            "start-server",
            "--map-head-to-get",
            "off",
            "--switch-interval",
            "0.001",
            "--trust-proxy",
            "10.0.0.0/8",
            "--trust-proxy=::1",
            "--http2",
            "x",
        ]);
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
            "start-server",
            "--telemetry-service",
            "unix:/run/t.sock",
            "--telemetry-interval",
            " 2_5 ",
            "--slow-requests",
            "1.5",
            "--telemetry-options",
            "+CaptureUserAgent",
            "--telemetry-options=-captureuseragent +SlowRequestStacks",
            "x",
        ]);
        assert_eq!(o.telemetry.service.as_deref(), Some(Path::new("/run/t.sock")));
        assert_eq!((o.telemetry.interval, o.telemetry.slow_requests), (25.0, Some(1.5)));
        assert_eq!(o.telemetry.options, ["+CaptureUserAgent", "-captureuseragent +SlowRequestStacks"]);
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
        fn tel<'a>(words: &[&'a str]) -> Vec<&'a str> {
            [&["start-server", "--telemetry-service", "unix:/t"][..], words, &["x"]].concat()
        }
        for (words, wanted) in [
            (
                vec!["start-server", "--telemetry-service", "udp:10.0.0.1:9000", "x"],
                "--telemetry-service must be 'unix:/path' (remote 'udp:host:port' targets are no longer supported)",
            ),
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
