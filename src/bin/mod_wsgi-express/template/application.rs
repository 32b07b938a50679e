//! How requests reach the application, in `httpd.conf`: `WSGIScriptAlias` to the script itself
//! (or to the generated `handler.wsgi`), or the document root's fallback to `WSGIHandlerScript`;
//! and the handler of the `--add-handler` scripts.

use super::Site;
use crate::cli::{App, ServerOptions};
use crate::conf_syntax::{check_text, quote, quote_path};
use crate::docroot;

/// The application group: `--application-group`, else the main interpreter, as the original
/// (some C extensions work in no other).
fn application_group(o: &ServerOptions) -> &str {
    o.application_group.as_deref().unwrap_or("%{GLOBAL}")
}

/// A group's name as a directive's own argument: mod_wsgi's forms (`%{GLOBAL}`,
/// `%{ENV:NAME}`...) as they are, a name quoted.
fn group_word(name: &str) -> Result<String, String> {
    if name.starts_with("%{") {
        check_text(name)?;
        Ok(name.to_string())
    } else {
        quote(name)
    }
}

/// How requests reach the application: `WSGIScriptAlias` to the script itself (or to the
/// generated `handler.wsgi`), or the document root's fallback to `WSGIHandlerScript`.
pub(super) fn application(site: &Site) -> Result<String, String> {
    let (o, root) = (site.opts, site.server_root);
    let group = application_group(o);
    let process = if o.embedded { "%{GLOBAL}".to_string() } else { crate::daemon::group_name(o) };
    // The options of WSGIHandlerScript and WSGIImportScript, each word quoted whole.
    let options = format!("{} {}", quote(&format!("process-group={process}"))?, quote(&format!("application-group={group}"))?);
    let handler = root.join("handler.wsgi");
    let mut text = format!("WSGIApplicationGroup {}\nWSGIPassAuthorization On\nWSGIMapHEADToGET {}\n", group_word(group)?, o.map_head_to_get);
    match (&o.app, o.uses_handler_script(), o.serves_document_root()) {
        (App::Script(script), false, _) => {
            text.push_str(&format!("WSGIScriptAlias {} {}\n", quote(&o.mount_point)?, quote_path(script)?));
            if o.callable_object != crate::options::default_of("callable-object").unwrap_or("application") {
                text.push_str(&format!("WSGICallableObject {}\n", quote(&o.callable_object)?));
            }
            let script_dir = script.parent().ok_or("the WSGI script has no parent directory")?;
            text.push_str(&format!("<Directory {}>\n    Require all granted\n</Directory>\n", quote_path(script_dir)?));
        }
        (_, _, false) => {
            text.push_str(&format!("WSGIScriptAlias {} {}\n", quote(&o.mount_point)?, quote_path(&handler)?));
            text.push_str(&format!(
                "<Directory {}>\n    <Files \"handler.wsgi\">\n        Require all granted\n    </Files>\n</Directory>\n",
                quote_path(root)?
            ));
        }
        (_, _, true) => {
            text.push_str(&format!("WSGIHandlerScript {} {} {options}\n", docroot::APP_HANDLER, quote_path(&handler)?));
        }
    }
    // As the original: the handler is loaded when each process starts (when the group is one
    // known before a request), so that its first request does not wait, and its change
    // monitor runs from the start.
    if o.uses_handler_script() && (group == "%{GLOBAL}" || !group.starts_with("%{")) {
        text.push_str(&format!("WSGIImportScript {} {options}\n", quote_path(&handler)?));
    }
    Ok(text)
}

/// The handler of the `--add-handler` extensions (whose `AddHandler`s are the document root's),
/// in the daemon group, or embedded in Apache's children, as the original: static sites
/// included, whose handler scripts would otherwise be served as text.
pub(super) fn resource_handler(site: &Site) -> Result<String, String> {
    let o = site.opts;
    if o.docroot.handlers.is_empty() {
        return Ok(String::new());
    }
    let process = if o.embedded { "%{GLOBAL}".to_string() } else { crate::daemon::group_name(o) };
    let resource = site.server_root.join("resource.wsgi");
    let options = format!("{} \"application-group=%{{GLOBAL}}\"", quote(&format!("process-group={process}"))?);
    Ok(format!("WSGIHandlerScript {} {} {options}\n", docroot::RESOURCE_HANDLER, quote_path(&resource)?))
}

#[cfg(test)]
mod tests {
    use crate::template::tests::{assert_lines, conf, opts, site};
    use crate::template::{httpd_conf, Site};
    use std::path::Path;

