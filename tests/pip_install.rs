//! Installing with pip (issue 12): `pip install` of the project into a fresh virtual
//! environment builds the module, the engine for that environment's Python and
//! `mod_wsgi-express` (setuptools-rust, from PyPI); then, as with the original:
//! `module-config` prints the `LoadModule` line and the environment's `WSGIPythonHome`, which a
//! hand-written Apache configuration uses to serve an app in that Python; `module-location`
//! prints the module's path; `install-module` copies the module and its engine into a modules
//! directory and prints the lines to load them from there; `setup-server` writes a server root
//! whose `apachectl` starts and stops it; and `start-server` serves each of `examples/` (hello,
//! Flask, Django, with Flask and Django pip-installed into the environment) in its Python.
//!
//! Environments of Debian's Python 3.11 and of pyenv's 3.8 and 3.12 (the world-readable copies
//! `scripts/pythons` makes; skipped when not installed, required under `CI`). What is installed
//! is the sdist, built with `python -m build --sdist` from a copy of the sources (so the
//! checkout is left alone, and a file MANIFEST.in forgets fails the install); cargo builds into
//! `target/pip-build-X.Y`, apart from the build the other tests run.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const APP: &str = r#"
import sys
import mod_wsgi

def application(environ, start_response):
    body = '%s %d.%d %s' % (sys.prefix, sys.version_info[0], sys.version_info[1], environ['mod_wsgi.version'] is not None)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;

/// What a `pip install .` needs: the sources of the two crates and of the Python package.
const SOURCES: &[&str] =
    &["Cargo.toml", "Cargo.lock", "build.rs", "src", "engine", "pyproject.toml", "setup.py", "MANIFEST.in", "mod_wsgi_rs", "README.md"];

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed:\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh environment of `python` with the project pip-installed into it.
fn venv_with_package(python: &Path, tag: &str) -> PathBuf {
    let base = cache_dir(&format!("pip-{tag}"));
    let _ = std::fs::remove_dir_all(&base);
    let src = base.join("src");
    std::fs::create_dir_all(&src).unwrap();
    for item in SOURCES {
        run(Command::new("cp").arg("-a").arg(repo().join(item)).arg(&src));
    }
    let venv = base.join("venv");
    run(Command::new(python).args(["-m", "venv"]).arg(&venv));
    let started = Instant::now();
    let pip = |args: &[&str]| {
        let mut cmd = Command::new(venv.join("bin/pip"));
        cmd.args(["--disable-pip-version-check", "--no-input"]).args(args);
        cmd
    };
    run(&mut pip(&["install", "--quiet", "build"]));
    let dist = base.join("dist");
    run(Command::new(venv.join("bin/python")).args(["-m", "build", "--sdist", "--outdir"]).arg(&dist).arg(&src));
    let sdist = std::fs::read_dir(&dist).unwrap().flatten().map(|e| e.path()).find(|p| p.to_string_lossy().ends_with(".tar.gz")).expect("no sdist");
    run(pip(&["install", "--quiet"])
        .arg(&sdist)
        // One target directory per Python: setuptools-rust copies the artifact after cargo
        // released its lock, and a build for another Python in between would replace it.
        .env("CARGO_TARGET_DIR", repo().join(format!("target/pip-build-{tag}"))));
    eprintln!("pip install into {} took {:?}", venv.display(), started.elapsed());
    // Apache's children run as nobody.
    run(Command::new("chmod").args(["-R", "a+rX"]).arg(&base));
    std::fs::canonicalize(venv).unwrap()
}

fn express(venv: &Path, args: &[&str]) -> String {
    run(Command::new(venv.join("bin/mod_wsgi-express")).args(args).env_remove("MOD_WSGI_MODULE"))
}

/// `LoadModule wsgi_module "PATH"` -> PATH.
fn module_of(lines: &str) -> PathBuf {
    let line = lines.lines().find(|l| l.starts_with("LoadModule wsgi_module ")).unwrap_or_else(|| panic!("no LoadModule in {lines:?}"));
    PathBuf::from(line["LoadModule wsgi_module ".len()..].trim_matches('"'))
}

/// Serves APP under a hand-written configuration made of `lines` (module-config's or
/// install-module's output) and checks it runs in `venv`'s Python `version`.
fn serves_with(lines: &str, venv: &Path, version: &str) {
    let module = module_of(lines);
    let home = lines.lines().find(|l| l.starts_with("WSGIPythonHome ")).unwrap_or_else(|| panic!("no WSGIPythonHome in {lines:?}"));
    let dir = TempDir::new("pip-site");
    dir.write("app.wsgi", APP);
    let apache = Apache::start_with_module(dir, Mpm::Event, &module, &format!("{home}\nWSGIScriptAlias / {{dir}}/app.wsgi\n"));
    let r = apache.get("/");
    assert_eq!((r.status, r.text()), (200, format!("{} {version} True", venv.display())), "{}", apache.error_log());
    assert!(crash_lines(&apache.error_log()).is_empty(), "{}", apache.error_log());
}

