//! Per-server and per-directory configuration, in plain Rust.
//!
//! Apache owns the records' lifetime through its pools: each record is a `Box` whose drop is
//! registered as a cleanup on the pool it was created in. Every field is an `Option` ("not set
//! here"), and [`Merge`] says how a virtual host or directory inherits from its parent; the merge
//! rules are ordinary functions that the unit tests call directly.
//! Config records are read-only after start-up: request code only ever receives `&ServerConfig`
//! and `&DirConfig`.

use super::apache;
use super::daemon::options::DaemonSpec;
use super::group_name::GroupSpec;
use super::proxy::Network;
use crate::abi::interpreter_options::GroupOptions;
use std::ffi::c_void;

/// How a configuration of one level inherits from the enclosing one.
pub trait Merge: Default {
    /// `base` is the enclosing level (main server, parent directory), `add` the nearer one.
    fn merge(base: &Self, add: &Self) -> Self;
}

/// `WSGIMapHEADToGET`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapHead {
    Off,
    On,
    /// Only when output filters that may need the body (mod_deflate, ...) are present.
    Auto,
}

/// `WSGIPerInterpreterGIL`: whether an application group's interpreter gets its own GIL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GilMode {
    /// `Off`: the main interpreter's GIL, shared by every group (mod_wsgi 4.x).
    Shared,
    /// `On`: its own GIL (Python 3.12+).
    Own,
    /// `Auto` (ours): as `On`, but a group whose first import meets an extension that cannot
    /// load with its own GIL moves to the shared GIL (the engine's `fallback.rs`).
    Auto,
}

impl GilMode {
    /// The engine's number for it (`abi::gil_mode`).
    pub fn to_abi(self) -> std::ffi::c_int {
        match self {
            GilMode::Shared => crate::abi::gil_mode::SHARED,
            GilMode::Own => crate::abi::gil_mode::OWN,
            GilMode::Auto => crate::abi::gil_mode::AUTO,
        }
    }
}

/// One `<WSGIInterpreterOptions process-group=... application-group=...>` container: the
/// selectors (`None`: any; `Some("")`: `%{GLOBAL}`) and what it sets.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InterpreterOptions {
    pub process_group: Option<String>,
    pub application_group: Option<String>,
    pub per_interpreter_gil: Option<GilMode>,
    /// `replicas=N` on the opening tag (ours): the selected groups run in N interpreters.
    pub replicas: Option<u32>,
    /// `WSGIPythonPath` inside (`:`-separated): a layer over the process-wide path (see
    /// `abi::interpreter_options`).
    pub python_path: Option<String>,
    /// `WSGISwitchInterval` inside, in seconds.
    pub switch_interval: Option<f64>,
    pub restrict_stdin: Option<bool>,
    pub restrict_stdout: Option<bool>,
    pub restrict_signal: Option<bool>,
    /// `WSGIFreeThreading` inside: accepted, no effect (no engine is free-threaded).
    pub free_threading: Option<bool>,
}

/// The `WSGIPerInterpreterGIL` of the application group `application_group` in the process
/// group `process_group` (empty: Apache's own children), as mod_wsgi 6 resolves it: the server
/// value (default `Off`), overridden by every container whose selectors all match and that
/// sets it, the most specific one (most selectors) winning, the later one of equal
/// specificity. `%{GLOBAL}` (the main interpreter) always shares the main GIL.
pub fn resolve_gil(server: Option<GilMode>, blocks: &[InterpreterOptions], process_group: &str, application_group: &str) -> GilMode {
    if application_group.is_empty() {
        return GilMode::Shared;
    }
    most_specific(blocks, process_group, application_group, |b| b.per_interpreter_gil).unwrap_or(server.unwrap_or(GilMode::Shared))
}

/// The `replicas=` of the most specific matching container (as [`resolve_gil`]), if any.
/// `%{GLOBAL}` is one interpreter, whatever a container says.
pub fn resolve_replicas(blocks: &[InterpreterOptions], process_group: &str, application_group: &str) -> Option<u32> {
    if application_group.is_empty() {
        return None;
    }
    most_specific(blocks, process_group, application_group, |b| b.replicas)
}

