# A minimal Django project: `scripts/run-example django` serves it on http://127.0.0.1:8000/
# (Debian: apt-get install python3-django; in a venv: pip install django). No database.
SECRET_KEY = 'example-only-not-secret'
DEBUG = False
ALLOWED_HOSTS = ['*']
ROOT_URLCONF = 'mysite.urls'
INSTALLED_APPS = []
MIDDLEWARE = ['django.middleware.common.CommonMiddleware']
DATABASES = {}
USE_TZ = True
