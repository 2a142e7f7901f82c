"""System checks for ``OAUTH2_MTLS`` (ids ``oauth_mtls.C/E/W###``, listed in ``docs/checks.md``).

Misconfiguration here is a security problem more often than a crash: a certificate header read
from anyone is a forged identity (RFC 9440 §4; Keycloak CVE-2024-10039).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Critical, Error, Warning
from django.utils.module_loading import import_string

from .conf import ACCESS_TOKEN_FORMATS, DEFAULTS, SETTINGS_NAME, mtls_settings
from .proxies import SOURCES

MIDDLEWARE_PATH = "django_oauth_mtls.middleware.ClientCertificateMiddleware"
FILE_SETTINGS = ("TRUSTED_CA_CERTIFICATES", "INTERMEDIATE_CERTIFICATES")
CHOICES = {
    "BOUND_TOKEN_WITHOUT_CERTIFICATE": ("error", "unbound"),
    "REFRESH_TOKEN_BINDING": ("public", "all", "none"),
    "ACCESS_TOKEN_FORMAT": ACCESS_TOKEN_FORMATS,
}


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Every rule on ``OAUTH2_MTLS``; each message has a stable id and a hint that says the fix."""
    user = getattr(settings, SETTINGS_NAME, None)
    if user is None:
        return []
    if not isinstance(user, dict):
        return [Error(f"{SETTINGS_NAME} must be a dict.", id="oauth_mtls.E000")]
    messages: list[CheckMessage] = []
    messages += _check_keys(user)
    messages += _check_source()
    messages += _check_proxies(user)
    messages += _check_files(user)
    messages += _check_choices(user)
    messages += _check_client_auth()
    messages += _check_resource_server(user)
    from .jwt_issue_checks import check_jwt_issuing

    messages += check_jwt_issuing()
    return messages


def _check_resource_server(user: dict[str, Any]) -> list[CheckMessage]:
    if user.get("RESOURCE_SERVER_CERTIFICATE") and not user.get("RESOURCE_SERVER_CLIENT_ID"):
        return [
            Error(
                "RESOURCE_SERVER_CERTIFICATE is set without RESOURCE_SERVER_CLIENT_ID: "
                "tls_client_auth needs the client_id (RFC 8705 §2), so every remote token "
                "would be refused.",
                hint="Set RESOURCE_SERVER_CLIENT_ID to this resource server's client_id at the "
                "authorization server.",
                id="oauth_mtls.E007",
            )
        ]
    return []


def _check_client_auth() -> list[CheckMessage]:
    if mtls_settings.CERTIFICATE_SOURCE is None:
        return []
    messages: list[CheckMessage] = []
    if not mtls_settings.TRUSTED_CA_CERTIFICATES and not mtls_settings.TRUST_PROXY_VERIFICATION:
        messages.append(
            Warning(
                "No TRUSTED_CA_CERTIFICATES and TRUST_PROXY_VERIFICATION is off: no "
                "tls_client_auth (PKI) client can authenticate.",
                hint="List the PEM files of the CAs that issue your clients' certificates, or "
                "let a verifying proxy decide with TRUST_PROXY_VERIFICATION.",
                id="oauth_mtls.W004",
            )
        )
    from oauth2_provider.settings import oauth2_settings

    from .oauth2_validators import MTLSValidatorMixin

    try:
        validator = oauth2_settings.OAUTH2_VALIDATOR_CLASS
    except ImportError:
        return messages
    if not (isinstance(validator, type) and issubclass(validator, MTLSValidatorMixin)):
        messages.append(
            Warning(
                "OAUTH2_PROVIDER['OAUTH2_VALIDATOR_CLASS'] does not include MTLSValidatorMixin, "
                "so no client can authenticate with a certificate and no token is bound.",
                hint='Use "django_oauth_mtls.oauth2_validators.MTLSOAuth2Validator", or add '
                "MTLSValidatorMixin in front of your own validator class.",
                id="oauth_mtls.W005",
            )
        )
    return messages


def _check_keys(user: dict[str, Any]) -> list[CheckMessage]:
    unknown = sorted(set(user) - set(DEFAULTS))
    if not unknown:
        return []
    return [
        Warning(
            f"{SETTINGS_NAME} has unknown keys: {', '.join(unknown)}.",
            hint="Check the spelling against the settings reference (docs/settings.md).",
            id="oauth_mtls.W003",
        )
    ]


