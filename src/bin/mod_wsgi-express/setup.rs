//! From parsed options to a running Apache: find the module, resolve paths, lay out the server
//! root, write `httpd.conf`, then replace this process with Apache.
//!
//! Apache is `exec`ed rather than spawned so that Ctrl-C and SIGTERM reach it directly and its
//! pid is the pid the caller started: no supervisor in between to forward signals or lose them.

use crate::accounts;
use crate::cli::{App, Flag, ServerOptions};
use crate::template::{self, Site};
use std::env;
use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Apache's directories, as `apxs -q` reported them when this binary was built.
const SBINDIR: &str = env!("MOD_WSGI_APXS_SBINDIR");
const LIBEXECDIR: &str = env!("MOD_WSGI_APXS_LIBEXECDIR");
const PROGNAME: &str = env!("MOD_WSGI_APXS_PROGNAME");
const MIME_TYPES: &str = "/etc/mime.types";

/// `start-server`: returns only with `--setup-only` or on error.
pub fn start_server(opts: ServerOptions) -> Result<(), String> {
    run(opts, false)
}

/// `setup-server`: the server root and its configuration, as `start-server` writes them, and
/// an `apachectl` script there that starts (in the background), stops, restarts or checks
/// that server, as the original's does.
pub fn setup_server(opts: ServerOptions) -> Result<(), String> {
    run(opts, true)
}

fn run(mut opts: ServerOptions, setup_server: bool) -> Result<(), String> {
    let module = crate::module::locate_module()?;
    resolve_paths(&mut opts)?;
    let httpd = opts.httpd_executable.clone().unwrap_or_else(|| Path::new(SBINDIR).join(PROGNAME));
    if !httpd.is_file() {
        return Err(match &opts.httpd_executable {
            Some(_) => format!("--httpd-executable '{}' is not a file", httpd.display()),
            None => format!("Apache is not at {} (where apxs said when this was built)", httpd.display()),
        });
    }
    let libexec = opts.modules_directory.clone().unwrap_or_else(|| PathBuf::from(LIBEXECDIR));

    let (server_root, is_default) = match &opts.server_root {
        Some(dir) => (absolute(dir)?, false),
        None => (PathBuf::from(format!("/tmp/mod_wsgi-{}:{}:{}", crate::daemon::host_label(&opts), opts.port, uid())), true),
    };
    prepare_root(&server_root, is_default)?;
    let document_root = document_root(&opts, &server_root)?;
    make_dir(crate::logs::directory(&opts, &server_root))?;

    // Apache can only switch users when started as root; otherwise User/Group would be errors.
    let is_root = euid() == 0;
    let user = opts.user.clone().unwrap_or_else(|| "nobody".into());
    let group = opts.group.clone().unwrap_or_else(|| "nogroup".into());
    if opts.locale.is_none() {
        opts.locale = Some(crate::locale::default_locale());
    }
    if opts.daemon_mode() {
        check_socket_path(opts.socket_prefix.as_deref().unwrap_or(&server_root))?;
    }
    if is_root {
        check_account(&opts, &server_root, &document_root, &user, &group)?;
    }
    write_scripts(&opts, &server_root)?;
    let mime_types = opts.mime_types.clone().unwrap_or_else(|| PathBuf::from(MIME_TYPES));
    let site = Site {
        opts: &opts,
        server_root: &server_root,
        module: &module,
        libexec: &libexec,
        mime_types: mime_types.is_file().then_some(mime_types.as_path()),
        run_as: is_root.then_some((user.as_str(), group.as_str())),
        uid: uid(),
        document_root: &document_root,
    };
    let conf_text = template::httpd_conf(&site)?;
    let conf = server_root.join("httpd.conf");
    // Only Apache's parent reads it, as the user who starts it; it may hold --setenv values.
    write_file(&conf, &conf_text, 0o600)?;

    let mut args = vec!["-f".to_string(), path_str(&conf)?];
    if let Some(log) = crate::logs::startup_log(&opts, &server_root) {
        args.extend(["-E".to_string(), path_str(&log)?]);
    }
    let mut summary = summary(&opts, &server_root, &conf, &document_root);
    let locale = opts.locale.clone().unwrap_or_default();
    let name = opts.process_name.clone().unwrap_or_else(|| format!("{} (mod_wsgi-express)", PROGNAME));
    let width = crate::daemon::display_name(&opts, uid()).len();
    let argv0 = format!("{name:<width$}");
    if setup_server {
        let control = server_root.join("apachectl");
        write_executable(&control, &apachectl(&httpd, &argv0, &args, &locale)?)?;
        summary.push_str(&format!("Apache Control   : {} start|stop|restart|graceful|graceful-stop|configtest\n", control.display()));
        print!("{summary}");
        return Ok(());
    }
    args.push("-DFOREGROUND".to_string());
    if opts.setup_only {
        let words: Vec<String> = std::iter::once(path_str(&httpd)?).chain(args.iter().cloned()).collect();
        summary.push_str(&format!("Apache Command   : {}\n", words.iter().map(|w| shell_quote(w)).collect::<Vec<_>>().join(" ")));
        print!("{summary}");
        return Ok(());
    }
    print!("{summary}");
    let _ = std::io::stdout().flush(); // exec discards whatever is still buffered

    // As the original's apachectl: Apache's argv[0] is "apache2 (mod_wsgi-express)" (or
    // --process-name), padded to the daemons' display name, which is written over argv and
    // would be cut short otherwise; and the server runs in the chosen locale.
    let err = Command::new(&httpd).arg0(argv0).args(&args).env("LANG", &locale).env("LC_ALL", &locale).exec();
    Err(format!("cannot run {}: {err}", httpd.display()))
}

