"""The example project as the authorization server of a key rotation (tests only).

``example_project.settings`` reads one key, ``OAUTH2_MTLS_JWT_SIGNING_KEY``; a rotation
(docs/keys.md) needs a second, published but not signing. This module adds
``OAUTH2_MTLS_JWT_PUBLISHED_KEYS`` (``os.pathsep``-separated PEM files) as
``JWT_PUBLISHED_KEYS``, the name proposed for the example's settings. Both files are re-read
when they change, so ``tests/e2e/test_jwt_remote_rs.py`` rotates by replacing files, with no
restart.
"""

import os

from example_project.settings import *  # noqa: F403
from example_project.settings import OAUTH2_MTLS

OAUTH2_MTLS = {
    **OAUTH2_MTLS,
    "JWT_PUBLISHED_KEYS": [
        path
        for path in os.environ.get("OAUTH2_MTLS_JWT_PUBLISHED_KEYS", "").split(os.pathsep)
        if path
    ],
}
