//! The document root, as the original mod_wsgi-express serves it: static files are served
//! from it, and every URL under the mount point that is not a file there goes to the
//! application (a mod_rewrite rule hands such requests to the generated `handler.wsgi`
//! through `WSGIHandlerScript wsgi-handler`). Also what only makes sense for files:
//! `--directory-index`, `--directory-listing`, `--allow-override`, `--rewrite-rules`,
//! `--add-handler`, `--with-cgi`, and the site's `--error-document`s.

use crate::cli::{App, Flag, Raw, ServerOptions, UsageError};
use crate::conf_syntax::{check_text, quote, quote_path, utf8};
use std::path::{Path, PathBuf};

/// The handler name the rewrite rule gives requests for the application, as the original's.
pub const APP_HANDLER: &str = "wsgi-handler";
/// The handler name of `--add-handler` extensions, as the original's.
pub const RESOURCE_HANDLER: &str = "wsgi-resource";

#[derive(Clone, Debug, Default)]
pub struct DocRoot {
    /// `--document-root`, made absolute by setup.
    pub dir: Option<PathBuf>,
    pub index: Option<String>,
    pub listing: bool,
    pub allow_override: Vec<String>,
    pub rewrite_rules: Option<PathBuf>,
    /// `--error-document STATUS URL`: (status, document), in order.
    pub error_documents: Vec<(String, String)>,
    /// `--add-handler EXTENSION SCRIPT`; the scripts are made absolute by setup.
    pub handlers: Vec<(String, PathBuf)>,
    pub with_cgi: bool,
}

impl DocRoot {
    pub fn parse(raw: &Raw) -> Result<DocRoot, UsageError> {
        let mut allow_override = Vec::new();
        for v in raw.all("allow-override") {
            // AllowOverride's words: All, None, AuthConfig, Options=Indexes,MultiViews...
            if v[0].is_empty() || !v[0].chars().all(|c| c.is_ascii_alphanumeric() || "=,-".contains(c)) {
                return Err(raw.error(format!("invalid --allow-override '{}'", v[0])));
            }
            allow_override.push(v[0].clone());
        }
        let mut error_documents = Vec::new();
        for v in raw.all("error-document") {
            if v[0].len() != 3 || !v[0].starts_with(['4', '5']) || !v[0].chars().all(|c| c.is_ascii_digit()) {
                return Err(raw.error(format!("invalid --error-document status '{}': must be an error status from 400 to 599", v[0])));
            }
            error_documents.push((v[0].clone(), v[1].clone()));
        }
        let mut handlers = Vec::new();
        for v in raw.all("add-handler") {
            if v[0].is_empty() || v[0].contains(|c: char| c.is_whitespace() || c == '/' || c == '"' || c == '\\') {
                return Err(raw.error(format!("invalid --add-handler extension '{}'", v[0])));
            }
            handlers.push((v[0].clone(), PathBuf::from(&v[1])));
        }
        Ok(DocRoot {
            dir: raw.path("document-root"),
            index: raw.one("directory-index"),
            listing: raw.flag("directory-listing"),
            allow_override,
            rewrite_rules: raw.path("rewrite-rules"),
            error_documents,
            handlers,
            with_cgi: raw.flag("with-cgi"),
        })
    }

    /// Whether an option asks for files to be served (from the `--document-root`, else the
    /// original's default, `htdocs` in the server root).
    pub fn is_wanted(&self) -> bool {
        self.dir.is_some() || self.index.is_some() || self.listing || self.rewrite_rules.is_some() || !self.handlers.is_empty() || self.with_cgi
    }

    /// `AllowOverride`'s words (`None` unless `--allow-override` was given).
    pub fn allow_override(&self) -> String {
        if self.allow_override.is_empty() {
            "None".to_string()
        } else {
            self.allow_override.join(" ")
        }
    }
}

/// The `DocumentRoot`, its `<Directory>`, and (with an application) the rule that hands what
/// is not a file to it.
pub fn directives(o: &ServerOptions, document_root: &Path) -> Result<String, String> {
    let d = &o.docroot;
    let mut inner = vec![format!("AllowOverride {}", d.allow_override())];
    if let Some(index) = &d.index {
        inner.push(format!("DirectoryIndex {}", quote(index)?));
    }
    if d.listing {
        inner.push("Options +Indexes".to_string());
    }
    if d.with_cgi {
        inner.push("Options +ExecCGI".to_string());
    }
    let has_app = !matches!(o.app, App::Static(_));
    if has_app || d.rewrite_rules.is_some() {
        inner.push("RewriteEngine On".to_string());
        inner.push("RewriteOptions InheritDownBefore".to_string());
    }
    if let Some(rules) = &d.rewrite_rules {
        inner.push(format!("Include {}", quote_path(rules)?));
    }
    inner.push("Require all granted".to_string());
    let mut text = format!("DocumentRoot {}\n", quote_path(document_root)?);
    text.push_str(&section(&quote_path(document_root)?, &inner));
    if has_app {
        text.push_str(&fallback(o, document_root)?);
    }
    for (extension, _) in &d.handlers {
        text.push_str(&format!("AddHandler {RESOURCE_HANDLER} {}\n", quote(extension)?));
    }
    if d.with_cgi {
        text.push_str("AddHandler cgi-script .cgi\n");
    }
    Ok(text)
}

/// The original's fallback: under the mount point, a request that is not a file (nor, with a
/// directory index, a directory) gets the application's handler.
fn fallback(o: &ServerOptions, document_root: &Path) -> Result<String, String> {
    let root = utf8(document_root)?;
    let mut rules = vec!["RewriteCond %{REQUEST_FILENAME} !-f".to_string()];
    if o.docroot.index.is_some() {
        rules.push("RewriteCond %{REQUEST_FILENAME} !-d".to_string());
    }
    if o.flag(Flag::ServerStatus) {
        rules.push("RewriteCond %{REQUEST_URI} !^/server-status$".to_string());
    }
    rules.push(format!("RewriteRule .* - [H={APP_HANDLER}]"));
    Ok(section(&quote(&format!("{root}{}", o.mount_point))?, &rules))
}

/// `<Directory PATH>` holding `lines`.
fn section(path: &str, lines: &[String]) -> String {
    let mut text = format!("<Directory {path}>\n");
    for line in lines {
        text.push_str(&format!("    {line}\n"));
    }
    text.push_str("</Directory>\n");
    text
}

/// `ErrorDocument`s. A local URL or a full one is written as it is; anything else is a
/// message, quoted (Apache takes a quoted word for a message, whatever it holds).
pub fn error_documents(o: &ServerOptions) -> Result<String, String> {
    let mut text = String::new();
    for (status, document) in &o.docroot.error_documents {
        let plain = (document.starts_with('/') || document.starts_with("http://") || document.starts_with("https://"))
            && !document.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\');
        let document = if plain { check_text(document).map(|()| document.clone())? } else { quote(document)? };
        text.push_str(&format!("ErrorDocument {status} {document}\n"));
    }
    Ok(text)
}

/// The subdirectories of the mount point in the document root, which the original creates
/// so that the fallback rule's `<Directory>` exists for Apache to apply.
pub fn mount_directory(document_root: &Path, mount_point: &str) -> PathBuf {
    mount_point.split('/').filter(|part| !part.is_empty()).fold(document_root.to_path_buf(), |dir, part| dir.join(part))
}
