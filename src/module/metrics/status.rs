//! `SetHandler wsgi-status`: the status board (`board.rs`) as a page a person reads, or with
//! `?format=prometheus` as Prometheus's text exposition, scraped without an exporter. Like
//! mod_status it exists only where the administrator puts the handler (and protects its
//! `<Location>`): nothing answers for it otherwise.

use super::super::apache;
use super::super::request::RequestRec;
use super::board::{self, Process, Row, BOUNDS};
use std::fmt::Write;

/// The handler's name.
pub const HANDLER: &str = "wsgi-status";

/// Answers a request for the status page.
pub fn handle(r: &mut RequestRec) -> i32 {
    if !matches!(r.method(), b"GET" | b"HEAD") {
        return apache::HTTP_METHOD_NOT_ALLOWED as i32;
    }
    let Some(processes) = board::read() else {
        super::super::log::request(
            super::super::log::ERR,
            r.as_ptr(),
            "wsgi-status: this process has no status board (it could not be mapped at start; see the warning there)",
        );
        return apache::HTTP_SERVICE_UNAVAILABLE as i32;
    };
    let prometheus = r.args().split(|&b| b == b'&').any(|p| p == b"format=prometheus");
    let (content_type, body) = if prometheus {
        ("text/plain; version=0.0.4; charset=utf-8", prometheus_text(&processes))
    } else {
        ("text/html; charset=utf-8", html(&processes))
    };
    r.set_content_type(content_type);
    r.set_no_cache();
    if r.method() != b"HEAD" {
        r.write(body.as_bytes());
    }
    apache::OK as i32
}

/// A label value as Prometheus's text format escapes it.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn html_escape(value: &str) -> String {
    value.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A process's kind and process group, as labels and on the page.
fn kind(p: &Process) -> (&'static str, &str) {
    match &p.daemon {
        Some(name) => ("daemon", name),
        None => ("child", ""),
    }
}

/// Prometheus's text exposition (format 0.0.4): one series per process and group. Requests a
/// process's Python ran (an Apache child's embedded ones, a daemon's) are `mod_wsgi_requests_*`;
/// those an Apache child passed on to a daemon process group, by what the client got, are
/// `mod_wsgi_proxied_requests_*`: a sum over the first never counts a request twice.
pub fn prometheus_text(processes: &[Process]) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, lines: &mut dyn FnMut(&mut String)| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        lines(&mut out);
    };
    let labels =
        |p: &Process, row: &Row| format!("process=\"{}\",process_group=\"{}\",group=\"{}\"", p.pid, label(&row.process_group), label(&row.group));
    // The rows of one kind: run here (false) or passed on (true).
    let rows = |proxied: bool| processes.iter().flat_map(move |p| p.rows.iter().filter(move |r| r.proxied(p) == proxied).map(move |r| (p, r)));
    family("mod_wsgi_process_start_time_seconds", "gauge", "When the process started, in seconds since the epoch.", &mut |out| {
        for p in processes {
            let (kind, process_group) = kind(p);
            let _ = writeln!(
                out,
                "mod_wsgi_process_start_time_seconds{{process=\"{}\",kind=\"{kind}\",process_group=\"{}\"}} {}",
                p.pid,
                label(process_group),
                p.started
            );
        }
    });
    for (prefix, proxied, what) in
        [("mod_wsgi", false, "run by this process's Python"), ("mod_wsgi_proxied", true, "this Apache child passed to a daemon process group")]
    {
        family(&format!("{prefix}_requests_total"), "counter", &format!("Requests {what}, by status class."), &mut |out| {
            for (p, row) in rows(proxied) {
                for (i, n) in row.statuses.iter().enumerate() {
                    let _ = writeln!(out, "{prefix}_requests_total{{{},status=\"{}xx\"}} {n}", labels(p, row), i + 1);
                }
            }
        });
        family(&format!("{prefix}_requests_active"), "gauge", &format!("Requests {what}, running now."), &mut |out| {
            for (p, row) in rows(proxied) {
                let _ = writeln!(out, "{prefix}_requests_active{{{}}} {}", labels(p, row), row.active);
            }
        });
        let name = format!("{prefix}_request_duration_seconds");
        family(&name, "histogram", &format!("Time of requests {what}, from the start of the handler to the end of the response."), &mut |out| {
            for (p, row) in rows(proxied) {
                let l = labels(p, row);
                for (bound, n) in BOUNDS.iter().zip(row.buckets) {
                    let _ = writeln!(out, "{name}_bucket{{{l},le=\"{bound}\"}} {n}");
                }
                let _ = writeln!(out, "{name}_bucket{{{l},le=\"+Inf\"}} {}", row.requests);
                let _ = writeln!(out, "{name}_sum{{{l}}} {}", row.duration);
                let _ = writeln!(out, "{name}_count{{{l}}} {}", row.requests);
            }
        });
    }
    family(
        "mod_wsgi_python_wait_seconds_total",
        "counter",
        "Time requests waited for Python: for a slot of the GIL scheduler and for the GIL.",
        &mut |out| {
            for (p, row) in rows(false) {
                let _ = writeln!(out, "mod_wsgi_python_wait_seconds_total{{{}}} {}", labels(p, row), row.wait);
            }
        },
    );
    family(
        "mod_wsgi_thread_states",
        "gauge",
        "Python thread states of the group's interpreter (one per thread that ran a request of it), as of its last request.",
        &mut |out| {
            for (p, row) in rows(false) {
                let _ = writeln!(out, "mod_wsgi_thread_states{{{}}} {}", labels(p, row), row.thread_states);
            }
        },
    );
    family(
        "mod_wsgi_python_objects",
        "gauge",
        "Objects tracked by the group interpreter's garbage collector, sampled at most every 10 s (Python 3.9 and later, where the collector is per interpreter).",
        &mut |out| {
            for (p, row) in rows(false) {
                if let Some(objects) = row.objects {
                    let _ = writeln!(out, "mod_wsgi_python_objects{{{}}} {objects}", labels(p, row));
                }
            }
        },
    );
    out
}

