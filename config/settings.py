"""Brokerdesk settings: every knob is read from the environment here, and only here.

With no environment at all the product runs on its embedded defaults (SQLite and a
server-less Celery broker and a file cache under ``var/``, console email, simulated gateways),
so ``make run`` works on a bare machine. ``.env.example`` lists every variable.
"""

import ipaddress
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import environ
from celery.schedules import crontab, schedule
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env is a convenience for developers; the process environment always wins.
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"), overwrite=False)
# The embedded defaults' files: SQLite, the server-less broker, the cache, local keys, spools.
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

# --- Core -------------------------------------------------------------------------------------

DEBUG = env.bool("DEBUG", default=True)
_DEV_SECRET_KEY = "insecure-local-only-key-never-use-in-production-brokerdesk"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# CORS (django-cors-headers): browser front ends on these origins may call /api/. Empty by
# default: no other origin may. Exact origins only (`https://app.example.com`), never `*`:
# answers carry license keys, links and tokens. Bearer tokens and API keys, not cookies, so
# no credentials mode.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
for _origin in CORS_ALLOWED_ORIGINS:
    _scheme, _, _rest = _origin.partition("://")
    if _scheme not in ("http", "https") or not _rest or "/" in _rest or "*" in _rest:
        raise ImproperlyConfigured(
            f"CORS_ALLOWED_ORIGINS: {_origin!r} is not an origin like https://app.example.com"
        )
CORS_URLS_REGEX = r"^/api/"
CORS_ALLOW_HEADERS = (
    "accept",
    "authorization",
    "content-type",
    "idempotency-key",
    "x-license-key",
)
# Headers a browser script may read beyond the safelisted ones: when to retry, the budget,
# whether an activation's answer is a replay.
CORS_EXPOSE_HEADERS = (
    "idempotent-replayed",
    "retry-after",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
)
CORS_PREFLIGHT_MAX_AGE = 600

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "import_export",
    "django_celery_beat",
    "corsheaders",
    # Brokerdesk, lowest floor first (see docs/architecture.md for who may import whom).
    "gateways",
    "accounts",
    "delivery",
    "campaigns",
    "licensing",
    "bonuses",
    "demo_pool",
    "trading_sessions",
    "operations",
    # The harness, not an app: installed only for its `manage.py bench_*` commands.
    "bench",
]

MIDDLEWARE = [
    "config.metrics.PrometheusMiddleware",
    # Cache-Control: no-store on every /api/ and /d/ answer (keys, links, tokens): outermost,
    # so the answers made below (guards, 503s) get it too.
    "config.middleware.NoStoreMiddleware",
    # CORS as high as its docs ask, above every middleware that answers by itself (guards,
    # 503s, CommonMiddleware, WhiteNoise): a browser may read those refusals and their codes.
    "corsheaders.middleware.CorsMiddleware",
    # Paths, query strings and headers no view should see (NUL, control characters, bad
    # UTF-8, oversized headers): 400/431 with a code, before anything reads them.
    "core.guards.RequestGuardMiddleware",
    # A database error anywhere below is a 503 `database_unavailable`, never a 500.
    "core.exceptions.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.login_throttle.AdminLoginThrottleMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "licensing.middleware.ApiUsageLogMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'brokerdesk.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(exist_ok=True)
    # Web, worker and beat share one file: WAL lets readers run beside the writer, IMMEDIATE
    # transactions take the write lock up front instead of failing half way with "locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env.int(
        "DB_CONNECT_TIMEOUT_SECONDS", default=5
    )
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and Redis --------------------------------------------------------------------------

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="brokerdesk"),
            "TIMEOUT": 300,
        }
    }
else:
    # Web, worker and beat are separate processes even under `make run`: what crosses them (the
    # monitor's sweep record and lock, limits, the heartbeat) needs one cache they all see, so
    # the embedded default is files under var/ (core/cache.py), never a per-process memory.
    CACHES = {
        "default": {
            "BACKEND": "core.cache.FileCache",
            "LOCATION": env.str("CACHE_DIR", default=str(VAR_DIR / "cache")),
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="brokerdesk"),
            "TIMEOUT": 300,
            # Django culls at random past 300 entries: that would drop locks and sweep records.
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }

# --- Auth -------------------------------------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env.int("PASSWORD_MIN_LENGTH", default=10)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
# Email and password, behind the per-account lockout (accounts/backends.py): the API's login and
# the admin's form both. Per email, from any address: past MAX failures within WINDOW seconds the
# email is locked for LOCKOUT seconds, even with the right password (0 failures: no lockout).
AUTHENTICATION_BACKENDS = ["accounts.backends.LockoutModelBackend"]
LOGIN_LOCKOUT_MAX_FAILURES = env.int("LOGIN_LOCKOUT_MAX_FAILURES", default=10)
LOGIN_LOCKOUT_WINDOW_SECONDS = env.int("LOGIN_LOCKOUT_WINDOW_SECONDS", default=900)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=900)

