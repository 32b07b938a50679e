# A Django project exercising routing, JSON, forms (with CSRF off for the test client),
# cookies, redirects, 404 and large streamed bodies.
SECRET_KEY = 'frameworks-test'
DEBUG = False
ALLOWED_HOSTS = ['*']
ROOT_URLCONF = 'shop.urls'
INSTALLED_APPS = ['django.contrib.contenttypes', 'django.contrib.auth']
MIDDLEWARE = ['django.middleware.common.CommonMiddleware']
DATABASES = {}
USE_TZ = True
DATA_UPLOAD_MAX_MEMORY_SIZE = None
