"""Load the copied vectors by name (RFC 8705 App. A, RFC 9440 App. A, real proxy captures)."""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent


def text(name: str) -> str:
    return (HERE / name).read_text()


def expected() -> dict:
    return json.loads(text("expected.json"))


def capture_headers(name: str) -> dict[str, str]:
    """The header fields of a raw captured request, as a META dict (``HTTP_*`` keys).

    Continuation lines (obs-fold, as nginx's ``$ssl_client_cert`` makes them) are joined.
    """
    raw = (HERE / "proxy-captures" / name).read_bytes().decode("latin-1")
    head = raw.split("\r\n\r\n", 1)[0] if "\r\n\r\n" in raw else raw.split("\n\n", 1)[0]
    lines = head.replace("\r\n", "\n").split("\n")[1:]
    fields: dict[str, str] = {}
    last = None
    for line in lines:
        if line[:1] in (" ", "\t") and last:
            fields[last] += "\n" + line
            continue
        if ":" not in line:
            continue
        key, value = line.split(":", 1)
        last = "HTTP_" + key.strip().upper().replace("-", "_")
        fields[last] = value.strip()
    return fields
