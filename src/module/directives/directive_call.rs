//! How a directive handler runs: [`directive`] wraps each one (it catches panics and turns an
//! `Err(String)` into the message Apache prints with the file and line), [`Directive`] is what
//! a handler works on (its argument, the current level's options, the server's config), and
//! [`global_flag`] and [`option_flag`] are the `On`/`Off` handlers built on them. Every
//! directive file builds on these, so they sit apart from any one group of handlers.

use super::*;

/// What a directive handler works on.
pub(super) struct Directive {
    pub(super) cmd: *mut cmd_parms,
    pub(super) dir: *mut DirConfig,
    pub(super) arg: String,
}

impl Directive {
    /// True inside `<Directory>`, `<Location>`, `<Files>` or `.htaccess`.
    pub(super) fn in_directory(&self) -> bool {
        // SAFETY: cmd is the live cmd_parms of this directive call.
        unsafe { !(*self.cmd).path.is_null() }
    }

    /// Options of the current level: the directory's, or the (virtual) server's.
    pub(super) fn options(&mut self) -> &mut AppOptions {
        if self.in_directory() {
            // SAFETY: Apache passes our DirConfig for the current section as mconfig.
            unsafe { &mut (*self.dir).options }
        } else {
            // SAFETY: directive handlers run single-threaded during config reading.
            unsafe { &mut server_config_mut((*self.cmd).server).options }
        }
    }

    pub(super) fn server(&mut self) -> &mut super::super::config::ServerConfig {
        // SAFETY: as above.
        unsafe { server_config_mut((*self.cmd).server) }
    }

    /// Refuses the directive outside the main server (`GLOBAL_ONLY`), with Apache's message.
    pub(super) fn global_only(&self) -> Result<(), String> {
        // SAFETY: cmd is live; ap_check_cmd_context returns null or a static/pool message.
        let message = unsafe { apache::ap_check_cmd_context(self.cmd, apache::GLOBAL_ONLY) };
        if message.is_null() {
            Ok(())
        } else {
            // SAFETY: non-null messages are NUL-terminated strings.
            Err(unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned())
        }
    }

    pub(super) fn pool(&self) -> *mut apache::apr_pool_t {
        // SAFETY: cmd is live.
        unsafe { (*self.cmd).pool }
    }
}

/// Runs a directive parser; an `Err` becomes the message Apache prints with file and line.
pub(super) fn directive(
    cmd: *mut cmd_parms,
    mconfig: *mut c_void,
    arg: *const c_char,
    parse: impl FnOnce(&mut Directive) -> Result<(), String>,
) -> *const c_char {
    trampoline("a directive handler", c"mod_wsgi-rs: internal error while reading this directive".as_ptr(), || {
        let arg = if arg.is_null() {
            String::new()
        } else {
            // SAFETY: Apache passes a NUL-terminated argument string.
            unsafe { CStr::from_ptr(arg) }.to_string_lossy().into_owned()
        };
        let mut d = Directive { cmd, dir: mconfig.cast(), arg };
        match parse(&mut d) {
            Ok(()) => std::ptr::null(),
            Err(message) => {
                let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
                // SAFETY: the pool outlives the message's use by Apache's error reporting.
                unsafe { apache::apr_pstrdup(d.pool(), message.as_ptr()) }
            }
        }
    })
}

/// The directive's file and line, for a warning (errors get them from Apache).
pub(in crate::module) fn where_is(cmd: *mut cmd_parms) -> String {
    // SAFETY: cmd and its directive are live during the directive's call; the strings are
    // Apache's NUL-terminated configuration text.
    unsafe {
        let directive = (*cmd).directive;
        if directive.is_null() || (*directive).filename.is_null() {
            return String::new();
        }
        format!("{}:{}", CStr::from_ptr((*directive).filename).to_string_lossy(), (*directive).line_num)
    }
}

/// An `On`/`Off` directive of the main server only.
pub(super) fn global_flag(
    cmd: *mut cmd_parms,
    mconfig: *mut c_void,
    arg: *const c_char,
    name: &str,
    set: impl FnOnce(&mut super::super::config::ServerConfig, bool),
) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        d.global_only()?;
        let on = parse_on_off(name, &d.arg)?;
        set(d.server(), on);
        Ok(())
    })
}

/// An `On`/`Off` option of the current level (server, virtual host or directory).
pub(super) fn option_flag(
    cmd: *mut cmd_parms,
    mconfig: *mut c_void,
    arg: *const c_char,
    name: &str,
    set: impl FnOnce(&mut AppOptions, bool),
) -> *const c_char {
    directive(cmd, mconfig, arg, |d| {
        let on = parse_on_off(name, &d.arg)?;
        set(d.options(), on);
        Ok(())
    })
}
