//! Error-log lines, in mod_wsgi's form: `mod_wsgi (pid=N): message`, so that existing log
//! searches keep working. Each line goes through `ap_log_*error_` with our module index, so
//! Apache's `LogLevel wsgi:debug` applies to it.

use super::apache;
use super::record::module_index;
use std::ffi::{c_int, CString};

fn line(message: &str) -> CString {
    let text = format!("mod_wsgi (pid={}): {}", std::process::id(), message);
    // A NUL inside an app-provided message would cut the line; show it instead.
    CString::new(text.replace('\0', "\\x00")).unwrap_or_default()
}

/// Logs against a server (or the main server when `server` is null).
pub fn server(level: c_int, server: *const apache::server_rec, message: &str) {
    let text = line(message);
    // SAFETY: the format is a static "%s" with one C-string argument that lives across the call;
    // Apache accepts a null server (it then logs to the main server's log).
    unsafe { apache::ap_log_error_(c"mod_wsgi".as_ptr(), 0, module_index(), level, 0, server, c"%s".as_ptr(), text.as_ptr()) }
}

/// Logs against a request, so that the line carries the client address.
pub fn request(level: c_int, request: *const apache::request_rec, message: &str) {
    let text = line(message);
    // SAFETY: as above; `request` is the live request_rec of the current handler call.
    unsafe { apache::ap_log_rerror_(c"mod_wsgi".as_ptr(), 0, module_index(), level, 0, request, c"%s".as_ptr(), text.as_ptr()) }
}

pub const ERR: c_int = apache::APLOG_ERR as c_int;
pub const WARNING: c_int = apache::APLOG_WARNING as c_int;
pub const INFO: c_int = apache::APLOG_INFO as c_int;
