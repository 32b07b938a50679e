//! The installed module: where it is (a source build, or a `pip install` into a virtual
//! environment), the lines an existing Apache needs to load it (`module-config`,
//! `module-location`), and copying it into Apache's modules directory (`install-module`), as the
//! original's commands of those names do.

use crate::template;
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

/// `bin/../lib/python*/{site,dist}-packages/mod_wsgi_rs/server/mod_wsgi.so`.
fn pip_candidates(bin: &Path) -> Vec<PathBuf> {
    let lib = bin.join("../lib");
    let Ok(entries) = fs::read_dir(&lib) else { return Vec::new() };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("python"))
        .flat_map(|e| ["site-packages", "dist-packages"].map(|packages| e.path().join(packages).join(PACKAGE_DIR).join("mod_wsgi.so")))
        .collect();
    found.sort();
    found
}

/// The virtual environment this binary was installed into (its `bin/` has a `pyvenv.cfg`
/// beside it), for `WSGIPythonHome` when none is given, as the original prints `sys.prefix`.
pub fn venv_home() -> Option<PathBuf> {
    let exe = env::current_exe().ok()?;
    let prefix = exe.parent()?.parent()?;
    prefix.join("pyvenv.cfg").is_file().then(|| fs::canonicalize(prefix).ok()).flatten()
}

/// `module-config`: the lines to paste into an existing Apache configuration.
pub fn module_config(python_home: Option<&Path>) -> Result<String, String> {
    load_lines(&locate_module()?, python_home)
}

/// `LoadModule` for `module`, and `WSGIPythonHome` (given, else this binary's environment).
fn load_lines(module: &Path, python_home: Option<&Path>) -> Result<String, String> {
    let mut out = format!("LoadModule wsgi_module {}\n", template::quote_path(module)?);
    let home = match python_home {
        Some(home) => Some(std::path::absolute(home).map_err(|e| format!("{}: {e}", home.display()))?),
        None => venv_home(),
    };
    if let Some(home) = home {
        out.push_str(&format!("WSGIPythonHome {}\n", template::quote_path(&home)?));
    }
    Ok(out)
}

/// `install-module`: copies the module (as `mod_wsgi-rs.so`) and every engine beside it
/// (`mod_wsgi-engine-pyX.Y.so`: engines of several Pythons accumulate there, as several
/// `pip install`s into environments of different Pythons add theirs) into `modules_directory`
/// (default: Apache's), and returns the lines to load it from there.
pub fn install_module(modules_directory: Option<&Path>, python_home: Option<&Path>) -> Result<String, String> {
    let module = locate_module()?;
    let target = modules_directory.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(LIBEXECDIR));
    if !target.is_dir() {
        return Err(format!("modules directory '{}' does not exist (Apache's is {LIBEXECDIR}; pass --modules-directory)", target.display()));
    }
    let source_dir = module.parent().ok_or("the module has no directory")?;
    let mut files = vec![(module.clone(), INSTALLED_NAME.to_string())];
    for entry in fs::read_dir(source_dir).map_err(|e| format!("{}: {e}", source_dir.display()))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("mod_wsgi-engine-py") && name.ends_with(".so") {
            files.push((entry.path(), name));
        }
    }
    if files.len() == 1 {
        return Err(format!("no engine (mod_wsgi-engine-pyX.Y.so) beside {}", module.display()));
    }
    for (from, name) in &files {
        copy_into_place(from, &target.join(name))?;
    }
    load_lines(&target.join(INSTALLED_NAME), python_home)
}

/// Copies `from` to `to` through a temporary name and a rename: a running Apache keeps the
/// file it mapped, where an overwrite in place would crash its children.
fn copy_into_place(from: &Path, to: &Path) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot install {} as {}: {e}", from.display(), to.display());
    let tmp = to.with_extension(format!("so.new.{}", std::process::id()));
    fs::copy(from, &tmp).map_err(fail)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).map_err(fail)?;
    fs::rename(&tmp, to).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        fail(e)
    })
}