/// The settings of the containers that match a group other than its GIL mode and replicas
/// (`abi::interpreter_options`), as mod_wsgi 6 resolves them: each from the most specific
/// container that sets it (the later of equal specificity); `WSGIPythonPath` from every one
/// that sets it, least specific first, then in configuration order.
pub fn resolve_group_options(blocks: &[InterpreterOptions], process_group: &str, application_group: &str) -> GroupOptions {
    let mut layers: Vec<(i32, usize, String)> =
        blocks.iter().enumerate().filter_map(|(i, b)| Some((specificity(b, process_group, application_group)?, i, b.python_path.clone()?))).collect();
    layers.sort_by_key(|(specificity, index, _)| (*specificity, *index));
    let switch = most_specific(blocks, process_group, application_group, |b| b.switch_interval.map(|s| (s, b.application_group.is_some())));
    GroupOptions {
        python_path: layers.into_iter().map(|(_, _, path)| path).collect(),
        switch_interval: switch.map(|(s, _)| s),
        switch_interval_app_scoped: switch.is_some_and(|(_, app)| app),
        restrict_stdin: most_specific(blocks, process_group, application_group, |b| b.restrict_stdin),
        restrict_stdout: most_specific(blocks, process_group, application_group, |b| b.restrict_stdout),
        restrict_signal: most_specific(blocks, process_group, application_group, |b| b.restrict_signal),
    }
}

/// How many of a container's selectors match (`None`: one does not).
fn specificity(block: &InterpreterOptions, process_group: &str, application_group: &str) -> Option<i32> {
    let mut specificity = 0;
    for (selector, actual) in [(&block.process_group, process_group), (&block.application_group, application_group)] {
        match selector {
            Some(wanted) if wanted != actual => return None,
            Some(_) => specificity += 1,
            None => {}
        }
    }
    Some(specificity)
}

/// What `field` says in the most specific container whose selectors all match (the later of
/// equal specificity), among those that set it.
fn most_specific<T>(
    blocks: &[InterpreterOptions],
    process_group: &str,
    application_group: &str,
    field: impl Fn(&InterpreterOptions) -> Option<T>,
) -> Option<T> {
    let mut found = None;
    let mut best = -1;
    for block in blocks {
        let Some(specificity) = specificity(block, process_group, application_group) else { continue };
        if let Some(value) = field(block) {
            if specificity >= best {
                found = Some(value);
                best = specificity;
            }
        }
    }
    found
}

/// Options shared by the directives and by the `WSGIScriptAlias` options.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AppOptions {
    pub group: Option<GroupSpec>,
    /// `replicas=N` of `WSGIApplicationGroup` or `WSGIScriptAlias` (ours; never from
    /// `.htaccess`): the application group runs in N own-GIL interpreters.
    pub replicas: Option<u32>,
    /// `WSGIProcessGroup` / `process-group=`: the daemon group, `%{GLOBAL}` for embedded.
    pub process_group: Option<GroupSpec>,
    pub callable: Option<String>,
    pub pass_authorization: Option<bool>,
    pub chunked_request: Option<bool>,
    /// `WSGIScriptReloading`: check the script's mtime before each request (default On).
    pub script_reloading: Option<bool>,
    pub map_head: Option<MapHead>,
    pub error_override: Option<bool>,
    /// `WSGIRestrictProcess`: the process groups (empty: `%{GLOBAL}`) requests here may
    /// select; `None`: any.
    pub restrict_process: Option<Vec<String>>,
    /// `WSGITrustedProxyHeaders`, in environ form (`HTTP_X_FORWARDED_FOR`).
    pub trusted_proxy_headers: Option<Vec<String>>,
    pub trusted_proxies: Option<Vec<Network>>,
    /// `WSGIEnableSendfile` (default Off).
    pub enable_sendfile: Option<bool>,
    /// `WSGIIgnoreActivity` (default Off).
    pub ignore_activity: Option<bool>,
    /// `WSGIPassApacheRequest` (default Off).
    pub pass_apache_request: Option<bool>,
    /// `WSGIDispatchScript`: the nearer level's replaces the farther one's.
    pub dispatch_script: Option<DispatchScript>,
    /// `WSGIHandlerScript` definitions of this level; a nearer level's replaces a farther
    /// one's of the same name, as mod_wsgi overlays its tables.
    pub handler_scripts: Vec<HandlerScript>,
    /// `WSGIAccessScript`, `WSGIAuthUserScript`, `WSGIAuthGroupScript`: the nearer level's
    /// replaces the farther one's.
    pub access_script: Option<AuthScript>,
    pub auth_user_script: Option<AuthScript>,
    pub auth_group_script: Option<AuthScript>,
    /// `WSGIGroupAuthoritative` (accepted; on Apache 2.4 `Require` decides, as in mod_wsgi).
    pub group_authoritative: Option<bool>,
}