# Request shapes (core/parsers.py, core/guards.py): a body over this many bytes is 413
# `too_large` (Django's own limit, answered as JSON on the API); JSON nested deeper is 400
# `too_deep`; one header value longer is 431 `header_too_large`.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
API_MAX_JSON_DEPTH = env.int("API_MAX_JSON_DEPTH", default=32)
API_MAX_HEADER_BYTES = env.int("API_MAX_HEADER_BYTES", default=8190)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "config.schema.AutoSchema",
    "EXCEPTION_HANDLER": "core.exceptions.exception_handler",
    # Bounded size and nesting, no NUL in text, JSON numbers keeping their text (core.money).
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.JSONParser",
        "core.parsers.FormParser",
        "core.parsers.MultiPartParser",
    ],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Keyed by core.net.client_ip: DRF's own guess trusts any X-Forwarded-For.
    "DEFAULT_THROTTLE_CLASSES": ["core.throttling.ScopedRateThrottle"],
    # Login, refresh and sign-up per client address: slows password guessing.
    "DEFAULT_THROTTLE_RATES": {"auth": env.str("AUTH_THROTTLE_RATE", default="30/min")},
}
# An outside server's fault answers 503 (transient) or 502, never 500 (core.exceptions); named
# by path because gateways and core share floor 0 and neither imports the other.
OUTSIDE_ERROR = "gateways.errors.GatewayError"
OUTSIDE_TRANSIENT_ERROR = "gateways.errors.TransientGatewayError"

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "SIGNING_KEY": env.str("JWT_SIGNING_KEY", default=SECRET_KEY),
    "AUTH_HEADER_TYPES": ("Bearer",),
}
# A rotated refresh token presented again within this many seconds is a lost race (a client
# refreshing twice at once): refused, nothing else. Later, a copy is in other hands: every token
# of that login is revoked (accounts/services/tokens.py).
JWT_REFRESH_REUSE_GRACE_SECONDS = env.int("JWT_REFRESH_REUSE_GRACE_SECONDS", default=10)

SPECTACULAR_SETTINGS = {
    "TITLE": "Brokerdesk API",
    "DESCRIPTION": "Back office of a forex broker on MetaTrader 5. The contract, with the rules "
    "behind these operations: [docs/api.md](/api/docs/contract/) (in the repository: "
    "`docs/api.md`, held to this schema by a test).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Several models have a `status`; each enum gets its own name in the schema.
    "ENUM_NAME_OVERRIDES": {
        "CampaignStatusEnum": "campaigns.models.Campaign.Status",
        "BonusStatusEnum": "bonuses.models.Bonus.Status",
        "DeliveryStatusEnum": "delivery.models.Delivery.Status",
        "DeliveryMethodEnum": "delivery.models.Delivery.Method",
        "MonitoredAccountStatusEnum": "accounts.models.MonitoredAccount.Status",
        "DemoAccountStatusEnum": "demo_pool.models.DemoAccount.Status",
        "ActivationRequestStatusEnum": "demo_pool.models.ActivationRequest.Status",
        "PressPassStatusEnum": "demo_pool.models.PressPass.Status",
        "LicenseStatusEnum": "licensing.models.License.Status",
        "LicenseTypeEnum": "licensing.models.License.Type",
        "LicenseCodeEnum": "licensing.models.License.Code",
        "PlanCodeEnum": "licensing.models.Plan.Code",
    },
}

# --- Internationalisation and time: UTC everywhere, days are UTC days -------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # collectstatic fills it; WhiteNoise wants it
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Email ------------------------------------------------------------------------------------

# Emails carry one-time links: on the console they land in the worker's log. So the console is
# only the DEBUG default; with DEBUG off, EMAIL_HOST means SMTP, and a console, locmem or dummy
# backend only when EMAIL_BACKEND names it (`doctor` warns about it).
_SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
_email_host = env.str("EMAIL_HOST", default="")
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="")
if not EMAIL_BACKEND:
    if _email_host:
        EMAIL_BACKEND = _SMTP_BACKEND
    elif DEBUG:
        EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    else:
        raise ImproperlyConfigured(
            "EMAIL_HOST must be set when DEBUG is off (the SMTP server one-time links are sent "
            "through; with EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS or "
            "EMAIL_USE_SSL), or EMAIL_BACKEND naming a backend explicitly: see .env.example."
        )
EMAIL_HOST = _email_host or "localhost"
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)  # STARTTLS, usually port 587
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)  # implicit TLS, usually port 465
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are exclusive: set one.")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT_SECONDS", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Brokerdesk <no-reply@localhost>")