/// The start-up summary, as the original prints it.
fn summary(opts: &ServerOptions, server_root: &Path, conf: &Path, document_root: &Path) -> String {
    let url = format!("http://{}{}", template::listen_address(&opts.host, opts.port), opts.mount_point);
    let mut summary = format!("Server URL       : {url}\n");
    if let Some(tls) = &opts.tls {
        summary.push_str(&format!("Server URL HTTPS : https://{}{}\n", template::listen_address(&opts.host, tls.port), opts.mount_point));
    }
    if opts.flag(Flag::ServerStatus) {
        summary.push_str(&format!("Server Status    : http://{}/server-status\n", template::listen_address(&opts.host, opts.port)));
    }
    summary.push_str(&format!("Server Root      : {}\nServer Conf      : {}\n", server_root.display(), conf.display()));
    if opts.serves_document_root() {
        summary.push_str(&format!("Document Root    : {}\n", document_root.display()));
    }
    summary.push_str(&format!("Error Log File   : {} ({})\n", crate::logs::error_log_display(opts, server_root), opts.log_level));
    if opts.access_log {
        let access = if crate::logs::to_terminal(opts) {
            "(terminal)".to_string()
        } else {
            crate::logs::directory(opts, server_root).join(&opts.logs.access_name).display().to_string()
        };
        summary.push_str(&format!("Access Log File  : {access}\n"));
    }
    if let Some(log) = crate::logs::startup_log(opts, server_root) {
        summary.push_str(&format!("Startup Log File : {}\n", log.display()));
    }
    let (p, t) = (opts.processes, opts.threads);
    let mode = match (opts.runs_python(), opts.embedded) {
        (false, _) => "static files only",
        (true, true) => "embedded",
        (true, false) => "daemon",
    };
    summary.push_str(&format!("Operating Mode   : {mode}\n"));
    if opts.runs_python() {
        summary.push_str(&format!("Request Capacity : {} ({p} process{} * {t} threads)\n", p * t, if p == 1 { "" } else { "es" }));
    }
    if opts.daemon_mode() {
        summary.push_str(&format!(
            "Process Group    : {}\nRequest Timeout  : {} (seconds)\n",
            crate::daemon::group_name(opts),
            opts.number("request-timeout")
        ));
        if opts.flag(Flag::ReloadOnChanges) {
            summary.push_str("Reloading        : on changes of any loaded Python file\n");
        }
    }
    summary.push_str(&format!("Locale Setting   : {}\n", opts.locale.clone().unwrap_or_default()));
    summary
}

