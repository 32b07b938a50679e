//! HTTPS (`--https-port` with a certificate) and the virtual hosts the original generates: with
//! `--server-name`, a name-based host that answers its names (`--server-alias`) and a default
//! one that refuses the others (`--allow-localhost` lets this machine in), and a redirect from
//! the parent domain of a `www.` name; `--https-only` redirects HTTP to HTTPS, with an
//! optional `--hsts-policy`.
//!
//! Unlike the original, which listens for HTTPS only when `--server-name` is given too, HTTPS
//! works with the default name as well.

use crate::cli::{Flag, List, Raw, ServerOptions, UsageError};
use crate::conf_syntax::{quote, quote_path};
use crate::template::listen_address;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    pub port: u16,
    /// `SSLCertificateFile`, `SSLCertificateKeyFile`: made absolute by setup.
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub chain: Option<PathBuf>,
    /// `--ssl-ca-certificate-file`: client certificates are required (on `verify_urls`, else
    /// on the whole site).
    pub ca: Option<PathBuf>,
    pub verify_urls: Vec<String>,
    pub environment: bool,
    pub https_only: bool,
    pub hsts_policy: Option<String>,
}

/// Options refused without `--https-port`: the certificates, as the original refuses them, and
/// `--ssl-verify-client`, which the original ignores, but which would leave its URLs open
/// over HTTP. (`--https-only`, `--ssl-environment`, `--hsts-policy` are ignored without it,
/// as the original does: cli/ignored.rs says so.)
const NEED_PORT: &[&str] = &[
    "ssl-certificate-file",
    "ssl-certificate-key-file",
    "ssl-certificate",
    "ssl-certificate-chain-file",
    "ssl-ca-certificate-file",
    "ssl-verify-client",
];

impl Tls {
    /// `None` without `--https-port`; an option of HTTPS given without it is an error, as is a
    /// port without a certificate.
    pub fn parse(raw: &Raw, http_port: u16) -> Result<Option<Tls>, UsageError> {
        let Some(port) = crate::cli::port(raw, "https-port")? else {
            if let Some(name) = NEED_PORT.iter().find(|name| raw.flag(name)) {
                return Err(raw.error(format!("--{name} needs --https-port")));
            }
            return Ok(None);
        };
        if port == http_port {
            return Err(raw.error(format!("--https-port {port} is also the HTTP --port")));
        }
        let (certificate, key) = match (raw.path("ssl-certificate"), raw.path("ssl-certificate-file"), raw.path("ssl-certificate-key-file")) {
            (Some(common), None, None) => (suffixed(&common, "crt"), suffixed(&common, "key")),
            (Some(_), _, _) => return Err(raw.error("give --ssl-certificate or --ssl-certificate-file and --ssl-certificate-key-file, not both".to_string())),
            (None, Some(certificate), Some(key)) => (certificate, key),
            (None, _, _) => {
                return Err(raw.error(
                    "--https-port needs a certificate: --ssl-certificate-file and --ssl-certificate-key-file, or --ssl-certificate PATH (PATH.crt and PATH.key)".to_string(),
                ))
            }
        };
        raw.needs("ssl-verify-client", "ssl-ca-certificate-file")?;
        let verify_urls: Vec<String> = raw.all("ssl-verify-client").into_iter().map(|v| v[0].clone()).collect();
        if let Some(url) = verify_urls.iter().find(|u| !u.starts_with('/')) {
            return Err(raw.error(format!("invalid --ssl-verify-client URL '{url}': must start with '/'")));
        }
        Ok(Some(Tls {
            port,
            certificate,
            key,
            chain: raw.path("ssl-certificate-chain-file"),
            ca: raw.path("ssl-ca-certificate-file"),
            verify_urls,
            environment: raw.flag("ssl-environment"),
            https_only: raw.flag("https-only"),
            hsts_policy: raw.one("hsts-policy"),
        }))
    }

    /// The files that must exist, with their options' names, for setup to check and make
    /// absolute.
    pub fn files_mut(&mut self) -> Vec<(&'static str, &mut PathBuf)> {
        let mut files = vec![("--ssl-certificate-file", &mut self.certificate), ("--ssl-certificate-key-file", &mut self.key)];
        if let Some(chain) = &mut self.chain {
            files.push(("--ssl-certificate-chain-file", chain));
        }
        if let Some(ca) = &mut self.ca {
            files.push(("--ssl-ca-certificate-file", ca));
        }
        files
    }
}

/// `PATH.ext`, for `--ssl-certificate PATH`.
fn suffixed(common: &std::path::Path, ext: &str) -> PathBuf {
    let mut text = common.as_os_str().to_owned();
    text.push(".");
    text.push(ext);
    PathBuf::from(text)
}

/// The parent domain of a `www.` server name, which the original redirects to it.
fn parent_domain(name: &str) -> Option<&str> {
    name.get(..4).filter(|p| p.eq_ignore_ascii_case("www.")).map(|_| &name[4..]).filter(|rest| !rest.is_empty())
}

/// Everything after the main server's configuration: the HTTP virtual hosts (with
/// `--server-name`), the HTTPS listener and hosts, and client verification.
pub fn directives(o: &ServerOptions) -> Result<String, String> {
    let mut text = String::new();
    if o.server_name_given {
        text.push_str(&http_hosts(o)?);
    } else if let Some(tls) = o.tls.as_ref().filter(|t| t.https_only) {
        // No virtual hosts: the main server, which answers the HTTP port, redirects.
        text.push_str(&https_redirect(o, tls)?.join("\n"));
        text.push('\n');
    }
    if let Some(tls) = &o.tls {
        text.push_str(&https_hosts(o, tls)?);
        text.push_str(&verify_client(tls)?);
    }
    Ok(text)
}