# The proxies in front of the web process (addresses or CIDR networks, comma-separated) whose
# X-Forwarded-For is believed: only they may say which client a request came from
# (core/net.py). Empty: the socket's address is the client, whatever a header claims.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES: {_proxy!r} is not an address") from _exc

# --- Production hardening (all on when DEBUG is off; `manage.py check --deploy` passes) -------

# Behind a proxy that terminates TLS and sets X-Forwarded-Proto, trust that header to tell an
# HTTPS request; with none in front, ignore it (a client could claim HTTPS itself).
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# Session and CSRF cookies only over HTTPS; off only where plain HTTP is the point (the soak
# on the loopback).
SECURE_COOKIES = env.bool("SECURE_COOKIES", default=not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
# Failed admin logins per client address within the window, before it is refused (429).
ADMIN_LOGIN_MAX_FAILURES = env.int("ADMIN_LOGIN_MAX_FAILURES", default=10)
ADMIN_LOGIN_WINDOW_SECONDS = env.int("ADMIN_LOGIN_WINDOW_SECONDS", default=900)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Celery -----------------------------------------------------------------------------------

if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {"visibility_timeout": 3600}
else:
    # Kombu's filesystem transport: a broker that is only a folder, shared by web, worker
    # and beat on one machine. Good for `make run`; production uses Redis.
    _broker_dir = VAR_DIR / "celery" / "broker"
    _broker_dir.mkdir(parents=True, exist_ok=True)  # the transport lists it; it must exist
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost//")
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "store_processed": False,
        # Broadcast (control) exchanges: kombu's default is ./control, in the work tree.
        "control_folder": str(VAR_DIR / "celery" / "control"),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=90)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

HEARTBEAT_SECONDS = env.float("HEARTBEAT_SECONDS", default=30.0)