/// Started as root, Apache's children and the daemons run as `user`: the directories they
/// need must be reachable by that account. Said now rather than as failures in the error log.
fn check_account(opts: &ServerOptions, server_root: &Path, document_root: &Path, user: &str, group: &str) -> Result<(), String> {
    let account = accounts::resolve(user, group)?;
    if opts.daemon_mode() {
        // The daemons start in the working directory and Apache's children connect to the
        // sockets.
        let sockets = opts.socket_prefix.as_deref().unwrap_or(server_root);
        accounts::check_reachable(sockets, &account, user, "a --socket-prefix (or --server-root)")?;
        let home = opts.working_directory.as_deref().ok_or("the working directory was not resolved")?;
        accounts::check_reachable(home, &account, user, "a --working-directory (default: the current directory)")?;
    }
    if opts.serves_document_root() {
        accounts::check_reachable(document_root, &account, user, "a --document-root")?;
    }
    Ok(())
}

/// The document root: `--document-root`, the directory a static site was given, the current
/// directory for a static site given none, else `htdocs` in the server root (created, empty).
/// Under it, the mount point's directories are created as the original does, for the
/// fallback rule's `<Directory>` to exist.
fn document_root(opts: &ServerOptions, server_root: &Path) -> Result<PathBuf, String> {
    let given = opts.docroot.dir.clone().or_else(|| match &opts.app {
        App::Static(dir) => Some(dir.clone().unwrap_or_else(|| PathBuf::from("."))),
        _ => None,
    });
    let dir = match given {
        Some(dir) if !dir.is_dir() => return Err(format!("document root '{}' is not a directory", dir.display())),
        Some(dir) => fs::canonicalize(&dir).map_err(|e| format!("document root '{}': {e}", dir.display()))?,
        None => {
            let htdocs = server_root.join("htdocs");
            make_dir(&htdocs)?;
            htdocs
        }
    };
    if opts.serves_document_root() && !matches!(opts.app, App::Static(_)) {
        make_dir(&crate::docroot::mount_directory(&dir, &opts.mount_point))?;
    }
    Ok(dir)
}

/// `handler.wsgi` and `resource.wsgi` in the server root, when the configuration uses them:
/// readable by all, for the daemons and children run as another user (`--user`) load them.
fn write_scripts(opts: &ServerOptions, server_root: &Path) -> Result<(), String> {
    if opts.uses_handler_script() {
        write_file(&server_root.join("handler.wsgi"), &crate::scripts::handler(opts)?, 0o644)?;
    }
    if !opts.docroot.handlers.is_empty() {
        write_file(&server_root.join("resource.wsgi"), &crate::scripts::resources(&opts.docroot.handlers)?, 0o644)?;
    }
    Ok(())
}

/// Makes every path absolute (Apache's ServerRoot would otherwise change their meaning) and
/// checks the ones that must exist, with messages naming the option.
fn resolve_paths(opts: &mut ServerOptions) -> Result<(), String> {
    resolve_entry_point(opts)?;
    for alias in &mut opts.url_aliases {
        alias.path = fs::canonicalize(&alias.path).map_err(|e| format!("--url-alias {} '{}': {e}", alias.url, alias.path.display()))?;
        alias.is_file = alias.path.is_file();
    }
    // Installed with pip into a virtual environment: that environment's Python, as the
    // original runs in the Python it was installed for.
    if opts.python_home.is_none() {
        opts.python_home = crate::module::venv_home();
    }
    if let Some(home) = &opts.python_home {
        if !home.is_dir() {
            return Err(format!("--python-home '{}' is not a directory", home.display()));
        }
        opts.python_home = Some(absolute(home)?);
    }
    opts.python_path = opts.python_path.iter().map(|p| absolute(p)).collect::<Result<_, _>>()?;
    for file in &mut opts.include_files {
        existing_file(file, "--include-file")?;
    }
    let home = match &opts.working_directory {
        Some(dir) if !dir.is_dir() => return Err(format!("--working-directory '{}' is not a directory", dir.display())),
        Some(dir) => absolute(dir)?,
        None => env::current_dir().map_err(|e| format!("cannot find the current directory (pass --working-directory): {e}"))?,
    };
    opts.working_directory = Some(home);
    for (option, dir) in [("--socket-prefix", &mut opts.socket_prefix), ("--modules-directory", &mut opts.modules_directory)] {
        if let Some(path) = dir {
            if !path.is_dir() {
                return Err(format!("{option} '{}' is not a directory", path.display()));
            }
            *path = absolute(path)?;
        }
    }
    if let Some(socket) = &mut opts.telemetry.service {
        // Relative to the current directory, as the other paths (the daemons run elsewhere).
        *socket = absolute(socket)?;
    }
    opts.telemetry.check_path()?;
    resolve_files(opts)?;
    if matches!(opts.app, App::Paste(_)) {
        check_paste_deploy(opts)?;
    }
    Ok(())
}

