//! The installed module: where it is (a source build, or a `pip install` into a virtual
//! environment), the lines an existing Apache needs to load it (`module-config`,
//! `module-location`), and copying it into Apache's modules directory (`install-module`), as the
//! original's commands of those names do.

use crate::conf_syntax::quote_path;
use std::env;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Apache's modules directory, as `apxs -q LIBEXECDIR` reported it when this binary was built.
const LIBEXECDIR: &str = env!("MOD_WSGI_APXS_LIBEXECDIR");
/// The module's name once installed beside others: never `mod_wsgi.so`, which is the name of
/// Debian's mod_wsgi in the same directory.
const INSTALLED_NAME: &str = "mod_wsgi-rs.so";
/// Where `pip install` puts the module, under a `site-packages` (or Debian's `dist-packages`).
const PACKAGE_DIR: &str = "mod_wsgi_rs/server";

/// Where `mod_wsgi.so` is: `MOD_WSGI_MODULE`, else next to this binary as `scripts/build` lays
/// it out (`target/release/../modules`), else in the binary's own directory, else where `pip
/// install` put it for the environment whose `bin/` holds this binary
/// (`../lib/pythonX.Y/site-packages/mod_wsgi_rs/server/`).
pub fn locate_module() -> Result<PathBuf, String> {
    if let Some(path) = env::var_os("MOD_WSGI_MODULE") {
        return fs::canonicalize(&path).map_err(|e| format!("MOD_WSGI_MODULE={}: {e}", Path::new(&path).display()));
    }
    let not_found = || "cannot find mod_wsgi.so; run scripts/build, pip install mod-wsgi-rs, or set MOD_WSGI_MODULE".to_string();
    let exe = env::current_exe().map_err(|_| not_found())?;
    let dir = exe.parent().ok_or_else(not_found)?;
    let mut candidates = vec![dir.join("../modules/mod_wsgi.so"), dir.join("mod_wsgi.so")];
    candidates.extend(pip_candidates(dir));
    candidates.iter().find(|p| p.is_file()).and_then(|p| fs::canonicalize(p).ok()).ok_or_else(not_found)
}

/// `bin/../lib{,64}/pythonX.Y/{site,dist}-packages/mod_wsgi_rs/server/mod_wsgi.so`: the Python
/// this binary was built for first (a `--user` prefix may hold several).
fn pip_candidates(bin: &Path) -> Vec<PathBuf> {
    let own = format!("python{}", env!("MOD_WSGI_DEFAULT_PYTHON_VERSION"));
    let mut found = Vec::new();
    for lib in ["../lib", "../lib64"] {
        let Ok(entries) = fs::read_dir(bin.join(lib)) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("python") {
                for packages in ["site-packages", "dist-packages"] {
                    found.push((name != own, entry.path().join(packages).join(PACKAGE_DIR).join("mod_wsgi.so")));
                }
            }
        }
    }
    found.sort();
    found.into_iter().map(|(_, path)| path).collect()
}

/// The Python prefix this binary was installed into, for `WSGIPythonHome` when none is given,
/// as the original prints `sys.prefix`: a virtual environment (a `pyvenv.cfg` beside `bin/`),
/// or a Python installation (`lib/pythonX.Y/os.py` there, X.Y the Python it was built for). A
/// source build (`target/release`) is neither.
pub fn venv_home() -> Option<PathBuf> {
    let exe = env::current_exe().ok()?;
    let prefix = exe.parent()?.parent()?;
    let stdlib = prefix.join(format!("lib/python{}/os.py", env!("MOD_WSGI_DEFAULT_PYTHON_VERSION")));
    (prefix.join("pyvenv.cfg").is_file() || stdlib.is_file()).then(|| fs::canonicalize(prefix).ok()).flatten()
}

/// `module-config`: the lines to paste into an existing Apache configuration.
pub fn module_config(python_home: Option<&Path>) -> Result<String, String> {
    load_lines(&locate_module()?, python_home)
}

