//! Build script of the module Apache loads.
//!
//! It does not guess paths: like ngx-rust's `nginx-sys`, it asks the server build it targets.
//! `apxs -q` names Apache's include directory and its APR configuration, `apr-1-config` names
//! APR's; bindgen then generates bindings for the few Apache and APR items the module uses.
//! It also records which Python the default engine is built for (`PYO3_PYTHON`), so that the
//! module knows which engine to load when no `WSGIPythonHome` says otherwise.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    for var in ["APXS", "APR_CONFIG", "PYO3_PYTHON", "LIBCLANG_PATH"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=src/module/wrapper.h");

    let apxs = env::var("APXS").unwrap_or_else(|_| find_program(&["apxs", "apxs2"]));
    let include_dir = apxs_query(&apxs, "INCLUDEDIR");
    let apr_config = env::var("APR_CONFIG").unwrap_or_else(|_| apxs_query(&apxs, "APR_CONFIG"));
    let apr_includes = run(&apr_config, &["--includes"]).unwrap_or_else(|| {
        fail(&format!("`{apr_config} --includes` failed; install Debian's apache2-dev (it brings libapr1-dev) or set APR_CONFIG"))
    });
    if !PathBuf::from(&include_dir).join("httpd.h").exists() {
        fail(&format!("httpd.h is not in {include_dir}; install Debian's apache2-dev or set APXS"));
    }

    // Facts the express binary needs to drive this Apache (as mod_wsgi's setup.py stores them).
    for key in ["SBINDIR", "LIBEXECDIR", "SYSCONFDIR", "PROGNAME"] {
        println!("cargo:rustc-env=MOD_WSGI_APXS_{key}={}", apxs_query(&apxs, key));
    }
    let (py_version, py_exe) = default_python();
    println!("cargo:rustc-env=MOD_WSGI_DEFAULT_PYTHON_VERSION={py_version}");
    println!("cargo:rustc-env=MOD_WSGI_DEFAULT_PYTHON={py_exe}");

    let mut builder = bindgen::Builder::default()
        .header("src/module/wrapper.h")
        .clang_arg(format!("-I{include_dir}"))
        .clang_args(apr_includes.split_whitespace())
        .clang_args(["-DLINUX", "-D_REENTRANT", "-D_GNU_SOURCE"])
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .prepend_enum_name(false);
    for item in ALLOWED_TYPES {
        builder = builder.allowlist_type(item);
    }
    for item in ALLOWED_FUNCTIONS {
        builder = builder.allowlist_function(item);
    }
    for item in ALLOWED_VARS {
        builder = builder.allowlist_var(item);
    }
    let bindings = builder
        .generate()
        .unwrap_or_else(|e| fail(&format!("bindgen could not read Apache's headers ({e}); install Debian's apache2-dev and libclang-dev")));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("apache.rs");
    bindings.write_to_file(&out).expect("write apache.rs");
}

