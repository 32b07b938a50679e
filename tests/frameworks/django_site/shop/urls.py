import hashlib
import json

from django.http import HttpResponse, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.urls import path


def index(request):
    return HttpResponse('django index')


def json_echo(request):
    data = json.loads(request.body)
    return JsonResponse({'received': data, 'doubled': [x * 2 for x in data['numbers']]})


def form(request):
    return HttpResponse('hello %s, you are %s' % (request.POST['name'], request.POST['age']))


def set_cookie(request):
    response = HttpResponse('cookie set')
    response.set_cookie('flavour', 'oatmeal')
    return response


def get_cookie(request):
    return HttpResponse('cookie is %s' % request.COOKIES.get('flavour'))


def go_elsewhere(request):
    return HttpResponseRedirect('/django/')


def upload(request):
    digest = hashlib.sha256()
    size = 0
    while True:
        block = request.read(1 << 16)
        if not block:
            break
        digest.update(block)
        size += len(block)
    return HttpResponse('%d %s' % (size, digest.hexdigest()))


def download(request, megabytes):
    block = bytes(range(256)) * 4096  # 1 MiB
    response = StreamingHttpResponse((block for _ in range(megabytes)), content_type='application/octet-stream')
    response['Content-Length'] = str(megabytes << 20)
    return response


urlpatterns = [
    path('', index),
    path('json', json_echo),
    path('form', form),
    path('cookie/set', set_cookie),
    path('cookie/get', get_cookie),
    path('redirect', go_elsewhere),
    path('upload', upload),
    path('download/<int:megabytes>', download),
]
