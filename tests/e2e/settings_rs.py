"""A separate resource server: the example project validating the AS's JWTs (tests only).

``tests/e2e/test_jwt_remote_rs.py`` runs a second gunicorn of the example with
``DJANGO_SETTINGS_MODULE=tests.e2e.settings_rs``: its own empty database, no signing key, and
the keys of the authorization server fetched from its JWK set (docs/resource-server.md). Every
value comes from the environment, under the names proposed for the example's settings:

=============================================  ==============================================
``OAUTH2_MTLS_TOKEN_VALIDATION``               ``RESOURCE_SERVER_TOKEN_VALIDATION`` (``jwt``)
``OAUTH2_MTLS_RESOURCE_AUDIENCE``              ``RESOURCE_SERVER_AUDIENCE``
``OAUTH2_MTLS_JWT_ISSUER``                     ``RESOURCE_SERVER_JWT_ISSUER``
``OAUTH2_MTLS_JWKS_URI``                       ``RESOURCE_SERVER_JWKS_URI``
``OAUTH2_MTLS_RS_CA_BUNDLE``                   ``RESOURCE_SERVER_CA_BUNDLE``
``OAUTH2_MTLS_JWKS_CACHE_SECONDS``             ``JWKS_CACHE_SECONDS`` (default 300)
``OAUTH2_MTLS_JWKS_REFETCH_INTERVAL_SECONDS``  ``JWKS_REFETCH_INTERVAL_SECONDS`` (default 30)
=============================================  ==============================================

The certificate still arrives from nginx in front (``OAUTH2_MTLS_CERTIFICATE_SOURCE``, the
example's loopback ``TRUSTED_PROXIES``).
"""

import os

from example_project.settings import *  # noqa: F403
from example_project.settings import OAUTH2_MTLS


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


OAUTH2_MTLS = {
    **OAUTH2_MTLS,
    "RESOURCE_SERVER_TOKEN_VALIDATION": os.environ.get("OAUTH2_MTLS_TOKEN_VALIDATION", "jwt"),
    "RESOURCE_SERVER_AUDIENCE": _env("OAUTH2_MTLS_RESOURCE_AUDIENCE"),
    "RESOURCE_SERVER_JWT_ISSUER": _env("OAUTH2_MTLS_JWT_ISSUER"),
    "RESOURCE_SERVER_JWKS_URI": _env("OAUTH2_MTLS_JWKS_URI"),
    "RESOURCE_SERVER_CA_BUNDLE": _env("OAUTH2_MTLS_RS_CA_BUNDLE"),
    "JWKS_CACHE_SECONDS": int(os.environ.get("OAUTH2_MTLS_JWKS_CACHE_SECONDS", "300")),
    "JWKS_REFETCH_INTERVAL_SECONDS": int(
        os.environ.get("OAUTH2_MTLS_JWKS_REFETCH_INTERVAL_SECONDS", "30")
    ),
}
