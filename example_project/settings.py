"""Settings of the example project: a DOT authorization server, a DRF API and the admin.

SQLite by default; ``DATABASE_URL`` selects another database (PostgreSQL in CI).
``OAUTH2_MTLS_CERTIFICATE_SOURCE`` picks how the proxy in front forwards the certificate.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-a-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
# The proxy recipes (django_oauth_mtls/recipes/) set X-Forwarded-Proto on every request,
# replacing a client's copy: only then may Django trust it for request.is_secure() and absolute
# https:// URLs.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "oauth2_provider",
    "rest_framework",
    "django_oauth_mtls",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_oauth_mtls.middleware.ClientCertificateMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

if os.environ.get("DATABASE_URL"):
    import dj_database_url

    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
else:
    # SQLite: every write transaction takes the write lock at BEGIN (no "database is locked"
    # when a read upgrades to a write), and waits for it in short steps rather than SQLite's
    # 1, 2, 5 ms sleeps (django_oauth_mtls.contrib.sqlite3, docs/performance.md).
    DATABASES = {
        "default": {
            "ENGINE": "django_oauth_mtls.contrib.sqlite3",
            "NAME": os.environ.get("EXAMPLE_SQLITE_PATH", str(BASE_DIR / "example.sqlite3")),
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    }

# Several app nodes share one cache (docs/scaling.md): the jwks_uri and JWK-set caches live in
# Django's "default" cache, so EXAMPLE_REDIS_URL=redis://HOST:6379/0 puts it in Redis (the redis
# package). Without it, Django's default: a cache per process.
if os.environ.get("EXAMPLE_REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["EXAMPLE_REDIS_URL"],
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "example_project" / "static"
LOGIN_URL = "/admin/login/"

OAUTH2_PROVIDER = {
    "SCOPES": {"read": "Read", "write": "Write", "introspection": "Introspect tokens"},
    "OAUTH2_VALIDATOR_CLASS": "django_oauth_mtls.oauth2_validators.MTLSOAuth2Validator",
    "DCR_ENABLED": True,
    "PKCE_REQUIRED": True,
    "OIDC_ISS_ENDPOINT": os.environ.get("OAUTH2_ISSUER", ""),
}

# JWT access tokens (RFC 9068 with cnf): OAUTH2_MTLS_ACCESS_TOKEN_FORMAT picks the default format
# (a client's own access_token_format overrides it); OAUTH2_MTLS_JWT_SIGNING_KEY names the PEM file
# of the signing key (`manage.py mtls_jwt_key generate PATH`). With a key the API checks JWTs
# locally, with no database query, and any other token in the database ("jwt_or_database").
JWT_SIGNING_KEY = os.environ.get("OAUTH2_MTLS_JWT_SIGNING_KEY", "")
JWT_AUDIENCE = os.environ.get("OAUTH2_MTLS_JWT_AUDIENCE") or (
    OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"].rstrip("/") + "/api/"
    if OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"]
    else ""
)

OAUTH2_MTLS = {
    "CERTIFICATE_SOURCE": os.environ.get("OAUTH2_MTLS_CERTIFICATE_SOURCE", "nginx"),
    "ACCESS_TOKEN_FORMAT": os.environ.get("OAUTH2_MTLS_ACCESS_TOKEN_FORMAT", "opaque"),
    "TRUSTED_PROXIES": ["127.0.0.1/32", "::1/128"],
    "MTLS_BASE_URL": os.environ.get("OAUTH2_MTLS_BASE_URL") or None,
    # PEM files of the CAs that issue tls_client_auth certificates (os.pathsep-separated).
    "TRUSTED_CA_CERTIFICATES": [
        path for path in os.environ.get("OAUTH2_MTLS_TRUSTED_CA", "").split(os.pathsep) if path
    ],
}
if JWT_SIGNING_KEY:
    OAUTH2_MTLS.update(
        JWT_SIGNING_KEYS=[JWT_SIGNING_KEY],
        JWT_AUDIENCE=JWT_AUDIENCE or None,
        RESOURCE_SERVER_TOKEN_VALIDATION="jwt_or_database",
        RESOURCE_SERVER_AUDIENCE=JWT_AUDIENCE or None,
    )

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "oauth2_provider.contrib.rest_framework.OAuth2Authentication",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_oauth_mtls": {"handlers": ["console"], "level": "INFO"}},
}
