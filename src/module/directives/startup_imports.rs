//! The scripts each process imports when it starts, as directives add them to the list in
//! `src/module/imports.rs`: `WSGIImportScript`, and the entry a `WSGIScriptAlias` or
//! `WSGIScriptAliasMatch` makes when it names both groups literally (mod_wsgi's preloading).
//! A named daemon group must pass `daemon_mode`'s checks first.

use super::*;

/// The import-list entry a `WSGIScriptAlias`/`WSGIScriptAliasMatch` makes, as mod_wsgi's
/// `wsgi_set_script_alias`: when it names both `process-group=` and `application-group=`
/// without `%{...}` (other than `%{GLOBAL}`), and (for `WSGIScriptAliasMatch`) a target
/// without `$` substitutions, each process of that group loads the script when it starts.
/// A target that is a directory (a directory of scripts) has no one script to load (mod_wsgi
/// would fail to import it at every start). `None`: nothing to preload.
pub fn preload_entry(target: &str, options: &AppOptions, is_match: bool) -> Option<ImportScript> {
    let literal = |spec: &Option<GroupSpec>| match spec {
        Some(GroupSpec::Global) => Some(String::new()),
        Some(GroupSpec::Literal(name)) if !name.contains("%{") => Some(name.clone()),
        _ => None,
    };
    let (process_group, application_group) = (literal(&options.process_group)?, literal(&options.group)?);
    if (is_match && target.contains('$')) || target.ends_with('/') || Path::new(target).is_dir() {
        return None;
    }
    Some(ImportScript { script: target.to_string(), process_group, application_group, replicas: options.replicas })
}

/// Adds the alias's script to the import list (see [`preload_entry`]); a named daemon group
/// must be defined above and reachable from here, with mod_wsgi's errors.
pub(super) fn preload(d: &mut Directive, target: &str, options: &AppOptions, is_match: bool) -> Result<(), String> {
    let Some(entry) = preload_entry(target, options, is_match) else { return Ok(()) };
    if !entry.process_group.is_empty() {
        // SAFETY: cmd is the live cmd_parms of this directive call.
        check_daemon_group_reachable(&entry.process_group, unsafe { (*d.cmd).server })?;
    }
    imports::push(entry);
    Ok(())
}

/// Also in a virtual host, as mod_wsgi: the list is one for the whole configuration.
pub(super) unsafe extern "C" fn import_script(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        let entry = parse_import_script(&d.arg)?;
        if !entry.process_group.is_empty() {
            // SAFETY: cmd is the live cmd_parms of this directive call.
            check_daemon_group_reachable(&entry.process_group, unsafe { (*d.cmd).server })?;
        }
        imports::push(entry);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_aliases_that_preload() {
        let entry = |kind: &str, line: &str| {
            let (_, target, options) = parse_alias_words(kind, line).unwrap();
            preload_entry(&target, &options, kind == "WSGIScriptAliasMatch")
        };
        let alias = |line| entry("WSGIScriptAlias", line);
        assert_eq!(
            alias("/a /srv/a.wsgi process-group=site application-group=%{GLOBAL}"),
            Some(ImportScript { script: "/srv/a.wsgi".into(), process_group: "site".into(), application_group: String::new(), replicas: None })
        );
        assert_eq!(
            alias("/a /srv/a.wsgi application-group=app process-group=%{GLOBAL}"),
            Some(ImportScript { script: "/srv/a.wsgi".into(), process_group: String::new(), application_group: "app".into(), replicas: None })
        );
        // Both options, literal, or nothing: as mod_wsgi.
        assert_eq!(alias("/a /srv/a.wsgi process-group=site"), None);
        assert_eq!(alias("/a /srv/a.wsgi application-group=%{GLOBAL}"), None);
        assert_eq!(alias("/a /srv/a.wsgi process-group=site application-group=%{RESOURCE}"), None);
        assert_eq!(alias("/a /srv/a.wsgi process-group=%{ENV:G} application-group=x"), None);
        assert_eq!(alias("/a /srv/a.wsgi process-group=site application-group=a%{SERVER}"), None);
        assert_eq!(alias("/a /srv/ process-group=site application-group=x"), None, "a directory of scripts");
        assert_eq!(alias("/a / process-group=site application-group=x"), None, "a directory of scripts");
        let matching = |line| entry("WSGIScriptAliasMatch", line);
        assert_eq!(matching("^/(\\w+) /srv/$1.wsgi process-group=site application-group=x"), None);
        assert!(matching("^/x /srv/x.wsgi process-group=site application-group=x").is_some());
    }
}
