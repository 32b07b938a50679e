//! Access control from Python, as mod_wsgi's `WSGIAccessScript`, `WSGIAuthUserScript` and
//! `WSGIAuthGroupScript`: Apache's access and auth phases ask a script's `allow_access`,
//! `check_password`, `get_realm_hash` or `groups_for_user`, and the answer's type decides
//! (mod_wsgi's rules: `True`/`False`/`None`, a user name, a hash, an iterable of groups).
//! How the script is run is `side_script.rs`; what the module does with the answer is its
//! `auth.rs`.

use super::exchange::{Current, Exchange};
use super::py::{self, PyObj};
use super::side_script::{self, Failure, Loaded};
use crate::abi::{self, auth};
use std::ffi::{c_int, c_void};

/// Asks the script of `request` the `question`: one of `abi::auth`'s results, after handing
/// any names it carries to `set(ctx, which, value)` (with the GIL held; the callback copies).
///
/// # Safety
/// `set` must accept `ctx` (the module's answer record, alive for the call).
pub unsafe fn ask(request: &abi::Request, question: &abi::AuthQuestion, ctx: *mut c_void, set: abi::AnswerFn) -> c_int {
    let ex = Exchange::new(request);
    // The script's own output (print, wsgi.errors) goes to this request's log lines.
    let _current = Current::set(request);
    let what = match question.kind {
        auth::ALLOW_ACCESS => "WSGI host access script",
        auth::GROUPS_FOR_USER => "WSGI group authentication script",
        _ => "WSGI user authentication script",
    };
    let answer = side_script::run(&ex, request, what, |loaded| {
        // SAFETY: byte strings valid for the call.
        let (user, secret, host) = unsafe { (question.user.as_slice(), question.secret.as_slice(), question.host.as_slice()) };
        let answers = |which: c_int, value: &[u8]| {
            // SAFETY: the module's callback copies the bytes, which live for the call.
            unsafe { set(ctx, which, abi::Bytes::new(value)) }
        };
        match question.kind {
            auth::ALLOW_ACCESS => allow_access(loaded, host),
            auth::CHECK_PASSWORD => check_password(loaded, user, secret, answers),
            auth::GET_REALM_HASH => get_realm_hash(loaded, user, secret, answers),
            auth::GROUPS_FOR_USER => groups_for_user(loaded, user, answers),
            other => Err(loaded.refuse(&format!("Unknown access question {other} for {what} '{}'.", loaded.script))),
        }
    });
    answer.unwrap_or_else(|failure| match failure {
        Failure::Error => auth::ERROR,
        Failure::NoSlot => auth::NO_SLOT,
    })
}

/// Calls the script's `function` with the environ and `args`; its result, or the logged
/// failure (`missing` when the script has no such function, mod_wsgi's wording).
fn call(loaded: &Loaded, function: &str, args: &[&[u8]], missing: &str) -> Result<PyObj, Failure> {
    let Some(f) = loaded.function(function) else {
        return Err(loaded.refuse(&format!("Target {} '{}' {missing}", loaded.what, loaded.script)));
    };
    let raised = || loaded.raised(&format!("Exception occurred processing {} '{}' ({function}).", loaded.what, loaded.script));
    let mut values = vec![loaded.environ.clone()];
    for arg in args {
        values.push(py::latin1(arg).map_err(|_| raised())?);
    }
    let refs: Vec<&PyObj> = values.iter().collect();
    f.call(&refs).map_err(|_| raised())
}

/// `allow_access(environ, host)`: True, False or None (no opinion: Apache's other access
/// checks decide).
fn allow_access(loaded: &Loaded, host: &[u8]) -> Result<c_int, Failure> {
    let result = call(loaded, "allow_access", &[host], "does not provide 'allow_access' callable.")?;
    if result.is_none() {
        return Ok(auth::UNKNOWN);
    }
    match py::as_bool(&result) {
        Some(true) => Ok(auth::YES),
        Some(false) => Ok(auth::NO),
        None => Err(loaded.refuse(&format!("Result returned from 'allow_access' in '{}' must be a boolean or None.", loaded.script))),
    }
}

