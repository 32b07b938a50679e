//! Daemon mode, the default of `start-server` as of the original mod_wsgi-express: the
//! application runs in a `WSGIDaemonProcess` group and Apache's children only pass requests
//! to it. This file names the group, writes its directives, and sizes Apache's children for
//! that role (with `--embedded-mode` none of this is used).

use crate::cli::{Flag, Mpm, ServerOptions};
use crate::conf_syntax::{quote, quote_path, utf8};
use std::path::Path;

/// The numeric options passed on to `WSGIDaemonProcess`: (express option, daemon option).
/// Their defaults are the original's, in `options.rs`.
pub const NUMBERS: &[(&str, &str)] = &[
    ("maximum-requests", "maximum-requests"),
    ("daemon-backlog", "listen-backlog"),
    ("queue-timeout", "queue-timeout"),
    ("socket-timeout", "socket-timeout"),
    ("connect-timeout", "connect-timeout"),
    ("request-timeout", "request-timeout"),
    ("interrupt-timeout", "interrupt-timeout"),
    ("inactivity-timeout", "inactivity-timeout"),
    ("graceful-timeout", "graceful-timeout"),
    ("eviction-timeout", "eviction-timeout"),
    ("restart-interval", "restart-interval"),
    ("shutdown-timeout", "shutdown-timeout"),
    ("header-buffer-size", "header-buffer-size"),
    ("startup-timeout", "startup-timeout"),
    ("deadlock-timeout", "deadlock-timeout"),
    ("cpu-time-limit", "cpu-time-limit"),
    ("send-buffer-size", "send-buffer-size"),
    ("receive-buffer-size", "receive-buffer-size"),
    ("response-buffer-size", "response-buffer-size"),
    ("response-socket-timeout", "response-socket-timeout"),
    ("response-flush-delay", "response-flush-delay"),
];

/// The host part of the group's and the server root's names: the original says `localhost`
/// unless `--host` was given.
pub fn host_label(o: &ServerOptions) -> &str {
    if o.host_given {
        &o.host
    } else {
        "localhost"
    }
}

/// The group's name: `--process-group`, else `HOST:PORT` as the original names it.
pub fn group_name(o: &ServerOptions) -> String {
    o.process_group.clone().unwrap_or_else(|| format!("{}:{}", host_label(o), o.port))
}

/// The daemons' process title, as the original: `(wsgi:NAME)` for a named group, else
/// `(wsgi:HOST:PORT:UID)`.
pub fn display_name(o: &ServerOptions, uid: u32) -> String {
    match &o.process_group {
        Some(name) => format!("(wsgi:{name})"),
        None => format!("(wsgi:{}:{}:{uid})", host_label(o), o.port),
    }
}

/// `WSGISocketPrefix`, `WSGIRestrictEmbedded`, `WSGIDaemonProcess` and `WSGIProcessGroup`.
/// `home` is the working directory, `socket_dir` where the sockets go, `uid` the real user id
/// (for the display name).
pub fn directives(o: &ServerOptions, home: &Path, socket_dir: &Path, uid: u32) -> Result<String, String> {
    let name = group_name(o);
    let home = utf8(home)?;
    let mut words = vec![quote(&format!("display-name={}", display_name(o, uid)))?, quote(&format!("home={home}"))?];
    if o.processes_given {
        words.push(format!("processes={}", o.processes));
    }
    words.push(format!("threads={}", o.threads));
    if !o.python_path.is_empty() {
        words.push(quote(&format!("python-path={}", crate::template::python_path(&o.python_path)?))?);
    }
    if let Some(locale) = &o.locale {
        words.push(quote(&format!("lang={locale}"))?);
        words.push(quote(&format!("locale={locale}"))?);
    }
    for (express, daemon) in NUMBERS {
        words.push(format!("{daemon}={}", o.number(express)));
    }
    if let Some(eggs) = &o.python_eggs {
        words.push(quote(&format!("python-eggs={}", utf8(eggs)?))?);
    }
    if let Some(seconds) = &o.switch_interval {
        words.push(format!("switch-interval={seconds}"));
    }
    if o.flag(Flag::ServerMetrics) {
        words.push("server-metrics=On".to_string());
    }
    let mut text = format!("WSGISocketPrefix {}\n", quote_path(&socket_dir.join("wsgi"))?);
    text.push_str("WSGIRestrictEmbedded On\n");
    text.push_str(&format!("WSGIDaemonProcess {}", quote(&name)?));
    for word in words {
        text.push_str(" \\\n    ");
        text.push_str(&word);
    }
    text.push_str(&format!("\nWSGIProcessGroup {}", quote(&name)?));
    Ok(text)
}

