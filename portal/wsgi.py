import os

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = get_wsgi_application()

if not (settings.SECRET_KEY_FROM_ENVIRONMENT or settings.DEBUG):
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY before serving the portal (or DJANGO_DEBUG=1 locally).")
