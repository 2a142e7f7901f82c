"""Settings of the in-process benchmarks (P1–P3): the test settings with production-like choices.

* Django's **default** ``PASSWORD_HASHERS`` (PBKDF2-SHA256), not the test suite's MD5: DOT hashes
  client secrets with the first hasher, and P1 measures exactly that cost.
* ``DEBUG = False`` (no query log kept; ``CaptureQueriesContext`` still counts queries).
* SQLite in memory, migrated at start by ``benchmarks.inprocess.setup()``; ``DATABASE_URL`` is
  ignored on purpose, so a PostgreSQL environment of the test suite cannot change these rows.
* ``OAUTH2_MTLS`` is set by ``setup()`` (it writes the trusted CA file first).
* ``ROOT_URLCONF``: the test URLs plus ``/bench/dot-stock/`` (DOT with its own validator, P8's
  baseline; ``benchmarks/urls.py``).
"""

from __future__ import annotations

from django.conf import global_settings

from tests.settings import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = list(global_settings.PASSWORD_HASHERS)
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
ROOT_URLCONF = "benchmarks.urls"
LOGGING_CONFIG = None  # no handlers: a log line is the logger's level check, as in most setups
