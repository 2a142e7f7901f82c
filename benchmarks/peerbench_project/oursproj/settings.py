"""peerbench target "ours": peerbench's DOT project (dot/benchproj) plus django-oauth-mtls.

Same choices as the dot peer (DEBUG off, SQLite in WAL mode with BEGIN IMMEDIATE, DRF JSON
only); added: our app, middleware and validator, the certificate from the RFC 9440
``Client-Cert`` field that peerbench sends (as a TLS-terminating proxy on loopback would), and
peerbench's test CA as trust anchor for ``tls_client_auth``.
"""

from __future__ import annotations

import os

SECRET_KEY = "peerbench-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "oauth2_provider",
    "rest_framework",
    "django_oauth_mtls",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django_oauth_mtls.middleware.ClientCertificateMiddleware",
]
ROOT_URLCONF = "oursproj.urls"
WSGI_APPLICATION = "oursproj.wsgi.application"

DATABASES = {
    "default": {
        # The tuned target runs django_oauth_mtls.contrib.sqlite3 (peerbench_target.sh).
        "ENGINE": os.environ.get("PEERBENCH_OURS_SQLITE_ENGINE", "django.db.backends.sqlite3"),
        "NAME": os.environ.get("PEERBENCH_OURS_DB", "/tmp/peerbench/ours/db.sqlite3"),
        "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
        # peerbench's dot peer: 0 (a connection per request). OURS_TUNED=1 in
        # peerbench_target.sh sets 600 (persistent connections).
        "CONN_MAX_AGE": int(os.environ.get("PEERBENCH_OURS_CONN_MAX_AGE", "0")),
    }
}
if os.environ.get("PEERBENCH_OURS_PG"):
    # PostgreSQL instead of SQLite (target ours_tuned_pg): postgresql://user:pw@host:port/db
    from urllib.parse import urlsplit

    _url = urlsplit(os.environ["PEERBENCH_OURS_PG"])
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _url.path.lstrip("/"),
            "USER": _url.username,
            "PASSWORD": _url.password,
            "HOST": _url.hostname,
            "PORT": _url.port,
            "CONN_MAX_AGE": int(os.environ.get("PEERBENCH_OURS_CONN_MAX_AGE", "0")),
        }
    }
elif os.environ.get("PEERBENCH_OURS_SQLITE_SYNCHRONOUS"):
    # WAL + synchronous=NORMAL: no fsync per COMMIT (durable at checkpoints), SQLite's advice
    # for WAL. The dot peer keeps SQLite's default (FULL).
    DATABASES["default"]["OPTIONS"]["init_command"] = (
        "PRAGMA synchronous=" + os.environ["PEERBENCH_OURS_SQLITE_SYNCHRONOUS"]
    )
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

OAUTH2_PROVIDER = {
    "SCOPES": {"read": "Read", "introspection": "Introspect tokens"},
    "DEFAULT_SCOPES": ["read"],
    "ACCESS_TOKEN_EXPIRE_SECONDS": 36000,
    "OAUTH2_VALIDATOR_CLASS": "django_oauth_mtls.oauth2_validators.MTLSOAuth2Validator",
}
OAUTH2_MTLS = {
    "CERTIFICATE_SOURCE": "rfc9440",
    "TRUSTED_PROXIES": ["127.0.0.1/32"],
    "TRUSTED_CA_CERTIFICATES": [os.environ.get("PEERBENCH_CA", "/tmp/peerbench/certs/ca.crt")],
}
if os.environ.get("PEERBENCH_OURS_JWT_KEY"):
    # P10 (issue #15, peerbench_target.sh's JWT phase): the client ours-pki-jwt gets RFC 9068
    # access tokens signed with this key, and the resource checks JWTs locally (no database, no
    # network): RESOURCE_SERVER_TOKEN_VALIDATION "jwt" unless PEERBENCH_OURS_RS_MODE says
    # otherwise. Not set for the other scenarios: they run exactly as before.
    OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"] = "http://127.0.0.1"
    OAUTH2_MTLS.update(
        JWT_SIGNING_KEYS=[os.environ["PEERBENCH_OURS_JWT_KEY"]],
        JWT_AUDIENCE="https://api.peerbench.test",
        RESOURCE_SERVER_AUDIENCE="https://api.peerbench.test",
        RESOURCE_SERVER_TOKEN_VALIDATION=os.environ.get("PEERBENCH_OURS_RS_MODE", "jwt"),
    )
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