# --- The account monitor (docs/monitor.md) ----------------------------------------------------
MONITOR_SWEEP_SECONDS = env.float("MONITOR_SWEEP_SECONDS", default=1.0)
MONITOR_DISCOVERY_SECONDS = env.float("MONITOR_DISCOVERY_SECONDS", default=60.0)
MONITOR_BATCH_SIZE = env.int("MONITOR_BATCH_SIZE", default=1000)
# Batches an in-process sweep (`monitor_sweep`) runs at once (threads, PostgreSQL only).
MONITOR_SWEEP_THREADS = env.int("MONITOR_SWEEP_THREADS", default=4)
# Batches go to the workers as tasks; off, beat's worker sweeps them all itself.
MONITOR_FAN_OUT = env.bool("MONITOR_FAN_OUT", default=True)
MONITOR_PAUSE_AFTER_ERRORS = env.int("MONITOR_PAUSE_AFTER_ERRORS", default=5)
MONITOR_REGISTRATION_WINDOW_HOURS = env.float("MONITOR_REGISTRATION_WINDOW_HOURS", default=24.0)
MONITOR_POLL_STAMP_SECONDS = env.int("MONITOR_POLL_STAMP_SECONDS", default=60)
MONITOR_SWEEP_LOCK_SECONDS = env.int("MONITOR_SWEEP_LOCK_SECONDS", default=30)
# A read refused quickly is asked again within its batch, after a jittered pause that starts
# at MONITOR_CALL_RETRY_SECONDS and doubles; a batch still failing backs off on its own (the
# others go on), at most MONITOR_BATCH_BACKOFF_MAX_SECONDS; only when every batch fails does
# the whole sweep back off, to one probing batch at most MONITOR_OUTAGE_MAX_SECONDS apart.
MONITOR_CALL_RETRIES = env.int("MONITOR_CALL_RETRIES", default=2)
MONITOR_CALL_RETRY_SECONDS = env.float("MONITOR_CALL_RETRY_SECONDS", default=0.1)
MONITOR_BATCH_BACKOFF_MAX_SECONDS = env.float("MONITOR_BATCH_BACKOFF_MAX_SECONDS", default=5.0)
MONITOR_OUTAGE_MAX_SECONDS = env.float("MONITOR_OUTAGE_MAX_SECONDS", default=10.0)
MONITOR_EVENT_RETRY_SECONDS = env.float("MONITOR_EVENT_RETRY_SECONDS", default=0.1)
MONITOR_EVENT_RETRY_MAX_SECONDS = env.float("MONITOR_EVENT_RETRY_MAX_SECONDS", default=3600.0)
# Retries of a failed event: this many at MONITOR_EVENT_RETRY_SECONDS, then doubling.
MONITOR_EVENT_RETRY_FLAT_ATTEMPTS = env.int("MONITOR_EVENT_RETRY_FLAT_ATTEMPTS", default=8)
MONITOR_EVENT_LEASE_SECONDS = env.int("MONITOR_EVENT_LEASE_SECONDS", default=120)
MONITOR_DISPATCH_LIMIT = env.int("MONITOR_DISPATCH_LIMIT", default=1000)
# Logins whose events are handled at once (threads, PostgreSQL only); one login's in order.
MONITOR_DISPATCH_THREADS = env.int("MONITOR_DISPATCH_THREADS", default=4)
# Events of a kind taken in batches (deposits) handed over this many at a time.
MONITOR_DISPATCH_BATCH_SIZE = env.int("MONITOR_DISPATCH_BATCH_SIZE", default=1000)
# The monitor's tasks (sweep, batches, discovery, event dispatch) on a queue of their own, for
# a worker started with `-Q <name>`: a one-second sweep then never waits behind minute-long
# pool, trading or resolver tasks. Empty: Celery's default queue, like every other task.
MONITOR_QUEUE = env.str("MONITOR_QUEUE", default="")
CELERY_TASK_ROUTES = {
    name: {"queue": MONITOR_QUEUE}
    for name in (
        "accounts.monitor_sweep",
        "accounts.monitor_batch",
        "accounts.monitor_discover",
        "accounts.dispatch_events",
    )
    if MONITOR_QUEUE
}
# One table for beat, each entry with why it exists. django-celery-beat's DatabaseScheduler
# drops `options={"expires": ...}`; `expire_seconds` is what it keeps. An entry removed here
# stays in the database: remove it in a migration.
CELERY_BEAT_SCHEDULE = {
    # Proves beat -> broker -> worker end to end; `doctor` and the logs read it.
    "accounts.heartbeat": {
        "task": "accounts.heartbeat",
        "schedule": schedule(HEARTBEAT_SECONDS),
        "options": {"expire_seconds": max(1, int(HEARTBEAT_SECONDS) - 1)},
    },
    # The monitor: every active account's state compared, new deals recorded as events.
    "accounts.monitor_sweep": {
        "task": "accounts.monitor_sweep",
        "schedule": schedule(MONITOR_SWEEP_SECONDS),
        "options": {"expire_seconds": max(1, int(MONITOR_SWEEP_SECONDS))},
    },
    # New logins on the server become monitored accounts (and registration events).
    "accounts.monitor_discover": {
        "task": "accounts.monitor_discover",
        "schedule": schedule(MONITOR_DISCOVERY_SECONDS),
        "options": {"expire_seconds": max(1, int(MONITOR_DISCOVERY_SECONDS) - 5)},
    },
    # Events whose handling failed are retried here once their backoff has passed.
    "accounts.dispatch_events": {
        "task": "accounts.dispatch_events",
        "schedule": schedule(10),
        "options": {"expire_seconds": 9},
    },
    # A campaign past its ends_at is already refused by eligibility; this makes staff see it.
    "campaigns.end_expired": {
        "task": "campaigns.end_expired",
        "schedule": schedule(300),
        "options": {"expire_seconds": 290},
    },
    # Bonuses past expires_at lose their credit (the contract: hourly).
    "bonuses.expire_due": {
        "task": "bonuses.expire_due",
        "schedule": schedule(3600),
        "options": {"expire_seconds": 3500},
    },
    # Finishes MT5 writes left pending or unknown (a timeout, a crash between commit and call).
    "bonuses.resolve_intents": {
        "task": "bonuses.resolve_intents",
        "schedule": schedule(60),
        "options": {"expire_seconds": 55},
    },
    # Compares the credit ledger with the server's credit per account; reports, never fixes.
    "bonuses.reconcile_credit": {
        "task": "bonuses.reconcile_credit",
        "schedule": crontab(minute=15, hour=3),
        "options": {"expire_seconds": 3600},
    },
    # One-time links past their lifetime: marked expired, their ciphertext wiped.
    "delivery.expire_due": {
        "task": "delivery.expire_due",
        "schedule": schedule(60),
        "options": {"expire_seconds": 55},
    },
    # Keeps the demo pool between its minimum and target; also retries provisioning.
    "demo_pool.refill": {
        "task": "demo_pool.refill",
        "schedule": schedule(60),
        "options": {"expire_seconds": 55},
    },
    # Activations queued by a demo-server fault get their account once the server answers.
    "demo_pool.fulfil": {
        "task": "demo_pool.fulfil",
        "schedule": schedule(10),
        "options": {"expire_seconds": 9},
    },
    # Checks the stalest demo accounts (each at most once per the admin's interval).
    "demo_pool.health_check": {
        "task": "demo_pool.health_check",
        "schedule": schedule(60),
        "options": {"expire_seconds": 55},
    },
    # Press passes past their expiry: disabled on the server, marked expired.
    "demo_pool.expire_due": {
        "task": "demo_pool.expire_due",
        "schedule": schedule(300),
        "options": {"expire_seconds": 290},
    },
    # Failed, retired and expired accounts cleaned up (at the admin's interval, 4 h).
    "demo_pool.cleanup": {
        "task": "demo_pool.cleanup",
        "schedule": schedule(900),
        "options": {"expire_seconds": 890},
    },
    # Last-active times and the API usage log, buffered in Redis, written in bulk.
    "licensing.flush_activity": {
        "task": "licensing.flush_activity",
        "schedule": schedule(env.float("LICENSE_FLUSH_SECONDS", default=10.0)),
        "options": {"expire_seconds": 9},
    },
    # Licenses past expires_at are marked EXPIRED (validation already says so).
    "licensing.expire_due": {
        "task": "licensing.expire_due",
        "schedule": schedule(300),
        "options": {"expire_seconds": 290},
    },
    # Subscriptions past ends_at end, and the trading sessions run under them stop (until then
    # a fan-out already skips them: docs/trading.md "Who may trade").
    "licensing.expire_subscriptions": {
        "task": "licensing.expire_subscriptions",
        "schedule": schedule(60),
        "options": {"expire_seconds": 55},
    },
    # Trades: pending ones retried, overdue ones settled, interrupted signal fan-outs finished.
    "trading_sessions.sweep": {
        "task": "trading_sessions.sweep",
        "schedule": schedule(env.float("TRADING_SWEEP_SECONDS", default=15.0)),
        "options": {"expire_seconds": 14},
    },
    # The signal channels' Telegram posts become signals.
    "trading_sessions.read_telegram": {
        "task": "trading_sessions.read_telegram",
        "schedule": schedule(env.float("TRADING_TELEGRAM_POLL_SECONDS", default=5.0)),
        "options": {"expire_seconds": 4},
    },
    # The API usage log keeps LICENSE_USAGE_RETENTION_DAYS; spent daily quota holds go too.
    "licensing.purge_usage": {
        "task": "licensing.purge_usage",
        "schedule": crontab(minute=40, hour=3),
        "options": {"expire_seconds": 3600},
    },
}