/// `WSGIAccessScript`, `WSGIAuthUserScript` or `WSGIAuthGroupScript`: `script
/// [application-group=NAME]`, run in Apache's child (never a daemon), in `group` (default
/// `%{GLOBAL}`, as mod_wsgi).
#[derive(Clone, Debug, PartialEq)]
pub struct AuthScript {
    pub script: String,
    pub group: Option<GroupSpec>,
    /// Read from a `.htaccess` file, which a customer writes: it runs only where `Options
    /// ExecCGI` is on, and in an interpreter of its own (see `auth.rs`).
    pub from_htaccess: bool,
}

/// `WSGIDispatchScript script [application-group=NAME]`: the script whose
/// `process_group`, `application_group` and `callable_object` functions choose, per request,
/// where it runs (run in `group`, default `%{GLOBAL}`).
#[derive(Clone, Debug, PartialEq)]
pub struct DispatchScript {
    pub script: String,
    pub group: Option<GroupSpec>,
}

/// `WSGIHandlerScript name script [options]`: requests whose Apache handler is `name`
/// (`SetHandler`, `AddHandler`) are served by `script`'s `handle_request`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HandlerScript {
    pub name: String,
    pub script: String,
    /// `process-group=`, `application-group=`, `pass-authorization=`.
    pub options: Box<AppOptions>,
}

impl Merge for AppOptions {
    fn merge(base: &Self, add: &Self) -> Self {
        AppOptions {
            group: add.group.clone().or_else(|| base.group.clone()),
            // A group's replicas go with its name: a nearer WSGIApplicationGroup without
            // replicas= does not inherit those of an enclosing one naming another group.
            replicas: if add.group.is_some() { add.replicas } else { base.replicas },
            process_group: add.process_group.clone().or_else(|| base.process_group.clone()),
            callable: add.callable.clone().or_else(|| base.callable.clone()),
            pass_authorization: add.pass_authorization.or(base.pass_authorization),
            chunked_request: add.chunked_request.or(base.chunked_request),
            script_reloading: add.script_reloading.or(base.script_reloading),
            map_head: add.map_head.or(base.map_head),
            error_override: add.error_override.or(base.error_override),
            restrict_process: add.restrict_process.clone().or_else(|| base.restrict_process.clone()),
            trusted_proxy_headers: add.trusted_proxy_headers.clone().or_else(|| base.trusted_proxy_headers.clone()),
            trusted_proxies: add.trusted_proxies.clone().or_else(|| base.trusted_proxies.clone()),
            enable_sendfile: add.enable_sendfile.or(base.enable_sendfile),
            ignore_activity: add.ignore_activity.or(base.ignore_activity),
            pass_apache_request: add.pass_apache_request.or(base.pass_apache_request),
            dispatch_script: add.dispatch_script.clone().or_else(|| base.dispatch_script.clone()),
            access_script: add.access_script.clone().or_else(|| base.access_script.clone()),
            auth_user_script: add.auth_user_script.clone().or_else(|| base.auth_user_script.clone()),
            auth_group_script: add.auth_group_script.clone().or_else(|| base.auth_group_script.clone()),
            group_authoritative: add.group_authoritative.or(base.group_authoritative),
            handler_scripts: add
                .handler_scripts
                .iter()
                .chain(base.handler_scripts.iter().filter(|b| add.handler_scripts.iter().all(|a| a.name != b.name)))
                .cloned()
                .collect(),
        }
    }
}

/// Where a `WSGIScriptAlias` or `WSGIScriptAliasMatch` sends requests.
#[derive(Debug)]
pub enum UrlMatch {
    /// A URL prefix, matched on whole path segments.
    Prefix(String),
    /// A regular expression compiled by Apache (`ap_pregcomp`) in the configuration pool.
    Regex { pattern: String, compiled: *mut apache::ap_regex_t },
}

