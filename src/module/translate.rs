//! URL translation (`translate_name`): a `WSGIScriptAlias` or `WSGIScriptAliasMatch` maps the
//! URL to its script file and selects our handler; Apache's own directory walk then applies
//! `<Directory>` access control and splits off PATH_INFO.

use super::alias::prefix_match;
use super::apache;
use super::config::UrlMatch;
use super::record::server_config;
use super::request::RequestRec;
use super::trampoline::trampoline;
use std::ffi::{c_int, CStr, CString};

/// RequestRec note naming the alias that mapped the request (its index in the server's list).
pub(super) const ALIAS_NOTE: &str = "mod_wsgi.alias";

pub unsafe extern "C" fn translate_name(r: *mut apache::request_rec) -> c_int {
    trampoline("translate_name", apache::DECLINED, || {
        // SAFETY: Apache passes the live request.
        let request = unsafe { RequestRec::from_raw(r) };
        translate(request).unwrap_or(apache::DECLINED)
    })
}

fn translate(r: &mut RequestRec) -> Option<c_int> {
    // Bytes, not text: Apache has decoded the URI, and `/app/caf%E9` (latin-1) must reach the
    // application as surely as `/app/caf%C3%A9`.
    let uri = r.uri_bytes().to_vec();
    if !uri.starts_with(b"/") {
        return None;
    }
    // SAFETY: every request has a live server_rec with our config.
    let config = unsafe { server_config(r.server()) };
    for (index, alias) in config.aliases.iter().enumerate() {
        let (target, matched) = match &alias.url {
            UrlMatch::Prefix(prefix) => match prefix_match(&uri, prefix) {
                // A prefix ending in '/' (such as a mount at '/') consumed the slash that starts
                // PATH_INFO: give it back, so '/x' under '/' maps to 'app.wsgi/x', not 'app.wsgix'.
                Some(matched) if prefix.ends_with('/') => (alias.target.clone().into_bytes(), matched - 1),
                Some(matched) => (alias.target.clone().into_bytes(), matched),
                None => continue,
            },
            UrlMatch::Regex { compiled, .. } => match regex_target(r, *compiled, &alias.target, &uri) {
                Some(found) => found,
                None => continue,
            },
        };
        // The first alias that matches wins, as in mod_wsgi.
        r.set_filename(&[&target[..], &uri[matched..]].concat());
        r.set_handler("wsgi-script");
        r.notes().set(ALIAS_NOTE, index.to_string().as_bytes());
        return Some(apache::OK as c_int);
    }
    None
}

fn regex_target(r: &RequestRec, regex: *mut apache::ap_regex_t, target: &str, uri: &[u8]) -> Option<(Vec<u8>, usize)> {
    const N: usize = apache::AP_MAX_REG_MATCH as usize;
    let mut matches = [apache::ap_regmatch_t { rm_so: 0, rm_eo: 0 }; N];
    let c_uri = CString::new(uri).ok()?;
    let c_target = CString::new(target).ok()?;
    // SAFETY: regex was compiled by ap_pregcomp; matches has room for N entries.
    if unsafe { apache::ap_regexec(regex, c_uri.as_ptr(), N, matches.as_mut_ptr(), 0) } != 0 {
        return None;
    }
    // SAFETY: the same live uri and match array; ap_pregsub allocates in the request pool.
    let expanded = unsafe { apache::ap_pregsub(r.pool(), c_target.as_ptr(), c_uri.as_ptr(), N, matches.as_mut_ptr()) };
    if expanded.is_null() {
        return None;
    }
    // SAFETY: ap_pregsub returns a NUL-terminated pool string.
    let expanded = unsafe { CStr::from_ptr(expanded) }.to_bytes().to_vec();
    Some((expanded, usize::try_from(matches[0].rm_eo).ok()?))
}
