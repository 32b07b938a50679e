//! The files Apache writes: the error, access and startup logs (where, under which names, in
//! which format, rotated or not) and the pid file, as the original's `--log-directory`,
//! `--*-log-name`, `--*-log-format`, `--rotate-logs` and `--pid-file` arrange them.

use crate::cli::{Raw, ServerOptions, UsageError};
use crate::conf_syntax::{quote, quote_escaped, quote_path, utf8};
use std::path::{Path, PathBuf};

/// The log options other than the switches `ServerOptions` keeps (`--log-to-terminal`,
/// `--access-log`, `--startup-log`).
#[derive(Clone, Debug, Default)]
pub struct Logs {
    /// `--log-directory`; `None`: the server root. Made absolute (and created) by setup.
    pub directory: Option<PathBuf>,
    pub error_name: String,
    pub access_name: String,
    pub startup_name: String,
    /// `--access-log-format`: `common`, `combined`, or a format of its own.
    pub access_format: Option<String>,
    pub error_format: Option<String>,
    pub rotate: bool,
    /// `--rotatelogs-executable`; setup fills in Apache's when rotating.
    pub rotatelogs: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
}

impl Logs {
    pub fn parse(raw: &Raw) -> Result<Logs, UsageError> {
        let name = |option: &str| {
            let name = raw.one(option).unwrap_or_default();
            if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
                return Err(raw.error(format!("invalid --{option} '{name}': must be a file name (use --log-directory for where)")));
            }
            Ok(name)
        };
        Ok(Logs {
            directory: raw.path("log-directory"),
            error_name: name("error-log-name")?,
            access_name: name("access-log-name")?,
            startup_name: name("startup-log-name")?,
            access_format: raw.one("access-log-format"),
            error_format: raw.one("error-log-format"),
            rotate: raw.flag("rotate-logs"),
            rotatelogs: raw.path("rotatelogs-executable"),
            pid_file: raw.path("pid-file"),
        })
    }
}

/// Whether the logs go to the terminal: `--log-to-terminal`, unless `--log-directory` says
/// where they go (the original's rule).
pub fn to_terminal(o: &ServerOptions) -> bool {
    o.log_to_terminal && o.logs.directory.is_none()
}

/// The directory the log files go to.
pub fn directory<'a>(o: &'a ServerOptions, root: &'a Path) -> &'a Path {
    o.logs.directory.as_deref().unwrap_or(root)
}

/// The pid file Apache writes.
pub fn pid_file(o: &ServerOptions, root: &Path) -> PathBuf {
    o.logs.pid_file.clone().unwrap_or_else(|| root.join("httpd.pid"))
}

/// Where the error log goes, as the summary shows it.
pub fn error_log_display(o: &ServerOptions, root: &Path) -> String {
    if to_terminal(o) {
        "(terminal)".to_string()
    } else {
        directory(o, root).join(&o.logs.error_name).display().to_string()
    }
}

/// The `-E` file of Apache's start-up messages, with `--startup-log`.
pub fn startup_log(o: &ServerOptions, root: &Path) -> Option<PathBuf> {
    match (o.startup_log, to_terminal(o)) {
        (false, _) => None,
        (true, true) => Some(PathBuf::from("/dev/stderr")),
        (true, false) => Some(directory(o, root).join(&o.logs.startup_name)),
    }
}

/// `ErrorLog`, `ErrorLogFormat`, and with `--access-log` the `LogFormat`s and `CustomLog`.
pub fn directives(o: &ServerOptions, root: &Path) -> Result<String, String> {
    let mut text = format!("LogLevel {}\n", o.log_level);
    text.push_str(&format!("ErrorLog {}\n", target(o, root, &o.logs.error_name, "/dev/stderr")?));
    if let Some(format) = &o.logs.error_format {
        text.push_str(&format!("ErrorLogFormat {}\n", quote_escaped(format)?));
    }
    if o.access_log {
        text.push_str("LogFormat \"%h %l %u %t \\\"%r\\\" %>s %b\" common\n");
        text.push_str("LogFormat \"%h %l %u %t \\\"%r\\\" %>s %b \\\"%{Referer}i\\\" \\\"%{User-agent}i\\\"\" combined\n");
        let nickname = match o.logs.access_format.as_deref() {
            None | Some("common") => "common",
            Some("combined") => "combined",
            Some(format) => {
                text.push_str(&format!("LogFormat {} custom\n", quote_escaped(format)?));
                "custom"
            }
        };
        text.push_str(&format!("CustomLog {} {nickname}\n", target(o, root, &o.logs.access_name, "/dev/stdout")?));
    }
    Ok(text)
}

/// A log's destination: the terminal, a file of the log directory, or that file through
/// rotatelogs (a piped log, run without a shell, its words quoted for Apache's splitting).
fn target(o: &ServerOptions, root: &Path, name: &str, terminal: &str) -> Result<String, String> {
    if to_terminal(o) {
        return Ok(terminal.to_string());
    }
    let file = directory(o, root).join(name);
    if !o.logs.rotate {
        return quote_path(&file);
    }
    let program = o.logs.rotatelogs.as_deref().ok_or("the rotatelogs program was not resolved")?;
    let word = |text: &str| -> Result<String, String> {
        if text.contains('\'') {
            return Err(format!("'{text}' cannot be passed to rotatelogs (it holds a single quote)"));
        }
        Ok(format!("'{text}'"))
    };
    // rotatelogs passes the whole pattern through strftime: a '%' of the path is doubled to
    // stay itself.
    let pattern = format!("{}.%Y-%m-%d-%H_%M_%S", utf8(&file)?.replace('%', "%%"));
    quote(&format!("|{} {} {}M", word(utf8(program)?)?, word(&pattern)?, o.number("max-log-size")))
}
