//! The directories tests write to: a world-readable [`TempDir`] per server (Apache's children
//! run as `nobody`), apps copied into it ([`copy_tree`]), and the cache of what tests install
//! and keep between runs ([`cache_dir`]).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A fresh world-readable directory for one server and its apps.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("mod_wsgi-rs-test-{}-{}-{}", tag, std::process::id(), n));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Replaces a file the way a deployment should (write aside, then rename), so that a
    /// reader sees the old or the new content, never a half-written file.
    pub fn replace(&self, name: &str, content: &str) -> PathBuf {
        let aside = self.write(&format!("{name}.new"), content);
        let path = self.0.join(name);
        std::fs::rename(&aside, &path).unwrap();
        path
    }

    /// Writes a world-readable file (and its directories).
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.0.join(name);
        let parent = path.parent().unwrap();
        std::fs::create_dir_all(parent).unwrap();
        let mut dir = parent.to_path_buf();
        while dir.starts_with(&self.0) {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
            if !dir.pop() {
                break;
            }
        }
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Copies a directory of test apps into a server directory, world-readable.
pub fn copy_tree(src: &Path, dir: &TempDir, under: &str) {
    for entry in std::fs::read_dir(src).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "__pycache__" {
            continue;
        }
        let rel = if under.is_empty() { name.clone() } else { format!("{under}/{name}") };
        if entry.path().is_dir() {
            copy_tree(&entry.path(), dir, &rel);
        } else {
            dir.write(&rel, &std::fs::read_to_string(entry.path()).unwrap());
        }
    }
}

/// A directory for what tests install and keep between runs (Django from PyPI, pip's venvs),
/// under the system's temporary directory rather than the checkout: Apache's children run as
/// `nobody`, who cannot reach into a checkout under a mode-700 directory.
pub fn cache_dir(name: &str) -> PathBuf {
    let base = std::env::temp_dir().join("mod_wsgi-rs-test-cache");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
    base.join(name)
}
