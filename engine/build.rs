//! Build script of the Python engine.
//!
//! The interpreter is `PYO3_PYTHON` (Debian's `/usr/bin/python3` unless set; see
//! `.cargo/config.toml`), resolved by pyo3-build-config exactly as pyo3-ffi resolves it, so the
//! engine and its FFI agree. pyo3-ffi links libpython; here we add an rpath to that libpython's
//! directory so a child finds it without `LD_LIBRARY_PATH`, emit pyo3's cumulative `Py_3_x` cfgs,
//! and record the version the engine is named after.

fn main() {
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    let config = pyo3_build_config::get();
    if !config.shared {
        fail(&format!(
            "{} has no shared libpython; the engine must link one (Debian: apt-get install libpython3-dev; pyenv: PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install)",
            config.executable.as_deref().unwrap_or("the selected Python")
        ));
    }
    match runtime_lib_dir(config) {
        Some(dir) => println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}"),
        None => fail("pyo3-build-config found no library directory for libpython; set PYO3_PYTHON to a Python built with a shared library"),
    }
    pyo3_build_config::use_pyo3_cfgs();
    println!("cargo:rustc-env=MOD_WSGI_ENGINE_PYTHON_VERSION={}.{}", config.version.major, config.version.minor);
}

/// Where the child will find libpython: the interpreter's own `lib/` when it holds libpython
/// (a relocated copy, such as the world-readable copies `scripts/pythons` makes of pyenv's
/// interpreters, whose sysconfig still names the original, unreadable build directory),
/// otherwise sysconfig's LIBDIR (Debian's /usr/lib/x86_64-linux-gnu).
fn runtime_lib_dir(config: &pyo3_build_config::InterpreterConfig) -> Option<String> {
    let own = config.executable.as_deref().and_then(|exe| {
        let out = std::process::Command::new(exe).args(["-c", "import sys; print(sys.base_prefix)"]).output().ok()?;
        let lib = std::path::Path::new(String::from_utf8_lossy(&out.stdout).trim()).join("lib");
        let has_libpython = std::fs::read_dir(&lib).ok()?.flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("libpython") && name.contains(".so")
        });
        has_libpython.then(|| lib.display().to_string())
    });
    own.or_else(|| config.lib_dir.clone())
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    println!("cargo:warning={message}");
    std::process::exit(1);
}
