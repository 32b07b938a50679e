//! Parsers of the directive lines that name a script or a group followed by `key=value` options
//! (`WSGIScriptAlias`/`WSGIScriptAliasMatch`, `WSGIHandlerScript`, `WSGIDispatchScript`,
//! `WSGIApplicationGroup`, `WSGIImportScript`), with mod_wsgi's messages. Pure functions of the
//! line, unit-tested here; the handlers that store what they return are in `mod.rs` and
//! `startup_imports.rs`.

use super::*;

/// Parses `WSGIScriptAlias`-style words: URL, target, then `key=value` options.
pub fn parse_alias_words(name: &str, line: &str) -> Result<(String, String, AppOptions), String> {
    let words = split_words(line)?;
    let [url, target, rest @ ..] = words.as_slice() else {
        return Err(format!("{name} takes a URL, a script file or directory, and options; got '{line}'"));
    };
    let mut options = AppOptions::default();
    for word in rest {
        let Some((key, value)) = split_option(word) else {
            return Err(format!("{name}: invalid option '{word}', expected key=value"));
        };
        match key {
            "application-group" => options.group = Some(GroupSpec::parse(value)?),
            "callable-object" => {
                check_identifier(value)?;
                options.callable = Some(value.to_string());
            }
            "pass-authorization" => options.pass_authorization = Some(parse_on_off(name, value)?),
            "replicas" => options.replicas = Some(parse_replicas(value).map_err(|e| format!("{name}: {e}"))?),
            "process-group" if value.is_empty() => options.process_group = Some(GroupSpec::Global),
            "process-group" => options.process_group = Some(GroupSpec::parse(value).map_err(|e| format!("{name}: process-group: {e}"))?),
            _ => {
                return Err(format!(
                    "{name}: invalid option '{key}'; valid options are application-group, callable-object, pass-authorization, process-group and replicas"
                ))
            }
        }
    }
    if options.replicas.is_some() && options.group.is_none() {
        return Err(format!("{name}: replicas= needs application-group= (the replicas are of that group)"));
    }
    Ok((url.clone(), target.clone(), options))
}

/// `WSGIHandlerScript name script [process-group=...] [application-group=...]
/// [pass-authorization=On|Off]`, with mod_wsgi's messages.
pub fn parse_handler_script(line: &str) -> Result<HandlerScript, String> {
    let words = split_words(line)?;
    let (name, script, rest) = match words.as_slice() {
        [] => return Err("Name for handler script not supplied.".into()),
        [_] => return Err("Location of handler script not supplied.".into()),
        [name, script, rest @ ..] => (name.clone(), script.clone(), rest),
    };
    let mut options = AppOptions::default();
    for word in rest {
        let invalid = || "Invalid option to WSGI handler script definition.".to_string();
        let (key, value) = split_option(word).ok_or_else(invalid)?;
        match key {
            "process-group" if value.is_empty() => return Err("Invalid name for WSGI process group.".into()),
            "process-group" => options.process_group = Some(GroupSpec::parse(value).map_err(|e| format!("WSGIHandlerScript: process-group: {e}"))?),
            "application-group" if value.is_empty() => return Err("Invalid name for WSGI application group.".into()),
            "application-group" => options.group = Some(GroupSpec::parse(value)?),
            "pass-authorization" => {
                options.pass_authorization =
                    Some(parse_on_off("pass-authorization", value).map_err(|_| "Invalid value for authorization flag.".to_string())?)
            }
            _ => return Err(invalid()),
        }
    }
    Ok(HandlerScript { name, script, options: Box::new(options) })
}

/// `WSGIDispatchScript script [application-group=NAME]`, with mod_wsgi's messages.
pub fn parse_dispatch_script(line: &str) -> Result<DispatchScript, String> {
    let words = split_words(line)?;
    let [script, rest @ ..] = words.as_slice() else { return Err("Location of dispatch script not supplied.".into()) };
    let mut group = None;
    for word in rest {
        match split_option(word) {
            Some(("application-group", "")) => return Err("Invalid name for WSGI application group.".into()),
            Some(("application-group", value)) => group = Some(GroupSpec::parse(value)?),
            _ => return Err("Invalid option to WSGI dispatch script definition.".into()),
        }
    }
    Ok(DispatchScript { script: script.clone(), group })
}

