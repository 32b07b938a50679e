//! mod_wsgi's access control from Python, on Apache's side: the access checker
//! (`WSGIAccessScript`), the authentication provider `wsgi` (`AuthBasicProvider wsgi`,
//! `AuthDigestProvider wsgi` with `WSGIAuthUserScript`) and the authorization provider
//! `wsgi-group` (`Require wsgi-group ...` with `WSGIAuthGroupScript`). Each asks the engine
//! (`abi::Engine::auth`, the engine's `interp/auth.rs`) and turns the answer into what Apache
//! expects. Scripts always run in Apache's child, never in a daemon, as in mod_wsgi.
//!
//! A script named in a `.htaccess` file is a customer's code: it runs only where the
//! administrator allowed scripts (`Options ExecCGI`, as for `AddHandler wsgi-script`), and in
//! an interpreter of its own, named after the script, never a site's or the main one (where
//! it could read another site's settings and secrets). mod_wsgi runs it anywhere, in
//! `%{GLOBAL}` by default.

use super::apache;
use super::callbacks::CallbackContext;
use super::config::{AppOptions, AuthScript};
use super::environ::{build_environ, MappedPath};
use super::group_name::GroupSpec;
use super::handler::{effective_options, Facts};
use super::hooks::engine;
use super::log;
use super::record::{dir_config, server_config};
use super::request::RequestRec;
use super::trampoline::trampoline;
use crate::abi::{self, auth};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::path::Path;

/// What a script answered: the result and the names that came with it.
struct Answer {
    result: c_int,
    user_name: Option<Vec<u8>>,
    realm_hash: Option<Vec<u8>>,
    groups: Vec<Vec<u8>>,
}

/// Asks `script` the question of `kind` for the request. An `auth::ERROR` answer, logged,
/// when it could not be asked: no Python here, or a `.htaccess` script where scripts are not
/// allowed.
fn ask(r: &RequestRec, options: &AppOptions, script: &AuthScript, kind: c_int, user: &[u8], secret: &[u8], host: &[u8]) -> Answer {
    let failed = |result| Answer { result, user_name: None, realm_hash: None, groups: Vec::new() };
    if script.from_htaccess && !r.allows_exec_cgi() {
        log::request(
            log::ERR,
            r.as_ptr(),
            &format!("Options ExecCGI is off in this directory: '{}', named in a .htaccess file, may not run here.", script.script),
        );
        return failed(auth::ERROR);
    }
    let Some(engine) = engine() else {
        log::request(
            log::ERR,
            r.as_ptr(),
            &format!(
                "'{}' needs Python in Apache's children, which is not running here (WSGIRestrictEmbedded On, or see the child start-up lines).",
                script.script
            ),
        );
        return failed(auth::ERROR);
    };
    let mapped = MappedPath::of(r);
    let facts = Facts { r, script_name: &mapped.script_name };
    let group = if script.from_htaccess {
        // A name no configured %{RESOURCE}, %{SERVER} or %{HOST} group can have; one per file
        // however its path is spelt, so that spellings cannot pile up interpreters.
        let path = std::fs::canonicalize(&script.script).unwrap_or_else(|_| Path::new(&script.script).to_path_buf());
        format!("{}|.htaccess:{}", GroupSpec::expand(Some(&GroupSpec::Server), &facts), path.display())
    } else {
        // The main interpreter unless the directive names a group, as in mod_wsgi.
        script.group.as_ref().map_or_else(String::new, |spec| GroupSpec::expand(Some(spec), &facts))
    };
    // Never the credentials (mod_wsgi): WSGIPassAuthorization would also have put them in the
    // request's own variables, for every handler after us (a static file's CGI, PHP, logs).
    let options = AppOptions { pass_authorization: None, ..options.clone() };
    let mut environ = build_environ(r, &options, &mapped);
    // Nor, while a user's password or hash is being checked, that user as if already
    // authenticated (mod_auth_basic and mod_auth_digest have set it by then); nor what only
    // the module may tell the engine.
    let unverified = kind == auth::CHECK_PASSWORD || kind == auth::GET_REALM_HASH;
    environ.retain(|(k, _)| {
        k != b"HTTP_AUTHORIZATION"
            && k != b"HTTP_PROXY_AUTHORIZATION"
            && !(unverified && (k == b"REMOTE_USER" || k == b"AUTH_TYPE"))
            && !super::environ::is_module_word(k)
    });
    // build_environ has set HTTPS from the connection (mod_ssl sets it only in its fixups, after
    // these phases), so that `wsgi.url_scheme` is right.
    // SAFETY: every request has a live server_rec with our config.
    let server = unsafe { server_config(r.server()) };
    environ.extend(server.interpreter_entries("", &group));
    let pairs: Vec<abi::Pair> = environ.iter().map(|(k, v)| abi::Pair { name: abi::Bytes::new(k), value: abi::Bytes::new(v) }).collect();
    let mut ctx = CallbackContext::new(r, false, false);
    let request = ctx.engine_request(&pairs, script.script.as_bytes(), b"", group.as_bytes(), None, None);
    let question = abi::AuthQuestion { kind, user: abi::Bytes::new(user), secret: abi::Bytes::new(secret), host: abi::Bytes::new(host) };
    let mut answer = failed(auth::ERROR);
    // SAFETY: request, question and everything they point to (ctx, pairs, the strings) and
    // `answer` outlive the call; `keep` is given `answer` as its context.
    answer.result = unsafe { (engine.auth)(&request, &question, (&mut answer as *mut Answer).cast(), keep) };
    answer
}