#[derive(Debug)]
pub struct ScriptAlias {
    pub url: UrlMatch,
    /// A script file or a directory of scripts; for a regex, may hold `$1`-style references.
    pub target: String,
    pub options: AppOptions,
}

/// Per-server (main server and each virtual host) configuration.
#[derive(Debug, Default)]
pub struct ServerConfig {
    pub aliases: Vec<ScriptAlias>,
    pub options: AppOptions,
    /// Process-wide settings: only the main server's values count (`GLOBAL_ONLY` directives).
    pub python_home: Option<String>,
    pub python_path: Vec<String>,
    /// `WSGIPythonConcurrency`: 0 off, -1 auto, N fixed (main server only).
    pub python_concurrency: Option<i32>,
    /// `WSGIPythonQueueTimeout`, in milliseconds (main server only).
    pub queue_timeout_ms: Option<u64>,
    pub python_optimize: Option<i32>,
    pub dont_write_bytecode: Option<bool>,
    pub python_warnings: Vec<String>,
    /// `WSGIRestrictEmbedded On`: no Python in Apache's children at all.
    pub restrict_embedded: Option<bool>,
    pub restrict_stdin: Option<bool>,
    pub restrict_stdout: Option<bool>,
    /// `WSGIRestrictSignal` (default On).
    pub restrict_signal: Option<bool>,
    /// `WSGIDaemonProcess` groups defined in this server's own context (never inherited).
    pub daemons: Vec<DaemonSpec>,
    /// `WSGISocketPrefix`, already made absolute (main server only).
    pub socket_prefix: Option<String>,
    /// `WSGISocketRotation` (default On; main server only): see `daemon::supervisor`.
    pub socket_rotation: Option<bool>,
    /// `WSGIServerMetrics` (default Off; main server only): `mod_wsgi.server_metrics()` in
    /// Apache's children.
    pub server_metrics: Option<bool>,
    /// `WSGIPythonHashSeed` (main server only): `PYTHONHASHSEED` before Python starts.
    pub python_hash_seed: Option<String>,
    /// `WSGIPythonEggs` (main server only): `PYTHON_EGG_CACHE` in Apache's children.
    pub python_eggs: Option<String>,
    /// `WSGIDestroyInterpreter` (default On; main server only).
    pub destroy_interpreter: Option<bool>,
    /// `WSGIPerInterpreterGIL` at server scope (main server only).
    pub per_interpreter_gil: Option<GilMode>,
    /// `WSGISwitchInterval` at server scope, in seconds (main server only).
    pub switch_interval: Option<f64>,
    /// `WSGIFreeThreading` at server scope (main server only): accepted, no effect.
    pub free_threading: Option<bool>,
    /// `<WSGIInterpreterOptions>` containers, in configuration order (main server only).
    pub interpreter_options: Vec<InterpreterOptions>,
    /// `WSGITelemetryService`, `WSGITelemetryOptions`, `WSGISlowRequests` (main server only).
    pub telemetry: Telemetry,
}

/// mod_wsgi 6.1's telemetry settings, as the main server's directives set them.
#[derive(Clone, Default, Debug, PartialEq)]
pub struct Telemetry {
    /// `WSGITelemetryService unix:PATH`: the socket's path.
    pub target: Option<String>,
    /// Its `interval=` (seconds), kept when a later line omits it, as in mod_wsgi.
    pub interval: Option<f64>,
    /// `WSGISlowRequests` (seconds; 0: off).
    pub slow_requests: Option<f64>,
    /// `WSGITelemetryOptions CaptureUserAgent`.
    pub capture_user_agent: bool,
    /// `WSGITelemetryOptions SlowRequestStacks` (ours).
    pub slow_request_stacks: bool,
}

impl ServerConfig {
    /// The environ entries by which the module tells the engine how to create the
    /// interpreter of `application_group` in `process_group`: its `WSGIPerInterpreterGIL`
    /// (`abi::gil_mode`) and its other container settings (`abi::interpreter_options`), each
    /// only when not the default. For requests, dispatch scripts and daemons alike.
    pub fn interpreter_entries(&self, process_group: &str, application_group: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut entries = Vec::new();
        if let Some(value) = crate::abi::gil_mode::environ_value(self.gil_mode(process_group, application_group).to_abi()) {
            entries.push((crate::abi::gil_mode::ENVIRON_KEY.to_vec(), value.to_vec()));
        }
        let options = self.group_options(process_group, application_group);
        if !options.is_empty() {
            entries.push((crate::abi::interpreter_options::ENVIRON_KEY.to_vec(), options.encode()));
        }
        entries
    }

