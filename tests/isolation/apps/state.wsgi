# Reports (and, with ?set=VALUE, changes) per-interpreter state: a module global, a
# sys.modules entry, os.environ and atexit registrations. The same file is mounted in several
# application groups; each group must see only its own changes.
import ctypes
import json
import os
import sys
import threading
import types

VALUE = None


def interpreter_id():
    api = ctypes.pythonapi
    api.PyInterpreterState_Get.restype = ctypes.c_void_p
    api.PyInterpreterState_GetID.argtypes = [ctypes.c_void_p]
    api.PyInterpreterState_GetID.restype = ctypes.c_int64
    return api.PyInterpreterState_GetID(api.PyInterpreterState_Get())


def gilstate_is_current():
    # True when PyGILState_* on this OS thread would use the thread state running us, which C
    # extensions in %{GLOBAL} rely on.
    api = ctypes.pythonapi
    api.PyGILState_GetThisThreadState.restype = ctypes.c_void_p
    api.PyThreadState_Get.restype = ctypes.c_void_p
    return api.PyGILState_GetThisThreadState() == api.PyThreadState_Get()


def application(environ, start_response):
    global VALUE
    query = environ.get('QUERY_STRING', '')
    if query.startswith('set='):
        VALUE = query[4:]
        marker = types.ModuleType('isolation_marker')
        marker.value = VALUE
        sys.modules['isolation_marker'] = marker
        os.environ['DJANGO_SETTINGS_MODULE'] = VALUE
        sys.path.append('/isolation/' + VALUE)
    marker = sys.modules.get('isolation_marker')
    body = json.dumps({
        'global': VALUE,
        'marker': getattr(marker, 'value', None),
        'environ': os.environ.get('DJANGO_SETTINGS_MODULE'),
        'paths': [p for p in sys.path if p.startswith('/isolation/')],
        'interpreter': interpreter_id(),
        'gilstate_is_current': gilstate_is_current(),
        'group': environ['mod_wsgi.application_group'],
        'thread': threading.get_ident(),
    }).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]
