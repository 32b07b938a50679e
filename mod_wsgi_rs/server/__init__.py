"""Where pip put the Apache module (``mod_wsgi.so``) and the engine for this Python
(``mod_wsgi-engine-pyX.Y.so``), as ``mod_wsgi.server`` of the original package does."""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


def where():
    """The path of the Apache module: what ``mod_wsgi-express module-location`` prints."""
    return os.path.join(_HERE, "mod_wsgi.so")


def engine():
    """The path of the engine for the running Python."""
    return os.path.join(_HERE, "mod_wsgi-engine-py%d.%d.so" % sys.version_info[:2])
