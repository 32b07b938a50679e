# The smallest WSGI application: served by `scripts/run-example` on http://127.0.0.1:8000/.
import sys


def application(environ, start_response):
    body = ('Hello World! (Python %s, application group %r)\n' % (
        sys.version.split()[0], environ['mod_wsgi.application_group'])).encode()
    start_response('200 OK', [('Content-Type', 'text/plain; charset=utf-8'),
                              ('Content-Length', str(len(body)))])
    return [body]
