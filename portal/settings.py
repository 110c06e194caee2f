"""
Settings for the customer portal: one module, driven by environment variables.

Every variable is listed with its default in the README's configuration table. Defaults are
the safe ones (DEBUG off, HTTPS-only cookies); `make run` turns the development conveniences on.
"""

import os
import secrets
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from pythonjsonlogger.core import RESERVED_ATTRS

BASE_DIR = Path(__file__).resolve().parent.parent
# Templates, static files and translations live inside the package, so a wheel carries them.
PORTAL_DIR = Path(__file__).resolve().parent
# A business's own look: <theme>/templates and <theme>/static are searched before the portal's (docs/theming.md).
PORTAL_THEME_DIR = Path(os.environ["PORTAL_THEME_DIR"]).resolve() if os.environ.get("PORTAL_THEME_DIR") else None
# A checkout keeps its data in its own var/; an installed portal (its packages in site-packages) in
# var/ of the working directory, unless PORTAL_VAR_DIR says where (deploy/ sets it).
VAR_DIR = Path(
    os.environ.get("PORTAL_VAR_DIR")
    or (BASE_DIR / "var" if (BASE_DIR / "pyproject.toml").is_file() else Path.cwd() / "var")
)


def env_bool(name: str, default: bool, environ=os.environ) -> bool:
    value = environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# ---------------------------------------------------------------------------------------------
# Core
# ---------------------------------------------------------------------------------------------

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
# Without a key, management commands still run on a throwaway one; `check --deploy` reports it and
# portal.wsgi / portal.asgi refuse to serve with it unless DEBUG is on.
SECRET_KEY_FROM_ENVIRONMENT = bool(SECRET_KEY)
if not SECRET_KEY:
    SECRET_KEY = "insecure-" + secrets.token_urlsafe(50)

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
PORTAL_SITE_URL = os.environ.get("PORTAL_SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "console.apps.PortalAdminConfig",  # django.contrib.admin with the portal's admin site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.forms",
    "django.contrib.sites",
    "django_countries",
    "django_htmx",
    "django_tasks_db",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    "import_export",
    "portal",
    "accounts",
    "billing",
    "purchases",
    "console",  # the top layer: admin console, emails sent, home page, root URLs (docs/architecture.md)
]

MIDDLEWARE = [
    "portal.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "portal.middleware.RefuseNulMiddleware",
    "portal.middleware.SessionCookieCheckMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "billing.middleware.payment_deadline_middleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "allauth.usersessions.middleware.UserSessionsMiddleware",
    "accounts.middleware.ViewAsMiddleware",
    "accounts.middleware.CustomerLanguageMiddleware",
    "accounts.middleware.CustomerTimezoneMiddleware",
    "accounts.middleware.ActivityMiddleware",
    "portal.middleware.PrivateCacheMiddleware",
]

ROOT_URLCONF = "console.urls"
FORM_RENDERER = "portal.forms.PortalFormRenderer"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"
SITE_ID = 1

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # A theme's templates first, so it may override any page, partial or form widget (docs/theming.md).
        "DIRS": [*([PORTAL_THEME_DIR / "templates"] if PORTAL_THEME_DIR else []), PORTAL_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.tz",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.portal",
            ],
        },
    }
]

# ---------------------------------------------------------------------------------------------
# Database and cache
# ---------------------------------------------------------------------------------------------

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'portal.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "600")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Persistent connections do not help SQLite; WAL and a busy timeout let the dev server,
    # the task worker and the test live server share the file.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["TEST"] = {"NAME": None}
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # a fresh checkout has no var/ yet
elif env_bool("DATABASE_PREPARED_STATEMENTS", True):
    # PostgreSQL: parameters bound by the server, and each statement prepared once a connection has run it
    # twice, so PostgreSQL stops parsing the same few queries on every page (docs/benchmarks.md); each run
    # is still planned for its values (portal.receivers.plan_each_prepared_statement). Off (=0) behind a
    # pooler in transaction mode that cannot keep prepared statements (PgBouncer before 1.21, or without
    # max_prepared_statements).
    DATABASES["default"].setdefault("OPTIONS", {}).update({"server_side_binding": True, "prepare_threshold": 2})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    # Bounded waits, and the site keeps answering (rate limits off, a warning logged) while Redis is
    # down or frozen: portal/cache.py.
    REDIS_SOCKET_TIMEOUT = float(os.environ.get("REDIS_SOCKET_TIMEOUT", "0.5"))
    CACHES = {
        "default": {
            "BACKEND": "portal.cache.FailOpenRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
                "socket_timeout": REDIS_SOCKET_TIMEOUT,
                "RETRY_SECONDS": float(os.environ.get("REDIS_RETRY_SECONDS", "5")),
            },
        }
    }