/// The entry point's file must exist (a module is found only when imported).
fn resolve_entry_point(opts: &mut ServerOptions) -> Result<(), String> {
    match &mut opts.app {
        App::Script(script) | App::Paste(script) => {
            if !script.is_file() {
                return Err(format!("WSGI script '{}' does not exist or is not a file", script.display()));
            }
            // Canonical, so that the <Directory> granted is the one Apache walks for the script.
            *script = fs::canonicalize(&*script).map_err(|e| format!("WSGI script '{}': {e}", script.display()))?;
        }
        App::Module(_) | App::Static(_) => {}
    }
    Ok(())
}

/// The files other options name: they must exist and are made absolute.
fn resolve_files(opts: &mut ServerOptions) -> Result<(), String> {
    if let Some(tls) = &mut opts.tls {
        for (option, file) in tls.files_mut() {
            existing_file(file, option)?;
        }
    }
    for (option, script) in opts.auth.scripts_mut() {
        existing_file(script, option)?;
    }
    for (_, script) in &mut opts.docroot.handlers {
        existing_file(script, "--add-handler")?;
    }
    for (option, file) in [
        ("--rewrite-rules", &mut opts.docroot.rewrite_rules),
        ("--mime-types", &mut opts.mime_types),
        ("--httpd-executable", &mut opts.httpd_executable),
    ] {
        if let Some(file) = file {
            existing_file(file, option)?;
        }
    }
    for path in [&mut opts.docroot.dir, &mut opts.logs.directory, &mut opts.logs.pid_file, &mut opts.python_eggs].into_iter().flatten() {
        *path = absolute(path)?;
    }
    if opts.logs.rotate {
        let default = [Path::new(SBINDIR).join("rotatelogs"), PathBuf::from("/usr/bin/rotatelogs")];
        let program = opts.logs.rotatelogs.clone().or_else(|| default.into_iter().find(|p| p.is_file()));
        let mut program = program.ok_or("--rotate-logs: cannot find Apache's rotatelogs (pass --rotatelogs-executable)")?;
        existing_file(&mut program, "--rotatelogs-executable")?;
        opts.logs.rotatelogs = Some(program);
    }
    Ok(())
}

/// Checks that `file` is a file and makes it absolute.
fn existing_file(file: &mut PathBuf, option: &str) -> Result<(), String> {
    if !file.is_file() {
        return Err(format!("{option} '{}' is not a file", file.display()));
    }
    *file = absolute(file)?;
    Ok(())
}

