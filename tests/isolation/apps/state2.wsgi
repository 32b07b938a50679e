# A second script in the same group as state.wsgi: it shares the interpreter (sys.modules),
# not state.wsgi's module globals.
import json
import sys

VALUE = None


def application(environ, start_response):
    marker = sys.modules.get('isolation_marker')
    body = json.dumps({'global': VALUE, 'marker': getattr(marker, 'value', None)}).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]