/// Apache's children in daemon mode: they only relay requests, so there are more request
/// slots than daemon threads (queued requests wait in a child, not in the listen backlog).
/// The original's arithmetic: `max_clients` is `--max-clients`, but never fewer than the
/// daemons' threads (`processes * threads`), else `10 + max(10, 1.5 * processes * threads)`;
/// and the children started and kept idle are fractions of it (`--initial-workers`,
/// `--minimum-spare-workers`, `--maximum-spare-workers`), with its defaults per MPM.
pub fn mpm_section(o: &ServerOptions) -> String {
    let total = u64::from(o.processes) * u64::from(o.threads);
    let max_clients = o.max_clients.map_or(10 + 10.max(total * 3 / 2), |given| u64::from(given).max(total));
    let spare = o.spare_workers;
    // int(fraction * n), as the original truncates.
    let part = |fraction: f64, n: u64| (fraction * n as f64) as u64;
    match o.mpm {
        Mpm::Prefork => {
            let initial = spare.initial.unwrap_or(0.05);
            let minimum = spare.minimum.unwrap_or(initial);
            let maximum = spare.maximum.unwrap_or(0.1);
            format!(
                "ServerLimit {max_clients}\nStartServers {}\nMaxRequestWorkers {max_clients}\nMinSpareServers {}\n\
                 MaxSpareServers {}\nMaxConnectionsPerChild 0",
                part(initial, max_clients).max(1),
                part(minimum, max_clients).max(1),
                part(maximum, max_clients).max(1)
            )
        }
        Mpm::Event | Mpm::Worker => {
            let initial = spare.initial.unwrap_or(0.2);
            let minimum = spare.minimum.unwrap_or(initial);
            let maximum = spare.maximum.unwrap_or(0.6);
            let per_child = if max_clients > 20 { max_clients / (max_clients / 20 + 1) } else { 10 };
            let servers = max_clients.div_ceil(per_child);
            let threads = |fraction: f64| per_child.max(part(fraction, servers) * per_child);
            format!(
                "ServerLimit {servers}\nStartServers {}\nThreadLimit {per_child}\nThreadsPerChild {per_child}\n\
                 MaxRequestWorkers {}\nMinSpareThreads {}\nMaxSpareThreads {}\nMaxConnectionsPerChild 0",
                part(initial, servers).max(1),
                servers * per_child,
                threads(minimum),
                threads(maximum)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse, Command};

    fn opts(words: &[&str]) -> ServerOptions {
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        match parse(&words) {
            Ok(Command::StartServer(o)) => *o,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn group_is_named_after_host_and_port_as_the_original() {
        let o = opts(&["start-server", "--port", "8123", "a.wsgi"]);
        assert_eq!(group_name(&o), "localhost:8123");
        assert_eq!(display_name(&o, 0), "(wsgi:localhost:8123:0)");
        let o = opts(&["start-server", "--host", "::1", "a.wsgi"]);
        assert_eq!(group_name(&o), "::1:8000");
        let o = opts(&["start-server", "--process-group", "web", "a.wsgi"]);
        assert_eq!((group_name(&o).as_str(), display_name(&o, 5).as_str()), ("web", "(wsgi:web)"));
    }

    #[test]
    fn defaults_are_the_originals() {
        let o = opts(&["start-server", "a.wsgi"]);
        let text = directives(&o, Path::new("/srv"), Path::new("/tmp/root"), 0).unwrap();
        for want in [
            "WSGISocketPrefix \"/tmp/root/wsgi\"",
            "WSGIRestrictEmbedded On",
            "WSGIDaemonProcess \"localhost:8000\" \\",
            "\"display-name=(wsgi:localhost:8000:0)\" \\",
            "\"home=/srv\" \\",
            "threads=5 \\",
            "maximum-requests=0 \\",
            "listen-backlog=100 \\",
            "queue-timeout=45 \\",
            "socket-timeout=60 \\",
            "connect-timeout=15 \\",
            "request-timeout=60 \\",
            "inactivity-timeout=0 \\",
            "graceful-timeout=15 \\",
            "restart-interval=0 \\",
            "shutdown-timeout=5 \\",
            "header-buffer-size=0 \\",
            "startup-timeout=15 \\",
            "deadlock-timeout=60 \\",
            "response-socket-timeout=0 \\",
            "response-flush-delay=5",
            "WSGIProcessGroup \"localhost:8000\"",
        ] {
            assert!(text.lines().any(|l| l.trim() == want), "missing {want:?} in\n{text}");
        }
        // As the original: processes= only when asked for (it makes wsgi.multiprocess true).
        assert!(!text.contains("processes=") && !text.contains("python-path") && !text.contains("lang="), "{text}");
        for absent in ["python-eggs", "switch-interval", "server-metrics"] {
            assert!(!text.contains(absent), "unexpected {absent} in\n{text}");
        }
    }

    #[test]
    fn options_reach_the_daemon_line() {
        let o = opts(&[
            "start-server",
            "--processes",
            "2",
            "--threads",
            "3",
            "--maximum-requests",
            "100",
            "--request-timeout=7",
            "--daemon-backlog",
            "9",
            "--header-buffer-size",
            "9000",
            "--python-path",
            "/a",
            "--python-path",
            "/b",
            "--locale",
            "C.UTF-8",
            "--process-group",
            "g",
            "--python-eggs",
            "/eggs",
            "--switch-interval",
            "0.01",
            "--server-metrics",
            "--response-flush-delay",
            "0",
            "a.wsgi",
        ]);
        let text = directives(&o, Path::new("/w d"), Path::new("/s"), 0).unwrap();
        for want in [
            "processes=2",
            "threads=3",
            "maximum-requests=100",
            "request-timeout=7",
            "listen-backlog=9",
            "header-buffer-size=9000",
            "\"python-path=/a:/b\"",
            "\"lang=C.UTF-8\"",
            "\"locale=C.UTF-8\"",
            "\"home=/w d\"",
            "WSGIProcessGroup \"g\"",
            "WSGISocketPrefix \"/s/wsgi\"",
            "\"python-eggs=/eggs\"",
            "switch-interval=0.01",
            "server-metrics=On",
            "response-flush-delay=0",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }

    #[test]
    fn children_are_sized_as_the_original() {
        // 1 x 5 threads: max_clients 20, 10 threads per child, 2 children.
        let text = mpm_section(&opts(&["start-server", "a.wsgi"]));
        for want in ["ServerLimit 2", "ThreadsPerChild 10", "MaxRequestWorkers 20", "MinSpareThreads 10", "MaxSpareThreads 10"] {
            assert!(text.lines().any(|l| l == want), "missing {want:?} in\n{text}");
        }
        // 4 x 10: max_clients 70 -> 17 threads per child, 5 children, 85 workers.
        let text = mpm_section(&opts(&["start-server", "--processes", "4", "--threads", "10", "a.wsgi"]));
        for want in ["ServerLimit 5", "ThreadsPerChild 17", "MaxRequestWorkers 85", "StartServers 1", "MaxSpareThreads 51"] {
            assert!(text.lines().any(|l| l == want), "missing {want:?} in\n{text}");
        }
        let text = mpm_section(&opts(&["start-server", "--mpm", "prefork", "a.wsgi"]));
        for want in ["ServerLimit 20", "MaxRequestWorkers 20", "StartServers 1", "MinSpareServers 1", "MaxSpareServers 2"] {
            assert!(text.lines().any(|l| l == want), "missing {want:?} in\n{text}");
        }
    }

    #[test]
    fn max_clients_is_at_least_the_daemons_threads_as_the_original() {
        // 4 x 10 threads: --max-clients 5 still gives 40 (4 children of 40 / 3 threads).
        let text = mpm_section(&opts(&["start-server", "--processes", "4", "--threads", "10", "--max-clients", "5", "a.wsgi"]));
        for want in ["ServerLimit 4", "ThreadsPerChild 13", "MaxRequestWorkers 52"] {
            assert!(text.lines().any(|l| l == want), "missing {want:?} in\n{text}");
        }
        let text = mpm_section(&opts(&["start-server", "--mpm", "prefork", "--threads", "10", "--max-clients", "3", "a.wsgi"]));
        assert!(text.lines().any(|l| l == "MaxRequestWorkers 10"), "{text}");
        // Given more, it is taken as it is.
        let text = mpm_section(&opts(&["start-server", "--mpm", "prefork", "--max-clients", "33", "a.wsgi"]));
        assert!(text.lines().any(|l| l == "MaxRequestWorkers 33"), "{text}");
    }

    #[test]
    fn spare_worker_fractions_size_the_children_as_the_original() {
        // 4 x 10: 5 children of 17 threads; 0.6 of 5 children start, 0.4 and 1.0 of them idle.
        let o = opts(&[
            "start-server",
            "--processes",
            "4",
            "--threads",
            "10",
            "--initial-workers",
            "0.6",
            "--minimum-spare-workers",
            "0.4",
            "--maximum-spare-workers",
            "1",
            "a.wsgi",
        ]);
        let text = mpm_section(&o);
        for want in ["StartServers 3", "MinSpareThreads 34", "MaxSpareThreads 85"] {
            assert!(text.lines().any(|l| l == want), "missing {want:?} in\n{text}");
        }
        // Prefork, 20 clients: the minimum follows --initial-workers when not given.
        let text =
            mpm_section(&opts(&["start-server", "--server-mpm", "prefork", "--initial-workers", "0.5", "--maximum-spare-workers", "1.0", "a.wsgi"]));
        for want in ["StartServers 10", "MinSpareServers 10", "MaxSpareServers 20"] {
            assert!(text.lines().any(|l| l == want), "missing {want:?} in\n{text}");
        }
    }
}
