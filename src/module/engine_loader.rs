//! Finding and loading the Python engine.
//!
//! Engines sit next to the module file, one per Python version: `mod_wsgi-engine-py3.11.so`.
//! At config time (in Apache's parent, where Python must never be loaded) this file only looks
//! at files: which Python a `WSGIPythonHome` is, and whether an engine for it exists. The
//! `dlopen` itself happens in [`load`], called from the child-init hook after fork.

use crate::abi;
use std::ffi::{c_void, CStr, CString};
use std::path::{Path, PathBuf};

/// The Python the default engine was built for (`PYO3_PYTHON` at build time).
pub const DEFAULT_PYTHON_VERSION: &str = env!("MOD_WSGI_DEFAULT_PYTHON_VERSION");

/// The engine's file name for a Python version.
pub fn engine_file_name(version: &str) -> String {
    format!("mod_wsgi-engine-py{version}.so")
}

/// The directory the module was loaded from: engines are looked up there.
pub fn module_dir() -> PathBuf {
    let mut info: libc::Dl_info = unsafe_zeroed_dl_info();
    // SAFETY: dladdr only reads the address, which is a function of this very library.
    let found = unsafe { libc::dladdr(module_dir as *const c_void, &mut info) };
    if found != 0 && !info.dli_fname.is_null() {
        // SAFETY: dladdr set dli_fname to a NUL-terminated path owned by the loader.
        let file = unsafe { CStr::from_ptr(info.dli_fname) };
        if let Some(dir) = Path::new(&*file.to_string_lossy()).parent() {
            return dir.to_path_buf();
        }
    }
    PathBuf::from(".")
}

fn unsafe_zeroed_dl_info() -> libc::Dl_info {
    libc::Dl_info { dli_fname: std::ptr::null(), dli_fbase: std::ptr::null_mut(), dli_sname: std::ptr::null(), dli_saddr: std::ptr::null_mut() }
}

/// Python versions for which an engine is installed next to the module.
pub fn installed_versions(dir: &Path) -> Vec<String> {
    let mut versions: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("mod_wsgi-engine-py")?.strip_suffix(".so").map(str::to_string)
        })
        .collect();
    versions.sort();
    versions
}

/// Which Python (`"3.11"`) a `WSGIPythonHome` directory is: a venv's `pyvenv.cfg` names it;
/// an installation has exactly one `lib/pythonX.Y/os.py`.
pub fn python_home_version(home: &Path) -> Result<String, String> {
    if !home.is_dir() {
        return Err(format!("WSGIPythonHome '{}' is not a directory", home.display()));
    }
    if let Ok(cfg) = std::fs::read_to_string(home.join("pyvenv.cfg")) {
        for line in cfg.lines() {
            let Some((key, value)) = line.split_once('=') else { continue };
            if matches!(key.trim(), "version" | "version_info") {
                let mut parts = value.trim().split('.');
                if let (Some(major), Some(minor)) = (parts.next(), parts.next()) {
                    return Ok(format!("{major}.{minor}"));
                }
            }
        }
        return Err(format!("{}/pyvenv.cfg does not name a Python version", home.display()));
    }
    let mut found: Vec<String> = std::fs::read_dir(home.join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("os.py").is_file())
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("python").map(str::to_string))
        .collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(format!("WSGIPythonHome '{}' holds no Python installation (no pyvenv.cfg, no lib/pythonX.Y/os.py)", home.display())),
        _ => Err(format!("WSGIPythonHome '{}' holds several Pythons ({}); cannot tell which one", home.display(), found.join(", "))),
    }
}

/// The engine for a `WSGIPythonHome` (or the default engine when there is none), checked to
/// speak this module's interface: the config-time check (`apache2 -t`, start-up).
pub fn engine_for(home: Option<&Path>) -> Result<PathBuf, String> {
    let path = locate(home)?;
    check_abi(&path)?;
    Ok(path)
}

/// The engine file for a `WSGIPythonHome` (or the default), or a message that names both
/// versions and how to build the missing engine. Children use this alone: the file was
/// checked at config time, and `load` checks the interface of what it loads anyway.
pub fn locate(home: Option<&Path>) -> Result<PathBuf, String> {
    let dir = module_dir();
    let version = match home {
        Some(home) => python_home_version(home)?,
        None => DEFAULT_PYTHON_VERSION.to_string(),
    };
    let path = dir.join(engine_file_name(&version));
    if path.is_file() {
        return Ok(path);
    }
    let installed = installed_versions(&dir);
    let have = if installed.is_empty() { "none".to_string() } else { installed.join(", ") };
    let wanted = match home {
        Some(home) => format!("WSGIPythonHome '{}' is Python {version}", home.display()),
        None => format!("the default Python is {version}"),
    };
    Err(format!(
        "{wanted}, but {} has no {} (engines installed: {have}); build it with PYO3_PYTHON=/path/to/python{version} scripts/build-engine",
        dir.display(),
        engine_file_name(&version)
    ))
}

