//! `WSGIApplicationGroup` values and their expansion into the name of an interpreter.
//!
//! Parsing happens at config time, so a bad value stops `apache2 -t` with the file and line;
//! expansion happens per request from a [`RequestFacts`], which keeps this file free of FFI and
//! lets the tests (and proptest) drive it with plain values.

/// A parsed `WSGIApplicationGroup` (or `application-group=` option) value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupSpec {
    /// `%{GLOBAL}`: the main interpreter, named by the empty string.
    Global,
    /// `%{SERVER}`: one group per virtual host (`host` or `host:port`).
    Server,
    /// `%{HOST}`: one group per Host header name (`host` or `host:port`).
    Host,
    /// `%{RESOURCE}`, also the default: one group per virtual host and mount point.
    Resource,
    /// `%{ENV:NAME}`: the value of a request variable (`SetEnv`, notes) or process variable.
    Env(String),
    /// Any other text: that group name.
    Literal(String),
}

/// What expansion needs to know about the request.
pub trait RequestFacts {
    fn server_hostname(&self) -> String;
    /// The Host header's name, if the request had one.
    fn request_hostname(&self) -> Option<String>;
    /// The port the request arrived on. Not Apache's SERVER_PORT, which (`UseCanonicalName Off`,
    /// the default) is the Host header's port: a client could then create an interpreter per
    /// port it names, and exhaust the child's memory.
    fn server_port(&self) -> u16;
    /// The mount point (SCRIPT_NAME) as Apache mapped the request: never a value a proxy header
    /// gave, or a client could choose its interpreter.
    fn script_name(&self) -> String;
    /// A request note, then a request environment variable, then a process environment variable.
    fn variable(&self, name: &str) -> Option<String>;
}

impl GroupSpec {
    /// Parses a directive argument. Only the `%{...}` forms mod_wsgi defines are accepted: an
    /// unknown one is almost always a typo, and mod_wsgi would silently use it as a literal.
    pub fn parse(value: &str) -> Result<GroupSpec, String> {
        if !value.starts_with("%{") {
            return Ok(GroupSpec::Literal(value.to_string()));
        }
        match value {
            "%{GLOBAL}" => Ok(GroupSpec::Global),
            "%{SERVER}" => Ok(GroupSpec::Server),
            "%{HOST}" => Ok(GroupSpec::Host),
            "%{RESOURCE}" => Ok(GroupSpec::Resource),
            _ => match value.strip_prefix("%{ENV:").and_then(|rest| rest.strip_suffix('}')) {
                Some(name) if !name.is_empty() && !name.contains(['{', '}']) => Ok(GroupSpec::Env(name.to_string())),
                _ => Err(format!(
                    "invalid application group '{value}': expected a name, %{{GLOBAL}}, %{{SERVER}}, %{{HOST}}, %{{RESOURCE}} or %{{ENV:variable}}"
                )),
            },
        }
    }

    /// The interpreter name for a request. `None` (no directive anywhere) means `%{RESOURCE}`.
    pub fn expand(spec: Option<&GroupSpec>, facts: &dyn RequestFacts) -> String {
        match spec.unwrap_or(&GroupSpec::Resource) {
            GroupSpec::Global => String::new(),
            GroupSpec::Server => server_name(facts),
            GroupSpec::Host => with_port(facts.request_hostname().filter(|h| !h.is_empty()).unwrap_or_else(|| facts.server_hostname()), facts),
            GroupSpec::Resource => format!("{}|{}", server_name(facts), resource_path(&facts.script_name())),
            GroupSpec::Literal(name) => name.clone(),
            GroupSpec::Env(name) => match facts.variable(name) {
                // A variable may itself name a %{...} form (not another %{ENV:}), as in mod_wsgi.
                Some(value) if value.starts_with("%{") && !value.starts_with("%{ENV:") => {
                    GroupSpec::expand(GroupSpec::parse(&value).ok().as_ref(), facts)
                }
                Some(value) => value,
                None => format!("%{{ENV:{name}}}"),
            },
        }
    }
}

/// `host`, or `host:port` when the port is not 80 or 443 (mod_wsgi's naming).
fn server_name(facts: &dyn RequestFacts) -> String {
    with_port(facts.server_hostname(), facts)
}