# --- Bonuses: manual credit (docs/bonuses.md "Manual assign: bounded") ------------------------


def _money_env(name: str, default: str) -> Decimal:
    raw = env.str(name, default=default)
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0:
        raise ImproperlyConfigured(f"{name} must be a non-negative amount like 1000.00")
    return value


# What one person may grant by hand alone, per bonus and per UTC day, by role (the most
# generous of a user's roles; a role not listed: nothing). Above it the assign waits (202) for
# a Super Admin who is not the requester.
BONUS_MANUAL_LIMITS = {
    "Support Agent": {
        "per_bonus": _money_env("BONUS_MANUAL_LIMIT_SUPPORT_PER_BONUS", "1000.00"),
        "per_day": _money_env("BONUS_MANUAL_LIMIT_SUPPORT_PER_DAY", "10000.00"),
    },
    "Super Admin": {
        "per_bonus": _money_env("BONUS_MANUAL_LIMIT_SUPER_ADMIN_PER_BONUS", "10000.00"),
        "per_day": _money_env("BONUS_MANUAL_LIMIT_SUPER_ADMIN_PER_DAY", "100000.00"),
    },
}
# A deposit trigger (or promo code) with an amount and no deal_id is matched to a real
# deposit of that amount on the account made within this many days.
BONUS_DEPOSIT_MATCH_DAYS = env.int("BONUS_DEPOSIT_MATCH_DAYS", default=7)
# An MT5 write whose answer was lost is looked up again this soon (then 2x, 4x, ...) for this
# many attempts, before the beat's resolver (every minute) is its only way out.
BONUS_RESOLVE_SOON_SECONDS = env.float("BONUS_RESOLVE_SOON_SECONDS", default=5.0)
BONUS_RESOLVE_SOON_ATTEMPTS = env.int("BONUS_RESOLVE_SOON_ATTEMPTS", default=3)

# --- Trading sessions (docs/trading.md) ------------------------------------------------------
# A signal older than this when it arrives is recorded as stale and trades nothing.
TRADING_SIGNAL_MAX_AGE_SECONDS = env.int("TRADING_SIGNAL_MAX_AGE_SECONDS", default=30)
# How far in the future a signal's sent_at may be (clocks differ) before it is refused.
TRADING_SIGNAL_MAX_SKEW_SECONDS = env.int("TRADING_SIGNAL_MAX_SKEW_SECONDS", default=60)
# Sessions per fan-out transaction; each holds one advisory lock per owner until it commits.
TRADING_FANOUT_BATCH = env.int("TRADING_FANOUT_BATCH", default=1000)
# Trades per open_trades task: the unit the workers share a fan-out's trades in.
TRADING_OPEN_CHUNK = env.int("TRADING_OPEN_CHUNK", default=100)
# A trade the broker could not open for this long is failed (staff see why).
TRADING_OPEN_GIVE_UP_SECONDS = env.int("TRADING_OPEN_GIVE_UP_SECONDS", default=600)
# Pending trades untouched and open trades overdue by this much are the sweeper's.
TRADING_SETTLE_GRACE_SECONDS = env.int("TRADING_SETTLE_GRACE_SECONDS", default=5)