/// A `<VirtualHost>` of `lines`.
fn host(address: &str, lines: &[String]) -> String {
    let mut text = format!("<VirtualHost {address}>\n");
    for line in lines {
        text.push_str(&format!("    {line}\n"));
    }
    text.push_str("</VirtualHost>\n");
    text
}

/// The default host of a port with `--server-name`: it refuses every request (those whose
/// host name no other host claims), or with `--allow-localhost` serves this machine's.
fn refusing_host(o: &ServerOptions, port: u16, ssl: &[String]) -> String {
    let require = if o.flag(Flag::AllowLocalhost) { "Require host localhost" } else { "Require all denied" };
    let mut lines = vec!["ServerName _wsgi_".to_string(), "<Location />".to_string(), format!("    {require}"), "</Location>".to_string()];
    lines.extend(ssl.iter().cloned());
    host(&format!("_default_:{port}"), &lines)
}

/// `ServerName` and the `ServerAlias`es of the named host.
fn names(o: &ServerOptions) -> Result<Vec<String>, String> {
    let mut lines = vec![format!("ServerName {}", quote(&o.server_name)?)];
    let aliases = o.list(List::ServerAlias);
    if !aliases.is_empty() {
        let words: Result<Vec<String>, String> = aliases.iter().map(|a| quote(a)).collect();
        lines.push(format!("ServerAlias {}", words?.join(" ")));
    }
    Ok(lines)
}

/// The HTTP hosts of `--server-name`.
fn http_hosts(o: &ServerOptions) -> Result<String, String> {
    let mut text = refusing_host(o, o.port, &[]);
    let redirect = match o.tls.as_ref().filter(|t| t.https_only) {
        Some(tls) => https_redirect(o, tls)?,
        None => Vec::new(),
    };
    text.push_str(&host(&format!("*:{}", o.port), &[names(o)?, redirect.clone()].concat()));
    if let Some(parent) = parent_domain(&o.server_name) {
        let mut lines = vec![format!("ServerName {}", quote(parent)?)];
        if redirect.is_empty() {
            lines.push(format!("Redirect permanent / {}", quote(&format!("http://{}:{}/", o.server_name, o.port))?));
        } else {
            lines.extend(redirect);
        }
        text.push_str(&host(&format!("*:{}", o.port), &lines));
    }
    Ok(text)
}

/// `--https-only`: HTTP requests are redirected to the same URL over HTTPS.
fn https_redirect(o: &ServerOptions, tls: &Tls) -> Result<Vec<String>, String> {
    Ok(vec![
        "RewriteEngine On".to_string(),
        "RewriteCond %{HTTPS} off".to_string(),
        format!("RewriteRule (.*) {} [R=302,L]", quote(&format!("https://{}:{}%{{REQUEST_URI}}", o.server_name, tls.port))?),
    ])
}

/// mod_ssl's lines of every HTTPS host.
fn ssl_lines(tls: &Tls) -> Result<Vec<String>, String> {
    let mut lines = vec![
        "SSLEngine On".to_string(),
        format!("SSLCertificateFile {}", quote_path(&tls.certificate)?),
        format!("SSLCertificateKeyFile {}", quote_path(&tls.key)?),
    ];
    if let Some(ca) = &tls.ca {
        lines.push(format!("SSLCACertificateFile {}", quote_path(ca)?));
        lines.push("SSLVerifyClient none".to_string());
    }
    if let Some(chain) = &tls.chain {
        lines.push(format!("SSLCertificateChainFile {}", quote_path(chain)?));
    }
    Ok(lines)
}

/// The HTTPS listener and its hosts: the site (with HSTS and the SSL environment as asked),
/// and with `--server-name` the refusing default and the `www.` redirect.
fn https_hosts(o: &ServerOptions, tls: &Tls) -> Result<String, String> {
    let ssl = ssl_lines(tls)?;
    let mut text = format!("Listen {} https\n", quote(&listen_address(&o.host, tls.port))?);
    if o.server_name_given {
        text.push_str(&refusing_host(o, tls.port, &ssl));
    }
    let mut site = names(o)?;
    site.extend(ssl.iter().cloned());
    if let Some(policy) = tls.hsts_policy.as_deref().filter(|_| tls.https_only) {
        site.push(format!("Header always set Strict-Transport-Security {}", quote(policy)?));
    }
    if tls.environment {
        site.push("SSLOptions +StdEnvVars".to_string());
    }
    text.push_str(&host(&format!("*:{}", tls.port), &site));
    if let Some(parent) = parent_domain(&o.server_name).filter(|_| o.server_name_given) {
        let mut lines = vec![format!("ServerName {}", quote(parent)?)];
        lines.push(format!("Redirect permanent / {}", quote(&format!("https://{}:{}/", o.server_name, tls.port))?));
        lines.extend(ssl);
        text.push_str(&host(&format!("*:{}", tls.port), &lines));
    }
    Ok(text)
}

/// `--ssl-ca-certificate-file`: HTTPS clients must present a certificate, under the
/// `--ssl-verify-client` URLs (longest first), else on the whole site.
fn verify_client(tls: &Tls) -> Result<String, String> {
    if tls.ca.is_none() {
        return Ok(String::new());
    }
    let mut urls: Vec<&str> = tls.verify_urls.iter().map(String::as_str).collect();
    if urls.is_empty() {
        urls.push("/");
    }
    urls.sort_by(|a, b| b.cmp(a));
    urls.iter().map(|url| Ok(format!("<Location {}>\n    SSLVerifyClient require\n    SSLVerifyDepth 1\n</Location>\n", quote(url)?))).collect()
}
