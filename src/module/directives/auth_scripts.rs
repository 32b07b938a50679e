//! mod_wsgi's access-control directives, allowed where `AllowOverride AuthConfig` is (its
//! `OR_AUTHCFG`: `<Directory>`, `<Location>`, `<Files>` and `.htaccess`, never the server
//! level): `WSGIAccessScript`, `WSGIAuthUserScript`, `WSGIAuthGroupScript`,
//! `WSGIGroupAuthoritative`. What runs them is `src/module/auth.rs`.

use super::*;
use crate::module::config::AuthScript;

/// Which script a directive sets, with mod_wsgi's words for its messages.
#[derive(Clone, Copy)]
pub enum Kind {
    Access,
    AuthUser,
    AuthGroup,
}

impl Kind {
    /// The directive's name and the noun mod_wsgi's messages use.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Kind::Access => ("WSGIAccessScript", "access script"),
            Kind::AuthUser => ("WSGIAuthUserScript", "auth user script"),
            Kind::AuthGroup => ("WSGIAuthGroupScript", "auth group script"),
        }
    }
}

/// `script [application-group=NAME]`, with mod_wsgi's messages. In `.htaccess` (a customer's
/// file) `application-group=` is refused: which interpreter runs a customer's code is the
/// administrator's choice, or a customer could run code inside another site's interpreter;
/// the script gets an interpreter of its own there (see `auth.rs`).
pub fn parse_auth_script(kind: Kind, line: &str, from_htaccess: bool) -> Result<AuthScript, String> {
    let (directive, noun) = kind.names();
    let words = split_words(line)?;
    let Some((script, rest)) = words.split_first() else { return Err(format!("Location of {noun} not supplied.")) };
    let mut group = None;
    for word in rest {
        match split_option(word) {
            Some(("application-group", "")) => return Err("Invalid name for WSGI application group.".into()),
            Some(("application-group", _)) if from_htaccess => {
                return Err(format!(
                    "{directive}: application-group= is not allowed in .htaccess files (a script named there runs in an interpreter of its own, never in a site's); set it in the server's configuration"
                ))
            }
            Some(("application-group", value)) => group = Some(GroupSpec::parse(value)?),
            _ => return Err(format!("Invalid option to WSGI {noun} definition.")),
        }
    }
    Ok(AuthScript { script: script.clone(), group, from_htaccess })
}

/// Whether the directive being read comes from a `.htaccess` file: Apache reads those with
/// the `AllowOverride` bits only, the server's own files with `RSRC_CONF` or `ACCESS_CONF`.
fn in_htaccess(d: &Directive) -> bool {
    // SAFETY: cmd is the live cmd_parms of this directive call.
    let override_ = unsafe { (*d.cmd).override_ } as u32;
    override_ & (apache::RSRC_CONF | apache::ACCESS_CONF) == 0
}

fn set(kind: Kind, d: &mut Directive) -> Result<(), String> {
    let from_htaccess = in_htaccess(d);
    let script = parse_auth_script(kind, &d.arg, from_htaccess)?;
    if !from_htaccess {
        // Python starts in Apache's children for it, even under WSGIRestrictEmbedded On, as
        // in mod_wsgi (a `.htaccess` is read in a child, too late to start Python for it).
        super::super::dispatch::note_configured();
    }
    let options = d.options();
    let slot = match kind {
        Kind::Access => &mut options.access_script,
        Kind::AuthUser => &mut options.auth_user_script,
        Kind::AuthGroup => &mut options.auth_group_script,
    };
    *slot = Some(script);
    Ok(())
}

pub(super) unsafe extern "C" fn access_script(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| set(Kind::Access, d))
}

pub(super) unsafe extern "C" fn auth_user_script(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| set(Kind::AuthUser, d))
}

pub(super) unsafe extern "C" fn auth_group_script(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| set(Kind::AuthGroup, d))
}

/// `WSGIGroupAuthoritative On|Off`: accepted and kept. On Apache 2.4 mod_wsgi does not use it
/// either: `Require wsgi-group` is an authorization provider, and `Require`'s own logic
/// (`<RequireAny>`, `AuthMerging`) decides what a failed group check means.
pub(super) unsafe extern "C" fn group_authoritative(cmd: *mut cmd_parms, mconfig: *mut c_void, arg: *const c_char) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        let on = parse_on_off("WSGIGroupAuthoritative", &d.arg)?;
        d.options().group_authoritative = Some(on);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mod_wsgi_syntax_with_its_messages() {
        let s = parse_auth_script(Kind::AuthUser, "/srv/auth.wsgi application-group=site", false).unwrap();
        assert_eq!(s.script, "/srv/auth.wsgi");
        assert_eq!(s.group, Some(GroupSpec::Literal("site".into())));
        assert_eq!(parse_auth_script(Kind::Access, "/a.wsgi", false).unwrap().group, None);
        assert_eq!(parse_auth_script(Kind::Access, "", false).unwrap_err(), "Location of access script not supplied.");
        assert_eq!(parse_auth_script(Kind::AuthGroup, "/a application-group=", false).unwrap_err(), "Invalid name for WSGI application group.");
        assert_eq!(
            parse_auth_script(Kind::AuthUser, "/a process-group=x", false).unwrap_err(),
            "Invalid option to WSGI auth user script definition."
        );
        assert!(parse_auth_script(Kind::AuthUser, "/a application-group=%{GLOBAL}", true).unwrap_err().contains("not allowed in .htaccess"));
        assert!(parse_auth_script(Kind::AuthUser, "/a", true).unwrap().from_htaccess);
    }
}
