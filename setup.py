"""What `pip install .` builds, and where each file goes (pyproject.toml has the rest).

Three Rust artifacts, built by setuptools-rust for the Python that runs pip: the module Apache
loads (the root crate, no libpython), the engine for this Python (engine/), which the module
finds beside itself by its name, and the `mod_wsgi-express` program, installed on the
environment's PATH. The module and the engine keep their own names (`mod_wsgi.so`,
`mod_wsgi-engine-pyX.Y.so`) rather than Python's extension suffix: they are not Python
extensions, and the module looks its engines up by these names.
"""

import glob
import hashlib
import os
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools_rust import Binding, RustBin, RustExtension, build_rust

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_VERSION = "%d.%d" % sys.version_info[:2]

# Extension name (where setuptools-rust puts it) -> the file name it gets there.
FILE_NAMES = {
    "mod_wsgi_rs.server.mod_wsgi": "mod_wsgi.so",
    "mod_wsgi_rs.server.engine": "mod_wsgi-engine-py%s.so" % PYTHON_VERSION,
}


class BuildRust(build_rust):
    """setuptools-rust's build, with our file names (see FILE_NAMES)."""

    def get_dylib_ext_path(self, ext, target_fname):
        path = super().get_dylib_ext_path(ext, target_fname)
        if target_fname not in FILE_NAMES:
            # A setuptools-rust that calls this with other names would install files the
            # module cannot find: stop here rather than install them.
            raise RuntimeError("setup.py: no file name for Rust artifact %r" % target_fname)
        return os.path.join(os.path.dirname(path), FILE_NAMES[target_fname])


def preflight():
    """What the build needs besides Rust, each missing one said in one line (cargo's own
    output would bury it, after compiling the dependencies)."""
    if not (os.environ.get("APXS") or shutil.which("apxs") or shutil.which("apxs2")):
        sys.exit("error: Apache's apxs was not found: install Debian's apache2-dev "
                 "(apt-get install apache2-dev) or set APXS=/path/to/apxs")
    libdirs = [os.environ.get("LIBCLANG_PATH", "")]
    try:
        libdirs.append(subprocess.run(["llvm-config", "--libdir"], capture_output=True, text=True).stdout.strip())
    except OSError:
        pass
    libdirs += glob.glob("/usr/lib/llvm-*/lib") + ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"]
    if not any(glob.glob(os.path.join(d, "libclang*.so*")) for d in libdirs if d):
        sys.exit("error: libclang was not found (bindgen needs it to read Apache's headers): "
                 "install Debian's libclang-dev (apt-get install libclang-dev) or set LIBCLANG_PATH")
    if not shutil.which(os.environ.get("CARGO", "cargo")):
        sys.exit("error: cargo was not found: install Rust 1.80 or newer (https://rustup.rs)")


preflight()
# The engine is for the Python that runs pip, whatever PYO3_PYTHON the environment has (the
# checkout's .cargo/config.toml names Debian's, for its own builds); the module records the
# same Python as its default. (setuptools-rust keeps an existing PYO3_PYTHON.)
os.environ["PYO3_PYTHON"] = sys.executable
# Each Python gets its own cargo target directory unless one is given: a checkout's own
# target/ belongs to its scripts/build, and cargo would not notice that the same path now
# names another Python (a venv recreated in place) and could reuse an engine built for the
# other one.
if "CARGO_TARGET_DIR" not in os.environ:
    key = hashlib.sha256(("%s\n%s" % (os.path.realpath(sys.executable), sys.version)).encode()).hexdigest()[:12]
    os.environ["CARGO_TARGET_DIR"] = os.path.join(HERE, "build", "cargo-py%s-%s" % (PYTHON_VERSION, key))

LOCKED = ["--locked"]  # the crates of Cargo.lock, or a clear failure

setup(
    rust_extensions=[
        RustExtension("mod_wsgi_rs.server.mod_wsgi", path="Cargo.toml", binding=Binding.NoBinding, cargo_manifest_args=LOCKED),
        RustExtension("mod_wsgi_rs.server.engine", path="engine/Cargo.toml", binding=Binding.NoBinding, cargo_manifest_args=LOCKED),
        RustBin("mod_wsgi-express", path="Cargo.toml", cargo_manifest_args=LOCKED),
    ],
    cmdclass={"build_rust": BuildRust},
)