/// `abi::AnswerFn`: keeps a copy of one name of the answer.
unsafe extern "C" fn keep(ctx: *mut c_void, which: c_int, value: abi::Bytes) {
    trampoline("auth script answer", (), || {
        // SAFETY: ctx is the `Answer` that `ask` passed, alive for the engine's call; the
        // value is valid for this call.
        let (answer, value) = unsafe { (&mut *ctx.cast::<Answer>(), value.as_slice().to_vec()) };
        match which {
            auth::USER_NAME => answer.user_name = Some(value),
            auth::REALM_HASH => answer.realm_hash = Some(value),
            auth::GROUP => answer.groups.push(value),
            _ => {}
        }
    })
}

/// A NUL-terminated C string as bytes (empty for null).
///
/// # Safety
/// `p` is null or a NUL-terminated string that outlives `'a`.
unsafe fn c_bytes<'a>(p: *const c_char) -> &'a [u8] {
    if p.is_null() {
        &[]
    } else {
        // SAFETY: forwarded from the caller.
        unsafe { CStr::from_ptr(p) }.to_bytes()
    }
}

/// The access checker: `allow_access(environ, host)` of the `WSGIAccessScript` in effect.
/// True lets the request on, None leaves it to Apache's other checks, False is a 403; a
/// script that fails is a 500 (mod_wsgi: a 403).
pub unsafe extern "C" fn access_checker(r: *mut apache::request_rec) -> c_int {
    trampoline("the access checker", apache::HTTP_INTERNAL_SERVER_ERROR as c_int, || {
        // SAFETY: Apache passes the live request.
        let request = unsafe { RequestRec::from_raw(r) };
        // The directive lives in directory sections only (OR_AUTHCFG): most requests end here,
        // without merging options.
        // SAFETY: live request; its per-directory vector holds our record.
        if unsafe { dir_config(request.per_dir_config()) }.options.access_script.is_none() {
            return apache::DECLINED;
        }
        let options = effective_options(request);
        let Some(script) = &options.access_script else { return apache::DECLINED };
        let host = request.remote_host().to_vec();
        let answer = ask(request, &options, script, auth::ALLOW_ACCESS, b"", b"", &host);
        match answer.result {
            auth::YES => apache::OK as c_int,
            auth::UNKNOWN => apache::DECLINED,
            auth::NO => {
                if request.denial_is_final() {
                    let file = String::from_utf8_lossy(request.filename()).into_owned();
                    log::request(log::ERR, request.as_ptr(), &format!("Client denied by server configuration: '{file}'."));
                }
                apache::HTTP_FORBIDDEN as c_int
            }
            auth::NO_SLOT => apache::HTTP_SERVICE_UNAVAILABLE as c_int,
            _ => apache::HTTP_INTERNAL_SERVER_ERROR as c_int,
        }
    })
}