# --- Licensing (docs/licensing.md) -----------------------------------------------------------
# Keys are stored only as HMAC-SHA256(pepper, key). Production sets the pepper; DEBUG derives
# one from SECRET_KEY. Changing it makes every issued key unknown.
LICENSE_KEY_PEPPER = env.str("LICENSE_KEY_PEPPER", default="")
if not LICENSE_KEY_PEPPER:
    if not DEBUG:
        raise ImproperlyConfigured("LICENSE_KEY_PEPPER must be set when DEBUG is off.")
    import hashlib as _hashlib
    import hmac as _hmac

    LICENSE_KEY_PEPPER = _hmac.new(
        SECRET_KEY.encode(), b"brokerdesk licensing pepper", _hashlib.sha256
    ).hexdigest()
# Ed25519 private key (base64 of the 32 raw bytes) signing validation answers and license
# files. Production sets it; DEBUG makes var/license-signing.key on first use.
LICENSE_SIGNING_KEY = env.str("LICENSE_SIGNING_KEY", default="")
if not LICENSE_SIGNING_KEY and not DEBUG:
    raise ImproperlyConfigured(
        "LICENSE_SIGNING_KEY must be set when DEBUG is off: see docs/licensing.md "
        "(manage.py license keygen prints a new key)."
    )
LICENSE_SIGNING_KEY_FILE = "" if LICENSE_SIGNING_KEY else str(VAR_DIR / "license-signing.key")
LICENSE_KEY_PREFIX = env.str("LICENSE_KEY_PREFIX", default="QT")
LICENSE_VALIDATION_CACHE_SECONDS = env.int("LICENSE_VALIDATION_CACHE_SECONDS", default=30)
LICENSE_FILE_TTL_HOURS = env.int("LICENSE_FILE_TTL_HOURS", default=72)
# Rate limits (GCRA in Redis; in-process when Redis does not answer).
LICENSE_RATE_LIMIT_REDIS_URL = env.str("LICENSE_RATE_LIMIT_REDIS_URL", default=REDIS_URL)
LICENSE_VALIDATE_RATE_LIMIT_PER_KEY = env.str("LICENSE_VALIDATE_RATE_LIMIT_PER_KEY", "60/min")
LICENSE_VALIDATE_RATE_LIMIT_PER_IP = env.str("LICENSE_VALIDATE_RATE_LIMIT_PER_IP", "600/min")
LICENSE_PUBLIC_RATE_LIMIT = env.str("LICENSE_PUBLIC_RATE_LIMIT", default="120/min")
# API usage log: paths logged, buffering, retention.
LICENSE_USAGE_LOG_PREFIX = env.str("LICENSE_USAGE_LOG_PREFIX", default="/api/")
# Without Redis (or while it is down) calls are spooled to files here, one per process.
LICENSE_USAGE_SPOOL_DIR = env.str(
    "LICENSE_USAGE_SPOOL_DIR", default=str(VAR_DIR / "licensing-usage")
)
LICENSE_USAGE_RETENTION_DAYS = env.int("LICENSE_USAGE_RETENTION_DAYS", default=90)
LICENSE_FLUSH_SECONDS = env.float("LICENSE_FLUSH_SECONDS", default=10.0)
LICENSE_SUBSCRIPTION_DAYS = env.int("LICENSE_SUBSCRIPTION_DAYS", default=30)

