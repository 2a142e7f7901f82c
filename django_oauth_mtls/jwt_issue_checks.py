"""System checks for issuing JWT access tokens (RFC 9068 §2, §4; ids ``oauth_mtls.E008``-
``E013``, listed in ``docs/checks.md``), called by ``checks.check_settings``.

Settings and key files only, never the database: a client whose own ``access_token_format`` is
``"jwt"`` while the setting says ``"opaque"`` is covered once ``JWT_SIGNING_KEYS`` is set (the
audience and issuer rules then apply). What these checks catch answers 503
``temporarily_unavailable`` at the token endpoint (``jwt_issue``), never a 500.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error
from django.utils.module_loading import import_string

from .conf import SETTINGS_NAME, mtls_settings

__all__ = ["check_jwt_issuing"]


def check_jwt_issuing() -> list[CheckMessage]:
    """E008-E013: what issuing JWT access tokens needs (RFC 9068 §2), from settings and key
    files only (no database: a client's own ``access_token_format`` is not seen here)."""
    from .jwt_keys import KeyFileError, load_key_file

    messages: list[CheckMessage] = []
    jwt_format = mtls_settings.ACCESS_TOKEN_FORMAT == "jwt"
    signing = mtls_settings.JWT_SIGNING_KEYS
    if jwt_format and not signing:
        messages.append(
            Error(
                'ACCESS_TOKEN_FORMAT is "jwt" but JWT_SIGNING_KEYS is empty: the token '
                "endpoint cannot sign, and answers 503 temporarily_unavailable.",
                hint="Create a key with manage.py mtls_jwt_key generate PATH and list PATH in "
                "JWT_SIGNING_KEYS (docs/keys.md).",
                id="oauth_mtls.E008",
            )
        )
    from oauth2_provider.settings import oauth2_settings

    if jwt_format or signing:
        if not mtls_settings.JWT_AUDIENCE:
            messages.append(
                Error(
                    "JWT access tokens are configured but JWT_AUDIENCE is not: a token request "
                    "without a resource parameter has no aud (RFC 9068 §3) and is answered 503.",
                    hint='Set JWT_AUDIENCE to your APIs\' identifier, e.g. "https://api.example.com".',
                    id="oauth_mtls.E009",
                )
            )
        if not oauth2_settings.OIDC_ISS_ENDPOINT:
            messages.append(
                Error(
                    "JWT access tokens are configured but OAUTH2_PROVIDER['OIDC_ISS_ENDPOINT'] is "
                    "not: tokens need a fixed iss (RFC 9068 §2.2); the token endpoint answers 503.",
                    hint='Set OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"] to your issuer, e.g. '
                    '"https://as.example.com".',
                    id="oauth_mtls.E010",
                )
            )
    oidc_kids = _oidc_kids(oauth2_settings)
    files = [("JWT_SIGNING_KEYS", path) for path in signing]
    files += [("JWT_PUBLISHED_KEYS", path) for path in mtls_settings.JWT_PUBLISHED_KEYS]
    for key, path in files:
        try:
            loaded, private = load_key_file(path)
            if key == "JWT_SIGNING_KEYS" and private is None:
                raise KeyFileError("holds a public key, which cannot sign")
        except KeyFileError as exc:
            messages.append(
                Error(
                    f"{SETTINGS_NAME}['{key}'] names {path!r}, which {_phrase(exc)}: it is "
                    "skipped (neither signs nor is published).",
                    hint="Use an unencrypted PEM key (EC P-256 or P-384, RSA of 2048 bits or more, "
                    "or Ed25519) readable by the app server's user; manage.py mtls_jwt_key "
                    "generate writes one.",
                    id="oauth_mtls.E011",
                )
            )
            continue
        if loaded.kid in oidc_kids:
            messages.append(
                Error(
                    f"{SETTINGS_NAME}['{key}'] names {path!r}, which is DOT's OIDC key: ID tokens "
                    "and access tokens must not share a key (a token of one kind could be "
                    "replayed as the other).",
                    hint="Generate a separate access-token key (manage.py mtls_jwt_key generate).",
                    id="oauth_mtls.E012",
                )
            )
    extra = mtls_settings.JWT_EXTRA_CLAIMS
    if extra:
        try:
            hook = import_string(extra)
        except ImportError:
            hook = None
        if not callable(hook):
            messages.append(
                Error(
                    f"{SETTINGS_NAME}['JWT_EXTRA_CLAIMS'] = {extra!r} is not an importable "
                    "callable: every JWT access token request is answered 503.",
                    hint="Give the dotted path of a function (request, claims) -> dict.",
                    id="oauth_mtls.E013",
                )
            )
    return messages


def _phrase(exc: Exception) -> str:
    text = str(exc)
    if text.startswith(("cannot ", "is ", "holds ")):
        return text
    return f"holds {text}"


def _oidc_kids(oauth2_settings: Any) -> set[str]:
    """Thumbprints of DOT's OIDC keys (active and inactive), whatever OIDC_ENABLED says."""
    from .jwt_keys import KeyFileError, key_from_pem

    kids: set[str] = set()
    pems = [oauth2_settings.OIDC_RSA_PRIVATE_KEY, *oauth2_settings.OIDC_RSA_PRIVATE_KEYS_INACTIVE]
    for pem in pems:
        if not pem:
            continue
        try:
            kids.add(key_from_pem(str(pem).encode("utf-8"))[0].kid)
        except KeyFileError:
            continue  # DOT's own key problems are DOT's to report
    return kids
