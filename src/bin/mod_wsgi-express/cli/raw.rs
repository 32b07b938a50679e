//! After the subcommand, the first step of parsing: its words split into options (`--opt value`,
//! `--opt=value`), each looked up in the table of `options.rs`, and positional arguments, as
//! [`Raw`]; and the accessors through which the rest of the parser and the feature modules read
//! them.

use super::UsageError;
use crate::options::{self, Arity, OptSpec, Sub};
use std::path::PathBuf;

/// Options as given, before typing: (option, values) in command-line order, and the rest.
/// The feature modules (`tls.rs`, `docroot.rs`...) read their options from it.
#[derive(Debug)]
pub struct Raw {
    sub: Sub,
    given: Vec<(&'static OptSpec, Vec<String>)>,
    pub(super) positional: Vec<String>,
}

impl Raw {
    pub fn error(&self, message: String) -> UsageError {
        let usage = format!("{}\nTry 'mod_wsgi-express {} --help'.", options::synopsis(self.sub), self.sub.name());
        UsageError { message, usage }
    }
    /// Whether the option was given (for a switch: whether it is on).
    pub fn flag(&self, name: &str) -> bool {
        self.given.iter().any(|(o, _)| o.name == name)
    }
    /// Last value given, else the table's default.
    pub fn one(&self, name: &str) -> Option<String> {
        let given = self.given.iter().rev().find(|(o, _)| o.name == name).map(|(_, v)| v[0].clone());
        given.or_else(|| options::default_of(name).map(str::to_string))
    }
    /// [`Raw::one`] as a path.
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        self.one(name).map(PathBuf::from)
    }
    /// Every value list given to a repeatable option, in order.
    pub fn all(&self, name: &str) -> Vec<Vec<String>> {
        self.given.iter().filter(|(o, _)| o.name == name).map(|(_, v)| v.clone()).collect()
    }
    /// A number from 0 to `max`, or the usage error naming the option.
    pub fn number(&self, name: &str, max: u32) -> Result<u32, UsageError> {
        let text = self.one(name).unwrap_or_default();
        match text.parse::<u32>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(self.error(format!("invalid --{name} '{text}': must be a number from 0 to {max}"))),
        }
    }
    /// A usage error unless the option that `name` depends on was given too.
    pub fn needs(&self, name: &str, other: &str) -> Result<(), UsageError> {
        if self.flag(name) && !self.flag(other) {
            return Err(self.error(format!("--{name} needs --{other}")));
        }
        Ok(())
    }
}

/// Splits words into options (`--opt value`, `--opt=value`) and positional arguments.
pub(super) fn split(sub: Sub, words: &[String]) -> Result<Raw, UsageError> {
    let mut raw = Raw { sub, given: Vec::new(), positional: Vec::new() };
    let mut it = words.iter();
    while let Some(word) = it.next() {
        if word == "--" {
            raw.positional.extend(it.by_ref().cloned());
            break;
        }
        let Some(body) = word.strip_prefix("--") else {
            if word.starts_with('-') && word.len() > 1 && word != "-h" {
                return Err(raw.error(format!("unknown option '{word}'")));
            }
            if word == "-h" {
                raw.given.push((options::find(sub, "help").expect("help is in the table"), Vec::new()));
            } else {
                raw.positional.push(word.clone());
            }
            continue;
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(spec) = options::find(sub, name) else {
            if let Some(why) = options::unsupported(name).filter(|_| matches!(sub, Sub::StartServer | Sub::SetupServer)) {
                return Err(raw.error(format!("option '--{name}' of mod_wsgi-express is not supported by mod_wsgi-rs yet: {why}")));
            }
            return Err(raw.error(format!("unknown option '--{name}'")));
        };
        let wanted = match spec.arity {
            Arity::Flag => 0,
            Arity::One => 1,
            Arity::Two => 2,
        };
        if wanted == 0 && inline.is_some() {
            return Err(raw.error(format!("option '--{name}' takes no value")));
        }
        let mut values: Vec<String> = inline.into_iter().collect();
        while values.len() < wanted {
            match it.next() {
                Some(v) => values.push(v.clone()),
                None => return Err(raw.error(format!("option '--{name}' needs {}", spec.metavar))),
            }
        }
        raw.given.push((spec, values));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::tests::server;
    use crate::cli::App;

    #[test]
    fn both_option_forms() {
        let a = server(&["start-server", "--port", "9000", "--host=::1", "app.wsgi", "--threads=3", "--processes", "2"]);
        assert_eq!((a.port, a.host.as_str(), a.host_given, a.threads, a.processes), (9000, "::1", true, 3, 2));
        let b = server(&["start-server", "--port=9001", "--url-alias", "/s", "/srv/s", "--url-alias=/t", "/srv/t", "x"]);
        assert_eq!(b.port, 9001);
        assert_eq!(b.url_aliases.iter().map(|u| u.url.as_str()).collect::<Vec<_>>(), ["/s", "/t"]);
        let c = server(&["start-server", "--python-path", "/a", "--python-path=/b", "--setup-only", "x"]);
        assert_eq!(c.python_path, [PathBuf::from("/a"), PathBuf::from("/b")]);
        assert!(c.setup_only);
    }

    #[test]
    fn last_value_wins_and_double_dash_ends_options() {
        let o = server(&["start-server", "--port", "1", "--port", "2", "--", "--odd.wsgi"]);
        assert_eq!(o.port, 2);
        assert_eq!(o.app, App::Script(PathBuf::from("--odd.wsgi")));
    }
}
