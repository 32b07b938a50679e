//! What a daemon records of a forwarded request for telemetry (`metrics`): its phases before
//! the application started, as mod_wsgi 6.1 splits them, and its description for
//! slow-request reports, both read from the environ Apache's child sent.

use super::super::metrics;

/// Daemon mode's phases of a request until its application starts, in seconds (mod_wsgi's):
/// from Apache reading it to the child queueing it for this group ("server"), from there to
/// this process ("queue"), and from there to now ("daemon"), from the child's environ entries.
pub(super) fn daemon_phases(environ: &[(Vec<u8>, Vec<u8>)], daemon_start: u128) -> (f64, f64, f64) {
    let micros = |key: &[u8]| environ.iter().find(|(k, _)| k == key).and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse::<u128>().ok());
    let now = now_micros();
    let request = micros(b"mod_wsgi.request_start").unwrap_or(daemon_start);
    let queue = micros(b"mod_wsgi.queue_start").unwrap_or(daemon_start).clamp(request, daemon_start.max(request));
    let seconds = |from: u128, to: u128| to.saturating_sub(from) as f64 / 1e6;
    (seconds(request, queue), seconds(queue, daemon_start), seconds(daemon_start, now))
}

/// A forwarded request as telemetry's slow-request reports describe it, from its environ.
pub(super) fn describe_for_metrics(process_group: &str, group: &[u8], environ: &[(Vec<u8>, Vec<u8>)]) -> metrics::Describe {
    let get = |key: &[u8]| environ.iter().find(|(k, _)| k == key).map_or(&[][..], |(_, v)| v.as_slice());
    metrics::Describe::new([
        get(b"REQUEST_METHOD"),
        get(b"REQUEST_SCHEME"),
        get(b"HTTP_HOST"),
        get(b"SCRIPT_NAME"),
        get(b"PATH_INFO"),
        get(b"SERVER_PROTOCOL"),
        get(b"REMOTE_ADDR"),
        get(b"HTTP_USER_AGENT"),
        get(b"mod_wsgi.request_id"),
        process_group.as_bytes(),
        group,
    ])
}

/// Microseconds since the epoch, as the child's `mod_wsgi.request_start` and `queue_start`.
pub(super) fn now_micros() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0)
}
