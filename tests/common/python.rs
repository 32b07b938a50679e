//! The Pythons and Python packages the tests need: an installed Python's home and engine
//! ([`python_home`]), wheels from PyPI for another Python ([`pip_install_for`]), and venvs of
//! Debian's Python with packages from PyPI, made once and kept ([`pypi_venv`],
//! [`telemetry_tools`]).

use super::*;
use std::path::{Path, PathBuf};

/// The `WSGIPythonHome` of Python `version`, or `None` (skipped) when it is not installed and
/// neither `MOD_WSGI_TEST_PYTHONS` nor `CI` says it must be.
pub fn python_home(version: &str) -> Option<String> {
    let home = format!("/opt/mod_wsgi-rs/python/{version}");
    let engine = module_path().parent().unwrap().join(format!("mod_wsgi-engine-py{version}.so"));
    if std::path::Path::new(&home).is_dir() && engine.is_file() {
        return Some(home);
    }
    let expected = std::env::var("MOD_WSGI_TEST_PYTHONS").unwrap_or_default();
    let required = std::env::var_os("CI").is_some() || expected.split_whitespace().any(|v| v == version);
    assert!(!required, "Python {version} is required here, but {home} or {} is missing: run scripts/pythons {version}", engine.display());
    eprintln!("SKIPPED: Python {version} is not installed (scripts/pythons {version})");
    None
}

/// Installs `packages` from PyPI as wheels for CPython `version` (manylinux x86_64) into
/// `target`, with whichever `python3` on PATH has pip, and makes them readable by Apache's
/// user. Panics with pip's output when that fails (PyPI must be reachable).
pub fn pip_install_for(version: &str, target: &Path, packages: &[&str]) {
    let abi = format!("cp{}", version.replace('.', ""));
    let out = std::process::Command::new("python3")
        .args(["-m", "pip", "install", "-q", "--disable-pip-version-check", "--target"])
        .arg(target)
        .args(["--only-binary=:all:", "--python-version", version, "--implementation", "cp", "--abi", &abi, "--platform", "manylinux_2_17_x86_64"])
        .args(packages)
        .output()
        .expect("python3 -m pip");
    assert!(out.status.success(), "pip install {packages:?} for Python {version} (PyPI) failed: {}", String::from_utf8_lossy(&out.stderr));
    let _ = std::process::Command::new("chmod").args(["-R", "a+rX"]).arg(target).status();
}

/// A venv of Debian's Python 3.11 with `requirements` from PyPI, made once into the test cache
/// under `name` and kept, readable by Apache's user. Its console scripts name the directory it
/// was built in: run modules with its `bin/python` instead. A failure to build it names what
/// building it needs (`needs`, such as "PyPI must be reachable").
pub fn pypi_venv(name: &str, requirements: &[&str], needs: &str) -> PathBuf {
    let venv = cache_dir(name);
    // Complete means built to the end for these requirements: `.complete` holds them, so a
    // venv kept from a run that asked for other versions under the same name is rebuilt.
    let wanted = requirements.join("\n");
    let complete = |venv: &Path| venv.join("bin/python").exists() && std::fs::read_to_string(venv.join(".complete")).is_ok_and(|had| had == wanted);
    if complete(&venv) {
        return venv;
    }
    // One builder at a time, across the threads and the processes of a test run (flock on a
    // file beside the venv): the others wait, then find it complete. A venv is built aside
    // and renamed into place, so the fast path above never sees half of one.
    let _lock = BuildLock::take(&cache_dir(&format!("{name}.lock")));
    if complete(&venv) {
        return venv;
    }
    // A build that failed in this test binary is not tried again by each waiting test (pip
    // against an unreachable PyPI takes minutes): they fail at once.
    static FAILED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    if FAILED.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|n| n == name) {
        panic!("building the venv {name} failed earlier in this test binary ({needs})");
    }
    let failed = FailedOnPanic(&FAILED, name);
    let aside = cache_dir(&format!("{name}.building"));
    // What an earlier, interrupted build left.
    let _ = std::fs::remove_dir_all(&aside);
    let _ = std::fs::remove_dir_all(&venv);
    let run = |program: &Path, args: &[&str]| {
        let out = std::process::Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{}: {e}", program.display()));
        assert!(out.status.success(), "{} {args:?} failed ({needs}):\n{}", program.display(), String::from_utf8_lossy(&out.stderr));
    };
    run(Path::new("/usr/bin/python3"), &["-m", "venv", aside.to_str().unwrap()]);
    let mut args = vec!["-m", "pip", "install", "-q", "--disable-pip-version-check"];
    args.extend_from_slice(requirements);
    run(&aside.join("bin/python"), &args);
    let _ = std::process::Command::new("chmod").args(["-R", "a+rX"]).arg(&aside).status();
    std::fs::write(aside.join(".complete"), &wanted).unwrap();
    std::fs::rename(&aside, &venv).unwrap_or_else(|e| panic!("renaming {} to {}: {e}", aside.display(), venv.display()));
    std::mem::forget(failed);
    venv
}

/// Records `name` in the list when dropped: dropped only when the build panics (it is
/// forgotten once the build succeeds).
struct FailedOnPanic<'a>(&'a std::sync::Mutex<Vec<String>>, &'a str);

impl Drop for FailedOnPanic<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(self.1.to_string());
    }
}

/// An exclusive `flock` on a file, held until dropped (or the process ends).
struct BuildLock(std::fs::File);

impl BuildLock {
    /// How long a test waits for another builder of the same venv: longer than any pip run
    /// seen here (a cold build of the largest venv takes about 3 minutes), short enough that a
    /// hung pip fails the waiting tests with a message instead of holding them to CI's limit.
    const WAIT: std::time::Duration = std::time::Duration::from_secs(20 * 60);

    fn take(path: &Path) -> BuildLock {
        let file =
            std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        use std::os::fd::AsRawFd;
        let deadline = std::time::Instant::now() + Self::WAIT;
        // SAFETY: a non-blocking flock on a descriptor this File owns.
        while unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            assert!(matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted), "flock {}: {err}", path.display());
            assert!(
                std::time::Instant::now() < deadline,
                "another process has been building the venv locked by {} for {} s: its pip looks stuck",
                path.display(),
                Self::WAIT.as_secs()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        BuildLock(file)
    }
}

impl Drop for BuildLock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: unlocks the lock taken in `take` on the descriptor this File still owns.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// The telemetry tests' tools from PyPI: mod_wsgi 6.1's ingester (`mod-wsgi-telemetry`, whose
/// parser is the wire format's specification) and Prometheus's own text-format parser.
pub fn telemetry_tools() -> PathBuf {
    pypi_venv("telemetry-tools-1", &["mod-wsgi-telemetry==1.1.0", "prometheus_client==0.26.0"], "PyPI must be reachable")
}
