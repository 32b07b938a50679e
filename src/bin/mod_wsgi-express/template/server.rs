//! The first section of `httpd.conf`: where the server lives (its root, pid file and name) and
//! where it listens. [`listen_address`] is also what `setup.rs` shows and `tls.rs` listens on.

use super::Site;
use crate::conf_syntax::{quote, quote_path};

/// `Listen` address: IPv6 literals need brackets before the port.
pub fn listen_address(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Where the server lives and listens.
pub(super) fn server_section(site: &Site) -> Result<String, String> {
    let (o, root) = (site.opts, site.server_root);
    let mut text = format!("ServerRoot {}\nDefaultRuntimeDir {}\n", quote_path(root)?, quote_path(root)?);
    text.push_str(&format!("PidFile {}\n", quote_path(&crate::logs::pid_file(o, root))?));
    text.push_str(&format!("ServerName {}\n", quote(&o.server_name)?));
    // As the original: no version in the Server header, no signature on Apache's own pages.
    text.push_str("ServerTokens ProductOnly\nServerSignature Off\n");
    text.push_str(&format!("Listen {}\n", quote(&listen_address(&o.host, o.port))?));
    Ok(text)
}
