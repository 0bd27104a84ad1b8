"""Django settings for Kami, read from environment variables (see README "Configuration").

The defaults are production's: ``DEBUG`` is off unless the environment says ``DEBUG=1`` or the
checkout carries the development marker ``make run`` writes (``shop.devmode``). Production must
then provide ``SECRET_KEY`` and ``CARDKEY_ENCRYPTION_KEY`` explicitly: start-up stops with a
clear message otherwise, because a guessed secret is worse than no shop. Development needs no
configuration at all: SQLite under ``var/``, tasks in-process after commit, and secrets
generated once into ``var/`` so they stay stable between runs.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from shop.devmode import default_allowed_hosts, is_development_checkout, var_dir
from shop.local_secrets import local_secret

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = var_dir(BASE_DIR)

env = environ.Env()

DEBUG = env.bool("DEBUG", default=is_development_checkout(VAR_DIR))
TESTING = env.bool("KAMI_TESTING", default=False)


def _required_secret(name: str, generate: str) -> str:
    """Return env var ``name``; in development fall back to a stable value kept in ``var/``."""
    value = env.str(name, default="")
    if value:
        return value
    if not DEBUG:
        raise ImproperlyConfigured(
            f"{name} is not set. With DEBUG off Kami refuses to start without it; "
            f"see README 'Configuration' for how to generate one. (DEBUG is off by default: "
            f"for development run `make run`, which marks this checkout as development, or "
            f"set DEBUG=1.)"
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

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=default_allowed_hosts(env.str("HOST", default="127.0.0.1"))
)
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
    "csp",
    "ninja",  # django-ninja's own templates and static files: /api/v1/docs served offline
    "shop",
    "cardpool",
    "orders",
    "commissions",
    "riskrules",
    "analytics",
]

MIDDLEWARE = [
    "core.db_outage.DatabaseOutageMiddleware",  # outermost: a lost database is a 503 anywhere
    "core.middleware.RequestHardeningMiddleware",  # before anything reads the request
    "core.log_redaction.SecretScopeMiddleware",  # secrets a request decrypts stay out of logs
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "core.security_headers.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "shop.audit.AuditActorMiddleware",  # who made a change, for the audit log
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "commissions.middleware.ReferralMiddleware",
    "analytics.sources.VisitMiddleware",  # utm_source / referrer and product views
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
                "django.template.context_processors.i18n",
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

# Live updates (contract §7, ``orders.live``): Redis between processes, or in memory within
# the one ``make run`` process. Channels' list-based Redis layer, not its pub/sub one: that one
# polls every 100 ms while a process has no subscription, so the first socket of a quiet shop
# heard of its delivery up to 0.1 s late (bench/push_latency.py). Keys under the cache prefix,
# so two shops (or two test runs) on one Redis stay apart; an owner's feed left open for days
# stays in its group (group_expiry).
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_connect_timeout": 0.5}],
                "prefix": f"{env.str('KAMI_CACHE_PREFIX', default='kami')}:live:",
                "group_expiry": 7 * 24 * 3600,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

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
# it must outlast the longest retry countdown. The sweeps do not wait for it: a killed
# worker's payment event or message is taken up by another worker within seconds.
# Publishing to a broker that stopped answering gives up after a few seconds instead of hanging.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 600,
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
CELERY_TIMEZONE = "UTC"
# Beat's state file is local state, rewritten on every run: under var/, never in the repository.
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# The sweeps of stranded work: short, on partial indexes, and also run by a thread inside
# every worker (KAMI_WORKER_SWEEP_SECONDS, 0 turns it off), so a dead beat strands nothing.
KAMI_SWEEP_SECONDS = env.float("KAMI_SWEEP_SECONDS", default=5.0)
KAMI_WORKER_SWEEP_SECONDS = env.float("KAMI_WORKER_SWEEP_SECONDS", default=2.0)
CELERY_BEAT_SCHEDULE = {
    "orders-expire-unpaid": {"task": "orders.tasks.expire_unpaid_orders", "schedule": 30.0},
    "orders-sweep-payment-inbox": {
        "task": "orders.tasks.sweep_unprocessed_payment_events",
        "schedule": KAMI_SWEEP_SECONDS,
    },
    "orders-dispatch-outbox": {
        "task": "orders.tasks.dispatch_messages",
        "schedule": KAMI_SWEEP_SECONDS,
    },
    "orders-send-follow-ups": {"task": "orders.tasks.send_due_follow_ups", "schedule": 15.0},
    "orders-deliver-backorders": {"task": "orders.tasks.deliver_all_backorders", "schedule": 60.0},
    "orders-refund-overdue-backorders": {
        "task": "orders.tasks.refund_overdue_backorders",
        "schedule": 300.0,
    },
    "riskrules-check-alerts": {"task": "riskrules.tasks.check_alerts", "schedule": 60.0},
    "analytics-refresh-rollups": {"task": "analytics.tasks.refresh_rollups", "schedule": 60.0},
    # Hourly: the task itself decides whether this week's summary is due (and sends it once).
    "analytics-weekly-summary": {"task": "analytics.tasks.send_weekly_summary", "schedule": 3600.0},
}

# --- Auth, i18n, static ----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

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
# Any Django email backend by its dotted path, e.g. a django-anymail ESP
# (anymail.backends.mailgun.EmailBackend); its settings come from ANYMAIL_* variables.
if env.str("EMAIL_BACKEND", default=""):
    EMAIL_BACKEND = env.str("EMAIL_BACKEND")
ANYMAIL = {
    name.removeprefix("ANYMAIL_"): value
    for name, value in os.environ.items()
    if name.startswith("ANYMAIL_")
}
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)  # a mail server that hangs is a failure
# Django's console backend prints delivery emails, keys and all, into the server's log.
if vars()["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend":
    EMAIL_BACKEND = "core.console_email.EmailBackend"
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Kami <shop@localhost>")

# --- The outbox (orders.outbox): every message, retried, with a fallback chain ---------------
KAMI_OUTBOX_MAX_ATTEMPTS = env.int("KAMI_OUTBOX_MAX_ATTEMPTS", default=5)  # per channel
KAMI_OUTBOX_RETRY_SECONDS = env.float("KAMI_OUTBOX_RETRY_SECONDS", default=10.0)  # doubles
KAMI_OUTBOX_LEASE_SECONDS = env.float("KAMI_OUTBOX_LEASE_SECONDS", default=60.0)
KAMI_OUTBOX_RECORD_RETRY_SECONDS = env.float("KAMI_OUTBOX_RECORD_RETRY_SECONDS", default=30.0)
KAMI_OUTBOX_HTTP_TIMEOUT = env.float("KAMI_OUTBOX_HTTP_TIMEOUT", default=10.0)
# The Telegram Bot API for the owner's notifications: a self-hosted Bot API server or a relay
# where api.telegram.org cannot be reached (orders.notices.channels).
KAMI_TELEGRAM_API = env.str("KAMI_TELEGRAM_API", default="https://api.telegram.org")
# At most one batching pass of the owner's notices per this many seconds in a process.
KAMI_NOTICES_PASS_SECONDS = env.float("KAMI_NOTICES_PASS_SECONDS", default=1.0)
# SMS: "logging" (development default), "twilio", or empty (off: SMS skipped in every chain).
SMS_BACKEND = env.str("SMS_BACKEND", default="logging" if DEBUG else "")
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM = env.str("TWILIO_FROM", default="")
TWILIO_API_BASE = env.str("TWILIO_API_BASE", default="https://api.twilio.com")

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

# --- Sessions, cookies and TLS ----------------------------------------------------------------
# Production with an https:// SITE_URL is served behind a TLS-terminating proxy (docs/
# deployment.md): its X-Forwarded-Proto is trusted, plain HTTP is redirected, cookies are
# Secure and browsers are told (HSTS) to come back over HTTPS only.
SERVED_OVER_TLS = not DEBUG and SITE_URL.startswith("https://")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = SERVED_OVER_TLS
CSRF_COOKIE_SECURE = SERVED_OVER_TLS
if SERVED_OVER_TLS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=SERVED_OVER_TLS)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # probes talk plain HTTP to the app server itself
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if SERVED_OVER_TLS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Preloading is a promise to browser vendors that is slow to take back: the owner's decision,
# off by default, so `check --deploy`'s reminder about it (security.W021) is silenced until then.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

# --- Security headers (README "Security headers") ----------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=()"
)
# No inline script or style anywhere: behaviour lives in static/*.js, data in data-* attributes
# or <script type="application/json"> blocks. The product page's checkout form posts to the
# shop, which redirects to Stripe Checkout; Chromium applies form-action to that redirect too,
# so Stripe's origin is allowed there when Stripe is the provider.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        # Descriptions may embed https:// images; the browser shows those of listed hosts only.
        "img-src": ["'self'", "data:", *env.list("CSP_IMG_HOSTS", default=[])],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'", *(["https://checkout.stripe.com"] if STRIPE_SECRET_KEY else [])],
    }
}

# Every handler carries the redaction filter (``core.log_redaction``: no key, password, token
# or signature reaches a log). Django's own loggers get no handlers of their own (its defaults
# would print ``django.*`` records, unfiltered, beside ours): they propagate to the root.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "core.log_redaction.RedactSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        "celery.app.trace": {"level": "WARNING" if not REDIS_URL else "INFO"},
    },
}

AUTHENTICATION_BACKENDS = ["shop.auth_backends.NoDemoLoginsInProductionBackend"]

# --- Staff authentication: second factor, login lockout, API tokens (issue #9) -----------------
# Kept in one block, after the lists it extends, so edits elsewhere in this file stay apart.
# The admin runs on core.admin_site.KamiAdminSite (second factor at login, owner enrolment).
INSTALLED_APPS[INSTALLED_APPS.index("django.contrib.admin")] = "core.admin_apps.KamiAdminConfig"
INSTALLED_APPS += ["django_otp", "django_otp.plugins.otp_totp", "django_otp.plugins.otp_static"]
INSTALLED_APPS += ["axes"]
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "django_otp.middleware.OTPMiddleware",
)
MIDDLEWARE.append("axes.middleware.AxesMiddleware")  # last, as django-axes asks
# The lockout check, then the password: a locked-out username or address never reaches a hash.
AUTHENTICATION_BACKENDS = ["shop.auth_backends.KamiAuthBackend"]
# A password change (set_password, the admin, changepassword) revokes the user's API tokens.
AUTH_PASSWORD_VALIDATORS += [{"NAME": "commissions.api_tokens.RevokeTokensOnPasswordChange"}]

# The owner must use a second factor on a real server; tests switch it on explicitly.
KAMI_REQUIRE_OWNER_2FA = env.bool("KAMI_REQUIRE_OWNER_2FA", default=not DEBUG)
OTP_TOTP_ISSUER = "Kami"
OTP_ADMIN_HIDE_SENSITIVE_DATA = True  # no TOTP secrets or recovery codes in the device admin

# django-axes (core.lockout): 10 failed logins per username and, separately, per client address
# (an IPv6 /64) lock that username or address for 15 minutes after the last counted failure;
# the owner can unlock earlier in the admin (Axes › Access attempts). Attempts are database rows.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = env.int("KAMI_LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("KAMI_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "core.lockout.lockout_address"
AXES_LOCKOUT_CALLABLE = "core.lockout.lockout_response"
# Refused attempts while locked do not extend the lock (else a script keeps it shut forever),
# and a success does not wipe the address's failures against other usernames.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = False
AXES_ENABLE_ADMIN = False  # core.admin_site registers owner-only admins with an unlock action
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "otp_token", "csrfmiddlewaretoken"]
AXES_VERBOSE = False  # no start-up banner in every manage.py command
LOGGING["loggers"]["axes"] = {"level": "WARNING"}  # each failed login: one warning, no INFO

# API Bearer tokens (commissions.api_tokens): expire, and at most this many live per user.
API_TOKEN_TTL_DAYS = env.int("API_TOKEN_TTL_DAYS", default=30)
API_TOKENS_PER_USER = 10

# --- Languages (contract §8; README "Languages") ---------------------------------------------
# English and Simplified Chinese, chosen from the language cookie (the switch on every page,
# Django's set_language view), else Accept-Language, else English. No /en/ URL prefixes: the
# contract's URLs stay as they are. zh-CN, zh-SG, bare zh and zh-Hans give zh-hans; so do zh-TW
# and zh-HK (Django falls back to the one Chinese on offer: closer for them than English).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Dates and money separators per language (shop/formats): ISO dates in English, as before.
FORMAT_MODULE_PATH = ["shop.formats"]
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_HTTPONLY = True  # no script reads it: the switch is a plain form
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = SERVED_OVER_TLS
# After the session (it may carry a language) and before CommonMiddleware (which may redirect).
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.sessions.middleware.SessionMiddleware") + 1,
    "django.middleware.locale.LocaleMiddleware",
)
