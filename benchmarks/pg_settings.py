"""Settings of P6's worker (``python -m benchmarks.pg_scale --worker``): two PostgreSQL databases,
``default`` with 1,000 access tokens and ``large`` with 1,000,000, chosen per call by a router
(``benchmarks.pg_scale.Router``); everything else as ``benchmarks.settings``."""

from __future__ import annotations

import os

import dj_database_url

from benchmarks.settings import *  # noqa: F403

DATABASES = {
    "default": dj_database_url.parse(os.environ["BENCH_PG_SMALL"], conn_max_age=600),
    "large": dj_database_url.parse(os.environ["BENCH_PG_LARGE"], conn_max_age=600),
}
DATABASE_ROUTERS = ["benchmarks.pg_scale.Router"]
