# Minimal Django settings for isolation site a. Both sites name their package 'project', so a
# shared sys.modules would hand one site the other's package.
SECRET_KEY = 'isolation-test-a'
DEBUG = False
ALLOWED_HOSTS = ['*']
ROOT_URLCONF = 'project.urls'
INSTALLED_APPS = []
MIDDLEWARE = []
DATABASES = {}
USE_TZ = True
SITE_NAME = 'Site A'