else:
    # The database cache is shared by every worker and node, which the rate limits need.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "portal_cache"}}
# Template fragments that depend only on the code, the language and values named in their key (menus,
# navigation, unbound forms): kept in each process, as reading them from a shared cache would cost
# what rendering them does. Never for anything a save can change without changing the key.
CACHES["fragments"] = {
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "LOCATION": "portal-fragments",
    "TIMEOUT": None,
    "OPTIONS": {"MAX_ENTRIES": 2000},
}

# Fragments keyed on the data they show (unbound form fields by their values, the purchases table by its rows):
# rendered once per process for the same data, language and time zone. Apart from "fragments" so that
# per-customer entries never push out the menus; a time-zone select is ~25 kB, so at most ~25 MB a process.
CACHES["data_fragments"] = {
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "LOCATION": "portal-data-fragments",
    "TIMEOUT": None,
    "OPTIONS": {"MAX_ENTRIES": 1000},
}

# Database sessions, shared by every node, read through a cache in the same database (Django's cached_db
# engine): a signed-in request reads the session with one small query instead of a model query and a signed
# decode (~700 fewer Python calls a request, docs/benchmarks.md). A table of its own, so sessions never push
# rate-limit counters out of the default cache, and always the database, also with REDIS_URL: a session ended
# while Redis was unreachable must not come back with it.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_CACHE_ALIAS = "sessions"
CACHES["sessions"] = {
    "BACKEND": "django.core.cache.backends.db.DatabaseCache",
    "LOCATION": "portal_session_cache",
    # Culling starts above this many; a session missing from the cache is read from django_session again.
    "OPTIONS": {"MAX_ENTRIES": 100_000},
}
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(14 * 24 * 3600)))

# ---------------------------------------------------------------------------------------------
# Background tasks
# ---------------------------------------------------------------------------------------------

# The embedded default is django-tasks-db (tasks are rows in the database, `manage.py db_worker`). In
# production, RQ on Redis (`TASKS_BACKEND=rq`, `manage.py rqworker`; portal/rq.py adapts django-tasks-rq to
# Django's own tasks API). The queue's Redis should keep its data (AOF, `maxmemory-policy noeviction`),
# unlike a cache's, so it has a URL of its own; by default it is the cache's.
TASKS_BACKEND_ALIASES = {"db": "django_tasks_db.DatabaseBackend", "rq": "portal.rq.RQBackend"}
TASKS_BACKEND = os.environ.get("TASKS_BACKEND", "db")
TASKS = {"default": {"BACKEND": TASKS_BACKEND_ALIASES.get(TASKS_BACKEND, TASKS_BACKEND)}}
TASKS_ON_RQ = TASKS["default"]["BACKEND"] == TASKS_BACKEND_ALIASES["rq"]
TASKS_REDIS_URL = os.environ.get("TASKS_REDIS_URL", "") or REDIS_URL
if TASKS_ON_RQ:
    if not TASKS_REDIS_URL:
        raise ImproperlyConfigured("TASKS_BACKEND=rq needs TASKS_REDIS_URL (or REDIS_URL)")
    INSTALLED_APPS.append("django_rq")
    # Bounded waits here too: a request that enqueues while Redis is frozen gives up within the timeout
    # (the email stays in the outbox for the sweep) instead of holding its gunicorn worker.
    TASKS_REDIS_SOCKET_TIMEOUT = float(os.environ.get("TASKS_REDIS_SOCKET_TIMEOUT", "2"))
    _timeouts = f"socket_timeout={TASKS_REDIS_SOCKET_TIMEOUT}&socket_connect_timeout={TASKS_REDIS_SOCKET_TIMEOUT}"
    RQ_QUEUES = {
        # A worker raises the socket timeout above its blocking dequeue's by itself (rq's _set_connection).
        "default": {
            "URL": TASKS_REDIS_URL + ("&" if "?" in TASKS_REDIS_URL else "?") + _timeouts,
            "DEFAULT_TIMEOUT": 300,
        }
    }
    # Without django-tasks-rq's job class a worker fails every task ("'Task' object is not callable").
    # Enqueueing shares one Redis connection per process (portal.rq.SharedConnectionQueue).
    RQ = {"JOB_CLASS": "django_tasks_rq.backend.Job", "QUEUE_CLASS": "portal.rq.SharedConnectionQueue"}