/// Reads the engine's ABI marker from the file (not loading it: that would bring libpython
/// into Apache's parent), so that a stale engine stops `apache2 -t` instead of every child.
pub fn check_abi(path: &Path) -> Result<(), String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let prefix = abi::MARKER_PREFIX;
    let found = data.windows(prefix.len() + 4).find(|w| w.starts_with(prefix)).map(|w| String::from_utf8_lossy(&w[prefix.len()..]).into_owned());
    match found {
        Some(version) if version.parse::<u32>() == Ok(abi::ABI_VERSION) => Ok(()),
        Some(version) => Err(format!(
            "{} was built for engine interface {}, this module speaks {}; rebuild it (scripts/build, scripts/build-engine or scripts/pythons)",
            path.display(),
            version.trim_start_matches('0'),
            abi::ABI_VERSION
        )),
        None => Err(format!("{} is not a mod_wsgi-rs engine (no interface marker)", path.display())),
    }
}

/// Where a path of a chrooted daemon's view (`python-home=` inside `chroot=`) is in the
/// filesystem the parent and the daemon see before the `chroot`: the root followed by the
/// path. Without a root (or root `/`), the path itself.
pub fn jailed(root: Option<&str>, path: &str) -> PathBuf {
    match root {
        Some(root) if root != "/" => Path::new(root).join(path.trim_start_matches('/')),
        _ => PathBuf::from(path),
    }
}

/// A loaded engine: its static table. The library stays loaded until the process exits.
pub struct LoadedEngine {
    pub table: &'static abi::Engine,
}

/// Loads an engine in a child process. Symbols are made global so that Python extension
/// modules, which do not link libpython themselves, resolve against the engine's libpython.
///
/// This maps the engine and the libpython it links (and runs their ELF initialisers, which
/// start no Python) and calls the entry function, which only returns the engine's static
/// table: no Python code runs and no interpreter exists until the table's `init`. A `chroot=`
/// daemon relies on that: it loads the engine before the `chroot` (inside the jail the
/// engine's and libpython's host paths are gone), as root, and calls `init` only after the
/// `chroot` and the switch to its user (see `daemon/process.rs`).
pub fn load(path: &Path) -> Result<LoadedEngine, String> {
    let c_path = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| "engine path has a NUL byte".to_string())?;
    // SAFETY: c_path is a valid C string; dlopen has no other preconditions.
    let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if handle.is_null() {
        return Err(format!("cannot load {}: {}", path.display(), dl_error()));
    }
    // SAFETY: handle is a live library handle and the symbol name is NUL-terminated.
    let entry = unsafe { libc::dlsym(handle, abi::ENTRY_SYMBOL.as_ptr().cast()) };
    if entry.is_null() {
        return Err(format!("{} is not a mod_wsgi-rs engine: {}", path.display(), dl_error()));
    }
    // SAFETY: engines export ENTRY_SYMBOL with the EntryFn signature (src/engine.rs).
    let entry: abi::EntryFn = unsafe { std::mem::transmute::<*mut c_void, abi::EntryFn>(entry) };
    // SAFETY: the entry function takes no arguments and returns a pointer to a static table.
    let table = unsafe { &*entry() };
    if table.abi_version != abi::ABI_VERSION {
        return Err(format!(
            "{} speaks engine interface {}, this module speaks {}; rebuild the engine with this module",
            path.display(),
            table.abi_version,
            abi::ABI_VERSION
        ));
    }
    Ok(LoadedEngine { table })
}

fn dl_error() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated message valid until the next dl call.
    let message = unsafe { libc::dlerror() };
    if message.is_null() {
        "unknown error".into()
    } else {
        // SAFETY: checked non-null above.
        unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jailed_paths_are_under_the_root() {
        assert_eq!(jailed(Some("/srv/jail"), "/usr/lib/venv"), PathBuf::from("/srv/jail/usr/lib/venv"));
        assert_eq!(jailed(Some("/"), "/opt/py"), PathBuf::from("/opt/py"));
        assert_eq!(jailed(None, "/opt/py"), PathBuf::from("/opt/py"));
    }

    #[test]
    fn venv_version_from_pyvenv_cfg() {
        let dir = std::env::temp_dir().join(format!("mwrs-venv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pyvenv.cfg"), "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.12.1\n").unwrap();
        assert_eq!(python_home_version(&dir).unwrap(), "3.12");
        std::fs::write(dir.join("pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        assert!(python_home_version(&dir).unwrap_err().contains("does not name"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn installation_version_from_lib_dir() {
        let dir = std::env::temp_dir().join(format!("mwrs-home-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("lib/python3.9")).unwrap();
        std::fs::write(dir.join("lib/python3.9/os.py"), "").unwrap();
        assert_eq!(python_home_version(&dir).unwrap(), "3.9");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(python_home_version(Path::new("/nonexistent/x")).unwrap_err().contains("not a directory"));
    }
}