/// `WSGIApplicationGroup NAME [replicas=N]`: mod_wsgi's one argument, and our `replicas=`.
/// (The directive is never allowed in `.htaccess`, so no customer sets replicas.)
pub fn parse_application_group(line: &str) -> Result<(GroupSpec, Option<u32>), String> {
    let words = split_words(line)?;
    let [name, rest @ ..] = words.as_slice() else {
        return Err("WSGIApplicationGroup takes an application group name, optionally followed by replicas=N".into());
    };
    let spec = GroupSpec::parse(name).map_err(|e| format!("WSGIApplicationGroup: {e}"))?;
    let mut replicas = None;
    for word in rest {
        match split_option(word) {
            Some(("replicas", value)) if replicas.is_none() => {
                replicas = Some(parse_replicas(value).map_err(|e| format!("WSGIApplicationGroup: {e}"))?)
            }
            _ => return Err(format!("WSGIApplicationGroup: unexpected '{word}' after the group name; the only option is replicas=N")),
        }
    }
    Ok((spec, replicas))
}

/// `WSGIImportScript path process-group=... application-group=...`: both options are required,
/// as in mod_wsgi; `%{GLOBAL}` (or an empty value) is embedded mode for the process group and
/// the main interpreter for the application group; the application group must be a name or
/// `%{GLOBAL}` (the other forms need a request to expand). Whether a named process group
/// exists is checked by the directive itself (it depends on the configuration read so far).
pub fn parse_import_script(line: &str) -> Result<ImportScript, String> {
    let words = split_words(line)?;
    let [script, options @ ..] = words.as_slice() else {
        return Err("WSGIImportScript takes a script file, process-group= and application-group=".into());
    };
    let (mut process_group, mut group) = (None, None);
    for word in options {
        match split_option(word) {
            Some(("process-group", v)) => process_group = Some(v.to_string()),
            Some(("application-group", v)) => group = Some(v.to_string()),
            _ => return Err(format!("WSGIImportScript: invalid option '{word}'; valid options are process-group and application-group")),
        }
    }
    let (Some(process_group), Some(group)) = (process_group, group) else {
        return Err("WSGIImportScript requires both process-group= and application-group=".into());
    };
    let process_group = match process_group.as_str() {
        "" | "%{GLOBAL}" => String::new(),
        name if name.contains("%{") => {
            return Err(format!("WSGIImportScript: process-group={name} needs a request to expand; use a daemon group's name or %{{GLOBAL}}"))
        }
        name => name.to_string(),
    };
    let group = match GroupSpec::parse(&group)? {
        GroupSpec::Global => String::new(),
        GroupSpec::Literal(name) => name,
        _ => return Err(format!("WSGIImportScript: application-group={group} needs a request to expand; use a name or %{{GLOBAL}}")),
    };
    Ok(ImportScript { script: script.clone(), process_group, application_group: group, replicas: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_words_and_options() {
        let (url, target, o) = parse_alias_words("WSGIScriptAlias", "/app /srv/app.wsgi application-group=%{GLOBAL} callable-object=app").unwrap();
        assert_eq!((url.as_str(), target.as_str()), ("/app", "/srv/app.wsgi"));
        assert_eq!(o.group, Some(GroupSpec::Global));
        assert_eq!(o.callable.as_deref(), Some("app"));
    }

    #[test]
    fn bad_aliases_say_why() {
        let err = |line| parse_alias_words("WSGIScriptAlias", line).unwrap_err();
        assert!(err("/app").contains("takes a URL"));
        assert!(err("/app /x.wsgi colour=blue").contains("invalid option 'colour'"));
        assert!(err("/app /x.wsgi oops").contains("expected key=value"));
        assert!(err("/app /x.wsgi callable-object=1abc").contains("Python identifier"));
        assert!(err("/app /x.wsgi application-group=%{NOPE}").contains("invalid application group"));
        assert_eq!(
            parse_alias_words("WSGIScriptAlias", "/a /x.wsgi process-group=site1").unwrap().2.process_group,
            Some(GroupSpec::Literal("site1".into()))
        );
        assert_eq!(parse_alias_words("WSGIScriptAlias", "/a /x.wsgi process-group=%{GLOBAL}").unwrap().2.process_group, Some(GroupSpec::Global));
    }

    #[test]
    fn import_script() {
        assert_eq!(
            parse_import_script("/srv/a.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL}"),
            Ok(ImportScript { script: "/srv/a.wsgi".into(), process_group: String::new(), application_group: String::new(), replicas: None })
        );
        assert_eq!(parse_import_script("/a.wsgi application-group=site process-group=").unwrap().application_group, "site");
        assert!(parse_import_script("/a.wsgi application-group=x").unwrap_err().contains("requires both"));
        assert_eq!(parse_import_script("/a.wsgi process-group=d application-group=x").unwrap().process_group, "d");
        assert!(parse_import_script("/a.wsgi process-group=%{SERVER} application-group=x").unwrap_err().contains("needs a request"));
        assert!(parse_import_script("/a.wsgi process-group= application-group=%{RESOURCE}").unwrap_err().contains("needs a request"));
    }
}
