//! Side-by-side comparisons of this module with a reference mod_wsgi (see `reference.rs`): the
//! same requests ([`Case`]) to both servers, and the answers reduced to what must agree
//! ([`summary`], [`differences`]).

use super::*;

/// One request of a side-by-side comparison: method, path, headers, body.
pub type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a [u8]);

/// What two servers' answers are compared on: the status, the `headers` named (lower-cased,
/// sorted; framing headers are left out, since a list body gets a Content-Length from us where
/// mod_wsgi chunks), and the body, except for statuses where `error_page` holds (each
/// server's own error page). This server's port and directory are written generically.
pub fn summary(apache: &Apache, r: &Response, headers: &[&str], error_page: impl Fn(u16) -> bool) -> String {
    let mut kept: Vec<String> = r
        .headers
        .iter()
        .filter(|(k, _)| headers.contains(&k.to_ascii_lowercase().as_str()))
        .map(|(k, v)| format!("{}: {v}", k.to_ascii_lowercase()))
        .collect();
    kept.sort();
    let body = if error_page(r.status) { "<error page>".to_string() } else { r.text() };
    format!("{} [{}] {}", r.status, kept.join(", "), body)
        .replace(&apache.port.to_string(), "PORT")
        .replace(&apache.dir.path().display().to_string(), "{dir}")
}

/// The `cases` whose summaries (see [`summary`]) differ between `ours` and `theirs`, each
/// described with both answers.
pub fn differences(ours: &Apache, theirs: &Apache, cases: &[Case], summarize: impl Fn(&Apache, &Response) -> String) -> Vec<String> {
    let mut found = Vec::new();
    for &(method, path, headers, body) in cases {
        let a = summarize(ours, &ours.request(method, path, headers, body));
        let b = summarize(theirs, &theirs.request(method, path, headers, body));
        if a != b {
            found.push(format!("{method} {path}\n  mod_wsgi-rs: {a}\n  mod_wsgi:    {b}"));
        }
    }
    found
}
