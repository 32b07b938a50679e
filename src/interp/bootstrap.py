# Runs once in every new interpreter (src/interp/group.rs), before any application code.


def setup(group, is_main, initial_environ, python_path, version, process_metrics):
    import os
    import site
    import sys
    import types

    if is_main:
        # threading records the thread that first imports it as the main thread, and waits for
        # that thread at finalisation: make it the thread that starts (and ends) Python here.
        import threading  # noqa: F401
    else:
        # CPython fills a new sub-interpreter's os.environ from the process environment as it
        # is now, which includes whatever another group's application put there (for example
        # DJANGO_SETTINGS_MODULE). Start from the environment the child started with instead.
        # Only the mapping is replaced: the process environment itself is left alone.
        data = os.environ._data
        data.clear()
        for key, value in initial_environ:
            data[os.environ.encodekey(os.fsdecode(key))] = os.environ.encodevalue(os.fsdecode(value))

    for path in python_path:
        site.addsitedir(path)

    module = types.ModuleType("mod_wsgi")
    module.version = version
    module.process_group = ""
    module.application_group = group
    module.process_metrics = process_metrics
    sys.modules["mod_wsgi"] = module
