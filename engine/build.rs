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
    match &config.lib_dir {
        Some(dir) => println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}"),
        None => fail("pyo3-build-config found no library directory for libpython; set PYO3_PYTHON to a Python built with a shared library"),
    }
    pyo3_build_config::use_pyo3_cfgs();
    println!("cargo:rustc-env=MOD_WSGI_ENGINE_PYTHON_VERSION={}.{}", config.version.major, config.version.minor);
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    println!("cargo:warning={message}");
    std::process::exit(1);
}