# --- Demo pool (docs/demo_pool.md) ---------------------------------------------------------
# Sizing and account defaults live in the admin (PoolConfig); these are the process knobs.
DEMO_POOL_SERVER_NAME = env.str("DEMO_POOL_SERVER_NAME", default="")  # blank: MT5_SERVER
DEMO_POOL_PROVISION_MAX_ATTEMPTS = env.int("DEMO_POOL_PROVISION_MAX_ATTEMPTS", default=5)
DEMO_POOL_PROVISION_BACKOFF_SECONDS = env.float("DEMO_POOL_PROVISION_BACKOFF_SECONDS", default=5.0)
DEMO_POOL_PROVISION_LEASE_SECONDS = env.int("DEMO_POOL_PROVISION_LEASE_SECONDS", default=120)
# Provisioning calls at once (threads, each with its own DB connection; PostgreSQL only).
DEMO_POOL_PROVISION_THREADS = env.int("DEMO_POOL_PROVISION_THREADS", default=5)
# A refill run queues batch after batch while under the target; past this it hands over to a
# follow-up run (well inside the task's 240 s soft time limit).
DEMO_POOL_REFILL_RUN_SECONDS = env.float("DEMO_POOL_REFILL_RUN_SECONDS", default=60.0)
# An assignment under the target queues a refill at most this often per web process.
DEMO_POOL_REFILL_NUDGE_SECONDS = env.float("DEMO_POOL_REFILL_NUDGE_SECONDS", default=0.25)
# Activations read the pool configuration at most this often per process.
DEMO_POOL_CONFIG_CACHE_SECONDS = env.float("DEMO_POOL_CONFIG_CACHE_SECONDS", default=5.0)
DEMO_POOL_HEALTH_BATCH_SIZE = env.int("DEMO_POOL_HEALTH_BATCH_SIZE", default=50)
DEMO_POOL_HEALTH_MAX_FAILURES = env.int("DEMO_POOL_HEALTH_MAX_FAILURES", default=2)
DEMO_POOL_EXPIRY_BATCH_SIZE = env.int("DEMO_POOL_EXPIRY_BATCH_SIZE", default=200)
DEMO_POOL_HEALTH_LOG_DAYS = env.int("DEMO_POOL_HEALTH_LOG_DAYS", default=30)

# --- Gateways: the outside servers ------------------------------------------------------------
# Each names the class to load; the simulated servers (state in the database) are the default.

MT5_GATEWAY = env.str("MT5_GATEWAY", default="gateways.mt5.simulated.SimulatedMT5Gateway")
DEMO_GATEWAY = env.str("DEMO_GATEWAY", default="gateways.demo.simulated.SimulatedDemoGateway")
BROKER_GATEWAY = env.str(
    "BROKER_GATEWAY", default="gateways.broker.simulated.SimulatedBrokerGateway"
)
TELEGRAM_GATEWAY = env.str(
    "TELEGRAM_GATEWAY", default="gateways.telegram.simulated.SimulatedTelegramGateway"
)

MT5_SERVER = env.str("MT5_SERVER", default="Brokerdesk-Sim")
MT5_MANAGER_LOGIN = env.str("MT5_MANAGER_LOGIN", default="")
MT5_MANAGER_PASSWORD = env.str("MT5_MANAGER_PASSWORD", default="")
MT5_REQUEST_TIMEOUT_SECONDS = env.float("MT5_REQUEST_TIMEOUT_SECONDS", default=30.0)

# MetaQuotes' Manager Web API (MT5_GATEWAY=gateways.mt5.webapi.gateway.WebApiMT5Gateway), with
# MT5_MANAGER_LOGIN/PASSWORD and MT5_REQUEST_TIMEOUT_SECONDS above. TLS is verified; a private
# CA bundle or the pinned SHA-256 of a self-signed certificate (hex) for brokers without a
# public one. The time offset (trade server minus UTC) is measured at connect when unset.
MT5_WEBAPI_URL = env.str("MT5_WEBAPI_URL", default="")  # https://host:443
MT5_WEBAPI_CA_BUNDLE = env.str("MT5_WEBAPI_CA_BUNDLE", default="")
MT5_WEBAPI_CERT_SHA256 = env.str("MT5_WEBAPI_CERT_SHA256", default="")
MT5_WEBAPI_TIME_OFFSET_SECONDS = env.int("MT5_WEBAPI_TIME_OFFSET_SECONDS", default=None)
MT5_WEBAPI_GROUP_MASK = env.str("MT5_WEBAPI_GROUP_MASK", default="*")
MT5_WEBAPI_BATCH_SIZE = env.int("MT5_WEBAPI_BATCH_SIZE", default=1000)
# Authenticated connections per process (each its own session); threads share them.
MT5_WEBAPI_CONNECTIONS = env.int("MT5_WEBAPI_CONNECTIONS", default=4)

# The broker's MT5 demo server, where the demo pool makes its accounts
# (DEMO_GATEWAY=gateways.demo.webapi.WebApiDemoGateway): its own Web API connection and
# manager, who may add users to MT5_DEMO_GROUP and post balance operations there. TLS and the
# time offset as for MT5_WEBAPI_*. MT5_DEMO_SERVER is the server name traders type in their
# terminal (blank: the pool's server name); MT5_DEMO_GROUP blank: the pool's group.
MT5_DEMO_URL = env.str("MT5_DEMO_URL", default="")  # https://host:443
MT5_DEMO_MANAGER_LOGIN = env.str("MT5_DEMO_MANAGER_LOGIN", default="")
MT5_DEMO_MANAGER_PASSWORD = env.str("MT5_DEMO_MANAGER_PASSWORD", default="")
MT5_DEMO_GROUP = env.str("MT5_DEMO_GROUP", default="demo\\standard")
MT5_DEMO_SERVER = env.str("MT5_DEMO_SERVER", default="")
MT5_DEMO_CA_BUNDLE = env.str("MT5_DEMO_CA_BUNDLE", default="")
MT5_DEMO_CERT_SHA256 = env.str("MT5_DEMO_CERT_SHA256", default="")
MT5_DEMO_TIME_OFFSET_SECONDS = env.int("MT5_DEMO_TIME_OFFSET_SECONDS", default=None)
DEMO_REQUEST_TIMEOUT_SECONDS = env.float("DEMO_REQUEST_TIMEOUT_SECONDS", default=15.0)

