# The classic Django wsgi.py: setdefault() keeps whatever DJANGO_SETTINGS_MODULE the process
# environment already has, which is how a leaked environment hands site b site a's settings.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'project.settings_b')

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