/// The `wsgi` authentication provider, Basic: `check_password(environ, user, password)`.
unsafe extern "C" fn check_password(r: *mut apache::request_rec, user: *const c_char, password: *const c_char) -> apache::authn_status {
    trampoline("the wsgi auth provider", apache::AUTH_GENERAL_ERROR, || {
        // SAFETY: Apache passes the live request and NUL-terminated strings.
        let (request, user, password) = unsafe { (RequestRec::from_raw(r), c_bytes(user), c_bytes(password)) };
        let options = effective_options(request);
        let Some(script) = &options.auth_user_script else {
            log::request(log::ERR, r, "Location of WSGI user authentication script not provided (WSGIAuthUserScript).");
            return apache::AUTH_GENERAL_ERROR;
        };
        let answer = ask(request, &options, script, auth::CHECK_PASSWORD, user, password, b"");
        match answer.result {
            auth::YES => {
                if let Some(name) = &answer.user_name {
                    request.set_user(name);
                }
                apache::AUTH_GRANTED
            }
            auth::NO => apache::AUTH_DENIED,
            auth::UNKNOWN => apache::AUTH_USER_NOT_FOUND,
            // A failure, or no Python slot: a provider has no way to say 503.
            _ => apache::AUTH_GENERAL_ERROR,
        }
    })
}

/// The `wsgi` authentication provider, Digest: `get_realm_hash(environ, user, realm)`.
unsafe extern "C" fn get_realm_hash(
    r: *mut apache::request_rec,
    user: *const c_char,
    realm: *const c_char,
    hash: *mut *mut c_char,
) -> apache::authn_status {
    trampoline("the wsgi auth provider", apache::AUTH_GENERAL_ERROR, || {
        // SAFETY: Apache passes the live request and NUL-terminated strings.
        let (request, user, realm) = unsafe { (RequestRec::from_raw(r), c_bytes(user), c_bytes(realm)) };
        let options = effective_options(request);
        let Some(script) = &options.auth_user_script else {
            log::request(log::ERR, r, "Location of WSGI user authentication script not provided (WSGIAuthUserScript).");
            return apache::AUTH_GENERAL_ERROR;
        };
        let answer = ask(request, &options, script, auth::GET_REALM_HASH, user, realm, b"");
        match (answer.result, &answer.realm_hash) {
            (auth::YES, Some(found)) => {
                // SAFETY: Apache passes where the hash goes; it is copied into the request's pool.
                unsafe { *hash = request.pool_bytes(found).cast_mut() };
                apache::AUTH_USER_FOUND
            }
            (auth::UNKNOWN, _) => apache::AUTH_USER_NOT_FOUND,
            _ => apache::AUTH_GENERAL_ERROR,
        }
    })
}

/// The `wsgi-group` authorization provider: `Require wsgi-group name...` is met when
/// `groups_for_user(environ, user)` of the `WSGIAuthGroupScript` names one of them. A script
/// that fails is a 500 (mod_wsgi: a refusal), also inside `<RequireAny>`.
unsafe extern "C" fn check_authorization(r: *mut apache::request_rec, require_args: *const c_char, _parsed: *const c_void) -> apache::authz_status {
    trampoline("the wsgi-group authz provider", apache::AUTHZ_GENERAL_ERROR, || {
        // SAFETY: Apache passes the live request.
        let request = unsafe { RequestRec::from_raw(r) };
        let Some(user) = request.user().map(<[u8]>::to_vec) else { return apache::AUTHZ_DENIED_NO_USER };
        let options = effective_options(request);
        let Some(script) = &options.auth_group_script else {
            log::request(log::ERR, request.as_ptr(), "Location of WSGI group authorization script not provided (WSGIAuthGroupScript).");
            return apache::AUTHZ_DENIED;
        };
        let answer = ask(request, &options, script, auth::GROUPS_FOR_USER, &user, b"", b"");
        if answer.result != auth::YES {
            return apache::AUTHZ_GENERAL_ERROR;
        }
        let user = String::from_utf8_lossy(&user).into_owned();
        let uri = String::from_utf8_lossy(request.uri_bytes()).into_owned();
        if answer.groups.is_empty() {
            log::request(
                log::ERR,
                request.as_ptr(),
                &format!("Authorization of user '{user}' to access '{uri}' failed. User is not a member of any groups."),
            );
            return apache::AUTHZ_DENIED;
        }
        // SAFETY: Apache passes the Require line's arguments, NUL-terminated.
        let required = unsafe { c_bytes(require_args) };
        if required_groups(required).iter().any(|wanted| answer.groups.iter().any(|g| g == wanted)) {
            return apache::AUTHZ_GRANTED;
        }
        log::request(
            log::ERR,
            request.as_ptr(),
            &format!("Authorization of user '{user}' to access '{uri}' failed. User is not a member of designated groups."),
        );
        apache::AUTHZ_DENIED
    })
}