# ---------------------------------------------------------------------------------------------
# Accounts (django-allauth)
# ---------------------------------------------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.PortalAuthenticationBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "portal:home"

ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
# Sign-in codes go to verified addresses only (a pending or never-proven address may be a stranger's).
ACCOUNT_FORMS = {"request_login_code": "accounts.forms.VerifiedAddressLoginCodeForm"}
USERSESSIONS_ADAPTER = "accounts.adapter.UserSessionsAdapter"
ACCOUNT_SIGNUP_OPEN = env_bool("ACCOUNT_SIGNUP_OPEN", True)
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = os.environ.get("ACCOUNT_EMAIL_VERIFICATION", "mandatory")
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_EMAIL_NOTIFICATIONS = True
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_REAUTHENTICATION_REQUIRED = True
ACCOUNT_REAUTHENTICATION_TIMEOUT = 300
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = ""
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if env_bool("DJANGO_HTTPS", True) else "http"
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "confirm_email": "1/3m/key",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "change_password": "5/m/user",
    "manage_email": "10/m/user",
    "request_login_code": "20/m/ip,3/m/key",
    # Our own: "email me a fresh hub link" on an expired link's page (accounts.views.hub_request).
    "request_hub_link": "10/m/ip,3/10m/key",
    # Our own, per account and per client. A SetupIntent (opened, or an open one reused) is what card
    # testers need from a merchant; an image upload costs up to ~0.2 s of CPU to decode (docs/security.md).
    "card_setup": "5/10m/user,20/d/user,10/10m/ip",
    "upload_avatar": "10/10m/user,20/10m/ip",
    "upload_logo": "10/10m/user,20/10m/ip",
    "change_phone": "1/m/user",
    # Our own: "email me this receipt" (customers) and "resend receipt" (staff), per receipt and per person.
    "resend_receipt": "3/10m/key,20/d/user",
    "reauthenticate": "10/m/user",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = os.environ.get("PORTAL_BUSINESS_NAME", "Customer Portal")
USERSESSIONS_TRACK_ACTIVITY = False

# ---------------------------------------------------------------------------------------------
# Email
# ---------------------------------------------------------------------------------------------


def mailer_from_url(url: str) -> dict:
    """Turn EMAIL_URL (smtp://, smtps://, file://, console:, locmem:) into a MAILERS entry."""
    parts = urlsplit(url)
    if parts.scheme == "console":
        return {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if parts.scheme == "locmem":
        return {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    if parts.scheme == "file":
        return {"BACKEND": "portal.mail.EmlFileBackend", "OPTIONS": {"file_path": unquote(parts.path)}}
    if parts.scheme in {"smtp", "smtps"}:
        query = parse_qs(parts.query)
        return {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": parts.hostname or "localhost",
                "port": parts.port or (465 if parts.scheme == "smtps" else 587),
                "username": unquote(parts.username or ""),
                "password": unquote(parts.password or ""),
                "use_ssl": parts.scheme == "smtps",
                "use_tls": parts.scheme == "smtp" and query.get("tls", ["1"])[0] != "0",
                "timeout": 20,
            },
        }
    raise ImproperlyConfigured(f"EMAIL_URL has an unknown scheme: {parts.scheme!r}")


MAILERS = {"default": mailer_from_url(os.environ.get("EMAIL_URL", f"file://{VAR_DIR / 'mail'}"))}
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Customer Portal <no-reply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# ---------------------------------------------------------------------------------------------
# Stripe
# ---------------------------------------------------------------------------------------------

STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "sk_test_localstripe")
STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", "pk_test_localstripe")
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
# Empty means Stripe itself; `make run` points this at localstripe.
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "")
STRIPE_JS_URL = os.environ.get("STRIPE_JS_URL", "https://js.stripe.com/v3/")
PAYMENT_GATEWAY = os.environ.get("PAYMENT_GATEWAY", "billing.gateways.stripe.StripeGateway")
# All Stripe calls of one request or task, retries and waits included, end within this many seconds,
# so a hanging Stripe ends in the portal's own message well before the web server kills the worker
# (deploy/gunicorn.conf.py sets the worker timeout above it).
STRIPE_REQUEST_DEADLINE_SECONDS = float(os.environ.get("STRIPE_REQUEST_DEADLINE_SECONDS", "20"))

