"""The FAPI 2.0 Security Profile: ``OAUTH2_MTLS["PROFILE"] = "fapi2"`` (``docs/fapi.md``).

FAPI 2.0 Security Profile (OpenID Foundation, Final, February 2025) §5.3.2 lists what an
authorization server shall do, §5.3.4 what a resource server shall do, §5.4 which JWS algorithms
and key sizes are allowed. Each rule that a setting of DOT's (``OAUTH2_PROVIDER``) or ours can
break is a system check here (``oauth_mtls.F001``…, errors: the user can fix them), most of them
on DOT's own ``COMPLIANT_BCP_RFC9700_*`` gates; what DOT 3.4.1 cannot do at all (PAR, RFC 9126;
ID tokens signed with PS256/ES256/EdDSA) is a warning (``oauth_mtls.F101``…).

The runtime rules are enforced where the package already decides, each reading
:func:`fapi2_active`: client authentication (``validator_client_auth._enforce_registration``:
only clients registered with an mTLS method, §5.3.2.1), binding (``oauth2_validators``
``_decide_binding``: every access token bound, no certificate → ``invalid_request``), the
authorization endpoint (``validate_response_type``: ``code`` only, §5.3.2.2) and every resource
(``conf.REQUIRE_BOUND_TOKENS`` is true: unbound tokens are refused, §5.3.4).
"""

from __future__ import annotations

import contextlib
from typing import Any, Final
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from .conf import SETTINGS_NAME, mtls_settings

__all__ = [
    "FAPI2_ALGORITHMS",
    "MAX_ACCESS_TOKEN_SECONDS",
    "MAX_AUTHORIZATION_CODE_SECONDS",
    "METHOD_REFUSED",
    "PROFILES",
    "check_profile",
    "fapi2_active",
]

#: ``PROFILE`` values (``None`` = no profile).
PROFILES: Final = ("fapi2",)
#: FAPI 2.0 §5.4.1: the only JWS algorithms allowed.
FAPI2_ALGORITHMS: Final = ("PS256", "ES256", "EdDSA")
#: FAPI 2.0 sets no access-token lifetime; Open Finance ecosystems built on it cap it at ten
#: minutes (UAE Open Finance: "no longer than 10 minutes"), which is the bound chosen here.
MAX_ACCESS_TOKEN_SECONDS: Final = 600
#: FAPI 2.0 §5.3.2.1: authorization codes live at most 60 seconds.
MAX_AUTHORIZATION_CODE_SECONDS: Final = 60
#: FAPI 2.0 §5.4.1: RSA keys of at least 2048 bits.
MIN_RSA_KEY_BITS: Final = 2048
#: The client authentication methods FAPI 2.0 allows that DOT 3.4.1 with this package can do
#: (``private_key_jwt`` is the other, not in DOT 3.4.1).
MTLS_METHODS: Final = ("tls_client_auth", "self_signed_tls_client_auth")
#: The ``error_description`` of a client refused because it is not registered with an mTLS
#: method (reason code ``method_conflict``); fixed text, as every description
#: (``descriptions``).
METHOD_REFUSED: Final = (
    "this server accepts only clients registered for certificate authentication "
    "(tls_client_auth or self_signed_tls_client_auth)"
)


def fapi2_active() -> bool:
    """The FAPI 2.0 runtime rules apply: ``PROFILE`` is ``"fapi2"``, or an unknown value (fail
    closed; ``oauth_mtls.F001`` reports it)."""
    return mtls_settings.PROFILE is not None