/// `setup-server` from the environment, then its `apachectl start` and `stop`: APP answers
/// from the environment's Python.
fn setup_server_serves(venv: &Path, version: &str) {
    let dir = TempDir::new("pip-setup");
    let script = dir.write("app.wsgi", APP);
    let root = dir.path().join("root");
    let port = free_port();
    let out = Command::new(venv.join("bin/mod_wsgi-express"))
        .args(["setup-server", script.to_str().unwrap(), "--port", &port.to_string(), "--server-root", root.to_str().unwrap()])
        .current_dir(dir.path())
        .env_remove("MOD_WSGI_MODULE")
        .output()
        .unwrap();
    assert!(out.status.success(), "setup-server: {}", String::from_utf8_lossy(&out.stderr));
    let r = common::examples::with_apachectl(&root, port, || http(port, "GET", "/", &[], b""));
    let log = std::fs::read_to_string(root.join("error_log")).unwrap_or_default();
    assert_eq!((r.status, r.text()), (200, format!("{} {version} True", venv.display())), "{log}");
}

/// The examples, each started with `start-server` of the environment's `mod_wsgi-express`, with
/// Flask and Django pip-installed into the environment (PyPI picks the releases for its Python).
fn examples_serve(venv: &Path, version: &str) {
    run(Command::new(venv.join("bin/pip")).args(["--disable-pip-version-check", "--no-input", "install", "--quiet", "flask", "django"]));
    run(Command::new("chmod").args(["-R", "a+rX"]).arg(venv));
    let dir = TempDir::new("pip-examples");
    common::examples::serve_examples(
        &dir,
        || {
            let mut cmd = Command::new(venv.join("bin/mod_wsgi-express"));
            cmd.env_remove("MOD_WSGI_MODULE");
            cmd
        },
        Some(version),
    );
}

fn pip_install_round_trip(python: &Path, version: &str) {
    let venv = venv_with_package(python, version);
    let site = venv.join(format!("lib/python{version}/site-packages/mod_wsgi_rs/server"));
    for file in ["mod_wsgi.so".to_string(), format!("mod_wsgi-engine-py{version}.so")] {
        assert!(site.join(&file).is_file(), "pip did not install {file} in {}", site.display());
    }

    // module-config: the original's two lines, for this environment.
    let config = express(&venv, &["module-config"]);
    assert_eq!(config, format!("LoadModule wsgi_module \"{}\"\nWSGIPythonHome \"{}\"\n", site.join("mod_wsgi.so").display(), venv.display()));
    assert_eq!(express(&venv, &["module-location"]).trim(), site.join("mod_wsgi.so").display().to_string());
    // The Python side knows where too (mod_wsgi.server.where() of the original).
    // (Run from the environment: in the checkout, the sources' own package would be found.)
    let where_ = run(Command::new(venv.join("bin/python")).args(["-c", "import mod_wsgi_rs.server as s; print(s.where())"]).current_dir(&venv));
    assert_eq!(where_.trim(), site.join("mod_wsgi.so").display().to_string());
    serves_with(&config, &venv, version);

    // install-module into a modules directory of our own (not Apache's, shared with Debian's
    // mod_wsgi): the module under its own name, the engine beside it.
    let modules = TempDir::new("pip-modules");
    let installed = express(&venv, &["install-module", "--modules-directory", modules.path().to_str().unwrap()]);
    let expected_module = modules.path().join("mod_wsgi-rs.so");
    assert_eq!(module_of(&installed), expected_module, "{installed}");
    assert!(modules.path().join(format!("mod_wsgi-engine-py{version}.so")).is_file());
    run(Command::new("chmod").args(["-R", "a+rX"]).arg(modules.path()));
    serves_with(&installed, &venv, version);

    setup_server_serves(&venv, version);
    examples_serve(&venv, version);
}

#[test]
fn pip_install_into_a_debian_python_venv() {
    pip_install_round_trip(Path::new("/usr/bin/python3"), "3.11");
}

#[test]
fn pip_install_into_a_python_3_8_venv() {
    let Some(home) = python_home("3.8") else { return };
    pip_install_round_trip(&Path::new(&home).join("bin/python3"), "3.8");
}

#[test]
fn pip_install_into_a_pyenv_python_venv() {
    let Some(home) = python_home("3.12") else { return };
    pip_install_round_trip(&Path::new(&home).join("bin/python3"), "3.12");
}

#[test]
fn install_module_refuses_a_missing_directory() {
    let out = Command::new(env!("CARGO_BIN_EXE_mod_wsgi-express"))
        .args(["install-module", "--modules-directory", "/nonexistent/modules"])
        .env("MOD_WSGI_MODULE", module_path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("modules directory '/nonexistent/modules' does not exist"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_mod_wsgi-express")).args(["module-location", "extra"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
