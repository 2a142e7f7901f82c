"""Django glue for the certificate intake: settings → ``IntakeConfig``, logging, request caching.

``get_client_certificate`` answers one question for every feature of the app: which client
certificate, if any, did this request really present? The answer is computed once per request
and stored in ``META`` under ``META_KEY``, so the copy of ``META`` that DOT hands to oauthlib (and
so to the validator) carries it too, and a rejection is logged exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils.module_loading import import_string

from .certificates import ClientCertificate
from .conf import SETTINGS_NAME, mtls_settings
from .proxies import SOURCES, IntakeConfig, IntakeResult, read_client_certificate

log = logging.getLogger("django_oauth_mtls.intake")

#: Where the per-request answer is kept in ``request.META`` (not an ``HTTP_`` key: no client
#: can set it).
META_KEY = "django_oauth_mtls.intake"

#: Codes that are not refusals and are not logged as such.
QUIET_CODES = frozenset({"absent", "source_disabled"})

_config: IntakeConfig | None = None


@receiver(setting_changed)
def _reset_config(*, setting: str, **kwargs: Any) -> None:
    global _config
    if setting == SETTINGS_NAME:
        _config = None


def intake_config() -> IntakeConfig:
    """The resolved intake configuration (cached; reset when ``OAUTH2_MTLS`` changes)."""
    global _config
    if _config is None:
        _config = _build_config()
    return _config


def _build_config() -> IntakeConfig:
    source = mtls_settings.CERTIFICATE_SOURCE
    common: dict[str, Any] = {
        "trusted_proxies": mtls_settings.TRUSTED_PROXIES,
        "trust_unix_socket_peers": mtls_settings.TRUST_UNIX_SOCKET_PEERS,
        "max_header_bytes": mtls_settings.MAX_HEADER_BYTES,
        "trust_proxy_verification": mtls_settings.TRUST_PROXY_VERIFICATION,
    }
    if source and source not in SOURCES and "." in source:
        try:
            function = import_string(source)
        except ImportError:
            log.error(
                "OAUTH2_MTLS CERTIFICATE_SOURCE %r cannot be imported; no certificate is read",
                source,
            )
            return IntakeConfig(source=None)
        return IntakeConfig.build(source, certificate_callable=function, **common)
    if source and source not in SOURCES:
        log.error("OAUTH2_MTLS CERTIFICATE_SOURCE %r is unknown; no certificate is read", source)
    return IntakeConfig.build(
        source,
        certificate_header=mtls_settings.CERTIFICATE_HEADER,
        chain_header=mtls_settings.CERTIFICATE_CHAIN_HEADER,
        verify_header=mtls_settings.VERIFY_HEADER,
        verify_success=mtls_settings.VERIFY_SUCCESS_VALUES,
        **common,
    )


def get_client_certificate(
    request_or_meta: HttpRequest | Mapping[str, Any],
) -> tuple[ClientCertificate | None, str | None]:
    """The request's client certificate and, when there is none, the intake reason code.

    Accepts a Django request or a ``META`` mapping (the validator sees oauthlib's copy of it).
    """
    meta: Mapping[str, Any] = (
        request_or_meta.META if isinstance(request_or_meta, HttpRequest) else request_or_meta
    )
    cached = meta.get(META_KEY)
    if isinstance(cached, IntakeResult):
        return cached.certificate, cached.problem
    result = read_client_certificate(meta, intake_config())
    if result.problem is not None and result.problem not in QUIET_CODES:
        log.warning(
            "client certificate refused: reason=%s source=%s peer=%s detail=%s",
            result.problem,
            mtls_settings.CERTIFICATE_SOURCE,
            meta.get("REMOTE_ADDR") or "-",
            result.detail or "-",
        )
    if isinstance(meta, dict):
        meta[META_KEY] = result
    return result.certificate, result.problem