/// The page a person reads: the processes, then a table row per process and group for the
/// requests run, and one for those passed on to daemons.
pub fn html(processes: &[Process]) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html><head><title>mod_wsgi status</title>\
         <style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:right}td.n,th.n{text-align:left}</style></head><body>\n\
         <h1>mod_wsgi status</h1>\n",
    );
    let run = || processes.iter().flat_map(|p| p.rows.iter().filter(move |r| !r.proxied(p)));
    let total = run().fold(0u64, |n, r| n.saturating_add(r.requests));
    let active = run().fold(0u64, |n, r| n.saturating_add(r.active));
    let now = super::epoch_now() as u64;
    let _ =
        writeln!(out, "<p>{} processes; {total} requests run, {active} running. <a href=\"?format=prometheus\">Prometheus</a></p>", processes.len());
    out.push_str("<h2>Processes</h2>\n<table>\n<tr><th>Process</th><th class=n>Kind</th><th class=n>Daemon process group</th><th>Up (s)</th><th>Requests run</th></tr>\n");
    for p in processes {
        let (kind, process_group) = kind(p);
        let requests = p.rows.iter().filter(|r| !r.proxied(p)).fold(0u64, |n, r| n.saturating_add(r.requests));
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=n>{kind}</td><td class=n>{}</td><td>{}</td><td>{requests}</td></tr>",
            p.pid,
            html_escape(process_group),
            now.saturating_sub(p.started)
        );
    }
    out.push_str("</table>\n");
    let names = |row: &Row| {
        let process_group = if row.process_group.is_empty() { "(embedded)".to_string() } else { html_escape(&row.process_group) };
        let group = if row.group.is_empty() { "%{GLOBAL}".to_string() } else { html_escape(&row.group) };
        (process_group, group)
    };
    let mean = |row: &Row, total: f64| if row.requests > 0 { total * 1000.0 / row.requests as f64 } else { 0.0 };
    out.push_str(
        "<h2>Requests run</h2>\n<table>\n<tr><th>Process</th><th class=n>Process group</th><th class=n>Application group</th><th>Requests</th>\
         <th>2xx</th><th>3xx</th><th>4xx</th><th>5xx</th><th>Running</th><th>Mean time (ms)</th><th>Mean Python wait (ms)</th>\
         <th>Thread states</th><th>Python objects</th></tr>\n",
    );
    for p in processes {
        for row in p.rows.iter().filter(|r| !r.proxied(p)) {
            let (process_group, group) = names(row);
            let objects = row.objects.map_or("-".to_string(), |n| n.to_string());
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=n>{process_group}</td><td class=n>{group}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td><td>{objects}</td></tr>",
                p.pid, row.requests, row.statuses[1], row.statuses[2], row.statuses[3], row.statuses[4], row.active, mean(row, row.duration), mean(row, row.wait), row.thread_states
            );
        }
    }
    out.push_str("</table>\n");
    if processes.iter().any(|p| p.rows.iter().any(|r| r.proxied(p))) {
        out.push_str(
            "<h2>Requests passed to daemon process groups</h2>\n<table>\n<tr><th>Apache child</th><th class=n>Process group</th><th class=n>Application group</th>\
             <th>Requests</th><th>2xx</th><th>3xx</th><th>4xx</th><th>5xx</th><th>Running</th><th>Mean time (ms)</th></tr>\n",
        );
        for p in processes {
            for row in p.rows.iter().filter(|r| r.proxied(p)) {
                let (process_group, group) = names(row);
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td class=n>{process_group}</td><td class=n>{group}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td></tr>",
                    p.pid, row.requests, row.statuses[1], row.statuses[2], row.statuses[3], row.statuses[4], row.active, mean(row, row.duration)
                );
            }
        }
        out.push_str("</table>\n");
    }
    out.push_str("</body></html>\n");
    out
}
