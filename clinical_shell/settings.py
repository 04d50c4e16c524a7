"""Django settings of the Osteon clinical shell: every deployment knob is an OSTEON_* variable.

With no environment at all the shell runs on a SQLite file under var/ (zero set-up). Under pytest
the database is OSTEON_TEST_DATABASE_URL when set (pytest-django then creates `test_<name>`),
else SQLite.
"""

import os
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from django.utils.translation import gettext_lazy as _

from clinical_shell.env import (
    SettingsError,
    env_bool,
    env_int,
    env_optional,
    env_secret,
    env_str,
    ice_urls,
    parse_database_url,
)
from clinical_shell.keyfiles import (
    configured_fallbacks,
    configured_secret,
    test_checkpoint_dir,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
SHELL_DIR = Path(__file__).resolve().parent
VAR_DIR = REPO_ROOT / "var"

RUNNING_TESTS = "pytest" in sys.modules

DEBUG = env_bool("OSTEON_DEBUG", False)

# Secrets (clinical_shell/keyfiles.py, docs/security.md "Secrets"): from OSTEON_* variables or
# the per-install key files under OSTEON_KEY_DIR. Under pytest, fixed test keys unless set; any
# other process with a secret missing keeps an empty value (Django refuses to use an empty
# SECRET_KEY) and the server refuses to start (keyfiles.require_configured_secrets).
OSTEON_KEY_DIR = Path(env_str("OSTEON_KEY_DIR", str(VAR_DIR / "keys")))
_TEST_SECRETS = {
    "OSTEON_SECRET_KEY": "osteon-test-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
    "OSTEON_ID_HMAC_KEY": "osteon-test-only-id-hmac-key-0123456789abcdefghijklmnopqrstuv",
    "OSTEON_AUDIT_KEY": "osteon-test-only-audit-key-0123456789abcdefghijklmnopqrstuvwxy",
    "OSTEON_AUDIT_SIGNING_KEY": "5e" * 32,
}
OSTEON_MISSING_SECRETS: list[str] = []


def _secret_setting(variable: str) -> str:
    value = configured_secret(variable, OSTEON_KEY_DIR, use_files=not RUNNING_TESTS)
    if value is not None:
        return value
    if RUNNING_TESTS:
        return _TEST_SECRETS[variable]
    OSTEON_MISSING_SECRETS.append(variable)
    return ""


SECRET_KEY = _secret_setting("OSTEON_SECRET_KEY")
# previous keys: sessions and signed values made with them stay valid while they move over
SECRET_KEY_FALLBACKS = configured_fallbacks(OSTEON_KEY_DIR, use_files=not RUNNING_TESTS)

ALLOWED_HOSTS = env_str("OSTEON_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",")

INSTALLED_APPS = [
    "channels",  # websockets (live pages) on the ASGI server
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",  # bundles Swagger UI: the API docs load no CDN script
    "clinical_shell.audit",
    "clinical_shell.network",
    "clinical_shell.accounts",
    "clinical_shell.records",
    "clinical_shell.imaging",
    "huey.contrib.djhuey",
    "clinical_shell.realtime",
    "clinical_shell.jobs",
    "clinical_shell.stations",
    "clinical_shell.training",
    "clinical_shell.credentialing",
    "clinical_shell.scheduling",
    "clinical_shell.notifications",
    "clinical_shell.referrals",
    "clinical_shell.quality",
    "clinical_shell.planning",
    "clinical_shell.live",
    "clinical_shell.administration",
    "axes",  # sign-in throttling per client address (clinical_shell.accounts.throttle)
]

MIDDLEWARE = [
    # first, in the event loop under uvicorn: bounds the sign-in requests a process holds
    "clinical_shell.accounts.throttle.SignInAdmissionMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # static files answered here, before sessions and the database are touched
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # everything below is a page or an API answer, never a static file: no-store unless set
    "clinical_shell.middleware.NoStoreMiddleware",
    "clinical_shell.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "clinical_shell.middleware.ChineseFirstLocaleMiddleware",
    # inside the language: problem details and the upload refusal speak the request's language
    "clinical_shell.middleware.ApiProblemDetailsMiddleware",
    "clinical_shell.upload_limits.UploadLimitMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "clinical_shell.accounts.middleware.IdleTimeoutMiddleware",
    "clinical_shell.accounts.middleware.ForcedPasswordChangeMiddleware",
    "clinical_shell.audit.context.AuditOriginMiddleware",
    "clinical_shell.middleware.DomainErrorPageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # turns a client lockout found while recording a failure into our 429 (axes' hook)
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "clinical_shell.urls"
WSGI_APPLICATION = "clinical_shell.wsgi.application"
ASGI_APPLICATION = "clinical_shell.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [SHELL_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "clinical_shell.notifications.context_processors.unread_notifications",
                "clinical_shell.administration.context.administration_nav",
            ],
        },
    },
]

