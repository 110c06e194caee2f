import os

from django.conf import settings
from django.core.asgi import get_asgi_application
from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = get_asgi_application()

if not (settings.SECRET_KEY_FROM_ENVIRONMENT or settings.DEBUG):
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY before serving the portal (or DJANGO_DEBUG=1 locally).")