    /// [`resolve_group_options`] with this server's containers.
    pub fn group_options(&self, process_group: &str, application_group: &str) -> GroupOptions {
        resolve_group_options(&self.interpreter_options, process_group, application_group)
    }

    /// [`resolve_gil`] with this server's settings.
    pub fn gil_mode(&self, process_group: &str, application_group: &str) -> GilMode {
        resolve_gil(self.per_interpreter_gil, &self.interpreter_options, process_group, application_group)
    }

    /// How many interpreters serve the group: `replicas=` of the request's directory or alias
    /// (`explicit`), else of the most specific `<WSGIInterpreterOptions>`, else 1.
    pub fn replicas(&self, explicit: Option<u32>, process_group: &str, application_group: &str) -> u32 {
        if application_group.is_empty() {
            return 1;
        }
        explicit.or_else(|| resolve_replicas(&self.interpreter_options, process_group, application_group)).unwrap_or(1)
    }
}

impl Merge for ServerConfig {
    /// A virtual host's aliases come first, then the main server's, as in mod_wsgi.
    fn merge(base: &Self, add: &Self) -> Self {
        let aliases = add.aliases.iter().chain(&base.aliases).map(ScriptAlias::share).collect();
        ServerConfig {
            aliases,
            options: AppOptions::merge(&base.options, &add.options),
            python_home: add.python_home.clone().or_else(|| base.python_home.clone()),
            python_path: if add.python_path.is_empty() { base.python_path.clone() } else { add.python_path.clone() },
            python_concurrency: add.python_concurrency.or(base.python_concurrency),
            queue_timeout_ms: add.queue_timeout_ms.or(base.queue_timeout_ms),
            python_optimize: add.python_optimize.or(base.python_optimize),
            dont_write_bytecode: add.dont_write_bytecode.or(base.dont_write_bytecode),
            python_warnings: base.python_warnings.iter().chain(&add.python_warnings).cloned().collect(),
            restrict_embedded: add.restrict_embedded.or(base.restrict_embedded),
            restrict_stdin: add.restrict_stdin.or(base.restrict_stdin),
            restrict_stdout: add.restrict_stdout.or(base.restrict_stdout),
            restrict_signal: add.restrict_signal.or(base.restrict_signal),
            daemons: add.daemons.clone(),
            socket_prefix: add.socket_prefix.clone().or_else(|| base.socket_prefix.clone()),
            socket_rotation: add.socket_rotation.or(base.socket_rotation),
            server_metrics: add.server_metrics.or(base.server_metrics),
            per_interpreter_gil: add.per_interpreter_gil.or(base.per_interpreter_gil),
            switch_interval: add.switch_interval.or(base.switch_interval),
            python_hash_seed: add.python_hash_seed.clone().or_else(|| base.python_hash_seed.clone()),
            python_eggs: add.python_eggs.clone().or_else(|| base.python_eggs.clone()),
            destroy_interpreter: add.destroy_interpreter.or(base.destroy_interpreter),
            free_threading: add.free_threading.or(base.free_threading),
            // Main server only: a virtual host sees the main server's containers.
            interpreter_options: base.interpreter_options.iter().chain(&add.interpreter_options).cloned().collect(),
            // Main server only: the processes' settings.
            telemetry: base.telemetry.clone(),
        }
    }
}

impl ScriptAlias {
    /// A copy for a merged record; the compiled regex stays owned by the configuration pool.
    fn share(&self) -> ScriptAlias {
        let url = match &self.url {
            UrlMatch::Prefix(p) => UrlMatch::Prefix(p.clone()),
            UrlMatch::Regex { pattern, compiled } => UrlMatch::Regex { pattern: pattern.clone(), compiled: *compiled },
        };
        ScriptAlias { url, target: self.target.clone(), options: self.options.clone() }
    }
}

/// Per-directory (`<Directory>`, `<Location>`, `.htaccess`) configuration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DirConfig {
    pub options: AppOptions,
}