def _check_source() -> list[CheckMessage]:
    source = mtls_settings.CERTIFICATE_SOURCE
    if source is None:
        return []
    messages: list[CheckMessage] = []
    if source not in SOURCES:
        try:
            function = import_string(source) if "." in source else None
        except ImportError:
            function = None
        if not callable(function):
            return [
                Error(
                    f"{SETTINGS_NAME}['CERTIFICATE_SOURCE'] = {source!r} is neither a known source "
                    "nor an importable callable. No client certificate will ever be read.",
                    hint=f"Use one of {', '.join(sorted(SOURCES))}, or a dotted path to a callable "
                    "(meta) -> DER bytes or None.",
                    id="oauth_mtls.E001",
                )
            ]
    gated = source not in SOURCES or SOURCES[source].gated
    if gated and not mtls_settings.TRUSTED_PROXIES and not mtls_settings.TRUST_UNIX_SOCKET_PEERS:
        messages.append(
            Warning(
                f"{SETTINGS_NAME}['CERTIFICATE_SOURCE'] is set but TRUSTED_PROXIES is empty, so no "
                "certificate header will ever be accepted.",
                hint="List the addresses your TLS-terminating proxy connects from, e.g. "
                "['127.0.0.1/32'], or set TRUST_UNIX_SOCKET_PEERS for a unix-socket proxy.",
                id="oauth_mtls.W001",
            )
        )
    if MIDDLEWARE_PATH not in getattr(settings, "MIDDLEWARE", []):
        messages.append(
            Warning(
                f"{MIDDLEWARE_PATH} is not in MIDDLEWARE.",
                hint="Add it so views and the DRF classes see request.client_certificate.",
                id="oauth_mtls.W002",
            )
        )
    if mtls_settings.TRUST_PROXY_VERIFICATION and source in SOURCES:
        spec = SOURCES[source]
        has_verdict = spec.implicit_verified or spec.verify_header or mtls_settings.VERIFY_HEADER
        if not has_verdict:
            messages.append(
                Error(
                    f"TRUST_PROXY_VERIFICATION is on but the source {source!r} carries no verdict "
                    "field, so no PKI client could ever authenticate.",
                    hint="Set VERIFY_HEADER to the field your proxy writes its verdict to, or turn "
                    "TRUST_PROXY_VERIFICATION off and configure TRUSTED_CA_CERTIFICATES.",
                    id="oauth_mtls.E005",
                )
            )
    return messages


def _check_proxies(user: dict[str, Any]) -> list[CheckMessage]:
    raw = user.get("TRUSTED_PROXIES", [])
    if isinstance(raw, str) or not isinstance(raw, list | tuple):
        return [
            Error(
                f"{SETTINGS_NAME}['TRUSTED_PROXIES'] must be a list of IP addresses or networks.",
                hint='For example ["127.0.0.1/32", "::1/128"].',
                id="oauth_mtls.E003",
            )
        ]
    messages: list[CheckMessage] = []
    for entry in raw:
        try:
            network = ipaddress.ip_network(str(entry).strip(), strict=False)
        except ValueError:
            messages.append(
                Error(
                    f"{SETTINGS_NAME}['TRUSTED_PROXIES'] entry {entry!r} is not an IP address or "
                    "network; it is ignored.",
                    hint='Write addresses or CIDR networks, e.g. "10.0.0.0/8".',
                    id="oauth_mtls.E003",
                )
            )
            continue
        if network.prefixlen == 0:
            messages.append(
                Critical(
                    f"{SETTINGS_NAME}['TRUSTED_PROXIES'] contains {entry!r}, which trusts every "
                    "address. Any client can forge a certificate header and impersonate any "
                    "mTLS client.",
                    hint="List only the addresses your TLS-terminating proxy connects from.",
                    id="oauth_mtls.C001",
                )
            )
    return messages