# The simulated broker: the payout of new accounts (0.80 = 80% profit on a win), and the seed
# its outcomes are drawn from (the same seed and trades replay the same run).
SIMULATED_BROKER_PAYOUT = env.float("SIMULATED_BROKER_PAYOUT", default=0.80)
SIMULATED_BROKER_SEED = env.str("SIMULATED_BROKER_SEED", default="brokerdesk")

BROKER_API_URL = env.str("BROKER_API_URL", default="")
BROKER_REQUEST_TIMEOUT_SECONDS = env.float("BROKER_REQUEST_TIMEOUT_SECONDS", default=15.0)

TELEGRAM_API_URL = env.str("TELEGRAM_API_URL", default="https://api.telegram.org")
TELEGRAM_BOT_TOKEN = env.str("TELEGRAM_BOT_TOKEN", default="")
TELEGRAM_REQUEST_TIMEOUT_SECONDS = env.float("TELEGRAM_REQUEST_TIMEOUT_SECONDS", default=10.0)

GATEWAY_MAX_RETRIES = env.int("GATEWAY_MAX_RETRIES", default=3)
GATEWAY_BACKOFF_SECONDS = env.float("GATEWAY_BACKOFF_SECONDS", default=0.5)

# --- Audit trail ------------------------------------------------------------------------------
# Keys the hash chain (HMAC) so that rewriting a row *and* its hashes needs this secret too.
AUDIT_CHAIN_KEY = env.str("AUDIT_CHAIN_KEY", default=SECRET_KEY)

# --- Metrics --------------------------------------------------------------------------------
# When set, /metrics wants `Authorization: Bearer <METRICS_TOKEN>`.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --- Delivery (docs/delivery.md) -------------------------------------------------------------
# AES-256-GCM keys for secrets at rest, "kid:base64key" separated by commas, newest first.
# Production refuses to start without them; the embedded default (DEBUG, none set) makes
# var/encryption.keys on first run and says so.
ENCRYPTION_KEYS = env.str("ENCRYPTION_KEYS", default="")
if not ENCRYPTION_KEYS and not DEBUG:
    raise ImproperlyConfigured(
        "ENCRYPTION_KEYS must be set when DEBUG is off: see docs/delivery.md "
        "(manage.py generate_encryption_key prints a new key)."
    )
ENCRYPTION_KEY_FILE = "" if ENCRYPTION_KEYS else str(VAR_DIR / "encryption.keys")
# Where one-time links point: /d/<token> under this address. Unset, it follows PORT (the port
# `make run` and gunicorn serve on), so `PORT=8080 make run` links to :8080, not :8000.
PUBLIC_BASE_URL = env.str(
    "PUBLIC_BASE_URL", default=f"http://127.0.0.1:{env.int('PORT', default=8000)}"
)
DELIVERY_LINK_TTL_MINUTES = env.int("DELIVERY_LINK_TTL_MINUTES", default=30)
# Per client address, on /d/<token> and the reveal API: reveals (POST) and page views (GET).
DELIVERY_REVEAL_RATE_LIMIT = env.str("DELIVERY_REVEAL_RATE_LIMIT", default="10/min")
DELIVERY_VIEW_RATE_LIMIT = env.str("DELIVERY_VIEW_RATE_LIMIT", default="60/min")
# Telegram and email sends: retries of transient failures (backoff with jitter) before failed.
DELIVERY_SEND_MAX_RETRIES = env.int("DELIVERY_SEND_MAX_RETRIES", default=5)

# --- Logging: one JSON object per line on stdout ----------------------------------------------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# Celery's "Task ... received" / "succeeded" lines and beat's "Sending due task". `make run`
# sets WARNING for the monitor worker and beat: the sweep, every second, otherwise buries every
# other line of the run (a task that fails is still logged: at ERROR).
CELERY_TASK_LOG_LEVEL = env.str("CELERY_TASK_LOG_LEVEL", default=LOG_LEVEL)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "config.logging.JsonFormatter"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "celery": {"level": LOG_LEVEL},
        "celery.app.trace": {"level": CELERY_TASK_LOG_LEVEL},
        "celery.worker.strategy": {"level": CELERY_TASK_LOG_LEVEL},
        "celery.beat": {"level": CELERY_TASK_LOG_LEVEL},
    },
}
