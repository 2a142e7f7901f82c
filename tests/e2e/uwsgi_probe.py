"""The example's WSGI application, recording which certificate fields reached uWSGI.

The same record as ``gunicorn_probe.py`` (one JSON line per request in ``$E2E_PROBE_FILE``: the
``probe`` query parameter and the watched fields). uWSGI has already turned ``-`` into ``_`` and
merged repeated names with ``", "``, so a name is reported in its hyphenated form and a forged
value shows up inside the merged one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from example_project.wsgi import application as example
from tests.e2e.gunicorn_probe import WATCHED


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = os.environ.get("E2E_PROBE_FILE")
    if path:
        probe = parse_qs(environ.get("QUERY_STRING", "")).get("probe", [""])[0]
        fields = [
            [key[5:].replace("_", "-"), value]
            for key, value in environ.items()
            if key.startswith("HTTP_") and key[5:].replace("_", "-") in WATCHED
        ]
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"probe": probe, "fields": fields}) + "\n")
    return example(environ, start_response)
