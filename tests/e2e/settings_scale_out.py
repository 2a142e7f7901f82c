"""The example project's settings plus two knobs the scale-out test needs (tests only).

``tests/e2e/test_scale_out.py`` runs the example unchanged (``example_project.settings``: its
database from ``DATABASE_URL``, its cache from ``EXAMPLE_REDIS_URL``) with two additions that
no deployment should copy, kept here rather than behind an environment variable of the
example:

* ``JWKS_ALLOW_PRIVATE_ADDRESSES``: the test's ``jwks_uri`` server listens on loopback, an
  address the fetcher refuses by default (server-side request forgery, docs/security.md).
* ``JWKS_REFETCH_INTERVAL_SECONDS``: short (``SCALE_OUT_REFETCH_INTERVAL``), so that the test
  sees a second interval begin without waiting the default 30 s.

The loopback server's CA is trusted through OpenSSL's ``SSL_CERT_FILE`` in the nodes'
environment (docs/registration.md), not through a setting.
"""

import os

from example_project.settings import *  # noqa: F403
from example_project.settings import OAUTH2_MTLS

OAUTH2_MTLS = {
    **OAUTH2_MTLS,
    "JWKS_ALLOW_PRIVATE_ADDRESSES": True,
    "JWKS_REFETCH_INTERVAL_SECONDS": int(os.environ.get("SCALE_OUT_REFETCH_INTERVAL", "30")),
}