/// `--application-type paste` loads the file with PasteDeploy in the application's Python:
/// without it every request would fail, so its absence is said now. The Python is the
/// `--python-home`'s, else the engine's own, looking where the application will
/// (`--python-path`, the working directory, the interpreter's own path and site directories).
///
/// Nothing is imported to find it: express may run as root, and importing from the project's
/// directories (or running a `sitecustomize`, a `.pth` file's code) would run the project's
/// code as root. The interpreter is only asked for its own path, with `-I` (no `PYTHON*`
/// variables, no current directory, no user site) and `-S` (no `site`: no `.pth` file run);
/// the site directories' `.pth` files are read for their directory lines, as `site` would add
/// them, and the directories are looked at for `paste/deploy`.
fn check_paste_deploy(opts: &ServerOptions) -> Result<(), String> {
    let python = match &opts.python_home {
        Some(home) => ["bin/python3", "bin/python"].iter().map(|p| home.join(p)).find(|p| p.is_file()).unwrap_or_else(|| home.join("bin/python")),
        None => PathBuf::from(env!("MOD_WSGI_DEFAULT_PYTHON")),
    };
    let out = Command::new(&python)
        .args(["-I", "-S", "-c", INTERPRETER_PATH])
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("--application-type paste: cannot run {} to look for PasteDeploy: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "--application-type paste: {} did not say where it looks for modules: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let mut dirs: Vec<PathBuf> = opts.python_path.clone();
    dirs.extend(opts.working_directory.clone());
    dirs.extend(interpreter_dirs(&out.stdout, euid() != 0));
    if dirs.iter().any(|dir| has_paste_deploy(dir)) {
        return Ok(());
    }
    Err(format!(
        "--application-type paste needs PasteDeploy, which {} cannot import: install it (pip install PasteDeploy) into the application's Python",
        python.display()
    ))
}

/// Run by `python -I -S`: its `sys.path` (the standard library's directories), then its site
/// directories as `site` would add them (a virtual environment's first), each as `P<dir>` or
/// `S<dir>` (site) or `U<dir>` (the user's site), separated by NULs. Only the standard
/// library is imported.
const INTERPRETER_PATH: &str = r#"
import os, site, sys
out = ['P' + d for d in sys.path if d]
prefixes = [sys.prefix, sys.exec_prefix]
venv = os.path.dirname(os.path.dirname(os.path.abspath(sys.executable)))
if os.path.isfile(os.path.join(venv, 'pyvenv.cfg')):
    prefixes.insert(0, venv)
try:
    out += ['S' + d for d in site.getsitepackages(prefixes)]
except Exception:
    pass
try:
    out.append('U' + site.getusersitepackages())
except Exception:
    pass
sys.stdout.write('\0'.join(out))
"#;

/// The directories of [`INTERPRETER_PATH`]'s output, with those the site directories' `.pth`
/// files name; the user's site only when `user_site` (the daemons run as this user).
fn interpreter_dirs(output: &[u8], user_site: bool) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut dirs = Vec::new();
    for entry in output.split(|b| *b == 0).filter(|e| e.len() > 1) {
        let dir = PathBuf::from(std::ffi::OsStr::from_bytes(&entry[1..]));
        match entry[0] {
            b'P' => dirs.push(dir),
            b'S' => {
                dirs.extend(pth_dirs(&dir));
                dirs.push(dir);
            }
            b'U' if user_site => {
                dirs.extend(pth_dirs(&dir));
                dirs.push(dir);
            }
            _ => {}
        }
    }
    dirs
}

/// The directories the `.pth` files of a site directory add, as `site.addpackage` reads them
/// (their `import` lines, which it would run, are skipped).
fn pth_dirs(site_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(site_dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "pth")).collect();
    files.sort();
    let mut dirs = Vec::new();
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else { continue };
        for line in text.lines() {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') || line.starts_with("import ") || line.starts_with("import\t") {
                continue;
            }
            dirs.push(site_dir.join(line));
        }
    }
    dirs
}

/// Whether `paste.deploy` would be found in `dir` (a package or a module).
fn has_paste_deploy(dir: &Path) -> bool {
    let paste = dir.join("paste");
    paste.join("deploy").join("__init__.py").is_file() || paste.join("deploy.py").is_file()
}

/// The daemon sockets are `DIR/wsgi.PID.GENERATION.N.sock`; a Unix socket path has at most
/// 107 bytes. 24 bytes cover the suffix (a 7-digit pid, generations and groups in the
/// thousands), so the check errs on the safe side.
fn check_socket_path(dir: &Path) -> Result<(), String> {
    let prefix = dir.join("wsgi");
    let len = prefix.as_os_str().len() + 24;
    if len > 107 {
        return Err(format!(
            "daemon sockets under {} would have paths of up to {len} bytes, over the limit of 107: pass a shorter --socket-prefix (or --server-root)",
            dir.display()
        ));
    }
    Ok(())
}

/// Creates the server root 0755 (children running as another user must traverse it) or checks
/// an existing one. The default lives in the shared /tmp under a predictable name, so there it
/// is created without following anything (`mkdir`, not the recursive kind, which accepts
/// whatever is there), and then, created or found, must be a real directory (not a symlink)
/// owned by us and writable by nobody else, or another local user could have planted it (and
/// with it our config and logs).
fn prepare_root(root: &Path, is_default: bool) -> Result<(), String> {
    if is_default {
        return prepare_shared_root(root);
    }
    match fs::symlink_metadata(root) {
        Ok(_) if root.is_dir() => Ok(()),
        Ok(_) => Err(format!("server root {} exists and is not a directory", root.display())),
        Err(e) if e.kind() == ErrorKind::NotFound => make_dir(root),
        Err(e) => Err(format!("server root {}: {e}", root.display())),
    }
}

