import sys

from django.http import HttpResponse, JsonResponse
from django.urls import path


def index(request):
    return HttpResponse('Hello from Django under mod_wsgi-rs (Python %s)\n' % sys.version.split()[0],
                        content_type='text/plain')


def info(request):
    return JsonResponse({'path': request.path, 'script_name': request.META['SCRIPT_NAME'],
                         'group': request.META['mod_wsgi.application_group']})


urlpatterns = [path('', index), path('info/', info)]
