//! The module record Apache looks up as `wsgi_module`, named `mod_wsgi.c` like the original,
//! so that `<IfModule mod_wsgi.c>` and `<IfModule wsgi_module>` blocks keep working.

use super::apache::{self, module};
use super::config::{self, DirConfig, ServerConfig};
use super::directives::COMMANDS;
use std::cell::UnsafeCell;
use std::ffi::{c_char, c_ulong, c_void};

/// Apache writes `module_index`, `next` and `dynamic_load_handle` into the record, hence the cell.
#[repr(transparent)]
pub struct ModuleRecord(UnsafeCell<module>);

// SAFETY: Apache writes the record only while loading modules, single-threaded in the parent;
// afterwards every thread only reads it.
unsafe impl Sync for ModuleRecord {}

#[allow(non_upper_case_globals)]
#[no_mangle]
pub static wsgi_module: ModuleRecord = ModuleRecord(UnsafeCell::new(module {
    version: apache::MODULE_MAGIC_NUMBER_MAJOR as i32,
    minor_version: apache::MODULE_MAGIC_NUMBER_MINOR as i32,
    module_index: -1,
    name: c"mod_wsgi.c".as_ptr(),
    dynamic_load_handle: std::ptr::null_mut(),
    next: std::ptr::null_mut(),
    magic: apache::MODULE_MAGIC_COOKIE as c_ulong,
    rewrite_args: None,
    create_dir_config: Some(create_dir_config),
    merge_dir_config: Some(config::merge::<DirConfig>),
    create_server_config: Some(create_server_config),
    merge_server_config: Some(config::merge::<ServerConfig>),
    cmds: COMMANDS.as_ptr(),
    register_hooks: Some(super::hooks::register_hooks),
    flags: 0,
}));

/// The record as Apache's API functions take it.
pub fn module_ptr() -> *const module {
    wsgi_module.0.get()
}

/// Our index in Apache's per-module config vectors, for logging and config look-ups.
pub fn module_index() -> i32 {
    // SAFETY: the record is a live static; module_index was set before any hook runs.
    unsafe { (*wsgi_module.0.get()).module_index }
}

unsafe extern "C" fn create_dir_config(pool: *mut apache::apr_pool_t, _dir: *mut c_char) -> *mut c_void {
    // SAFETY: forwarding Apache's own pool.
    unsafe { config::create::<DirConfig>(pool) }
}

unsafe extern "C" fn create_server_config(pool: *mut apache::apr_pool_t, _s: *mut apache::server_rec) -> *mut c_void {
    // SAFETY: forwarding Apache's own pool.
    unsafe { config::create::<ServerConfig>(pool) }
}

/// The server config of `server` (a `server_rec` whose vectors Apache filled).
///
/// # Safety
/// `server` must be a live `server_rec`.
pub unsafe fn server_config<'a>(server: *const apache::server_rec) -> &'a ServerConfig {
    // SAFETY: Apache stores our ServerConfig (created by create_server_config) at our index.
    unsafe { &*apache::ap_get_module_config((*server).module_config, module_ptr()).cast::<ServerConfig>() }
}

/// Mutable access while directives are read (Apache's config phase is single-threaded).
///
/// # Safety
/// Only from a directive handler, with the `server_rec` of the directive.
pub unsafe fn server_config_mut<'a>(server: *const apache::server_rec) -> &'a mut ServerConfig {
    // SAFETY: as above; directive handlers run one at a time while the config is read.
    unsafe { &mut *apache::ap_get_module_config((*server).module_config, module_ptr()).cast::<ServerConfig>() }
}

/// The merged directory config of a request.
///
/// # Safety
/// `per_dir` must be a request's `per_dir_config`.
pub unsafe fn dir_config<'a>(per_dir: *const apache::ap_conf_vector_t) -> &'a DirConfig {
    // SAFETY: Apache stores our DirConfig at our index in every per-dir vector.
    unsafe { &*apache::ap_get_module_config(per_dir, module_ptr()).cast::<DirConfig>() }
}