impl Merge for DirConfig {
    fn merge(base: &Self, add: &Self) -> Self {
        DirConfig { options: AppOptions::merge(&base.options, &add.options) }
    }
}

/// Moves `value` into memory owned by `pool`: it is dropped when the pool is cleared.
pub fn pool_owned<T>(pool: *mut apache::apr_pool_t, value: T) -> *mut c_void {
    unsafe extern "C" fn drop_box<T>(data: *mut c_void) -> apache::apr_status_t {
        super::trampoline::trampoline("config cleanup", 0, || {
            // SAFETY: `data` came from Box::into_raw below and the pool calls this cleanup once.
            drop(unsafe { Box::from_raw(data.cast::<T>()) });
            0
        })
    }
    let raw = Box::into_raw(Box::new(value)).cast::<c_void>();
    // SAFETY: `pool` is a live pool handed to us by Apache; the cleanup frees exactly `raw`.
    unsafe { apache::apr_pool_cleanup_register(pool, raw, Some(drop_box::<T>), Some(apache::apr_pool_cleanup_null)) };
    raw
}

/// The generic `create_*_config` shim.
pub unsafe extern "C" fn create<T: Merge + 'static>(pool: *mut apache::apr_pool_t) -> *mut c_void {
    super::trampoline::trampoline("config creation", std::ptr::null_mut(), || pool_owned(pool, T::default()))
}