def _check_files(user: dict[str, Any]) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    paths: list[tuple[str, str]] = []
    for key in FILE_SETTINGS:
        value = user.get(key) or []
        if isinstance(value, str):
            value = [value]
        paths += [(key, str(path)) for path in value]
    for key in ("RESOURCE_SERVER_CERTIFICATE",):
        value = user.get(key)
        if value:
            paths += [(key, str(path)) for path in value]
    if user.get("RESOURCE_SERVER_CA_BUNDLE"):
        paths.append(("RESOURCE_SERVER_CA_BUNDLE", str(user["RESOURCE_SERVER_CA_BUNDLE"])))
    for key, path in paths:
        try:
            with open(path, "rb") as handle:
                content = handle.read()
        except OSError as exc:
            messages.append(
                Error(
                    f"{SETTINGS_NAME}['{key}'] names {path!r}, which cannot be read "
                    f"({exc.strerror}).",
                    hint="Check the path and the file's permissions for the app server's user.",
                    id="oauth_mtls.E002",
                )
            )
            continue
        if b"-----BEGIN " not in content:
            messages.append(
                Error(
                    f"{SETTINGS_NAME}['{key}'] names {path!r}, which holds no PEM data.",
                    hint="Certificates and keys must be PEM files.",
                    id="oauth_mtls.E002",
                )
            )
    return messages


def _check_choices(user: dict[str, Any]) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for key, allowed in CHOICES.items():
        if key in user and user[key] not in allowed:
            messages.append(
                Error(
                    f"{SETTINGS_NAME}['{key}'] = {user[key]!r} is not one of {allowed}; the safest "
                    "value is used instead.",
                    hint=f"Choose one of {', '.join(allowed)}.",
                    id="oauth_mtls.E006",
                )
            )
    return messages


#: At most this many clients are named in W008's message.
W008_MAX_CLIENTS = 10


def check_stored_values(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """W008: registered values stored over their bounds (``limits``; written before the bounds,
    or by raw SQL). The token endpoint refuses those clients; this names them.

    It reads the database, so it runs only when Django checks databases (``check --database``,
    ``migrate``): ``databases`` is then a list of aliases, otherwise ``None`` and nothing is read.
    """
    if not databases:
        return []
    from django.db import DatabaseError, connections
    from django.db.models import Q
    from django.db.models.functions import Length

    from .limits import MAX_CHARACTERS, jwks_too_large
    from .models import MTLSClient

    found: list[str] = []
    table = MTLSClient._meta.db_table
    for alias in databases:
        try:
            if table not in connections[alias].introspection.table_names():
                continue  # not migrated yet (migrate runs this check first)
            rows = MTLSClient.objects.using(alias).select_related("application")
            lengths = {f"{field}_length": Length(field) for field in MAX_CHARACTERS}
            long_text = Q()
            for field, bound in MAX_CHARACTERS.items():
                long_text |= Q(**{f"{field}_length__gt": bound})
            for row in rows.annotate(**lengths).filter(long_text).order_by("pk"):
                over = [
                    f"{field}: {getattr(row, f'{field}_length')} characters, bound {bound}"
                    for field, bound in MAX_CHARACTERS.items()
                    if getattr(row, f"{field}_length") > bound
                ]
                found.append(f"client_id={row.application.client_id} ({'; '.join(over)})")
            max_bytes = mtls_settings.JWKS_MAX_BYTES
            for row in rows.filter(jwks__isnull=False).only("pk", "jwks", "application__client_id"):
                problem = jwks_too_large(row.jwks, max_bytes)
                if problem:
                    found.append(f"client_id={row.application.client_id} ({problem})")
        except DatabaseError:  # an unreadable table is another check's (or migrate's) business
            continue
    if not found:
        return []
    shown = "; ".join(found[:W008_MAX_CLIENTS])
    more = f"; and {len(found) - W008_MAX_CLIENTS} more" if len(found) > W008_MAX_CLIENTS else ""
    return [
        Warning(
            f"{len(found)} mTLS client registration(s) store values over this server's bounds, "
            f"so those clients are refused at the token endpoint: {shown}{more}.",
            hint="Correct each registration within the bounds (docs/registration.md): RFC 7592 "
            "update, the admin, or manage.py mtls_set_client.",
            id="oauth_mtls.W008",
        )
    ]


def check_metadata(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The metadata checks (W006, W007), imported lazily so ``ready()`` imports no DOT views."""
    from .metadata import check_metadata_settings

    return check_metadata_settings(app_configs, **kwargs)
