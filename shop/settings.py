"""Django settings for Kami, read from environment variables (see README "Configuration").

Development needs no configuration at all: SQLite under ``var/``, tasks in-process after commit,
and secrets generated once into ``var/`` so they stay stable between runs. Production sets
``DEBUG=0`` and then must provide ``SECRET_KEY`` and ``CARDKEY_ENCRYPTION_KEY`` explicitly:
start-up stops with a clear message otherwise, because a guessed secret is worse than no shop.
"""

from __future__ import annotations

import os
from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from shop.local_secrets import local_secret

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("KAMI_VAR_DIR", BASE_DIR / "var"))

env = environ.Env()

DEBUG = env.bool("DEBUG", default=True)
TESTING = env.bool("KAMI_TESTING", default=False)


def _required_secret(name: str, generate: str) -> str:
    """Return env var ``name``; in development fall back to a stable value kept in ``var/``."""
    value = env.str(name, default="")
    if value:
        return value
    if not DEBUG:
        raise ImproperlyConfigured(
            f"{name} is not set. With DEBUG off Kami refuses to start without it; "
            f"see README 'Configuration' for how to generate one."
        )
    return local_secret(VAR_DIR, name.lower(), generate)


SECRET_KEY = _required_secret("SECRET_KEY", "django")
CARDKEY_ENCRYPTION_KEY = _required_secret("CARDKEY_ENCRYPTION_KEY", "fernet")
try:  # a malformed key must stop start-up, not the first delivery
    for _key in CARDKEY_ENCRYPTION_KEY.split(","):
        Fernet(_key.strip().encode())
except ValueError:
    raise ImproperlyConfigured(
        "CARDKEY_ENCRYPTION_KEY must be one or more comma-separated Fernet keys "
        "(32 url-safe base64-encoded bytes each)."
    ) from None
# Fingerprints de-duplicate keys; their HMAC key must outlive encryption-key rotation,
# so it is separate. Default: derived from the oldest (last-listed) encryption key.
CARDKEY_FINGERPRINT_KEY = env.str("CARDKEY_FINGERPRINT_KEY", default="")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["*"] if DEBUG else ["localhost", "127.0.0.1"])
SITE_URL = env.str(
    "SITE_URL",
    default=f"http://{env.str('HOST', default='127.0.0.1')}:{env.str('PORT', default='8000')}",
).rstrip("/")
CSRF_TRUSTED_ORIGINS = [SITE_URL]
TRUST_X_FORWARDED_FOR = env.bool("TRUST_X_FORWARDED_FOR", default=False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "shop",
    "cardpool",
    "orders",
    "commissions",
    "riskrules",
    "analytics",
]

MIDDLEWARE = [
    "core.middleware.RequestHardeningMiddleware",  # first: before anything reads the request
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "commissions.middleware.ReferralMiddleware",
]

ROOT_URLCONF = "shop.urls"
WSGI_APPLICATION = "shop.wsgi.application"
ASGI_APPLICATION = "shop.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "shop.context_processors.shop_context",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'kami.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE: every transaction takes the write lock at BEGIN, so two writers never
    # interleave and select_for_update's absence on SQLite cannot oversell.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("TEST", {})["NAME"] = env.str(
        "KAMI_TEST_DB_NAME", default="test_kami"
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker, cache, live updates ------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# A Redis that stops answering must fail a cache call in a fraction of a second, not hang a
# request thread (rate limits and alert throttles ask the cache on the buyer's path).
REDIS_SOCKET_TIMEOUTS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("KAMI_CACHE_PREFIX", default="kami"),
            "OPTIONS": dict(REDIS_SOCKET_TIMEOUTS),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: a real worker on Redis in production; in-process after commit without REDIS_URL.
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True  # a crashed worker's task is redelivered, never lost
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env.str("KAMI_TASK_QUEUE", default="kami")
# Reuse the worker's database connection across tasks; ``shop.celery`` still closes it when it
# broke or outlived CONN_MAX_AGE.
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# acks_late tasks of a crashed worker come back after this long (Redis default: one hour);
# the inbox sweeper usually re-queues unprocessed payment events well before.
# Publishing to a broker that stopped answering gives up after a few seconds instead of hanging.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 600,
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
CELERY_TIMEZONE = "UTC"
# Beat's state file is local state, rewritten on every run: under var/, never in the repository.
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "orders-expire-unpaid": {"task": "orders.tasks.expire_unpaid_orders", "schedule": 30.0},
    "orders-sweep-payment-inbox": {
        "task": "orders.tasks.sweep_unprocessed_payment_events",
        "schedule": 60.0,
    },
    "orders-deliver-backorders": {"task": "orders.tasks.deliver_all_backorders", "schedule": 60.0},
    "orders-refund-overdue-backorders": {
        "task": "orders.tasks.refund_overdue_backorders",
        "schedule": 300.0,
    },
    "riskrules-check-alerts": {"task": "riskrules.tasks.check_alerts", "schedule": 60.0},
}

# --- Auth, i18n, static ----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Only the ceiling: core.middleware refuses bodies over 1 MB (413) unless the view allows more,
# as the admin key import does (a 100,000-key paste is a few MB; Django counts a multipart
# text field against this setting, and the CSRF check reads the form before the view runs).
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024

# --- Email ------------------------------------------------------------------------------------
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Kami <shop@localhost>")

# --- Payments ---------------------------------------------------------------------------------
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
PAYMENT_PROVIDER = "stripe" if STRIPE_SECRET_KEY else "sandbox"
# The sandbox hands out keys for free: only in development unless explicitly allowed.
SANDBOX_PAYMENTS_ENABLED = DEBUG or env.bool("SANDBOX_PAYMENTS", default=False)
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="") or (
    # The sandbox signs its events with this secret, so it needs one even without Stripe.
    local_secret(VAR_DIR, "stripe_webhook_secret", "whsec")
    if DEBUG or TESTING or (SANDBOX_PAYMENTS_ENABLED and not STRIPE_SECRET_KEY)
    else ""
)
if STRIPE_SECRET_KEY and not STRIPE_WEBHOOK_SECRET:
    raise ImproperlyConfigured("STRIPE_SECRET_KEY is set but STRIPE_WEBHOOK_SECRET is not.")
STRIPE_WEBHOOK_TOLERANCE_SECONDS = 300

# --- Sessions and cookies ---------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = not DEBUG and SITE_URL.startswith("https://")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
if not DEBUG and SITE_URL.startswith("https://"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "celery.app.trace": {"level": "WARNING" if not REDIS_URL else "INFO"},
    },
}

AUTHENTICATION_BACKENDS = ["shop.auth_backends.NoDemoLoginsInProductionBackend"]
