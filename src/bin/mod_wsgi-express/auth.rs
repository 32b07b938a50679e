//! Access control by Python scripts, as the original's `--host-access-script`,
//! `--auth-user-script` (with `--auth-type`), `--auth-group-script` and `--auth-group`: the
//! module's `WSGIAccessScript`, `WSGIAuthUserScript` (the `wsgi` authn provider) and
//! `WSGIAuthGroupScript` (`Require wsgi-group`), on the whole site. The scripts run in Apache's
//! children, so they guard static files as well as the application.

use crate::cli::{Raw, UsageError};
use crate::conf_syntax::{quote, quote_path};
use std::path::PathBuf;

#[derive(Clone, Debug, Default)]
pub struct Auth {
    /// The scripts, made absolute by setup.
    pub host_access_script: Option<PathBuf>,
    pub user_script: Option<PathBuf>,
    /// `--auth-type Digest` (else Basic).
    pub digest: bool,
    pub group_script: Option<PathBuf>,
    pub group: String,
}

impl Auth {
    pub fn parse(raw: &Raw) -> Result<Auth, UsageError> {
        // --auth-type and --auth-group mean nothing without their scripts: the original ignores
        // them then (cli/ignored.rs says so). A group script alone is refused: it would restrict nothing.
        let kind = raw.one("auth-type").unwrap_or_default();
        let digest = match kind.to_ascii_lowercase().as_str() {
            "basic" => false,
            "digest" => true,
            _ if !raw.flag("auth-user-script") => false,
            _ => return Err(raw.error(format!("invalid --auth-type '{kind}': must be Basic or Digest"))),
        };
        raw.needs("auth-group-script", "auth-user-script")?;
        Ok(Auth {
            host_access_script: raw.path("host-access-script"),
            user_script: raw.path("auth-user-script"),
            digest,
            group_script: raw.path("auth-group-script"),
            group: raw.one("auth-group").unwrap_or_default(),
        })
    }

    /// The scripts given, with their options' names, for setup to check and make absolute.
    pub fn scripts_mut(&mut self) -> Vec<(&'static str, &mut PathBuf)> {
        let mut scripts = Vec::new();
        for (name, script) in [
            ("--host-access-script", &mut self.host_access_script),
            ("--auth-user-script", &mut self.user_script),
            ("--auth-group-script", &mut self.group_script),
        ] {
            if let Some(script) = script {
                scripts.push((name, script));
            }
        }
        scripts
    }

    /// The modules the directives need: (name, file).
    pub fn modules(&self) -> Vec<(&'static str, &'static str)> {
        if self.user_script.is_none() {
            return Vec::new();
        }
        let scheme = if self.digest { ("auth_digest", "mod_auth_digest.so") } else { ("auth_basic", "mod_auth_basic.so") };
        vec![("authn_core", "mod_authn_core.so"), scheme, ("authz_user", "mod_authz_user.so")]
    }

    /// The `<Location />` sections; `realm` is the original's `HOST:PORT`.
    pub fn directives(&self, realm: &str) -> Result<String, String> {
        let mut text = String::new();
        if let Some(script) = &self.host_access_script {
            text.push_str(&format!("<Location />\n    WSGIAccessScript {}\n</Location>\n", quote_path(script)?));
        }
        let Some(script) = &self.user_script else { return Ok(text) };
        let scheme = if self.digest { "Digest" } else { "Basic" };
        // AuthMerging And: the user must also be allowed by what came before (the <Files ".ht*">
        // denial, the <Directory> grants), which the Location would otherwise replace.
        text.push_str("<Location />\n    AuthMerging And\n");
        text.push_str(&format!("    AuthType {scheme}\n    AuthName {}\n    Auth{scheme}Provider wsgi\n", quote(realm)?));
        text.push_str(&format!("    WSGIAuthUserScript {}\n", quote_path(script)?));
        if let Some(group_script) = &self.group_script {
            text.push_str(&format!("    WSGIAuthGroupScript {}\n", quote_path(group_script)?));
        }
        text.push_str("    <RequireAll>\n        Require valid-user\n");
        if self.group_script.is_some() {
            text.push_str(&format!("        Require wsgi-group {}\n", quote(&self.group)?));
        }
        text.push_str("    </RequireAll>\n</Location>\n");
        Ok(text)
    }
}
