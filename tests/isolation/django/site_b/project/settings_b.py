# Minimal Django settings for isolation site b. Both sites name their package 'project', so a
# shared sys.modules would hand one site the other's package.
SECRET_KEY = 'isolation-test-b'
DEBUG = False
ALLOWED_HOSTS = ['*']
ROOT_URLCONF = 'project.urls'
INSTALLED_APPS = []
MIDDLEWARE = []
DATABASES = {}
USE_TZ = True
SITE_NAME = 'Site B'