/// `LoadModule` for `module`, and `WSGIPythonHome` (given, else this binary's environment).
fn load_lines(module: &Path, python_home: Option<&Path>) -> Result<String, String> {
    let mut out = format!("LoadModule wsgi_module {}\n", quote_path(module)?);
    let home = match python_home {
        Some(home) => Some(std::path::absolute(home).map_err(|e| format!("{}: {e}", home.display()))?),
        None => venv_home(),
    };
    if let Some(home) = home {
        out.push_str(&format!("WSGIPythonHome {}\n", quote_path(&home)?));
    }
    Ok(out)
}

/// `install-module`: copies the module (as `mod_wsgi-rs.so`) and the engines beside it that
/// speak its interface (`mod_wsgi-engine-pyX.Y.so`: engines of several Pythons accumulate
/// there, as several `pip install`s into environments of different Pythons add theirs) into
/// `modules_directory` (default: Apache's), and returns the lines to load it from there. An
/// engine already there for another interface (an older install) is named in a warning: the
/// new module would refuse it.
pub fn install_module(modules_directory: Option<&Path>, python_home: Option<&Path>) -> Result<String, String> {
    let module = locate_module()?;
    let target = match modules_directory {
        Some(dir) => std::path::absolute(dir).map_err(|e| format!("{}: {e}", dir.display()))?,
        None => PathBuf::from(LIBEXECDIR),
    };
    if !target.is_dir() {
        return Err(match modules_directory {
            Some(_) => format!("modules directory '{}' does not exist", target.display()),
            None => format!("Apache's modules directory {LIBEXECDIR} does not exist: install Debian's apache2, or pass --modules-directory"),
        });
    }
    let source_dir = module.parent().ok_or("the module has no directory")?;
    let mut engines = Vec::new();
    for (path, name) in engines_in(source_dir)? {
        match mod_wsgi::module::engine_loader::check_abi(&path) {
            Ok(()) => engines.push((path, name)),
            Err(why) => eprintln!("mod_wsgi-express: not installing {name}: {why}"),
        }
    }
    if engines.is_empty() {
        return Err(format!("no engine (mod_wsgi-engine-pyX.Y.so) for this module beside {}", module.display()));
    }
    // Everything under temporary names first; then the engines, then the module, renamed
    // into place: a failure leaves the directory as it was (and a running Apache keeps the
    // files it mapped, where an overwrite in place would crash its children).
    let mut staged = Vec::new();
    let result = (|| {
        for (from, name) in engines.iter().map(|(p, n)| (p.as_path(), n.as_str())).chain([(module.as_path(), INSTALLED_NAME)]) {
            let to = target.join(name);
            staged.push((stage(from, &to)?, to));
        }
        for (tmp, to) in &staged {
            fs::rename(tmp, to).map_err(|e| format!("cannot install {}: {e}", to.display()))?;
        }
        Ok::<(), String>(())
    })();
    for (tmp, _) in &staged {
        let _ = fs::remove_file(tmp);
    }
    result?;
    for (path, name) in engines_in(&target)? {
        if let Err(why) = mod_wsgi::module::engine_loader::check_abi(&path) {
            eprintln!("mod_wsgi-express: warning: {name} in {} does not match the installed module: {why}", target.display());
        }
    }
    if target.join("mod_wsgi.so").is_file() || Path::new("/etc/apache2/mods-enabled/wsgi.load").exists() {
        eprintln!(
            "mod_wsgi-express: note: Apache loads one wsgi_module; if Debian's mod_wsgi is enabled (a2enmod wsgi), disable it (a2dismod wsgi) and load this one instead"
        );
    }
    load_lines(&target.join(INSTALLED_NAME), python_home)
}

/// The engine files (`mod_wsgi-engine-py*.so`) in `dir`, with their names.
fn engines_in(dir: &Path) -> Result<Vec<(PathBuf, String)>, String> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("mod_wsgi-engine-py") && name.ends_with(".so") {
            found.push((entry.path(), name));
        }
    }
    found.sort();
    Ok(found)
}

/// A copy of `from` beside `to`, under a temporary name, world-readable (Apache's children
/// load it as their user): the temporary path.
fn stage(from: &Path, to: &Path) -> Result<PathBuf, String> {
    let tmp = to.with_extension(format!("so.new.{}", std::process::id()));
    let copied = fs::copy(from, &tmp).and_then(|_| fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)));
    copied.map(|()| tmp.clone()).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("cannot install {} as {}: {e}", from.display(), to.display())
    })
}