if RUNNING_TESTS:
    _test_url = env_str("OSTEON_TEST_DATABASE_URL", "sqlite:///var/test-shell.sqlite3")
    _db = parse_database_url(_test_url)
    if _db["ENGINE"].endswith("sqlite3"):
        # the test database is this file (recreated by each run), see TEST below
        _db["NAME"] = (
            str(REPO_ROOT / _db["NAME"]) if not _db["NAME"].startswith("/") else _db["NAME"]
        )
        # a file, not pytest-django's in-memory default: case-build workers are separate
        # processes and must see the test database (xdist workers get their own suffix)
        _db["TEST"] = {"NAME": _db["NAME"]}
        Path(_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
else:
    _db = parse_database_url(
        env_str("OSTEON_DATABASE_URL", f"sqlite:///{VAR_DIR / 'osteon-shell.sqlite3'}")
    )
    if _db["ENGINE"].endswith("sqlite3"):
        Path(_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# 等保 level 3: memory-hard password hashing; older hashes still verify and are upgraded on sign-in
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if RUNNING_TESTS:
    # argon2 at full cost would dominate the suite's time; tests check the algorithm, not its cost
    PASSWORD_HASHERS = [
        "clinical_shell.accounts.hashers.FastArgon2PasswordHasher",
        *PASSWORD_HASHERS,
    ]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "clinical_shell.accounts.backends.LockoutModelBackend",
]
LOGIN_URL = "accounts:sign_in"
LOGIN_REDIRECT_URL = "records:patient_search"

# --- sign-in (等保 level 3 login-failure handling; docs/security.md "Sign-in") ---
# per client address (django-axes, counted in the database): this many failures within the
# cool-off refuse the address with 429 + Retry-After until the cool-off has passed
OSTEON_SIGNIN_CLIENT_FAILURES = env_int("OSTEON_SIGNIN_CLIENT_FAILURES", 20)
OSTEON_SIGNIN_CLIENT_COOLOFF_S = env_int("OSTEON_SIGNIN_CLIENT_COOLOFF_S", 15 * 60)
# all clients together: this many failures within the cool-off refuse every sign-in attempt
# (a distributed guess), 429 until the window passes
OSTEON_SIGNIN_GLOBAL_FAILURES = env_int("OSTEON_SIGNIN_GLOBAL_FAILURES", 1000)
# progressive delay: after this many failures, the next attempt waits 2, 4, 8 ... s up to the cap
OSTEON_SIGNIN_ACCOUNT_FREE_FAILURES = 5
OSTEON_SIGNIN_CLIENT_FREE_FAILURES = 10
OSTEON_SIGNIN_MAX_DELAY_S = 5 * 60
# this many failures in a row lock the account until its owner proves a second factor or an
# administrator lifts the lock; failures older than the window are forgotten
OSTEON_SIGNIN_LOCK_FAILURES = env_int("OSTEON_SIGNIN_LOCK_FAILURES", 30)
OSTEON_SIGNIN_FAILURE_WINDOW_S = 24 * 3600
# refused attempts (accounts.SignInFailure) are kept this long (network logs >= 6 months)
OSTEON_SIGNIN_FAILURE_RETENTION_DAYS = env_int("OSTEON_SIGNIN_FAILURE_RETENTION_DAYS", 190)
# at most this many password hashes at once per process (argon2 takes ~100 MiB each); an attempt
# that cannot start one within the wait gets 503 + Retry-After
OSTEON_PASSWORD_HASH_CONCURRENCY = env_int(
    "OSTEON_PASSWORD_HASH_CONCURRENCY", max(1, min(4, os.cpu_count() or 1))
)
OSTEON_PASSWORD_HASH_WAIT_S = 2.0
# at most this many password-checking requests (sign-in, unlock, password change) in a process at
# once, queued or hashing (~0.15 s each); more are refused at once with 503 + Retry-After
OSTEON_PASSWORD_HASH_QUEUE = env_int("OSTEON_PASSWORD_HASH_QUEUE", 16)
# the demo loader writes demo accounts (known passwords) only where this is set and into a
# database it created itself (accounts.DemoDatabase row); `make run` sets it
OSTEON_DEMO = env_bool("OSTEON_DEMO", False)
AXES_ENABLED = True
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_FAILURE_LIMIT = OSTEON_SIGNIN_CLIENT_FAILURES
AXES_COOLOFF_TIME = timedelta(seconds=OSTEON_SIGNIN_CLIENT_COOLOFF_S)
# REMOTE_ADDR only: behind deploy/nginx, uvicorn --proxy-headers has already replaced it with
# the X-Forwarded-For nginx set, and only for a connection from loopback (forwarded_allow_ips)
AXES_CLIENT_IP_CALLABLE = "clinical_shell.accounts.throttle.client_ip"
AXES_LOCKOUT_CALLABLE = "clinical_shell.accounts.throttle.axes_lockout_response"
AXES_RESET_ON_SUCCESS = False  # one good account must not clear an address's failures
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # keeps Retry-After truthful
AXES_DISABLE_ACCESS_LOG = True  # successes are in the audit chain
AXES_ENABLE_ACCESS_FAILURE_LOG = False  # failures are in accounts.SignInFailure (retention)
AXES_VERBOSE = False
OSTEON_IDLE_TIMEOUT_SECONDS = 30 * 60
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("OSTEON_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# key for searchable resident-ID digests: separate from SECRET_KEY so either can rotate alone
OSTEON_ID_HMAC_KEY = _secret_setting("OSTEON_ID_HMAC_KEY")
# the audit chain's HMAC key and the checkpoint signing seed: never stored in the database
OSTEON_AUDIT_KEY = _secret_setting("OSTEON_AUDIT_KEY")
OSTEON_AUDIT_SIGNING_KEY = _secret_setting("OSTEON_AUDIT_SIGNING_KEY")
# signed checkpoints of the audit chain, outside the database (append-only file)
# (under pytest a folder of this process's own: checkpoints of a test database never mix with
# the install's)
OSTEON_AUDIT_CHECKPOINT_DIR = Path(
    env_str(
        "OSTEON_AUDIT_CHECKPOINT_DIR",
        str(test_checkpoint_dir() if RUNNING_TESTS else VAR_DIR / "audit-checkpoints"),
    )
)

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
# teleconsultation's own catalogue beside the referrals app's (two people write them at once)
LOCALE_PATHS = [SHELL_DIR / "locale", SHELL_DIR / "referrals" / "consult_locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# the shell's own scripts (base.html's), beside each app's static/
STATICFILES_DIRS = [SHELL_DIR / "static"]
STATIC_ROOT = Path(env_str("OSTEON_STATIC_ROOT", str(VAR_DIR / "static")))
MEDIA_ROOT = Path(env_str("OSTEON_MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"
# DICOM files by UID (the index is in the database); never served as static media
OSTEON_DICOM_ROOT = Path(env_str("OSTEON_DICOM_ROOT", str(VAR_DIR / "dicom")))
# uploads: a 300-slice CT sent as single files must fit; larger sets go as a zip
DATA_UPLOAD_MAX_NUMBER_FILES = 1000
# one request's uploaded files together (nginx's client_max_body_size is the same 4 GiB): counted
# while the body streams to disk and cut off past it (clinical_shell/upload_limits.py)
OSTEON_UPLOAD_MAX_BYTES = env_int("OSTEON_UPLOAD_MAX_BYTES", 4 * 2**30)
# a file above FILE_UPLOAD_MAX_MEMORY_SIZE (Django's 2.5 MiB) goes to a temporary file on disk as
# it arrives, never whole into memory; form fields and JSON bodies stay under
# DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MiB as well)
FILE_UPLOAD_HANDLERS = [
    "clinical_shell.upload_limits.SizeLimitedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# refuse a zip whose members would expand beyond this (zip bombs) / hold more entries than this
OSTEON_DICOM_ZIP_MAX_BYTES = 4 * 2**30
OSTEON_DICOM_ZIP_MAX_ENTRIES = 5000
OSTEON_DICOM_FILE_MAX_BYTES = 512 * 2**20
# simulation cases built from CT series: one bundle directory per build job, <root>/<job id>
OSTEON_CASE_ROOT = Path(env_str("OSTEON_CASE_ROOT", str(VAR_DIR / "cases")))
# the planner's bone meshes (binary glTF), a file per case content (planning/bone_mesh.py)
OSTEON_PLANNER_MESH_ROOT = Path(
    env_str("OSTEON_PLANNER_MESH_ROOT", str(VAR_DIR / "planner-meshes"))
)
# a case-build job with no progress for this long is reported as lost (worker died)
OSTEON_CASE_BUILD_STALE_SECONDS = 15 * 60

NINJA_PAGINATION_PER_PAGE = 20
NINJA_PAGINATION_MAX_LIMIT = 100

# --- scale-out services: one Redis for the channel layer and the task queue, none by default ---
# unset: in-memory channel layer and SQLite task storage (one machine, zero set-up)
OSTEON_REDIS_URL = env_optional("OSTEON_REDIS_URL")

# --- live pages (clinical_shell.realtime) ---
if OSTEON_REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [OSTEON_REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- background jobs (clinical_shell.jobs, Huey) ---
OSTEON_HUEY_PATH = Path(env_str("OSTEON_HUEY_PATH", str(VAR_DIR / "huey-tasks.sqlite3")))
if OSTEON_REDIS_URL:
    HUEY = {
        "huey_class": "huey.RedisHuey",
        "name": env_str("OSTEON_HUEY_NAME", "osteon"),
        "url": OSTEON_REDIS_URL,
        "immediate": False,
    }
else:
    OSTEON_HUEY_PATH.parent.mkdir(parents=True, exist_ok=True)
    HUEY = {
        "huey_class": "huey.SqliteHuey",
        "name": env_str("OSTEON_HUEY_NAME", "osteon"),
        "filename": str(OSTEON_HUEY_PATH),
        "immediate": False,
    }

# --- background jobs limits ---
# heavy jobs (a case build holds a few GiB) run at most this many at once, the rest wait in line:
# by default one per two cores and per 4 GiB of memory, at least one
import os  # noqa: E402

import psutil  # noqa: E402

_total_ram_bytes = int(psutil.virtual_memory().total)
OSTEON_HEAVY_JOBS_MAX = int(
    env_str(
        "OSTEON_HEAVY_JOBS_MAX",
        str(max(1, min((os.cpu_count() or 2) // 2, _total_ram_bytes // (4 * 2**30)))),
    )
)
# one heavy job may use this much memory: the heavy jobs running at once fit in 3/4 of the RAM
OSTEON_JOB_MEMORY_LIMIT_BYTES = int(
    env_str(
        "OSTEON_JOB_MEMORY_LIMIT_BYTES", str(_total_ram_bytes * 3 // 4 // OSTEON_HEAVY_JOBS_MAX)
    )
)
# a running job that has not reported (heartbeat every few seconds) for this long lost its worker
OSTEON_JOB_STALE_SECONDS = 120
if RUNNING_TESTS and not OSTEON_REDIS_URL and "OSTEON_HUEY_PATH" not in os.environ:
    # each test database gets its own task storage, so concurrent test runs never share a queue
    HUEY["filename"] = str(VAR_DIR / f"huey-test-{Path(str(_db['NAME'])).stem}.sqlite3")

# --- bridge ---
# simulator stations (clinical_shell.stations, bridge/):
# the endpoint stations connect to; its CURVE keypair is created on first use in the key dir
# (its enrolment port; `osteon bridge serve` listens on OSTEON_BRIDGE_PORT, requests on +1)
OSTEON_BRIDGE_URL = env_str(
    "OSTEON_BRIDGE_URL", f"tcp://127.0.0.1:{env_str('OSTEON_BRIDGE_PORT', '5750')}"
)
OSTEON_BRIDGE_KEY_DIR = Path(env_str("OSTEON_BRIDGE_KEY_DIR", str(VAR_DIR / "bridge")))
# case bundles packed as the bridge sends them (tar named by its sha256)
OSTEON_CASE_ARCHIVE_ROOT = Path(env_str("OSTEON_CASE_ARCHIVE_ROOT", str(VAR_DIR / "case-archives")))
# session recordings received from stations, stored by sha256
OSTEON_STATION_RECORDING_ROOT = Path(
    env_str("OSTEON_STATION_RECORDING_ROOT", str(VAR_DIR / "station-recordings"))
)
# replay videos of session results (clinical_shell.stations.replay_video): frames per second
# and size, WIDTHxHEIGHT (both even), of the MP4 the background job makes
OSTEON_REPLAY_VIDEO_FPS = env_int("OSTEON_REPLAY_VIDEO_FPS", 25)
OSTEON_REPLAY_VIDEO_SIZE = tuple(
    int(v) for v in env_str("OSTEON_REPLAY_VIDEO_SIZE", "960x600").lower().split("x", 1)
)
# a station silent for this long is offline (heartbeats come every second)
OSTEON_STATION_OFFLINE_AFTER_S = 3.0
# a running session whose station stays silent this long is aborted; a station back within it
# resends from its outbox and its session carries on (seconds)
OSTEON_STATION_SESSION_GRACE_S = env_int("OSTEON_STATION_SESSION_GRACE_S", 600)

# --- serving ---
# production server: uvicorn (`osteon shell serve`), several processes behind nginx (deploy/).
# `serve` runs collectstatic first: hashed, gzip- and brotli-compressed copies that WhiteNoise
# serves with far-future caching (clinical_shell/static_files.py). In-process tests render pages
# without it, linking unhashed names; a server a test starts runs collectstatic like production.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if RUNNING_TESTS
            else "clinical_shell.static_files.CompressedManifestStorage"
        )
    },
}
# the viewer's worker and codec files keep the names its bundle asks for (unhashed copies stay)
WHITENOISE_KEEP_ONLY_HASHED_FILES = False
# WhiteNoise warns at start-up when STATIC_ROOT is missing (before the first collectstatic)
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# OSTEON_SECURE_COOKIES=true says the site is reached over HTTPS only: secure cookies (above),
# a redirect from plain HTTP and HSTS follow from it
_served_over_https = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("OSTEON_SSL_REDIRECT", _served_over_https)
SECURE_HSTS_SECONDS = int(
    env_str("OSTEON_HSTS_SECONDS", str(365 * 24 * 3600 if _served_over_https else 0))
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("OSTEON_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("OSTEON_HSTS_PRELOAD", True)
# behind nginx terminating TLS: believe its X-Forwarded-Proto (nginx sets it, never passes the
# client's); never enable without such a proxy, a client could claim HTTPS
if env_bool("OSTEON_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
_trusted_origins = env_optional("OSTEON_CSRF_TRUSTED_ORIGINS")
CSRF_TRUSTED_ORIGINS = _trusted_origins.split(",") if _trusted_origins else []
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# set by `osteon shell serve` for its worker and bridge when there is no Redis: their live
# events go to the web server over HTTP (clinical_shell/realtime/relay.py)
OSTEON_LIVE_RELAY_URL = env_optional("OSTEON_LIVE_RELAY_URL")
# --- live streaming to remote experts (clinical_shell.live, streaming/relay.py, docs/live.md) ---
# where browsers reach the relay: ws:// or wss:// and host[:port], no path; the watch page opens
# <this>/rooms/<room>/streams/<stream>/<quality>?token=... and the CSP below admits its origin
OSTEON_STREAM_RELAY_URL = env_str("OSTEON_STREAM_RELAY_URL", "ws://127.0.0.1:8765").rstrip("/")
_relay = urlsplit(OSTEON_STREAM_RELAY_URL)
if _relay.scheme not in ("ws", "wss") or not _relay.netloc or _relay.path or _relay.query:
    raise SettingsError(
        "OSTEON_STREAM_RELAY_URL 须为 ws://主机:端口 或 wss://主机:端口 / must be "
        f"ws://host:port or wss://host:port with no path, got {OSTEON_STREAM_RELAY_URL!r}"
    )
# the HMAC secret shared with the relay (its config's secret_file): OSTEON_STREAM_RELAY_SECRET
# or OSTEON_STREAM_RELAY_SECRET_FILE, else this file (None: OSTEON_KEY_DIR/stream_relay_secret),
# created on first use (mode 600)
OSTEON_STREAM_RELAY_SECRET = env_secret("OSTEON_STREAM_RELAY_SECRET")
OSTEON_STREAM_RELAY_SECRET_PATH = env_optional("OSTEON_STREAM_RELAY_SECRET_PATH")
# voice between the operating room and the experts (WebRTC; clinical_shell/live/ice.py): STUN
# and TURN (coturn, shared-secret mode) URLs, comma-separated; none on one network
OSTEON_STUN_URLS = ice_urls("OSTEON_STUN_URLS", ("stun:",))
OSTEON_TURN_URLS = ice_urls("OSTEON_TURN_URLS", ("turn:", "turns:"))
OSTEON_TURN_SECRET = env_secret("OSTEON_TURN_SECRET")
if OSTEON_TURN_URLS and not OSTEON_TURN_SECRET:
    raise SettingsError(
        "OSTEON_TURN_URLS 需要 OSTEON_TURN_SECRET（coturn 的 static-auth-secret）/ "
        "OSTEON_TURN_URLS needs OSTEON_TURN_SECRET (coturn's static-auth-secret)"
    )
# how long a page's TURN credential lasts [s]: an operation's length, and then some
OSTEON_TURN_CREDENTIAL_TTL_S = env_int("OSTEON_TURN_CREDENTIAL_TTL_S", 12 * 3600)
# the relay's record_dir: <room>/<stream>-<UTC time>.mp4 files the live app attaches to sessions
OSTEON_LIVE_RECORDINGS_DIR = Path(
    env_str("OSTEON_LIVE_RECORDINGS_DIR", str(VAR_DIR / "live-recordings"))
)
# Content-Security-Policy of every response (clinical_shell.middleware): scripts, styles, images,
# sockets only from this site. No inline script: every script is a static file, page data comes
# through json_script or data- attributes (tests/clinical_shell/test_headers.py scans for them).
# The viewer compiles its codecs from WebAssembly and decodes in blob: workers.
OSTEON_CONTENT_SECURITY_POLICY: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "script-src": ["'self'", "'wasm-unsafe-eval'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:", "blob:"],
    "media-src": ["'self'", "blob:"],
    "font-src": ["'self'", "data:"],
    "worker-src": ["'self'", "blob:"],
    # the live relay's viewer sockets (clinical_shell.live)
    "connect-src": ["'self'", f"{_relay.scheme}://{_relay.netloc}"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}

# --- notifications ---
# e-mail copies of in-app notifications (title and link only) go through this SMTP server;
# none is configured by default, and then only the in-app notifications exist
OSTEON_SMTP_HOST = env_str("OSTEON_SMTP_HOST", "")
EMAIL_HOST = OSTEON_SMTP_HOST or "localhost"
EMAIL_PORT = env_int("OSTEON_SMTP_PORT", 25)
EMAIL_HOST_USER = env_str("OSTEON_SMTP_USER", "")
EMAIL_HOST_PASSWORD = env_secret("OSTEON_SMTP_PASSWORD") or ""
EMAIL_USE_TLS = env_bool("OSTEON_SMTP_STARTTLS", False)
EMAIL_TIMEOUT = env_int("OSTEON_SMTP_TIMEOUT_S", 10)
DEFAULT_FROM_EMAIL = env_str("OSTEON_MAIL_FROM", "osteon@localhost")
# the address people reach the shell at, for links in e-mail
OSTEON_PUBLIC_URL = env_str("OSTEON_PUBLIC_URL", "http://127.0.0.1:8000")