def check_profile(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """F001–F022 (errors) and F101–F102 (warnings) when a profile is set; nothing otherwise."""
    user = getattr(settings, SETTINGS_NAME, None)
    if not isinstance(user, dict) or not user.get("PROFILE"):
        return []  # not a dict: oauth_mtls.E000
    profile = user["PROFILE"]
    if profile not in PROFILES:
        return [
            Error(
                f"{SETTINGS_NAME}['PROFILE'] = {profile!r} is not a known profile; until it is "
                "fixed the rules of 'fapi2' apply at run time (the strictest).",
                hint="Set it to 'fapi2' or None.",
                id="oauth_mtls.F001",
            )
        ]
    errors = _package_rules(user) + _dot_rules() + _jwt_rules()
    return sorted(errors, key=lambda message: message.id or "") + _what_dot_cannot_do()


def _error(msg: str, hint: str, *, id: str) -> Error:
    return Error(f"FAPI 2.0 profile: {msg}", hint=hint, id=id)


def _validator_installed() -> bool:
    """DOT's validator class includes ``MTLSValidatorMixin``, found by name: importing
    ``oauth2_validators`` here would close an import cycle (it reads :func:`fapi2_active`)."""
    from oauth2_provider.settings import oauth2_settings

    try:
        validator = oauth2_settings.OAUTH2_VALIDATOR_CLASS
    except ImportError:
        return False
    mixin = (f"{__package__}.oauth2_validators", "MTLSValidatorMixin")
    mro = getattr(validator, "__mro__", ())
    return any((cls.__module__, cls.__qualname__) == mixin for cls in mro)


def _package_rules(user: dict[str, Any]) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if not _validator_installed():
        messages.append(
            _error(
                "OAUTH2_PROVIDER['OAUTH2_VALIDATOR_CLASS'] does not include MTLSValidatorMixin, so "
                "no rule of the profile is enforced: any client authenticates as DOT allows and "
                "no token is bound.",
                'Use "django_oauth_mtls.oauth2_validators.MTLSOAuth2Validator", or add '
                "MTLSValidatorMixin in front of your own validator class.",
                id="oauth_mtls.F002",
            )
        )
    if mtls_settings.CERTIFICATE_SOURCE is None:
        messages.append(
            _error(
                f"{SETTINGS_NAME}['CERTIFICATE_SOURCE'] is not set, so no client can "
                "authenticate, no token can be bound and every token is refused at resources.",
                "Set the source your TLS-terminating proxy uses (docs/proxies.md).",
                id="oauth_mtls.F003",
            )
        )
    if "REQUIRE_BOUND_TOKENS" in user and user["REQUIRE_BOUND_TOKENS"] is not True:
        messages.append(
            _error(
                f"{SETTINGS_NAME}['REQUIRE_BOUND_TOKENS'] is "
                f"{user['REQUIRE_BOUND_TOKENS']!r}, but FAPI 2.0 (§5.3.4) has resources accept "
                "only sender-constrained tokens; the profile requires them whatever this says.",
                "Remove the key, or set it to True.",
                id="oauth_mtls.F004",
            )
        )
    if user.get("BOUND_TOKEN_WITHOUT_CERTIFICATE") == "unbound":
        messages.append(
            _error(
                f"{SETTINGS_NAME}['BOUND_TOKEN_WITHOUT_CERTIFICATE'] is 'unbound', but FAPI 2.0 "
                "(§5.3.2.1) issues only sender-constrained access tokens; the profile answers a "
                "token request without a certificate with invalid_request whatever this says.",
                "Remove the key, or set it to 'error'.",
                id="oauth_mtls.F005",
            )
        )
    bits = user.get("MIN_RSA_KEY_BITS", MIN_RSA_KEY_BITS)
    if isinstance(bits, int) and bits < MIN_RSA_KEY_BITS:
        messages.append(
            _error(
                f"{SETTINGS_NAME}['MIN_RSA_KEY_BITS'] is {bits}: client certificates with RSA "
                f"keys under {MIN_RSA_KEY_BITS} bits authenticate, which FAPI 2.0 (§5.4.1) "
                "forbids.",
                f"Remove the key, or set it to {MIN_RSA_KEY_BITS} or more.",
                id="oauth_mtls.F020",
            )
        )
    return messages


def _dot_rules() -> list[CheckMessage]:
    from oauth2_provider.settings import oauth2_settings as dot

    def gate(name: str) -> bool:
        """A ``COMPLIANT_BCP_RFC9700_*`` gate that is not on."""
        return getattr(dot, name) is not True

    rules: list[tuple[bool, CheckMessage]] = [
        (
            gate("COMPLIANT_BCP_RFC9700_PASSWORD_GRANT"),
            _error(
                "the resource owner password credentials grant is accepted "
                "(COMPLIANT_BCP_RFC9700_PASSWORD_GRANT is not True); FAPI 2.0 (§5.3.2.1) "
                "rejects it.",
                "Set OAUTH2_PROVIDER['COMPLIANT_BCP_RFC9700_PASSWORD_GRANT'] = True.",
                id="oauth_mtls.F006",
            ),
        ),
        (
            gate("COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT"),
            _error(
                "the implicit grant is accepted (COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT is not "
                "True); FAPI 2.0 (§5.3.2.2) allows response_type code only.",
                "Set OAUTH2_PROVIDER['COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT'] = True.",
                id="oauth_mtls.F007",
            ),
        ),
        (
            dot.PKCE_REQUIRED is not True,
            _error(
                "OAUTH2_PROVIDER['PKCE_REQUIRED'] is not True (a callable cannot be checked): an "
                "authorization code can be issued without PKCE, which FAPI 2.0 (§5.3.2.2) requires "
                "of every request.",
                "Set OAUTH2_PROVIDER['PKCE_REQUIRED'] = True.",
                id="oauth_mtls.F009",
            ),
        ),
        (
            gate("COMPLIANT_BCP_RFC9700_PKCE_METHOD"),
            _error(
                'the PKCE "plain" method is accepted (COMPLIANT_BCP_RFC9700_PKCE_METHOD is not '
                "True); FAPI 2.0 (§5.3.2.2) requires S256.",
                "Set OAUTH2_PROVIDER['COMPLIANT_BCP_RFC9700_PKCE_METHOD'] = True.",
                id="oauth_mtls.F010",
            ),
        ),
        (
            gate("COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS"),
            _error(
                "authorization responses carry no iss parameter (COMPLIANT_BCP_RFC9700_AUTHZ_"
                "RESPONSE_ISS is not True), so clients cannot detect mix-up attacks; FAPI 2.0 "
                "(§5.3.2.2) requires RFC 9207.",
                "Set OAUTH2_PROVIDER['COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS'] = True.",
                id="oauth_mtls.F011",
            ),
        ),
        (
            not _https_url(dot.OIDC_ISS_ENDPOINT),
            _error(
                "OAUTH2_PROVIDER['OIDC_ISS_ENDPOINT'] is not an https URL, so the issuer in the "
                "metadata and in RFC 9207 iss follows each request's Host header.",
                "Set OAUTH2_PROVIDER['OIDC_ISS_ENDPOINT'] to the issuer, e.g. "
                "'https://as.example.com/o'.",
                id="oauth_mtls.F012",
            ),
        ),
        (
            "http" in {str(scheme).lower() for scheme in dot.ALLOWED_REDIRECT_URI_SCHEMES},
            _error(
                "OAUTH2_PROVIDER['ALLOWED_REDIRECT_URI_SCHEMES'] allows http, so authorization "
                "responses can travel unencrypted; FAPI 2.0 (§5.3.2.2) forbids http redirect "
                "URIs.",
                "Remove 'http', e.g. ['https'] (DOT cannot allow http for loopback redirects "
                "only).",
                id="oauth_mtls.F013",
            ),
        ),
        (
            bool(dot.ALLOW_URI_WILDCARDS),
            _error(
                "OAUTH2_PROVIDER['ALLOW_URI_WILDCARDS'] is on, so redirect URIs are not matched "
                "exactly and can redirect to hosts the client never registered (RFC 9700 §4.1.1; "
                "FAPI 2.0 §5.3.2.1: no open redirectors).",
                "Set OAUTH2_PROVIDER['ALLOW_URI_WILDCARDS'] = False.",
                id="oauth_mtls.F014",
            ),
        ),
        (
            _over(dot.AUTHORIZATION_CODE_EXPIRE_SECONDS, MAX_AUTHORIZATION_CODE_SECONDS),
            _error(
                "OAUTH2_PROVIDER['AUTHORIZATION_CODE_EXPIRE_SECONDS'] is "
                f"{dot.AUTHORIZATION_CODE_EXPIRE_SECONDS!r}; FAPI 2.0 (§5.3.2.1) allows "
                f"{MAX_AUTHORIZATION_CODE_SECONDS} seconds at most.",
                f"Set it to {MAX_AUTHORIZATION_CODE_SECONDS} (DOT's default) or less.",
                id="oauth_mtls.F015",
            ),
        ),
        (
            _over(_access_token_lifetime(dot), MAX_ACCESS_TOKEN_SECONDS),
            _error(
                f"access tokens live {_access_token_lifetime(dot)!r} seconds "
                "(ACCESS_TOKEN_EXPIRE_SECONDS, or token_expires_in in EXTRA_SERVER_KWARGS); this "
                f"profile allows {MAX_ACCESS_TOKEN_SECONDS} (docs/fapi.md says why): a JWT or a "
                "cached introspection stays usable until it expires.",
                f"Set OAUTH2_PROVIDER['ACCESS_TOKEN_EXPIRE_SECONDS'] to {MAX_ACCESS_TOKEN_SECONDS} "
                "or less; clients refresh.",
                id="oauth_mtls.F016",
            ),
        ),
        (
            bool(dot.ROTATE_REFRESH_TOKEN)
            and not _positive(dot.REFRESH_TOKEN_GRACE_PERIOD_SECONDS),
            _error(
                "refresh tokens rotate (ROTATE_REFRESH_TOKEN) without a grace period, so a client "
                "that lost the response to a refresh cannot retry; FAPI 2.0 (§5.3.2.1) forbids "
                "rotation unless that retry succeeds.",
                "Set OAUTH2_PROVIDER['ROTATE_REFRESH_TOKEN'] = False (FAPI's advice), or keep "
                "rotation with REFRESH_TOKEN_GRACE_PERIOD_SECONDS > 0.",
                id="oauth_mtls.F017",
            ),
        ),
        (
            gate("COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT"),
            _error(
                "access tokens are accepted in the URI query string (COMPLIANT_BCP_RFC9700_ACCESS_"
                "TOKEN_TRANSPORT is not True); FAPI 2.0 (§5.3.4) forbids it.",
                "Set OAUTH2_PROVIDER['COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT'] = True.",
                id="oauth_mtls.F018",
            ),
        ),
    ]
    messages = [message for failed, message in rules if failed]
    return messages + _advertised(dot)


def _advertised(dot: Any) -> list[CheckMessage]:
    """F008, F019: the metadata must not advertise what the profile refuses."""
    from oauth2_provider.views.metadata import bcp_filter_response_types

    response_types = bcp_filter_response_types(dot.OAUTH2_RESPONSE_TYPES_SUPPORTED)
    methods = list(dot.OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED or ())
    if dot.OIDC_ENABLED:
        # DOT raises AttributeError for an empty mandatory setting (its own error to report).
        with contextlib.suppress(AttributeError):
            response_types += bcp_filter_response_types(dot.OIDC_RESPONSE_TYPES_SUPPORTED)
        with contextlib.suppress(AttributeError):
            methods += list(dot.OIDC_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED)
    messages: list[CheckMessage] = []
    others = sorted({str(value) for value in response_types if str(value).split() != ["code"]})
    if others:
        messages.append(
            _error(
                f"the metadata advertises response types {', '.join(others)}; FAPI 2.0 "
                "(§5.3.2.2) allows code only, and the profile refuses the others.",
                "Set OAUTH2_PROVIDER['OAUTH2_RESPONSE_TYPES_SUPPORTED'] and (with OIDC) "
                "['OIDC_RESPONSE_TYPES_SUPPORTED'] to ['code'].",
                id="oauth_mtls.F008",
            )
        )
    others = sorted({str(method) for method in methods if method not in MTLS_METHODS})
    if others:
        messages.append(
            _error(
                f"the metadata advertises client authentication methods {', '.join(others)}, "
                "which the profile refuses (FAPI 2.0 §5.3.2.1: MTLS or private_key_jwt).",
                "Set OAUTH2_PROVIDER['OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED'] and (with "
                "OIDC) ['OIDC_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED'] to ['tls_client_auth', "
                "'self_signed_tls_client_auth'] (the metadata then lists the enabled ones).",
                id="oauth_mtls.F019",
            )
        )
    return messages


def _jwt_rules() -> list[CheckMessage]:
    """F021, F022: FAPI 2.0 §5.4.1 allows PS256, ES256 and EdDSA only."""
    from .bearer import JWT_MODES
    from .jwt_keys import KeyFileError, load_key_file

    messages: list[CheckMessage] = []
    signing = mtls_settings.JWT_SIGNING_KEYS
    if signing:
        try:
            key, _private = load_key_file(signing[0])
        except KeyFileError:
            key = None  # oauth_mtls.E011 reports the file
        if key is not None and key.alg not in FAPI2_ALGORITHMS:
            messages.append(
                _error(
                    f"the access-token signing key {signing[0]!r} signs with {key.alg}; FAPI 2.0 "
                    f"(§5.4.1) allows {', '.join(FAPI2_ALGORITHMS)} only.",
                    "Generate an EC P-256 key (manage.py mtls_jwt_key generate PATH), an RSA key "
                    "(PS256) or an Ed25519 key, and list it first in JWT_SIGNING_KEYS.",
                    id="oauth_mtls.F021",
                )
            )
    if mtls_settings.RESOURCE_SERVER_TOKEN_VALIDATION in JWT_MODES:
        extra = sorted(set(mtls_settings.RESOURCE_SERVER_JWT_ALGORITHMS) - set(FAPI2_ALGORITHMS))
        if extra:
            messages.append(
                _error(
                    f"this resource accepts JWT access tokens signed with {', '.join(extra)} "
                    "(RESOURCE_SERVER_JWT_ALGORITHMS); FAPI 2.0 (§5.4.1) allows "
                    f"{', '.join(FAPI2_ALGORITHMS)} only.",
                    f"Set {SETTINGS_NAME}['RESOURCE_SERVER_JWT_ALGORITHMS'] = "
                    f"{list(FAPI2_ALGORITHMS)!r}.",
                    id="oauth_mtls.F022",
                )
            )
    return messages


def _what_dot_cannot_do() -> list[CheckMessage]:
    """Warnings: deviations no setting of DOT 3.4.1 can remove."""
    from oauth2_provider.settings import oauth2_settings as dot

    messages: list[CheckMessage] = [
        Warning(
            "FAPI 2.0 profile: DOT 3.4.1 has no pushed authorization request endpoint "
            "(RFC 9126), which FAPI 2.0 (§5.3.2.2) requires for every authorization request: "
            "authorization requests travel through the browser, unauthenticated. The "
            "client_credentials grant is unaffected.",
            hint="No setting fixes this (PAR is on DOT's unreleased main branch). Once the "
            "deviation is accepted, add 'oauth_mtls.F101' to SILENCED_SYSTEM_CHECKS.",
            id="oauth_mtls.F101",
        )
    ]
    if dot.OIDC_ENABLED:
        messages.append(
            Warning(
                "FAPI 2.0 profile: OIDC is on and DOT 3.4.1 signs ID tokens with RS256 or HS256 "
                "only (Application.algorithm); FAPI 2.0 (§5.4.1) allows PS256, ES256 and EdDSA.",
                hint="Turn OIDC_ENABLED off if clients need no ID token; otherwise no setting "
                "fixes this. Once accepted, add 'oauth_mtls.F102' to SILENCED_SYSTEM_CHECKS.",
                id="oauth_mtls.F102",
            )
        )
    return messages


# --- small helpers ----------------------------------------------------------------------------


def _https_url(value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    parts = urlsplit(value)
    return parts.scheme == "https" and bool(parts.netloc)


def _access_token_lifetime(dot: Any) -> Any:
    """What oauthlib is given: ``EXTRA_SERVER_KWARGS["token_expires_in"]`` wins over DOT's
    ``ACCESS_TOKEN_EXPIRE_SECONDS`` (``server_kwargs``)."""
    extra = dot.EXTRA_SERVER_KWARGS or {}
    return extra.get("token_expires_in", dot.ACCESS_TOKEN_EXPIRE_SECONDS)


def _over(value: Any, bound: int) -> bool:
    """A number of seconds above ``bound``, or no number at all (``None``: no expiry); a
    callable (per-request lifetime) cannot be checked and passes."""
    if callable(value):
        return False
    if isinstance(value, bool) or not isinstance(value, int | float):
        return True
    return value > bound


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0
