//! How the entries of Apache's directive table are built: [`CommandTable`] (the array Apache
//! reads, up to [`END`]) and the entry builders [`raw_args`] and [`take1`]. Apart so that the
//! table in `mod.rs` reads as the list of directives and the contexts each is allowed in.

use super::*;

/// Apache reads this array up to the entry with a null name.
#[repr(transparent)]
pub struct CommandTable<const N: usize>(pub(super) [command_rec; N]);

// SAFETY: the table is immutable and only holds pointers to static strings and functions.
unsafe impl<const N: usize> Sync for CommandTable<N> {}

impl<const N: usize> CommandTable<N> {
    pub const fn as_ptr(&self) -> *const command_rec {
        self.0.as_ptr()
    }
}

type RawFn = unsafe extern "C" fn(*mut cmd_parms, *mut c_void, *const c_char) -> *const c_char;

pub(super) const fn raw_args(name: &'static CStr, func: RawFn, req_override: u32, errmsg: &'static CStr) -> command_rec {
    command_rec {
        name: name.as_ptr(),
        func: cmd_func { raw_args: Some(func) },
        cmd_data: std::ptr::null_mut(),
        req_override: req_override as i32,
        args_how: apache::RAW_ARGS,
        errmsg: errmsg.as_ptr(),
    }
}

pub(super) const fn take1(name: &'static CStr, func: RawFn, req_override: u32, errmsg: &'static CStr) -> command_rec {
    command_rec { args_how: apache::TAKE1, ..raw_args(name, func, req_override, errmsg) }
}

pub(super) const END: command_rec = command_rec {
    name: std::ptr::null(),
    func: cmd_func { raw_args: None },
    cmd_data: std::ptr::null_mut(),
    req_override: 0,
    args_how: 0,
    errmsg: std::ptr::null(),
};
