import os

from django.conf import settings
from django.http import HttpResponse
from django.urls import path


def index(request):
    return HttpResponse('%s|%s' % (settings.SITE_NAME, os.environ.get('DJANGO_SETTINGS_MODULE')), content_type='text/plain')


urlpatterns = [path('', index)]