/// The generic `merge_*_config` shim over a [`Merge`] implementation.
pub unsafe extern "C" fn merge<T: Merge + 'static>(pool: *mut apache::apr_pool_t, base: *mut c_void, add: *mut c_void) -> *mut c_void {
    super::trampoline::trampoline("config merge", base, || {
        // SAFETY: Apache passes two records this module created with `create::<T>`.
        let (base, add) = unsafe { (&*base.cast::<T>(), &*add.cast::<T>()) };
        pool_owned(pool, T::merge(base, add))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearer_level_wins_and_unset_inherits() {
        let base = AppOptions { group: Some(GroupSpec::Global), callable: Some("app".into()), pass_authorization: Some(true), ..Default::default() };
        let add = AppOptions { callable: Some("application2".into()), ..Default::default() };
        let merged = AppOptions::merge(&base, &add);
        assert_eq!(merged.group, Some(GroupSpec::Global));
        assert_eq!(merged.callable.as_deref(), Some("application2"));
        assert_eq!(merged.pass_authorization, Some(true));
        assert_eq!(AppOptions::merge(&AppOptions::default(), &AppOptions::default()), AppOptions::default());
    }

    #[test]
    fn restrict_process_of_the_nearer_level_replaces_the_enclosing_one() {
        let base = AppOptions { restrict_process: Some(vec!["a".into()]), ..Default::default() };
        let add = AppOptions { restrict_process: Some(vec![]), ..Default::default() };
        assert_eq!(AppOptions::merge(&base, &add).restrict_process, Some(vec![]));
        assert_eq!(AppOptions::merge(&base, &AppOptions::default()).restrict_process, Some(vec!["a".into()]));
    }

    #[test]
    fn the_most_specific_container_wins_and_global_never_gets_its_own_gil() {
        let block = |pg: Option<&str>, ag: Option<&str>, mode| InterpreterOptions {
            process_group: pg.map(str::to_string),
            application_group: ag.map(str::to_string),
            per_interpreter_gil: Some(mode),
            ..Default::default()
        };
        let blocks = vec![
            block(Some("site"), Some("a"), GilMode::Shared),
            block(None, Some("a"), GilMode::Own),
            block(Some("site"), None, GilMode::Auto),
            InterpreterOptions { application_group: Some("b".into()), ..Default::default() },
        ];
        // Both selectors beat one, whatever the order.
        assert_eq!(resolve_gil(None, &blocks, "site", "a"), GilMode::Shared);
        assert_eq!(resolve_gil(None, &blocks, "", "a"), GilMode::Own);
        assert_eq!(resolve_gil(None, &blocks, "site", "c"), GilMode::Auto);
        // A container that does not set it leaves the server value.
        assert_eq!(resolve_gil(Some(GilMode::Own), &blocks, "", "b"), GilMode::Own);
        assert_eq!(resolve_gil(None, &blocks, "", "b"), GilMode::Shared);
        assert_eq!(resolve_gil(Some(GilMode::Own), &blocks, "site", ""), GilMode::Shared);
        // Equal specificity: the later one.
        let tie = vec![block(None, Some("a"), GilMode::Own), block(None, Some("a"), GilMode::Shared)];
        assert_eq!(resolve_gil(None, &tie, "", "a"), GilMode::Shared);
        // process-group=%{GLOBAL} is Apache's own children.
        let embedded = vec![block(Some(""), None, GilMode::Own)];
        assert_eq!(resolve_gil(None, &embedded, "", "a"), GilMode::Own);
        assert_eq!(resolve_gil(None, &embedded, "site", "a"), GilMode::Shared);
    }

    #[test]
    fn replicas_come_from_the_directory_else_the_most_specific_container() {
        let block = |ag: Option<&str>, replicas| InterpreterOptions { application_group: ag.map(str::to_string), replicas, ..Default::default() };
        let server =
            ServerConfig { interpreter_options: vec![block(None, Some(4)), block(Some("a"), Some(2)), block(Some("b"), None)], ..Default::default() };
        assert_eq!(server.replicas(None, "", "a"), 2);
        // A container without replicas= leaves the less specific one's.
        assert_eq!(server.replicas(None, "", "b"), 4);
        assert_eq!(server.replicas(Some(3), "", "a"), 3);
        // %{GLOBAL} is the main interpreter: one.
        assert_eq!(server.replicas(Some(3), "", ""), 1);
        assert_eq!(ServerConfig::default().replicas(None, "site", "a"), 1);
    }

    #[test]
    fn vhost_aliases_come_before_main_server_aliases() {
        let alias = |url: &str| ScriptAlias { url: UrlMatch::Prefix(url.into()), target: "/t".into(), options: AppOptions::default() };
        let base = ServerConfig { aliases: vec![alias("/main")], python_home: Some("/opt/py".into()), ..Default::default() };
        let add = ServerConfig { aliases: vec![alias("/vhost")], ..Default::default() };
        let merged = ServerConfig::merge(&base, &add);
        let urls: Vec<_> = merged
            .aliases
            .iter()
            .map(|a| match &a.url {
                UrlMatch::Prefix(p) => p.clone(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(urls, ["/vhost", "/main"]);
        assert_eq!(merged.python_home.as_deref(), Some("/opt/py"));
    }

    #[test]
    fn group_options_layer_paths_and_take_the_most_specific_value() {
        let block = |pg: Option<&str>, ag: Option<&str>| InterpreterOptions {
            process_group: pg.map(str::to_string),
            application_group: ag.map(str::to_string),
            ..Default::default()
        };
        let blocks = vec![
            InterpreterOptions { python_path: Some("/both".into()), restrict_stdin: Some(false), ..block(Some("site"), Some("a")) },
            InterpreterOptions { python_path: Some("/app".into()), switch_interval: Some(0.01), ..block(None, Some("a")) },
            InterpreterOptions {
                python_path: Some("/site".into()),
                switch_interval: Some(0.02),
                restrict_stdin: Some(true),
                ..block(Some("site"), None)
            },
            InterpreterOptions { python_path: Some("/app-later".into()), restrict_signal: Some(false), ..block(None, Some("a")) },
        ];
        let a = resolve_group_options(&blocks, "site", "a");
        // Least specific first, configuration order among equals.
        assert_eq!(a.python_path, ["/app", "/site", "/app-later", "/both"]);
        // Equal specificity: the later container.
        assert_eq!((a.switch_interval, a.switch_interval_app_scoped), (Some(0.02), false));
        assert!(resolve_group_options(&blocks, "", "a").switch_interval_app_scoped);
        assert_eq!((a.restrict_stdin, a.restrict_stdout, a.restrict_signal), (Some(false), None, Some(false)));
        let b = resolve_group_options(&blocks, "site", "b");
        assert_eq!(b.python_path, ["/site"]);
        assert_eq!((b.switch_interval, b.switch_interval_app_scoped), (Some(0.02), false));
        assert!(resolve_group_options(&blocks, "", "b").is_empty());
        // %{GLOBAL} is selected by the empty name.
        assert_eq!(
            resolve_group_options(&[InterpreterOptions { python_path: Some("/g".into()), ..block(None, Some("")) }], "", "").python_path,
            ["/g"]
        );
    }
}
