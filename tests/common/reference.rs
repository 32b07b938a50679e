//! The reference mod_wsgi modules the tests compare with: Debian's mod_wsgi 4.9
//! ([`debian_mod_wsgi`], checked to be Debian's own) and mod_wsgi 6.1 from PyPI, built in a
//! venv of the test cache ([`mod_wsgi_6_module`]).

use super::*;
use std::path::{Path, PathBuf};

/// Where Debian's mod_wsgi 4.9 (`libapache2-mod-wsgi-py3`, installed by scripts/setup) is.
/// Our own Debian package installs the same path: load it through [`debian_mod_wsgi`].
pub const DEBIAN_MOD_WSGI: &str = "/usr/lib/apache2/modules/mod_wsgi.so";

/// Debian's mod_wsgi 4.9, checked to be Debian's: `dpkg -S` must name
/// `libapache2-mod-wsgi-py3` as its owner. mod-wsgi-rs's own package installs the same
/// path (tests/debian_package.rs swaps it in), and a comparison with it would compare ours
/// with ours.
pub fn debian_mod_wsgi() -> &'static Path {
    let path = Path::new(DEBIAN_MOD_WSGI);
    assert!(path.is_file(), "Debian's mod_wsgi is missing: scripts/setup installs libapache2-mod-wsgi-py3");
    let out = std::process::Command::new("dpkg").args(["-S", DEBIAN_MOD_WSGI]).output().expect("dpkg -S");
    let text = String::from_utf8_lossy(&out.stdout);
    let owner = text.split(':').next().unwrap_or("").trim();
    assert!(
        out.status.success() && owner == "libapache2-mod-wsgi-py3",
        "{DEBIAN_MOD_WSGI} is not Debian's mod_wsgi: it belongs to {owner:?} ({}). If that is mod-wsgi-rs \
         (an interrupted tests/debian_package.rs leaves it installed), `apt install libapache2-mod-wsgi-py3` puts Debian's back",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    path
}

/// The version of mod_wsgi from PyPI the tests compare with.
pub const MOD_WSGI_6: &str = "6.1.1";

/// mod_wsgi 6.1 from PyPI, built here against Debian's Apache for Debian's Python 3.11 (what
/// `pip install mod_wsgi` in a venv gives a new user), made once into the test cache by
/// [`pypi_venv`] and kept: the path of its module (`mod_wsgi-express module-config` names the
/// same file). A venv that already holds the module is used as it is, with or without
/// [`pypi_venv`]'s `.complete` mark (earlier test runs made it without one).
pub fn mod_wsgi_6_module() -> PathBuf {
    let name = format!("mod_wsgi-{MOD_WSGI_6}-py3.11");
    let find = |venv: &Path| -> Option<PathBuf> {
        let server = venv.join("lib/python3.11/site-packages/mod_wsgi/server");
        std::fs::read_dir(server)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("mod_wsgi-py311") && n.ends_with(".so")))
    };
    if let Some(module) = find(&cache_dir(&name)) {
        return module;
    }
    let venv = pypi_venv(&name, &[&format!("mod_wsgi=={MOD_WSGI_6}")], "PyPI, apache2-dev and python3-dev are needed");
    find(&venv).unwrap_or_else(|| panic!("no mod_wsgi module in {}", venv.display()))
}
