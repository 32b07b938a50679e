//! Per-request directives of `httpd.conf`: the WSGI switches, trusted proxies, the environment,
//! compression, access control and the status page.

use super::Site;
use crate::cli::{Flag, List};
use crate::conf_syntax::quote;

/// Per-request directives: the WSGI switches, proxies, environment, compression, access
/// control, status.
pub(super) fn requests_section(site: &Site) -> Result<String, String> {
    let o = site.opts;
    let mut text = String::new();
    let switches = [
        (Flag::ChunkedRequest, "WSGIChunkedRequest On"),
        (Flag::ErrorOverride, "WSGIErrorOverride On"),
        (Flag::EnableSendfile, "WSGIEnableSendfile On"),
    ];
    for (flag, line) in switches {
        if o.flag(flag) {
            text.push_str(line);
            text.push('\n');
        }
    }
    for (option, directive) in [(List::TrustProxyHeader, "WSGITrustedProxyHeaders"), (List::TrustProxy, "WSGITrustedProxies")] {
        let values = o.list(option);
        if !values.is_empty() {
            let words: Result<Vec<String>, String> = values.iter().map(|v| quote(v)).collect();
            text.push_str(&format!("{directive} {}\n", words?.join(" ")));
        }
    }
    for url in o.list(List::IgnoreActivity) {
        text.push_str(&format!("<Location {}>\n    WSGIIgnoreActivity On\n</Location>\n", quote(url)?));
    }
    for (key, value) in &o.setenv {
        text.push_str(&format!("SetEnv {} {}\n", quote(key)?, quote(value)?));
    }
    for name in o.list(List::PassEnv) {
        text.push_str(&format!("PassEnv {}\n", quote(name)?));
    }
    if o.compress_responses {
        text.push_str(&format!("AddOutputFilterByType DEFLATE {}\n", COMPRESSED_TYPES.join(" ")));
    }
    text.push_str(&o.auth.directives(&format!("{}:{}", crate::daemon::host_label(o), o.port))?);
    if o.flag(Flag::ServerStatus) {
        text.push_str("<Location /server-status>\n    SetHandler server-status\n    Require all denied\n    Require host localhost\n</Location>\n");
    }
    Ok(text)
}

/// What `--compress-responses` compresses: text, as the original's list.
const COMPRESSED_TYPES: &[&str] = &[
    "text/plain",
    "text/html",
    "text/xml",
    "text/css",
    "application/xml",
    "application/xhtml+xml",
    "application/rss+xml",
    "application/javascript",
    "application/x-javascript",
    "application/json",
];