    #[test]
    fn a_document_root_serves_files_and_falls_back_to_the_application() {
        let mut o =
            opts(&["start-server", "--document-root", "/srv/www", "--mount-point", "/app", "--directory-index", "index.html", "/srv/app.wsgi"]);
        let site_root = Path::new("/srv/www");
        let text = httpd_conf(&Site { document_root: site_root, ..site(&o) }).unwrap();
        assert_lines(
            &text,
            &[
                "DocumentRoot \"/srv/www\"",
                "<Directory \"/srv/www\">",
                "DirectoryIndex \"index.html\"",
                "RewriteEngine On",
                "<Directory \"/srv/www/app\">",
                "RewriteCond %{REQUEST_FILENAME} !-f",
                "RewriteCond %{REQUEST_FILENAME} !-d",
                "RewriteRule .* - [H=wsgi-handler]",
                "WSGIHandlerScript wsgi-handler \"/tmp/root/handler.wsgi\" \"process-group=localhost:8000\" \"application-group=%{GLOBAL}\"",
                "WSGIImportScript \"/tmp/root/handler.wsgi\" \"process-group=localhost:8000\" \"application-group=%{GLOBAL}\"",
                "LoadModule rewrite_module \"/usr/lib/apache2/modules/mod_rewrite.so\"",
                "LoadModule dir_module \"/usr/lib/apache2/modules/mod_dir.so\"",
            ],
        );
        assert!(!text.contains("WSGIScriptAlias"), "{text}");
        // Embedded, the handler runs in Apache's children; --add-handler gets its own handler.
        o = opts(&["start-server", "--embedded-mode", "--add-handler", ".page", "/srv/page.py", "--application-group", "site", "/srv/app.wsgi"]);
        let text = conf(&o, None);
        assert_lines(
            &text,
            &[
                "DocumentRoot \"/tmp/root/htdocs\"",
                "<Directory \"/tmp/root/htdocs/\">",
                "WSGIHandlerScript wsgi-handler \"/tmp/root/handler.wsgi\" \"process-group=%{GLOBAL}\" \"application-group=site\"",
                "WSGIHandlerScript wsgi-resource \"/tmp/root/resource.wsgi\" \"process-group=%{GLOBAL}\" \"application-group=%{GLOBAL}\"",
                "AddHandler wsgi-resource \".page\"",
                "WSGIApplicationGroup \"site\"",
            ],
        );
    }

    #[test]
    fn a_module_is_served_through_the_generated_handler() {
        let o = opts(&["start-server", "--application-type", "module", "--callable-object", "app", "pkg.wsgi"]);
        let text = conf(&o, None);
        assert_lines(
            &text,
            &[
                "WSGIScriptAlias \"/\" \"/tmp/root/handler.wsgi\"",
                "<Directory \"/tmp/root\">",
                "<Files \"handler.wsgi\">",
                "WSGIImportScript \"/tmp/root/handler.wsgi\" \"process-group=localhost:8000\" \"application-group=%{GLOBAL}\"",
            ],
        );
        // The handler binds the callable to `application` itself.
        assert!(!text.contains("WSGICallableObject") && !text.contains("RewriteRule"), "{text}");
        // A group chosen per request cannot be preloaded.
        let text = conf(&opts(&["start-server", "--application-type", "module", "--application-group", "%{SERVER}", "pkg.wsgi"]), None);
        assert_lines(&text, &["WSGIApplicationGroup %{SERVER}"]);
        assert!(!text.contains("WSGIImportScript"), "{text}");
    }

    #[test]
    fn a_static_site_has_no_application() {
        let o = opts(&["start-server", "--application-type", "static", "--directory-listing", "/srv/www"]);
        let text = httpd_conf(&Site { document_root: Path::new("/srv/www"), ..site(&o) }).unwrap();
        assert_lines(&text, &["DocumentRoot \"/srv/www\"", "Options +Indexes", "WSGIRestrictEmbedded On", "Require all granted"]);
        for absent in ["WSGIDaemonProcess", "WSGIScriptAlias", "WSGIHandlerScript", "RewriteRule", "WSGIApplicationGroup"] {
            assert!(!text.contains(absent), "unexpected {absent:?} in\n{text}");
        }
    }

    #[test]
    fn a_static_sites_add_handler_scripts_run_in_python() {
        // Without the handler's definition, Apache would serve the scripts' source as text.
        let o = opts(&["start-server", "--application-type", "static", "--add-handler", ".page", "/srv/page.py", "/srv/www"]);
        assert!(o.runs_python() && o.daemon_mode());
        let text = httpd_conf(&Site { document_root: Path::new("/srv/www"), ..site(&o) }).unwrap();
        assert_lines(
            &text,
            &[
                "AddHandler wsgi-resource \".page\"",
                "WSGIDaemonProcess \"localhost:8000\" \\",
                "WSGIRestrictEmbedded On",
                "WSGIHandlerScript wsgi-resource \"/tmp/root/resource.wsgi\" \"process-group=localhost:8000\" \"application-group=%{GLOBAL}\"",
            ],
        );
        for absent in ["WSGIScriptAlias", "wsgi-handler", "RewriteRule"] {
            assert!(!text.contains(absent), "unexpected {absent:?} in\n{text}");
        }
        let o = opts(&["start-server", "--application-type", "static", "--embedded-mode", "--add-handler", ".page", "/srv/page.py", "/srv/www"]);
        assert!(o.runs_python() && !o.daemon_mode());
        let text = httpd_conf(&Site { document_root: Path::new("/srv/www"), ..site(&o) }).unwrap();
        assert_lines(
            &text,
            &[
                "AddHandler wsgi-resource \".page\"",
                "WSGIHandlerScript wsgi-resource \"/tmp/root/resource.wsgi\" \"process-group=%{GLOBAL}\" \"application-group=%{GLOBAL}\"",
            ],
        );
        assert!(!text.contains("WSGIRestrictEmbedded") && !text.contains("WSGIDaemonProcess"), "{text}");
    }
}
