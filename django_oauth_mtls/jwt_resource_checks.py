"""System checks for validating JWT access tokens at a resource (RFC 9068 §4; ids
``oauth_mtls.E020``-``E027`` and ``W020``, listed in ``docs/checks.md``).

The issuing side's checks are in :mod:`django_oauth_mtls.jwt_issue_checks`. Settings only: no
query, no network (``RESOURCE_SERVER_JWKS_URI`` is judged as a URL, never fetched). What these
checks catch fails closed at run time — every JWT is refused with 401 ``invalid_token`` and a
reason code (``jwt_audience``, ``jwt_issuer``, ``jwt_unknown_key``, ``jwt_algorithm``,
``jwt_keys_unavailable``) — so a misconfigured resource is a locked door, never an open one.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.utils.module_loading import import_string

from .conf import JWT_ALGORITHMS, JWT_MODES, SETTINGS_NAME, TOKEN_VALIDATION_MODES, mtls_settings
from .jwks_addresses import uri_problem

__all__ = ["JWT_MODES", "check_jwt_resource"]


def check_jwt_resource(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E020-E027, W020: what checking JWT access tokens locally needs, from settings only."""
    user = getattr(settings, SETTINGS_NAME, None)
    if not isinstance(user, dict):
        return []  # no settings: the stored-token path; not a dict: E000 says so
    messages: list[CheckMessage] = []
    mode = user.get("RESOURCE_SERVER_TOKEN_VALIDATION")
    if "RESOURCE_SERVER_TOKEN_VALIDATION" in user and mode not in TOKEN_VALIDATION_MODES:
        messages.append(
            Error(
                f"{SETTINGS_NAME}['RESOURCE_SERVER_TOKEN_VALIDATION'] = {mode!r} is not a known "
                'mode: it is treated as "jwt", so every token that is not a JWT is refused.',
                hint=f"Choose one of {', '.join(TOKEN_VALIDATION_MODES)}.",
                id="oauth_mtls.E020",
            )
        )
    if mode in JWT_MODES:
        messages += _check_jwt_mode(user, mode)
    messages += _check_jwks_uri()
    messages += _check_algorithms(user, jwt_mode=mode in JWT_MODES)
    messages += _check_user_policy()
    return messages


def _check_jwt_mode(user: dict[str, Any], mode: str) -> list[CheckMessage]:
    """E021-E023 and W020: a jwt mode needs an audience, an issuer and keys."""
    messages: list[CheckMessage] = []
    if not mtls_settings.RESOURCE_SERVER_AUDIENCE:
        messages.append(
            Error(
                f'RESOURCE_SERVER_TOKEN_VALIDATION is "{mode}" but RESOURCE_SERVER_AUDIENCE is '
                "not set: a JWT's aud cannot be checked (RFC 9068 §4), so every JWT is refused "
                "(jwt_audience).",
                hint="Set RESOURCE_SERVER_AUDIENCE to this API's identifier, the value the "
                "authorization server puts in aud (its JWT_AUDIENCE or a resource), e.g. "
                '"https://api.example.com".',
                id="oauth_mtls.E021",
            )
        )
    if not mtls_settings.RESOURCE_SERVER_JWT_ISSUER:
        messages.append(
            Error(
                f'RESOURCE_SERVER_TOKEN_VALIDATION is "{mode}" but no issuer is configured '
                "(RESOURCE_SERVER_JWT_ISSUER, or OAUTH2_PROVIDER['OIDC_ISS_ENDPOINT']): a JWT's "
                "iss cannot be checked (RFC 9068 §4), so every JWT is refused (jwt_issuer).",
                hint="Set RESOURCE_SERVER_JWT_ISSUER to the authorization server's issuer, "
                'exactly as in its tokens, e.g. "https://as.example.com".',
                id="oauth_mtls.E022",
            )
        )
    has_files = bool(mtls_settings.JWT_SIGNING_KEYS or mtls_settings.JWT_PUBLISHED_KEYS)
    if not mtls_settings.RESOURCE_SERVER_JWKS_URI and not has_files:
        messages.append(
            Error(
                f'RESOURCE_SERVER_TOKEN_VALIDATION is "{mode}" but there is no key to verify '
                "with: no RESOURCE_SERVER_JWKS_URI and no JWT_SIGNING_KEYS or "
                "JWT_PUBLISHED_KEYS, so every JWT is refused (jwt_unknown_key).",
                hint="A separate resource server: set RESOURCE_SERVER_JWKS_URI to the "
                "authorization server's JWK set (https://as.example.com/o/.well-known/jwks.json). "
                "On the authorization server itself: its JWT_SIGNING_KEYS verify.",
                id="oauth_mtls.E023",
            )
        )
    if mode == "jwt_or_introspection":
        from oauth2_provider.settings import oauth2_settings

        if not oauth2_settings.RESOURCE_SERVER_INTROSPECTION_URL:
            messages.append(
                Warning(
                    'RESOURCE_SERVER_TOKEN_VALIDATION is "jwt_or_introspection" but '
                    "OAUTH2_PROVIDER['RESOURCE_SERVER_INTROSPECTION_URL'] is not set: a token "
                    "that is not a JWT is looked up in this server's database only, never "
                    "introspected.",
                    hint="Set DOT's RESOURCE_SERVER_INTROSPECTION_URL (and the credentials or "
                    'RESOURCE_SERVER_CERTIFICATE), or say "jwt_or_database" if the database is '
                    "what you mean.",
                    id="oauth_mtls.W020",
                )
            )
    return messages