/// Only what `src/module` uses: each new call into Apache is added here on purpose.
const ALLOWED_TYPES: &[&str] = &[
    "module",
    "command_rec",
    "cmd_parms",
    "request_rec",
    "server_rec",
    "conn_rec",
    "process_rec",
    "apr_table_entry_t",
    "apr_array_header_t",
    "ap_regex_t",
    "ap_regmatch_t",
    "apr_finfo_t",
    "apr_proc_t",
    "unixd_config_rec",
    // mod_wsgi.server_metrics() (src/module/scoreboard.rs).
    "global_score",
    "process_score",
    "worker_score",
    // WSGIAccessScript, WSGIAuthUserScript, WSGIAuthGroupScript (src/module/auth.rs).
    "authn_provider",
    "authz_provider",
    "authn_status",
    "authz_status",
];
const ALLOWED_FUNCTIONS: &[&str] = &[
    "ap_hook_translate_name",
    "ap_hook_handler",
    "ap_hook_check_config",
    "ap_hook_child_stopping",
    "ap_hook_child_init",
    "ap_hook_post_config",
    "ap_log_error_",
    "ap_log_rerror_",
    "ap_get_module_config",
    "ap_set_module_config",
    "ap_check_cmd_context",
    "ap_pregcomp",
    "ap_regexec",
    "ap_pregsub",
    "ap_server_root_relative",
    "ap_setup_client_block",
    "ap_should_client_block",
    "ap_get_client_block",
    "ap_rwrite",
    "ap_rflush",
    "ap_add_common_vars",
    "ap_find_path_info",
    "ap_set_content_type",
    "ap_set_content_length",
    "ap_get_server_banner",
    "ap_get_server_description",
    "ap_mpm_query",
    "ap_getword_conf",
    "ap_pass_brigade",
    "apr_brigade_create",
    "apr_brigade_insert_file",
    "apr_os_file_put",
    "apr_brigade_destroy",
    "apr_table_get",
    "apr_table_set",
    "apr_table_add",
    "apr_table_elts",
    "apr_table_unset",
    "apr_pstrdup",
    "apr_pstrmemdup",
    "apr_palloc",
    "apr_pool_cleanup_register",
    "apr_pool_cleanup_null",
    "ap_rflush",
    "ap_allow_options",
    "ap_hook_post_perdir_config",
    "ap_sub_req_lookup_uri",
    "ap_destroy_sub_req",
    "ap_os_escape_path",
    "ap_bucket_error_create",
    "apr_bucket_file_enable_mmap",
    // Daemon mode (src/module/daemon).
    "ap_hook_pre_config",
    "ap_state_query",
    "ap_runtime_dir_relative",
    "ap_close_listeners",
    "apr_proc_fork",
    "apr_pool_note_subprocess",
    "apr_proc_other_child_register",
    "apr_proc_other_child_unregister",
    "ap_get_conn_socket",
    "apr_socket_timeout_get",
    "apr_socket_timeout_set",
    // A daemon's error log as its standard error (src/module/daemon/descriptors.rs).
    "apr_os_file_get",
    // mod_wsgi.server_metrics() (src/module/scoreboard.rs), and forking the daemons once the
    // scoreboard exists (src/module/daemon/supervisor.rs).
    "ap_exists_scoreboard_image",
    "ap_get_scoreboard_global",
    "ap_get_scoreboard_process",
    "ap_get_scoreboard_worker_from_indexes",
    "ap_hook_pre_mpm",
    "apr_time_now",
    // Unmapping it, or making it read-only, in a daemon right after its fork (scoreboard.rs).
    "ap_calc_scoreboard_size",
    // Access and auth scripts (src/module/auth.rs).
    "ap_register_auth_provider",
    "ap_hook_check_access",
    "ap_get_remote_host",
    "ap_satisfies",
    "ap_some_authn_required",
    "ap_run_http_scheme",
    // Telemetry datagrams name the MPM (src/module/metrics).
    "ap_show_mpm",
];
const ALLOWED_VARS: &[&str] = &[
    "MODULE_MAGIC_NUMBER_MAJOR",
    "MODULE_MAGIC_NUMBER_MINOR",
    "MODULE_MAGIC_COOKIE",
    "APR_HOOK_MIDDLE",
    "APR_HOOK_REALLY_FIRST",
    "APR_HOOK_REALLY_LAST",
    "APR_HOOK_FIRST",
    "APR_HOOK_LAST",
    "APLOG_.*",
    "OK",
    "DECLINED",
    "DONE",
    "HTTP_.*",
    "RSRC_CONF",
    "ACCESS_CONF",
    "OR_FILEINFO",
    "OR_AUTHCFG",
    "OR_NONE",
    "NOT_IN_.*",
    "GLOBAL_ONLY",
    "REQUEST_CHUNKED_ERROR",
    "REQUEST_CHUNKED_DECHUNK",
    "AP_MPMQ_.*",
    "M_GET",
    "M_HEAD",
    "APR_NOFILE",
    "APR_REG",
    "APR_DIR",
    "AP_MAX_REG_MATCH",
    "AP_REG_EXTENDED",
    "APR_FOPEN_READ",
    "APR_FOPEN_SENDFILE_ENABLED",
    "APR_FOPEN_WRITE",
    "APR_FOPEN_APPEND",
    "ITERATE",
    "OPT_EXECCGI",
    "ap_unixd_config",
    "AP_SQ_.*",
    "APR_OC_REASON_.*",
    "APR_INCHILD",
    "APR_INPARENT",
    "SERVER_NUM_STATUS",
    // Where the scoreboard's shared memory is, and "no scoreboard" in a daemon that unmapped
    // it (scoreboard.rs).
    "ap_scoreboard_image",
    // Access and auth scripts (src/module/auth.rs).
    "AUTHN_PROVIDER_GROUP",
    "AUTHZ_PROVIDER_GROUP",
    "AUTHN_PROVIDER_VERSION",
    "AUTHZ_PROVIDER_VERSION",
    "AUTH_DENIED",
    "AUTH_GRANTED",
    "AUTH_USER_FOUND",
    "AUTH_USER_NOT_FOUND",
    "AUTH_GENERAL_ERROR",
    "AUTHZ_DENIED",
    "AUTHZ_GRANTED",
    "AUTHZ_NEUTRAL",
    "AUTHZ_GENERAL_ERROR",
    "AUTHZ_DENIED_NO_USER",
    "REMOTE_HOST",
    "SATISFY_ANY",
    "AP_AUTH_INTERNAL_PER_CONF",
    // AcceptPathInfo (src/module/handler.rs).
    "AP_REQ_REJECT_PATH_INFO",
];

fn find_program(candidates: &[&str]) -> String {
    for name in candidates {
        if Command::new(name).arg("-q").arg("INCLUDEDIR").output().map(|o| o.status.success()).unwrap_or(false) {
            return (*name).to_string();
        }
    }
    fail("apxs was not found; install Debian's apache2-dev or set APXS=/path/to/apxs")
}

fn apxs_query(apxs: &str, key: &str) -> String {
    run(apxs, &["-q", key]).unwrap_or_else(|| fail(&format!("`{apxs} -q {key}` failed; install Debian's apache2-dev or set APXS")))
}

fn run(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The Python the default engine is built for: `PYO3_PYTHON`, else Debian's `/usr/bin/python3`
/// (deliberately not the pyenv shim that comes first on PATH here).
fn default_python() -> (String, String) {
    let exe = env::var("PYO3_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".to_string());
    let version = run(&exe, &["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .unwrap_or_else(|| fail(&format!("cannot run {exe}; set PYO3_PYTHON to a Python interpreter (Debian: apt-get install python3-dev)")));
    (version, exe)
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    println!("cargo:warning={message}");
    std::process::exit(1);
}