/// The group names of a `Require wsgi-group` line, as bytes (a name need not be UTF-8),
/// read as `ap_getword_conf` reads words: split on white space, a word in quotes kept whole.
fn required_groups(line: &[u8]) -> Vec<&[u8]> {
    let mut names = Vec::new();
    let mut rest = line;
    loop {
        rest = &rest[rest.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(rest.len())..];
        let Some(&first) = rest.first() else { return names };
        let (name, after) = if first == b'"' || first == b'\'' {
            let end = rest[1..].iter().position(|&b| b == first).map_or(rest.len(), |i| i + 1);
            (&rest[1..end], rest.get(end + 1..).unwrap_or(&[]))
        } else {
            let end = rest.iter().position(|b| b.is_ascii_whitespace()).unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        names.push(name);
        rest = after;
    }
}

/// The provider records Apache keeps pointers to for the life of the process.
static AUTHN_PROVIDER: apache::authn_provider = apache::authn_provider { check_password: Some(check_password), get_realm_hash: Some(get_realm_hash) };
static AUTHZ_PROVIDER: apache::authz_provider = apache::authz_provider { check_authorization: Some(check_authorization), parse_require_line: None };

/// Like mod_wsgi: after mod_ssl, before mod_authz_host.
#[repr(transparent)]
struct ModuleNames<const N: usize>([*const c_char; N]);
// SAFETY: immutable pointers to static strings.
unsafe impl<const N: usize> Sync for ModuleNames<N> {}
static ACCESS_AFTER: ModuleNames<2> = ModuleNames([c"mod_ssl.c".as_ptr(), std::ptr::null()]);
static ACCESS_BEFORE: ModuleNames<2> = ModuleNames([c"mod_authz_host.c".as_ptr(), std::ptr::null()]);

/// Registers the access checker and the two providers (from `register_hooks`), as Apache's
/// own modules do since 2.4: checked again on a sub-request or internal redirect only when its
/// configuration differs from the request's (`AP_AUTH_INTERNAL_PER_CONF`). mod_wsgi uses the
/// older calls, which make Apache re-run every module's access control on every sub-request
/// (mod_dir, mod_negotiation, mod_include) of every site, configured or not.
pub fn register(pool: *mut apache::apr_pool_t) {
    let per_conf = apache::AP_AUTH_INTERNAL_PER_CONF as c_int;
    // SAFETY: static records and functions, registered in the configuration pool Apache
    // passes to register_hooks; the group and version names are static strings.
    unsafe {
        apache::ap_hook_check_access(
            Some(access_checker),
            ACCESS_AFTER.0.as_ptr(),
            ACCESS_BEFORE.0.as_ptr(),
            apache::APR_HOOK_MIDDLE as c_int,
            per_conf,
        );
        apache::ap_register_auth_provider(
            pool,
            apache::AUTHN_PROVIDER_GROUP.as_ptr().cast(),
            c"wsgi".as_ptr(),
            apache::AUTHN_PROVIDER_VERSION.as_ptr().cast(),
            (&AUTHN_PROVIDER as *const apache::authn_provider).cast(),
            per_conf,
        );
        apache::ap_register_auth_provider(
            pool,
            apache::AUTHZ_PROVIDER_GROUP.as_ptr().cast(),
            c"wsgi-group".as_ptr(),
            apache::AUTHZ_PROVIDER_VERSION.as_ptr().cast(),
            (&AUTHZ_PROVIDER as *const apache::authz_provider).cast(),
            per_conf,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::required_groups;

    #[test]
    fn require_lines_split_into_byte_names() {
        let names = required_groups(b" staff  \"web team\"\t'x'  caf\xe9 \"open");
        assert_eq!(names, [&b"staff"[..], b"web team", b"x", b"caf\xe9", b"open"]);
        assert!(required_groups(b"  ").is_empty());
    }
}