fn with_port(host: String, facts: &dyn RequestFacts) -> String {
    match facts.server_port() {
        80 | 443 => host,
        port => format!("{host}:{port}"),
    }
}

/// `WSGICallableObject` / `callable-object=`: a name, or `%{ENV:NAME}` (then the variable's
/// value, or `application` when it is not set), as in mod_wsgi.
pub fn expand_callable(spec: Option<&str>, facts: &dyn RequestFacts) -> String {
    match spec {
        None => "application".into(),
        Some(spec) => match spec.strip_prefix("%{ENV:").and_then(|r| r.strip_suffix('}')) {
            Some(name) => facts.variable(name).unwrap_or_else(|| "application".into()),
            None => spec.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    struct Facts {
        port: u16,
        script: &'static str,
        var: Option<&'static str>,
    }
    impl RequestFacts for Facts {
        fn server_hostname(&self) -> String {
            "example.com".into()
        }
        fn request_hostname(&self) -> Option<String> {
            Some("www.example.org".into())
        }
        fn server_port(&self) -> u16 {
            self.port
        }
        fn script_name(&self) -> String {
            self.script.into()
        }
        fn variable(&self, _: &str) -> Option<String> {
            self.var.map(String::from)
        }
    }

    #[test]
    fn expansions() {
        let f = Facts { port: 8000, script: "/App", var: Some("site-a") };
        let p = |s| GroupSpec::parse(s).unwrap();
        assert_eq!(GroupSpec::expand(None, &f), "example.com:8000|/app");
        assert_eq!(GroupSpec::expand(Some(&p("%{GLOBAL}")), &f), "");
        assert_eq!(GroupSpec::expand(Some(&p("%{SERVER}")), &f), "example.com:8000");
        assert_eq!(GroupSpec::expand(Some(&p("%{HOST}")), &f), "www.example.org:8000");
        assert_eq!(expand_callable(Some("%{ENV:APP}"), &f), "site-a");
        assert_eq!(expand_callable(None, &f), "application");
        assert_eq!(GroupSpec::expand(Some(&p("%{ENV:SITE}")), &f), "site-a");
        assert_eq!(GroupSpec::expand(Some(&p("shop")), &f), "shop");
        let f80 = Facts { port: 80, script: "", var: Some("%{GLOBAL}") };
        assert_eq!(GroupSpec::expand(None, &f80), "example.com|");
        assert_eq!(GroupSpec::expand(Some(&p("%{ENV:SITE}")), &f80), "");
        let unset = Facts { port: 443, script: "", var: None };
        assert_eq!(GroupSpec::expand(Some(&p("%{ENV:SITE}")), &unset), "%{ENV:SITE}");
    }

    #[test]
    fn bad_forms_are_refused() {
        for bad in ["%{GLOBALS}", "%{ENV:}", "%{ENV:A", "%{FOO}", "%{"] {
            assert!(GroupSpec::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn literals_expand_to_themselves(name in "[a-zA-Z0-9_.|:/-][^%]{0,30}") {
            let f = Facts { port: 80, script: "/", var: None };
            let spec = GroupSpec::parse(&name).unwrap();
            prop_assert_eq!(GroupSpec::expand(Some(&spec), &f), name);
        }

        #[test]
        fn parse_never_panics(value in "\\PC{0,30}") {
            let _ = GroupSpec::parse(&value);
        }
    }
}

/// The script part of a `%{RESOURCE}` name: lower-cased as in mod_wsgi, and with runs of `/`
/// collapsed. Apache's mapping already hands us a merged SCRIPT_NAME for `//app`; folding here
/// as well keeps the rule local: a client must not be able to create interpreters at will
/// by spelling one URL many ways.
fn resource_path(script_name: &str) -> String {
    let mut out = String::with_capacity(script_name.len());
    for c in script_name.chars().flat_map(char::to_lowercase) {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod resource_path_tests {
    #[test]
    fn slashes_collapse_and_case_folds() {
        assert_eq!(super::resource_path("//App///x"), "/app/x");
        assert_eq!(super::resource_path("/app"), "/app");
        assert_eq!(super::resource_path(""), "");
    }
}
