"""What `pip install .` builds, and where each file goes (pyproject.toml has the rest).

Three Rust artifacts, built by setuptools-rust for the Python that runs pip (it sets
PYO3_PYTHON to it): the module Apache loads (the root crate, no libpython), the engine for
this Python (engine/), which the module finds beside itself by its name, and the
`mod_wsgi-express` program, installed on the environment's PATH. The module and the engine
keep their own names (`mod_wsgi.so`, `mod_wsgi-engine-pyX.Y.so`) rather than Python's
extension suffix: they are not Python extensions, and the module looks its engines up by
these names.
"""

import os
import sys

from setuptools import setup
from setuptools_rust import Binding, RustBin, RustExtension, build_rust

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
        name = FILE_NAMES.get(target_fname)
        return os.path.join(os.path.dirname(path), name) if name else path


# The engine is for the Python that runs pip, whatever PYO3_PYTHON the environment has (the
# checkout's .cargo/config.toml names Debian's, for its own builds); the module records the
# same Python as its default.
BUILD_ENV = dict(os.environ, PYO3_PYTHON=sys.executable)

setup(
    rust_extensions=[
        RustExtension("mod_wsgi_rs.server.mod_wsgi", path="Cargo.toml", binding=Binding.NoBinding, env=BUILD_ENV),
        RustExtension("mod_wsgi_rs.server.engine", path="engine/Cargo.toml", binding=Binding.NoBinding, env=BUILD_ENV),
        RustBin("mod_wsgi-express", path="Cargo.toml", env=BUILD_ENV),
    ],
    cmdclass={"build_rust": BuildRust},
)
