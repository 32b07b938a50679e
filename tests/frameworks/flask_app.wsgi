# A Flask application exercising routing, JSON, forms, cookies, redirects, 404 and large
# streamed bodies in both directions.
import hashlib

from flask import Flask, Response, jsonify, redirect, request, url_for

app = Flask(__name__)


@app.route('/')
def index():
    return 'flask index'


@app.route('/json', methods=['POST'])
def json_echo():
    data = request.get_json()
    return jsonify(received=data, doubled=[x * 2 for x in data['numbers']])


@app.route('/form', methods=['POST'])
def form():
    return 'hello %s, you are %s' % (request.form['name'], request.form['age'])


@app.route('/cookie/set')
def set_cookie():
    response = Response('cookie set')
    response.set_cookie('flavour', 'oatmeal')
    return response


@app.route('/cookie/get')
def get_cookie():
    return 'cookie is %s' % request.cookies.get('flavour')


@app.route('/redirect')
def go_elsewhere():
    return redirect(url_for('index'))


@app.route('/upload', methods=['POST'])
def upload():
    digest = hashlib.sha256()
    size = 0
    stream = request.stream
    while True:
        block = stream.read(1 << 16)
        if not block:
            break
        digest.update(block)
        size += len(block)
    return '%d %s' % (size, digest.hexdigest())


@app.route('/download/<int:megabytes>')
def download(megabytes):
    block = bytes(range(256)) * 4096  # 1 MiB

    def generate():
        for _ in range(megabytes):
            yield block

    return Response(generate(), mimetype='application/octet-stream',
                    headers={'Content-Length': str(megabytes << 20)})


application = app