def _check_jwks_uri() -> list[CheckMessage]:
    """E024: ``RESOURCE_SERVER_JWKS_URI`` must be a fetchable https URL (in every mode)."""
    uri = mtls_settings.RESOURCE_SERVER_JWKS_URI
    if not uri:
        return []
    # The operator's URL, not a client's: private addresses are allowed (API.md).
    problem = uri_problem(uri, allow_private=True)
    if problem is None:
        return []
    return [
        Error(
            f"{SETTINGS_NAME}['RESOURCE_SERVER_JWKS_URI'] = {uri!r} cannot be fetched "
            f"({problem.replace('jwks_uri', 'the URL')}): the authorization server's keys are "
            "never had, and every JWT is refused (jwt_keys_unavailable).",
            hint="Give the https URL of the authorization server's JWK set, without "
            "credentials, e.g. https://as.example.com/o/.well-known/jwks.json; "
            "RESOURCE_SERVER_CA_BUNDLE names the CA that issued its TLS certificate.",
            id="oauth_mtls.E024",
        )
    ]


def _check_algorithms(user: dict[str, Any], *, jwt_mode: bool) -> list[CheckMessage]:
    """E025 (entries never accepted) and E026 (none usable, in a jwt mode)."""
    if "RESOURCE_SERVER_JWT_ALGORITHMS" not in user:
        return []  # the default list is usable
    raw = user["RESOURCE_SERVER_JWT_ALGORITHMS"]
    problems: list[str] = []
    if raw is not None and not isinstance(raw, list | tuple | set | frozenset):
        problems.append(f"is {type(raw).__name__}, not a list")
    else:
        for entry in raw or ():
            if entry in JWT_ALGORITHMS:
                continue
            text = str(entry).upper()
            # RFC 8725 §3.1, §3.2: "none" is no signature; with HS* the verification key would
            # be the public key, which anyone can sign with.
            if text == "NONE" or text.startswith("HS"):
                problems.append(f"{entry!r} (never accepted: anyone could sign)")
            else:
                problems.append(f"{entry!r} (not an algorithm this package verifies)")
    messages: list[CheckMessage] = []
    if problems:
        messages.append(
            Error(
                f"{SETTINGS_NAME}['RESOURCE_SERVER_JWT_ALGORITHMS'] holds what is never "
                f"accepted: {'; '.join(problems)}. Such entries are ignored.",
                hint='List asymmetric algorithms only, e.g. ["ES256", "PS256"]; known: '
                f"{', '.join(JWT_ALGORITHMS)}.",
                id="oauth_mtls.E025",
            )
        )
    if jwt_mode and not _usable_algorithms(raw):
        messages.append(
            Error(
                f"{SETTINGS_NAME}['RESOURCE_SERVER_JWT_ALGORITHMS'] leaves no usable algorithm: "
                "every JWT is refused (jwt_algorithm).",
                hint="Include the algorithm of the authorization server's key (ES256 for EC "
                "P-256, PS256 for RSA, EdDSA for Ed25519), or remove the key for the default.",
                id="oauth_mtls.E026",
            )
        )
    return messages


def _usable_algorithms(raw: Any) -> list[str]:
    if not isinstance(raw, list | tuple | set | frozenset):
        return []  # a string's characters, a number: nothing usable
    return [entry for entry in raw if entry in JWT_ALGORITHMS]


def _check_user_policy() -> list[CheckMessage]:
    """E027: a dotted ``RESOURCE_SERVER_JWT_USER`` must import as a callable."""
    policy = mtls_settings.RESOURCE_SERVER_JWT_USER
    if policy is None or policy == "local":
        return []
    try:
        hook = import_string(policy)
    except ImportError:
        hook = None
    if callable(hook):
        return []
    return [
        Error(
            f"{SETTINGS_NAME}['RESOURCE_SERVER_JWT_USER'] = {policy!r} is neither \"local\", "
            "None nor the dotted path of an importable callable: a user's JWT cannot be given "
            "a request.user.",
            hint='Use "local" (this database\'s user with pk sub), None (no user), or the dotted '
            "path of a function (claims) -> user or None.",
            id="oauth_mtls.E027",
        )
    ]