/// [`prepare_root`] for the default server root, in the shared /tmp.
fn prepare_shared_root(root: &Path) -> Result<(), String> {
    let created = match fs::DirBuilder::new().mode(0o755).create(root) {
        Ok(()) => true,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => false,
        Err(e) => return Err(format!("cannot create {}: {e}", root.display())),
    };
    let refuse = |why: &str| {
        format!(
            "refusing to use server root {}: {why}; it must be a directory owned by you and writable only by you: remove it or pass --server-root",
            root.display()
        )
    };
    // Opened without following a symlink, then checked and changed through that descriptor:
    // what is checked is what is used.
    let dir = fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY | libc::O_CLOEXEC).open(root).map_err(|e| {
        match e.raw_os_error() {
            // Linux says ENOTDIR for a symlink opened with both flags, ELOOP with O_NOFOLLOW alone.
            Some(libc::ELOOP | libc::ENOTDIR) if fs::symlink_metadata(root).is_ok_and(|m| m.file_type().is_symlink()) => {
                refuse("it is a symbolic link")
            }
            Some(libc::ELOOP | libc::ENOTDIR) => refuse("it is not a directory"),
            _ => format!("server root {}: {e}", root.display()),
        }
    })?;
    let meta = dir.metadata().map_err(|e| format!("server root {}: {e}", root.display()))?;
    if meta.uid() != euid() {
        return Err(refuse(&format!("it belongs to user id {}", meta.uid())));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(refuse(&format!("others may write to it (mode {:o})", meta.mode() & 0o7777)));
    }
    if created {
        // The umask may have taken the search bits Apache's children need.
        dir.set_permissions(fs::Permissions::from_mode(0o755)).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    }
    Ok(())
}

/// Creates a directory (and its parents) 0755 regardless of the umask; an existing one is left
/// alone, its permissions are the owner's business.
fn make_dir(dir: &Path) -> Result<(), String> {
    if dir.is_dir() {
        return Ok(());
    }
    let fail = |e: std::io::Error| format!("cannot create {}: {e}", dir.display());
    fs::DirBuilder::new().recursive(true).mode(0o755).create(dir).map_err(fail)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(fail)
}

/// Writes a file with `mode` regardless of the umask, replacing any old one atomically (a
/// reader never sees it half written, nor with another mode).
fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let tmp = path.with_extension("express.tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp).map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(fail)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(fail)?;
    fs::rename(&tmp, path).map_err(fail)
}

/// The `apachectl` of `setup-server`: Apache with the configuration and locale `start-server`
/// would use, `-k` the command (in the background: Apache daemonizes), `configtest` as `-t`.
fn apachectl(httpd: &Path, argv0: &str, args: &[String], locale: &str) -> Result<String, String> {
    let words: Vec<String> = args.iter().map(|w| shell_quote(w)).collect();
    Ok(format!(
        "#!/bin/bash\n\
         # Generated by mod_wsgi-express setup-server.\n\
         HTTPD={}\n\
         export LANG={locale} LC_ALL={locale}\n\
         case \"$1\" in\n\
         \x20   start|stop|restart|graceful|graceful-stop) exec -a {} \"$HTTPD\" {} -k \"$1\" ;;\n\
         \x20   configtest) exec \"$HTTPD\" {} -t ;;\n\
         \x20   *) echo \"usage: $0 start|stop|restart|graceful|graceful-stop|configtest\" >&2; exit 2 ;;\n\
         esac\n",
        shell_quote(&path_str(httpd)?),
        shell_quote(argv0),
        words.join(" "),
        words.join(" "),
        locale = shell_quote(locale),
    ))
}

fn write_executable(path: &Path, text: &str) -> Result<(), String> {
    write_file(path, text, 0o755)
}