# ---------------------------------------------------------------------------------------------
# Internationalisation
# ---------------------------------------------------------------------------------------------

LANGUAGE_CODE = "en"
# Each language's own name, so a customer who cannot read the current one still finds theirs.
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
# portal/locale/<lang>/LC_MESSAGES/django.mo is committed next to its .po (see docs/architecture.md).
LOCALE_PATHS = [PORTAL_DIR / "locale"]
TIME_ZONE = os.environ.get("PORTAL_DEFAULT_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# ---------------------------------------------------------------------------------------------
# Static and media files
# ---------------------------------------------------------------------------------------------

STATIC_URL = "/static/"
# A theme's static files are found before the portal's own (FileSystemFinder comes before the apps').
STATICFILES_DIRS = [PORTAL_THEME_DIR / "static"] if PORTAL_THEME_DIR else []
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
# Avatars are re-encoded on upload and stored under random names, so Django may serve them
# itself; a deployment with a CDN or S3 in front turns this off (media on S3 turn it off by default).
SERVE_MEDIA = env_bool("SERVE_MEDIA", not os.environ.get("MEDIA_S3_BUCKET"))
# Without a manifest (development, tests) WhiteNoise serves straight from the source folders;
# production runs collectstatic and serves hashed, compressed files.
STATIC_MANIFEST = env_bool("STATIC_MANIFEST", not DEBUG)
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if STATIC_MANIFEST
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_MANIFEST_STRICT = False


def media_storages(environ, storages: dict) -> dict:
    """STORAGES with media (avatars, the logo) in an S3 bucket when MEDIA_S3_BUCKET is set.

    For several app nodes without a shared filesystem (docs/operations.md). django-storages' S3
    backend; credentials the AWS way (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or the
    instance's role). Objects are read by browsers and email clients at their plain URL unless
    MEDIA_S3_SIGNED_URLS=1 (signed URLs expire, so the logo in an email would stop showing).
    """
    bucket = environ.get("MEDIA_S3_BUCKET", "")
    if not bucket:
        return storages
    options = {
        "bucket_name": bucket,
        "region_name": environ.get("MEDIA_S3_REGION") or None,
        "endpoint_url": environ.get("MEDIA_S3_ENDPOINT_URL") or None,  # S3-compatible services
        "custom_domain": environ.get("MEDIA_S3_CUSTOM_DOMAIN") or None,  # a CDN in front of the bucket
        "location": environ.get("MEDIA_S3_PREFIX", "media"),
        "querystring_auth": env_bool("MEDIA_S3_SIGNED_URLS", False, environ),
        "file_overwrite": False,  # random names already; never write over another node's upload
        "default_acl": None,  # the bucket's policy decides who may read
    }
    return {**storages, "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}}


STORAGES = media_storages(os.environ, STORAGES)

FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
AVATAR_MAX_BYTES = int(os.environ.get("AVATAR_MAX_BYTES", str(2 * 1024 * 1024)))
# Pixels decoded (a JPEG decodes at a reduced scale, so a 48-megapixel phone photo passes): 8 times the
# stored avatar's side is ample, and bounds one upload to ~0.2 s of CPU and ~48 MB (bench/avatar_cost.py).
AVATAR_MAX_PIXELS = int(os.environ.get("AVATAR_MAX_PIXELS", str(2048 * 2048)))
AVATAR_SIZE = 256

# ---------------------------------------------------------------------------------------------
# Security
# ---------------------------------------------------------------------------------------------

HTTPS = env_bool("DJANGO_HTTPS", True)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_SSL_REDIRECT = HTTPS and env_bool("DJANGO_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000")) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS and env_bool("DJANGO_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
if env_bool("DJANGO_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # The last X-Forwarded-For hop is the load balancer's view of the client: rate limits count per
    # client, and a client cannot reset them by sending its own X-Forwarded-For.
    ALLAUTH_TRUSTED_PROXY_COUNT = int(os.environ.get("DJANGO_PROXY_COUNT", "1"))


def stripe_js_origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


_stripe_origins = sorted(
    {stripe_js_origin(STRIPE_JS_URL), stripe_js_origin(STRIPE_API_BASE or "https://api.stripe.com")}
)
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, *_stripe_origins],
    # The nonce is sent only with a page that uses it: the brand colour's style element (base.html).
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF, *_stripe_origins],
    "frame-src": [CSP.SELF, *_stripe_origins, "https://hooks.stripe.com"],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
}

