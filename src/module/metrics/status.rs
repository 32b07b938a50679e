//! `SetHandler wsgi-status`: the status board (`board.rs`) as a page a person reads, or with
//! `?format=prometheus` as Prometheus's text exposition, scraped without an exporter. Like
//! mod_status it exists only where the administrator puts the handler (and protects its
//! `<Location>`): nothing answers for it otherwise.

use super::board::{self, Process, BOUNDS};
use super::super::apache;
use super::super::request::RequestRec;
use std::fmt::Write;

/// The handler's name.
pub const HANDLER: &str = "wsgi-status";

/// Answers a request for the status page.
pub fn handle(r: &mut RequestRec) -> i32 {
    if !matches!(r.method(), b"GET" | b"HEAD") {
        return apache::HTTP_METHOD_NOT_ALLOWED as i32;
    }
    let Some(processes) = board::read() else {
        super::super::log::request(super::super::log::ERR, r.as_ptr(), "wsgi-status: this process has no status board (it could not be mapped at start; see the warning there)");
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

/// Prometheus's text exposition (format 0.0.4): one series per process and group.
pub fn prometheus_text(processes: &[Process]) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, lines: &mut dyn FnMut(&mut String)| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        lines(&mut out);
    };
    let labels = |p: &Process, pg: &str, g: &str| format!("process=\"{}\",process_group=\"{}\",group=\"{}\"", p.pid, label(pg), label(g));
    family("mod_wsgi_process_start_time_seconds", "gauge", "When the Apache child started, in seconds since the epoch.", &mut |out| {
        for p in processes {
            let _ = writeln!(out, "mod_wsgi_process_start_time_seconds{{process=\"{}\"}} {}", p.pid, p.started);
        }
    });
    family("mod_wsgi_requests_total", "counter", "Requests handled, by status class.", &mut |out| {
        for p in processes {
            for row in &p.rows {
                for (i, n) in row.statuses.iter().enumerate() {
                    let _ = writeln!(out, "mod_wsgi_requests_total{{{},status=\"{}xx\"}} {n}", labels(p, &row.process_group, &row.group), i + 1);
                }
            }
        }
    });
    family("mod_wsgi_requests_active", "gauge", "Requests running now.", &mut |out| {
        for p in processes {
            for row in &p.rows {
                let _ = writeln!(out, "mod_wsgi_requests_active{{{}}} {}", labels(p, &row.process_group, &row.group), row.active);
            }
        }
    });
    family("mod_wsgi_request_duration_seconds", "histogram", "Time from the handler's start to the end of the response.", &mut |out| {
        for p in processes {
            for row in &p.rows {
                let l = labels(p, &row.process_group, &row.group);
                for (bound, n) in BOUNDS.iter().zip(row.buckets) {
                    let _ = writeln!(out, "mod_wsgi_request_duration_seconds_bucket{{{l},le=\"{bound}\"}} {n}");
                }
                let _ = writeln!(out, "mod_wsgi_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} {}", row.requests);
                let _ = writeln!(out, "mod_wsgi_request_duration_seconds_sum{{{l}}} {}", row.duration);
                let _ = writeln!(out, "mod_wsgi_request_duration_seconds_count{{{l}}} {}", row.requests);
            }
        }
    });
    family(
        "mod_wsgi_python_wait_seconds_total",
        "counter",
        "Time requests waited for Python: for a slot of the GIL scheduler and for the GIL (embedded mode; a daemon's own wait is not included).",
        &mut |out| {
            for p in processes {
                for row in &p.rows {
                    let _ = writeln!(out, "mod_wsgi_python_wait_seconds_total{{{}}} {}", labels(p, &row.process_group, &row.group), row.wait);
                }
            }
        },
    );
    out
}

/// The page a person reads: one table row per process and group.
pub fn html(processes: &[Process]) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html><head><title>mod_wsgi status</title>\
         <style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:right}td.n{text-align:left}</style></head><body>\n\
         <h1>mod_wsgi status</h1>\n",
    );
    let total = processes.iter().flat_map(|p| &p.rows).fold(0u64, |n, r| n.saturating_add(r.requests));
    let active = processes.iter().flat_map(|p| &p.rows).fold(0u64, |n, r| n.saturating_add(r.active));
    let _ = writeln!(out, "<p>{} processes; {total} requests handled, {active} running. <a href=\"?format=prometheus\">Prometheus</a></p>", processes.len());
    out.push_str(
        "<table>\n<tr><th>Process</th><th class=n>Process group</th><th class=n>Application group</th><th>Requests</th>\
         <th>2xx</th><th>3xx</th><th>4xx</th><th>5xx</th><th>Running</th><th>Mean time (ms)</th><th>Mean Python wait (ms)</th></tr>\n",
    );
    for p in processes {
        for row in &p.rows {
            let mean = |total: f64| if row.requests > 0 { total * 1000.0 / row.requests as f64 } else { 0.0 };
            let process_group = if row.process_group.is_empty() { "(embedded)".to_string() } else { html_escape(&row.process_group) };
            let group = if row.group.is_empty() { "%{GLOBAL}".to_string() } else { html_escape(&row.group) };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=n>{process_group}</td><td class=n>{group}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td></tr>",
                p.pid, row.requests, row.statuses[1], row.statuses[2], row.statuses[3], row.statuses[4], row.active, mean(row.duration), mean(row.wait)
            );
        }
    }
    out.push_str("</table>\n</body></html>\n");
    out
}
