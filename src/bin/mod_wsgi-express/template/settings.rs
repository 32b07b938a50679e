//! The server's own settings in `httpd.conf`: the account of its children, the logs, the MIME
//! types, and the timeouts and limits of connections and requests.

use super::Site;
use crate::cli::{Flag, ServerOptions};
use crate::conf_syntax::{quote, quote_path};

/// The server's own settings: the account, logs, MIME types, timeouts and limits.
pub(super) fn settings_section(site: &Site) -> Result<String, String> {
    let o = site.opts;
    let mut text = String::new();
    if let Some((user, group)) = site.run_as {
        text.push_str(&format!("User {}\nGroup {}\n", quote(user)?, quote(group)?));
    }
    text.push_str(&crate::logs::directives(o, site.server_root)?);
    if let Some(types) = site.mime_types {
        text.push_str(&format!("TypesConfig {}\n", quote_path(types)?));
    }
    text.push_str(&format!("Timeout {}\nListenBacklog {}\n", o.number("socket-timeout"), o.number("server-backlog")));
    match o.number("keep-alive-timeout") {
        0 => text.push_str("KeepAlive Off\n"),
        seconds => text.push_str(&format!("KeepAlive On\nKeepAliveTimeout {seconds}\n")),
    }
    text.push_str(&format!("LimitRequestBody {}\n", o.number("limit-request-body")));
    let timeouts: Vec<String> = ["header", "body"].into_iter().filter_map(|part| read_timeout(o, part)).collect();
    if !timeouts.is_empty() {
        text.push_str(&format!("RequestReadTimeout {}\n", timeouts.join(" ")));
    }
    if o.flag(Flag::Http2) {
        text.push_str("Protocols h2 h2c http/1.1\n");
    }
    if o.flag(Flag::EnableSendfile) {
        text.push_str("EnableSendfile On\n");
    }
    Ok(text)
}

/// mod_reqtimeout's `header=` or `body=` word from `--header-timeout` and its friends, as the
/// original builds it: none for a timeout of 0 (mod_reqtimeout's own default then applies).
fn read_timeout(o: &ServerOptions, part: &str) -> Option<String> {
    let timeout = o.number(&format!("{part}-timeout"));
    if timeout == 0 {
        return None;
    }
    let mut word = format!("{part}={timeout}");
    match o.number(&format!("{part}-max-timeout")) {
        0 => {}
        max => word.push_str(&format!("-{max}")),
    }
    match o.number(&format!("{part}-min-rate")) {
        0 => {}
        rate => word.push_str(&format!(",MinRate={rate}")),
    }
    Some(word)
}