/// `check_password(environ, user, password)`: True, False, None (no such user) or a user
/// name, which becomes Apache's user (mod_wsgi 4.x and 6.x).
fn check_password(loaded: &Loaded, user: &[u8], password: &[u8], set: impl Fn(c_int, &[u8])) -> Result<c_int, Failure> {
    let result = call(loaded, "check_password", &[user, password], "does not provide 'Basic' auth provider.")?;
    if result.is_none() {
        return Ok(auth::UNKNOWN);
    }
    if let Some(granted) = py::as_bool(&result) {
        return Ok(if granted { auth::YES } else { auth::NO });
    }
    // A str (UTF-8, as mod_wsgi sends it to Apache), or a native str on Python 2.
    let name = py::utf8(&result).map(String::into_bytes).or_else(|| py::as_bytes(&result).map(<[u8]>::to_vec));
    match name {
        Some(name) if name.is_empty() || name.contains(&0) => Err(loaded.refuse("Basic auth provider returned empty user name string.")),
        Some(name) => {
            set(auth::USER_NAME, &name);
            Ok(auth::YES)
        }
        None => Err(loaded.refuse(&format!(
            "Basic auth provider must return True, False, None or user name as string; '{}' returned {}.",
            loaded.script,
            py::type_name(&result)
        ))),
    }
}

/// `get_realm_hash(environ, user, realm)`: None (no such user) or the hex MD5 of
/// `user:realm:password`, bytes or a latin-1 str.
fn get_realm_hash(loaded: &Loaded, user: &[u8], realm: &[u8], set: impl Fn(c_int, &[u8])) -> Result<c_int, Failure> {
    let result = call(loaded, "get_realm_hash", &[user, realm], "does not provide 'Digest' auth provider.")?;
    if result.is_none() {
        return Ok(auth::UNKNOWN);
    }
    match py::as_bytes(&result).map(<[u8]>::to_vec).or_else(|| py::latin1_bytes(&result)) {
        Some(hash) if hash.is_empty() || hash.contains(&0) => Err(loaded.refuse("Digest auth provider returned empty realm hash.")),
        Some(hash) => {
            set(auth::REALM_HASH, &hash);
            Ok(auth::YES)
        }
        None => Err(loaded.refuse(&format!(
            "Digest auth provider must return None or string object (latin-1); '{}' returned {}.",
            loaded.script,
            py::type_name(&result)
        ))),
    }
}

/// `groups_for_user(environ, user)`: an iterable of group names, bytes or latin-1 str.
fn groups_for_user(loaded: &Loaded, user: &[u8], set: impl Fn(c_int, &[u8])) -> Result<c_int, Failure> {
    let script = loaded.script;
    let result = call(loaded, "groups_for_user", &[user], "does not provide 'groups_for_user' callable.")?;
    let items = match py::collect(&result) {
        Ok(items) => items,
        Err(_) => {
            return Err(loaded.raised(&format!(
                "Result returned from 'groups_for_user' in '{script}' is not iterable (or raised while iterated); expected an iterable sequence of byte strings."
            )))
        }
    };
    let mut groups = Vec::with_capacity(items.len());
    for item in &items {
        match py::as_bytes(item).map(<[u8]>::to_vec).or_else(|| py::latin1_bytes(item)) {
            Some(group) if !group.contains(&0) => groups.push(group),
            _ => {
                return Err(loaded.refuse(&format!(
                    "Item returned from 'groups_for_user' in '{script}' is not a byte string or a latin-1 string ({}).",
                    py::type_name(item)
                )))
            }
        }
    }
    groups.iter().for_each(|group| set(auth::GROUP, group));
    Ok(auth::YES)
}
