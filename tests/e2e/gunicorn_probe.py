"""gunicorn config for the e2e tests: records which certificate fields reached the app server.

``pre_request`` runs in the worker before the app; it appends one JSON line per request to
``$E2E_PROBE_FILE``: the ``probe`` query parameter and every field whose name, with ``_`` read
as ``-``, is one a certificate source reads (so underscore spellings show up too).
"""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qs

WATCHED = {"X-SSL-CLIENT-CERT", "X-SSL-CLIENT-VERIFY", "CLIENT-CERT", "CLIENT-CERT-CHAIN"}


def pre_request(worker, req):  # noqa: ANN001 - gunicorn's hook signature
    path = os.environ.get("E2E_PROBE_FILE")
    if not path:
        return
    probe = parse_qs(req.query or "").get("probe", [""])[0]
    fields = [
        [name, value] for name, value in req.headers if name.upper().replace("_", "-") in WATCHED
    ]
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps({"probe": probe, "fields": fields}) + "\n")
