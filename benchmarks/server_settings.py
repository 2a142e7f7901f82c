"""Settings of the app under gunicorn for P5: the example project as a user deploys it.

The example's settings (our middleware and validator, DRF, ``DEBUG`` off), the test URLs (for
``/test/dot-plain/`` and ``/test/mtls-any/``), the database from ``BENCH_DATABASE_URL`` with
persistent connections (``CONN_MAX_AGE``), or a SQLite file in WAL mode (``BENCH_SQLITE_PATH``).
The trusted CA comes from ``OAUTH2_MTLS_TRUSTED_CA`` (read by the example's settings).
"""

from __future__ import annotations

import os

from example_project.settings import *  # noqa: F403

DEBUG = False
ROOT_URLCONF = "tests.urls"
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

if os.environ.get("BENCH_DATABASE_URL"):
    import dj_database_url

    DATABASES = {
        "default": dj_database_url.parse(os.environ["BENCH_DATABASE_URL"], conn_max_age=600)
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("BENCH_SQLITE_PATH", "/tmp/django-oauth-mtls-bench.sqlite3"),
            "CONN_MAX_AGE": 600,
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
        }
    }

# No per-request INFO lines on the console: a production log would go to a file or a collector.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
