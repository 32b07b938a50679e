# A Flask application: `scripts/run-example flask` serves it on http://127.0.0.1:8000/
# (Debian: apt-get install python3-flask; in a venv: pip install flask).
import sys

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.route('/')
def index():
    return 'Hello from Flask under mod_wsgi-rs (Python %s)\n' % sys.version.split()[0]


@app.route('/echo', methods=['POST'])
def echo():
    return jsonify(received=len(request.get_data()), group=request.environ['mod_wsgi.application_group'])


# mod_wsgi looks for `application`.
application = app
