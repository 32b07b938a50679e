# Runs once in every new interpreter (src/interp/group.rs), before any application code.


def setup(group, is_main, initial_environ, python_path, version, process_metrics,
          maximum_processes, threads_per_process):
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

    event_callbacks = []
    shutdown_callbacks = []

    def subscribe_events(callback):
        """Calls callback(name, **kwargs) for request_started, request_finished and
        request_exception events in this interpreter."""
        event_callbacks.append(callback)

    def subscribe_shutdown(callback):
        """Calls callback('process_stopping', **kwargs) when this interpreter ends."""
        shutdown_callbacks.append(callback)

    def server_metrics():
        """Apache scoreboard metrics are not collected (WSGIServerMetrics): None, as in
        mod_wsgi when they are off."""
        return None

    module = types.ModuleType("mod_wsgi")
    module.version = version
    module.process_group = ""
    module.application_group = group
    module.maximum_processes = maximum_processes
    module.threads_per_process = threads_per_process
    module.process_metrics = process_metrics
    module.server_metrics = server_metrics
    module.subscribe_events = subscribe_events
    module.subscribe_shutdown = subscribe_shutdown
    sys.modules["mod_wsgi"] = module
    return event_callbacks, shutdown_callbacks, fire


def fire(callbacks, name, kwargs):
    # An exception in one subscriber is reported and does not stop the others or the request.
    for callback in list(callbacks):
        try:
            callback(name, **kwargs)
        except Exception:
            import traceback
            traceback.print_exc()
