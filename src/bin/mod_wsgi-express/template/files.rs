//! What `httpd.conf` lets Apache serve from the file system: nothing by default, then the
//! document root, the `--url-alias`es and the error documents.

use super::Site;
use crate::conf_syntax::{quote, quote_path};
use crate::docroot;

/// What may be served from the file system: nothing by default, the document root, the
/// `--url-alias`es, and the error documents.
pub(super) fn files_section(site: &Site) -> Result<String, String> {
    let o = site.opts;
    let mut text = String::from("<Directory />\n    AllowOverride None\n    Require all denied\n</Directory>\n");
    // .htaccess and .htpasswd files of the document root (and of the aliased directories) are
    // never served.
    text.push_str("<Files \".ht*\">\n    Require all denied\n</Files>\n");
    if o.serves_document_root() {
        text.push_str(&docroot::directives(o, site.document_root)?);
    } else {
        // The empty document root is granted, as the original does: Apache maps PATH_INFO into it
        // for PATH_TRANSLATED, and a denial there would log an error on every such request.
        text.push_str(&format!("DocumentRoot {}\n", quote_path(site.document_root)?));
        text.push_str(&format!("<Directory {}>\n    Require all granted\n</Directory>\n", quote_path(site.document_root)?));
    }
    for alias in &o.url_aliases {
        text.push_str(&format!("Alias {} {}\n", quote(&alias.url)?, quote_path(&alias.path)?));
        // A single file is granted by name; granting its whole directory would expose neighbours.
        match (alias.is_file, alias.path.parent(), alias.path.file_name().and_then(|n| n.to_str())) {
            (true, Some(dir), Some(name)) => text.push_str(&format!(
                "<Directory {}>\n    <Files {}>\n        Require all granted\n    </Files>\n</Directory>\n",
                quote_path(dir)?,
                quote(name)?
            )),
            _ => text.push_str(&format!(
                "<Directory {}>\n    AllowOverride {}\n    Require all granted\n</Directory>\n",
                quote_path(&alias.path)?,
                o.docroot.allow_override()
            )),
        }
    }
    text.push_str(&docroot::error_documents(o)?);
    Ok(text)
}

#[cfg(test)]
mod tests {
    use crate::template::tests::{conf, opts};

    #[test]
    fn file_alias_is_granted_by_name_only() {
        let mut o = opts(&["start-server", "--url-alias", "/robots.txt", "/srv/www/robots.txt", "/srv/app.wsgi"]);
        o.url_aliases[0].is_file = true;
        let text = conf(&o, None);
        assert!(text.contains("<Directory \"/srv/www\">\n    <Files \"robots.txt\">\n        Require all granted"), "{text}");
    }
}
