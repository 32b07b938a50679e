"""The WSGI entry point (WSGIScriptAlias / .../benchsite/wsgi.py). /__metrics__ is answered here,
before Django, with mod_wsgi.process_metrics() (asked only of mod_wsgi-rs by bench/gil.sh)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'benchsite.settings')

from django.core.wsgi import get_wsgi_application  # noqa: E402

django_application = get_wsgi_application()


def application(environ, start_response):
    if environ.get('PATH_INFO') == '/__metrics__':
        import mod_wsgi
        body = json.dumps(mod_wsgi.process_metrics()).encode()
        start_response('200 OK', [('Content-Type', 'application/json'),
                                  ('Content-Length', str(len(body)))])
        return [body]
    return django_application(environ, start_response)