# ---------------------------------------------------------------------------------------------
# Portal
# ---------------------------------------------------------------------------------------------

PORTAL_BUSINESS_NAME = os.environ.get("PORTAL_BUSINESS_NAME", "Customer Portal")
# Customer.last_activity_at is written at most once per this many seconds per session.
ACTIVITY_INTERVAL_SECONDS = int(os.environ.get("ACTIVITY_INTERVAL_SECONDS", "300"))
# How long the sign-in link in receipt and other emails (/hub/<token>/) works.
HUB_LINK_MAX_AGE_DAYS = int(os.environ.get("HUB_LINK_MAX_AGE_DAYS", "7"))
DIRECTORY_PAGE_SIZE = 24
# Staff must have two-factor authentication on before the admin opens (they are sent to set it up).
PORTAL_STAFF_REQUIRE_2FA = env_bool("PORTAL_STAFF_REQUIRE_2FA", True)
# Sign-ups whose address nobody verified are removed this many days after joining, by the scheduled
# `manage.py remove_unverified_signups` (docs/operations.md): until then they only hold the address.
UNVERIFIED_SIGNUP_MAX_AGE_DAYS = int(os.environ.get("UNVERIFIED_SIGNUP_MAX_AGE_DAYS", "7"))
# The load benchmark's two anchor pages under /bench/ (portal/bench_views.py); never on in production.
BENCH_ANCHORS = env_bool("BENCH_ANCHORS", False)

# Contact CSV import (django-import-export): the uploaded file waits in the shared cache between the
# preview and the confirmation, so any node may serve either step; a bad row stops the whole file.
IMPORT_EXPORT_TMP_STORAGE_CLASS = "import_export.tmp_storages.CacheStorage"
IMPORT_EXPORT_USE_TRANSACTIONS = True
IMPORT_EXPORT_SKIP_ADMIN_LOG = False

# ---------------------------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------------------------

# Plain lines for a terminal (`make run`); LOG_FORMAT=json writes one JSON object a line for a log
# collector (python-json-logger). Every line carries the request id (portal.observability).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain")
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": True,
            # Django's request loggers attach the request object, whose text shows the whole path
            # (link tokens included, which the redacting filter removes from the message only).
            "reserved_attrs": [*RESERVED_ATTRS, "request", "server_time"],
        },
    },
    "filters": {
        "redact_link_tokens": {"()": "portal.logfilters.RedactLinkTokens"},
        "request_id": {"()": "portal.observability.RequestIdFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id", "redact_link_tokens"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "stripe": {"level": "WARNING"}},
}

# ---------------------------------------------------------------------------------------------
# Watching the portal: error reports, health, metrics (docs/operations.md)
# ---------------------------------------------------------------------------------------------

# Error reports to Sentry (or a Sentry-compatible service) when set; nothing is sent without it.
SENTRY_DSN = os.environ.get("SENTRY_DSN", "")
SENTRY_ENVIRONMENT = os.environ.get("SENTRY_ENVIRONMENT", "production")
SENTRY_RELEASE = os.environ.get("SENTRY_RELEASE", "")
SENTRY_TRACES_SAMPLE_RATE = float(os.environ.get("SENTRY_TRACES_SAMPLE_RATE", "0"))
# /healthz asks the task worker for a heartbeat when the last is this old, and calls it stale past
# WORKER_STALE_SECONDS (portal.queues).
WORKER_HEARTBEAT_SECONDS = int(os.environ.get("WORKER_HEARTBEAT_SECONDS", "60"))
WORKER_STALE_SECONDS = int(os.environ.get("WORKER_STALE_SECONDS", "300"))
# Prometheus metrics at /metrics (portal.metrics); with a token only `Authorization: Bearer <token>` reads them.
PROMETHEUS_METRICS = env_bool("PROMETHEUS_METRICS", False)
PROMETHEUS_METRICS_TOKEN = os.environ.get("PROMETHEUS_METRICS_TOKEN", "")
if PROMETHEUS_METRICS:
    MIDDLEWARE.insert(1, "portal.metrics.MetricsMiddleware")
    SECURE_REDIRECT_EXEMPT.append(r"^metrics$")  # scraped over plain HTTP on the private network
