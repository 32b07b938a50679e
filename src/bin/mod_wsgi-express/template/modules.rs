//! The `LoadModule`s of `httpd.conf`: the MPM, the standard modules the options given need, and
//! ours.

use super::Site;
use crate::cli::{App, Flag, List, Mpm};
use crate::conf_syntax::quote_path;

/// The standard modules the configuration needs: (name, file).
fn standard_modules(site: &Site) -> Vec<(&'static str, &'static str)> {
    let o = site.opts;
    let mut modules = vec![("authz_core", "mod_authz_core.so"), ("mime", "mod_mime.so"), ("reqtimeout", "mod_reqtimeout.so")];
    let has_app = !matches!(o.app, App::Static(_));
    let www = o.server_name_given && o.server_name.to_ascii_lowercase().starts_with("www.");
    let tls = o.tls.as_ref();
    let wanted = [
        (!o.url_aliases.is_empty() || www, ("alias", "mod_alias.so")),
        (o.access_log, ("log_config", "mod_log_config.so")),
        (!o.setenv.is_empty() || !o.list(List::PassEnv).is_empty(), ("env", "mod_env.so")),
        (o.compress_responses, ("filter", "mod_filter.so")),
        (o.compress_responses, ("deflate", "mod_deflate.so")),
        (site.run_as.is_some(), ("unixd", "mod_unixd.so")),
        (
            o.serves_document_root() && has_app || o.docroot.rewrite_rules.is_some() || tls.is_some_and(|t| t.https_only),
            ("rewrite", "mod_rewrite.so"),
        ),
        (o.serves_document_root(), ("dir", "mod_dir.so")),
        (o.docroot.listing, ("autoindex", "mod_autoindex.so")),
        (o.flag(Flag::ServerStatus) || o.flag(Flag::AllowLocalhost), ("authz_host", "mod_authz_host.so")),
        (o.flag(Flag::ServerStatus) || o.flag(Flag::ServerMetrics), ("status", "mod_status.so")),
        (tls.is_some(), ("ssl", "mod_ssl.so")),
        (tls.is_some_and(|t| t.hsts_policy.is_some()), ("headers", "mod_headers.so")),
        (o.flag(Flag::Http2), ("http2", "mod_http2.so")),
        (o.docroot.with_cgi && o.mpm != Mpm::Prefork, ("cgid", "mod_cgid.so")),
        (o.docroot.with_cgi && o.mpm == Mpm::Prefork, ("cgi", "mod_cgi.so")),
    ];
    modules.extend(wanted.into_iter().filter(|(wanted, _)| *wanted).map(|(_, module)| module));
    modules.extend(o.auth.modules());
    modules
}

/// `LoadModule`s: the MPM, the standard modules, ours.
pub(super) fn modules_section(site: &Site) -> Result<String, String> {
    let module = |file: &str| quote_path(&site.libexec.join(file));
    // The MPM is never built into Debian's apache2, so it is loaded unconditionally; the other
    // modules may be built in elsewhere, hence the guards.
    let mpm = site.opts.mpm.name();
    let mut text = format!("LoadModule mpm_{mpm}_module {}\n", module(&format!("mod_mpm_{mpm}.so"))?);
    for (name, file) in standard_modules(site) {
        text.push_str(&format!("<IfModule !{name}_module>\n    LoadModule {name}_module {}\n</IfModule>\n", module(file)?));
    }
    text.push_str(&format!("LoadModule wsgi_module {}\n", quote_path(site.module)?));
    Ok(text)
}
