"""Concurrent token requests through real nginx into two gunicorn workers on one SQLite file,
with the example's ``django_oauth_mtls.contrib.sqlite3`` backend (issue #16): every request gets
its own bound token, every token and binding row is written once, and none is refused with
"database is locked". The workers are processes, so the write lock is SQLite's, not Python's."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e import servers
from tests.e2e.clients import TIMEOUT
from tests.e2e.conftest import E2EPki
from tests.e2e.test_binding_nginx import bound_example

pytestmark = pytest.mark.e2e

REQUESTS = 96
PARALLEL = 24

ROWS = """
from django.db import connections
from oauth2_provider.models import get_access_token_model
from django_oauth_mtls.models import AccessTokenBinding
connection = connections["default"]
tokens = get_access_token_model().objects.filter(application__client_id=%r)
bound = AccessTokenBinding.objects.filter(access_token__in=tokens)
counts = tokens.count(), bound.count(), bound.values("x5t_s256").distinct().count()
print(type(connection).__module__, connection.transaction_mode, *counts)
"""


@pytest.fixture(scope="module")
def two_workers(e2e_dir: Path, e2e_pki: E2EPki) -> Iterator[tuple[str, str, Path]]:
    """The example behind nginx on 2 sync gunicorn workers; (url, client_id, SQLite file)."""
    with bound_example(e2e_dir, e2e_pki, "sqlite-writers", threads=1, workers=2) as setup:
        yield setup[:3]


def test_parallel_token_requests_each_get_a_bound_token_written_once(
    two_workers: tuple[str, str, Path], e2e_pki: E2EPki
) -> None:
    url, client_id, sqlite_path = two_workers
    own = e2e_pki.clients["pki"]
    context = ssl.create_default_context(cafile=str(e2e_pki.tls.ca))
    context.load_cert_chain(str(own.cert_file), str(own.key_file))
    form = {"grant_type": "client_credentials", "client_id": client_id, "scope": "read"}

    with httpx.Client(
        verify=context,
        timeout=TIMEOUT,
        trust_env=False,
        limits=httpx.Limits(max_connections=PARALLEL),
    ) as session:

        def token(_: int) -> tuple[int, dict]:
            response = session.post(f"{url}/o/token/", data=form)
            return response.status_code, response.json()

        with ThreadPoolExecutor(PARALLEL) as pool:
            replies = list(pool.map(token, range(REQUESTS)))

        assert [status for status, _ in replies] == [200] * REQUESTS, [
            body for status, body in replies if status != 200
        ][:3]
        tokens = {body["access_token"] for _, body in replies}
        assert len(tokens) == REQUESTS
        # each is bound to the certificate it was issued to
        for access_token in list(tokens)[:3]:
            response = session.get(
                f"{url}/api/whoami/", headers={"Authorization": f"Bearer {access_token}"}
            )
            assert response.json() == {"client_id": client_id, "x5t#S256": own.x5t_s256}

    engine, mode, rows, bindings, thumbprints = servers.example_shell(
        sqlite_path, ROWS % client_id
    ).split()
    assert (engine, mode) == ("django_oauth_mtls.contrib.sqlite3.base", "IMMEDIATE")
    assert (int(rows), int(bindings), int(thumbprints)) == (REQUESTS, REQUESTS, 1)