fn absolute(path: &Path) -> Result<PathBuf, String> {
    std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn path_str(path: &Path) -> Result<String, String> {
    crate::conf_syntax::utf8(path).map(str::to_string)
}

/// Quotes a word for a POSIX shell, only when needed, so the printed command can be pasted.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "/._-:=+,@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Real user id: names the default server root, as the original's `os.getuid()` does.
fn uid() -> u32 {
    // SAFETY: getuid takes no arguments, cannot fail and touches no memory of ours.
    unsafe { libc::getuid() }
}

/// Effective user id: what Apache itself checks before switching to `User`.
fn euid() -> u32 {
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temporary directory, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let dir = env::temp_dir().join(format!("express-unit-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_shared_server_root_must_be_a_directory_of_ours_writable_only_by_us() {
        let d = Scratch::new("root");
        let mode = |p: &Path| fs::symlink_metadata(p).unwrap().mode() & 0o7777;
        // Created, 0755 whatever the umask.
        let root = d.0.join("new");
        prepare_root(&root, true).unwrap();
        assert_eq!(mode(&root), 0o755);
        // Found again: used as it is.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).unwrap();
        prepare_root(&root, true).unwrap();
        assert_eq!(mode(&root), 0o700, "an existing root's mode is its owner's business");
        // Writable by others, a symlink (even to a good directory), a file: refused.
        let open = d.0.join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(prepare_root(&open, true).unwrap_err().contains("others may write"));
        let link = d.0.join("link");
        std::os::unix::fs::symlink(&root, &link).unwrap();
        assert!(prepare_root(&link, true).unwrap_err().contains("symbolic link"));
        let file = d.write("file", "");
        assert!(prepare_root(&file, true).unwrap_err().contains("not a directory"));
        // Another user's.
        if euid() == 0 {
            let theirs = d.0.join("theirs");
            fs::create_dir(&theirs).unwrap();
            std::os::unix::fs::chown(&theirs, Some(65534), None).unwrap();
            assert!(prepare_root(&theirs, true).unwrap_err().contains("belongs to user id 65534"));
        }
        // Under a directory that does not exist: not created (/tmp is always there).
        assert!(prepare_root(&d.0.join("a/b"), true).unwrap_err().contains("cannot create"));
    }

    #[test]
    fn paste_deploy_is_found_by_its_files() {
        let d = Scratch::new("paste");
        d.write("pkg/paste/deploy/__init__.py", "");
        d.write("mod/paste/deploy.py", "");
        d.write("none/paste/__init__.py", "");
        assert!(has_paste_deploy(&d.0.join("pkg")) && has_paste_deploy(&d.0.join("mod")));
        assert!(!has_paste_deploy(&d.0.join("none")) && !has_paste_deploy(&d.0.join("missing")));
    }

    #[test]
    fn site_directories_add_their_pth_directories_without_running_them() {
        let d = Scratch::new("pth");
        d.write("site/a.pth", "# a comment\n\nextra\nimport os; os.system('touch ran')\n/abs/dir\n");
        let site = d.0.join("site");
        assert_eq!(pth_dirs(&site), [site.join("extra"), PathBuf::from("/abs/dir")]);
        let output = format!("P/usr/lib/python3.11\0S{}\0U/home/u/.local/lib/python3.11/site-packages", site.display());
        let dirs = interpreter_dirs(output.as_bytes(), false);
        assert_eq!(dirs, [PathBuf::from("/usr/lib/python3.11"), site.join("extra"), PathBuf::from("/abs/dir"), site.clone()]);
        let dirs = interpreter_dirs(output.as_bytes(), true);
        assert_eq!(dirs.last(), Some(&PathBuf::from("/home/u/.local/lib/python3.11/site-packages")));
    }

    #[test]
    fn the_interpreter_says_its_path_without_the_current_directory() {
        let out = Command::new(env!("MOD_WSGI_DEFAULT_PYTHON")).args(["-I", "-S", "-c", INTERPRETER_PATH]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let dirs = interpreter_dirs(&out.stdout, true);
        assert!(dirs.iter().any(|d| d.join("os.py").is_file()), "no standard library in {dirs:?}");
        assert!(dirs.iter().all(|d| d.is_absolute()), "{dirs:?}");
    }
}
