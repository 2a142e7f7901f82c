"""The trust anchors for ``tls_client_auth``, loaded from the files in the settings.

Reload policy: the files are re-read when their modification time or size changes, checked at
most once per ``RELOAD_CHECK_SECONDS`` per process; no restart is needed after replacing a CA
file. The store's ``version`` (a hash of the contents) keys the validation cache, so a changed
trust store never reuses an old verdict.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from .conf import mtls_settings
from .validation import TrustStore

log = logging.getLogger(__name__)

RELOAD_CHECK_SECONDS = 5.0

_lock = threading.Lock()
_state: dict[str, object] = {"key": None, "store": TrustStore(anchors=()), "checked": 0.0}


def _file_signature(paths: list[str]) -> tuple[tuple[str, int, int], ...]:
    signature = []
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            signature.append((path, -1, -1))
            continue
        signature.append((path, stat.st_mtime_ns, stat.st_size))
    return tuple(signature)


def _read(paths: list[str]) -> bytes:
    parts = []
    for path in paths:
        try:
            with open(path, "rb") as handle:
                parts.append(handle.read())
        except OSError as exc:
            log.error("cannot read trust file %s: %s", path, exc.strerror)
    return b"\n".join(parts)


def get_trust_store(*, force: bool = False) -> TrustStore:
    """The current store; cheap on the hot path (a clock read, and a stat every few seconds)."""
    now = time.monotonic()
    if not force and now - float(_state["checked"]) < RELOAD_CHECK_SECONDS:  # type: ignore[arg-type]
        return _state["store"]  # type: ignore[return-value]
    with _lock:
        anchors = mtls_settings.TRUSTED_CA_CERTIFICATES
        intermediates = mtls_settings.INTERMEDIATE_CERTIFICATES
        key = (_file_signature(anchors), _file_signature(intermediates))
        if key != _state["key"]:
            try:
                store = TrustStore.from_pem(_read(anchors), _read(intermediates))
            except ValueError as exc:
                log.error("trust files hold invalid PEM, keeping the previous store: %s", exc)
                store = _state["store"]  # type: ignore[assignment]
            else:
                log.info(
                    "trust store loaded: %d anchors, %d intermediates",
                    len(store.anchors),
                    len(store.intermediates),
                )
            _state["store"] = store
            _state["key"] = key
        _state["checked"] = now
        return _state["store"]  # type: ignore[return-value]


def reset() -> None:
    """Forget the loaded store (tests, and ``setting_changed``)."""
    with _lock:
        _state.update(key=None, store=TrustStore(anchors=()), checked=0.0)


def _on_setting_changed(*, setting: str, **kwargs: object) -> None:
    if setting == "OAUTH2_MTLS":
        reset()


def connect_signals() -> None:
    from django.core.signals import setting_changed

    setting_changed.connect(_on_setting_changed, dispatch_uid="django_oauth_mtls.truststore")
