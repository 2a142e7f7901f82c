"""Discovery documents with RFC 8705's members (§3.3, §5), and the checks on their settings.

DOT's RFC 8414 view, OIDC discovery view and RFC 9728 view are extended, not rewritten: each
view here calls DOT's, then adds to the JSON it produced, keeping DOT's status and headers
(``Access-Control-Allow-Origin: *``). ``django_oauth_mtls.urls`` mounts them under DOT's URL
names.

What is added (``docs/metadata.md``):

* the enabled mTLS methods in ``token_endpoint_auth_methods_supported``,
  ``revocation_endpoint_auth_methods_supported`` and
  ``introspection_endpoint_auth_methods_supported``: ``self_signed_tls_client_auth`` whenever
  the validator includes :class:`~django_oauth_mtls.oauth2_validators.MTLSValidatorMixin` and a
  ``CERTIFICATE_SOURCE`` is set; ``tls_client_auth`` when, in addition, PKI clients can
  authenticate (``TRUSTED_CA_CERTIFICATES`` or ``TRUST_PROXY_VERIFICATION``). An mTLS method a
  project listed in DOT's settings is removed when it is not enabled, so the document never
  advertises what the server refuses;
* ``tls_client_certificate_bound_access_tokens``: a JSON boolean, always present;
* ``jwks_uri`` (``jwks_info``) whenever the JWK set holds a key: DOT's OIDC key, or a JWT
  access-token key (RFC 9068 §4), OIDC on or off;
* ``mtls_endpoint_aliases`` when ``MTLS_BASE_URL`` is an absolute ``https`` URL: only endpoints a
  client calls directly (token, revocation, introspection, registration, userinfo, device
  authorization), each of them also at the top level; never ``authorization_endpoint``;
* the top-level endpoints DOT 3.4 leaves out of one document or the other (``userinfo_endpoint``
  and ``device_authorization_endpoint`` in RFC 8414's; revocation, introspection, registration
  and device authorization in OIDC's), so that both documents describe the same server.

Absolute URLs come from configuration only when ``OIDC_ISS_ENDPOINT`` is set: DOT then builds
every endpoint URL from its origin, and ours come from ``MTLS_BASE_URL``, so the main host and
the mTLS host serve the same bytes. Without ``OIDC_ISS_ENDPOINT`` DOT uses the request's host
(check ``oauth_mtls.W006``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from django.core.checks import CheckMessage, Warning
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, URLPattern, reverse
from django.utils.decorators import method_decorator
from oauth2_provider.compat import login_not_required
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views.metadata import (
    OAuthProtectedResourceMetadataView,
    OAuthServerMetadataView,
    ServerMetadataViewMixin,
)
from oauth2_provider.views.oidc import ConnectDiscoveryInfoView

from .conf import SETTINGS_NAME, mtls_settings

__all__ = [
    "DIRECT_ENDPOINTS",
    "MTLSConnectDiscoveryInfoView",
    "MTLSOAuthProtectedResourceMetadataView",
    "MTLSOAuthServerMetadataView",
    "add_mtls_members",
    "bound_tokens_supported",
    "check_metadata_settings",
    "enabled_mtls_methods",
    "mtls_base_url",
    "mtls_endpoint_url",
]

TLS_CLIENT_AUTH = "tls_client_auth"
SELF_SIGNED_TLS_CLIENT_AUTH = "self_signed_tls_client_auth"
MTLS_METHODS = (TLS_CLIENT_AUTH, SELF_SIGNED_TLS_CLIENT_AUTH)
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

#: (metadata member, DOT URL name) of the endpoints a client calls directly, in the order they
#: appear in ``mtls_endpoint_aliases`` (RFC 8705 §5). The authorization endpoint is a browser's,
#: ``jwks_uri`` is not an endpoint: neither is ever aliased.
DIRECT_ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("token_endpoint", "token"),
    ("revocation_endpoint", "revoke-token"),
    ("introspection_endpoint", "introspect"),
    ("registration_endpoint", "dcr-register"),
    ("userinfo_endpoint", "user-info"),
    ("device_authorization_endpoint", "device-authorization"),
)

#: endpoint member → its ``*_auth_methods_supported`` member.
AUTH_METHOD_MEMBERS = {
    "token_endpoint": "token_endpoint_auth_methods_supported",
    "revocation_endpoint": "revocation_endpoint_auth_methods_supported",
    "introspection_endpoint": "introspection_endpoint_auth_methods_supported",
}


# --- what is enabled -------------------------------------------------------------------------


def validator_installed() -> bool:
    """DOT's validator class includes :class:`MTLSValidatorMixin`."""
    from .oauth2_validators import MTLSValidatorMixin

    try:
        validator = oauth2_settings.OAUTH2_VALIDATOR_CLASS
    except ImportError:
        return False
    return isinstance(validator, type) and issubclass(validator, MTLSValidatorMixin)


def bound_tokens_supported() -> bool:
    """The validator binds tokens and the app reads certificates (RFC 8705 §3.3, RFC 9728)."""
    return mtls_settings.CERTIFICATE_SOURCE is not None and validator_installed()


def enabled_mtls_methods() -> list[str]:
    """The mTLS client authentication methods this configuration can carry out."""
    if not bound_tokens_supported():
        return []
    methods: list[str] = []
    if mtls_settings.TRUSTED_CA_CERTIFICATES or mtls_settings.TRUST_PROXY_VERIFICATION:
        methods.append(TLS_CLIENT_AUTH)
    methods.append(SELF_SIGNED_TLS_CLIENT_AUTH)
    return methods


def with_mtls_methods(methods: Iterable[str], enabled: list[str]) -> list[str]:
    """``methods`` without mTLS entries, then the enabled mTLS methods."""
    return [method for method in methods if method not in MTLS_METHODS] + enabled


# --- URLs ------------------------------------------------------------------------------------


def mtls_base_url() -> str | None:
    """``MTLS_BASE_URL`` when it is an absolute ``https`` URL (else W007 and no aliases)."""
    value = mtls_settings.MTLS_BASE_URL
    if not isinstance(value, str) or not value:
        return None
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        return None
    return value


@lru_cache(maxsize=64)
def _dot_route(view_name: str) -> str | None:
    """DOT's route for a URL name (``"token/"``), the path below the include's mount point."""
    from oauth2_provider import urls as dot_urls

    for pattern in dot_urls.urlpatterns:
        if isinstance(pattern, URLPattern) and pattern.name == view_name:
            return str(pattern.pattern)
    return None


def mtls_endpoint_url(view_name: str) -> str | None:
    """The endpoint's URL on the mTLS host, or ``None`` (no valid base, name not mounted).

    ``MTLS_BASE_URL`` without a path (``https://mtls.example.com``) keeps the main host's paths
    (``/o/token/``); with a path (``https://mtls.example.com/o``) that path stands for the point
    where ``django_oauth_mtls.urls`` is included (``path("o/", include(...))``).
    """
    base = mtls_base_url()
    if base is None:
        return None
    try:
        path = reverse(f"oauth2_provider:{view_name}")
    except NoReverseMatch:
        return None
    parts = urlsplit(base)
    origin = f"{parts.scheme}://{parts.netloc}"
    route = _dot_route(view_name)
    if not parts.path.strip("/") or not route or not path.endswith(route):
        return origin + path
    return base.rstrip("/") + "/" + route


# --- the documents ---------------------------------------------------------------------------


def _advertised_grant_types() -> list[str]:
    """DOT's RFC 8414 ``grant_types_supported`` (after its RFC 9700 gates)."""
    grant_types = list(oauth2_settings.OAUTH2_GRANT_TYPES_SUPPORTED)
    if oauth2_settings.COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT:
        grant_types = [grant for grant in grant_types if grant != "implicit"]
    if oauth2_settings.COMPLIANT_BCP_RFC9700_PASSWORD_GRANT:
        grant_types = [grant for grant in grant_types if grant != "password"]
    return grant_types


def _served_url(view: ServerMetadataViewMixin, request: HttpRequest, view_name: str) -> str | None:
    url: str | None = view._get_endpoint_url(request, view_name)
    return url


def _missing_endpoints(
    view: ServerMetadataViewMixin, request: HttpRequest, data: dict[str, Any], *, oidc: bool
) -> dict[str, str]:
    """Top-level endpoints DOT serves but leaves out of this document."""
    found: dict[str, str] = {}
    wanted: list[tuple[str, str]] = []
    if oidc:
        wanted += [
            ("revocation_endpoint", "revoke-token"),
            ("introspection_endpoint", "introspect"),
        ]
        if oauth2_settings.DCR_ENABLED:
            wanted.append(("registration_endpoint", "dcr-register"))
    elif oauth2_settings.OIDC_ENABLED:
        userinfo = oauth2_settings.OIDC_USERINFO_ENDPOINT or _served_url(view, request, "user-info")
        if userinfo:
            found["userinfo_endpoint"] = userinfo
    if DEVICE_CODE_GRANT in _advertised_grant_types():
        wanted.append(("device_authorization_endpoint", "device-authorization"))
    for member, view_name in wanted:
        if member not in data:
            url = _served_url(view, request, view_name)
            if url:
                found[member] = url
    return {member: url for member, url in found.items() if member not in data}


def add_mtls_members(
    view: ServerMetadataViewMixin, request: HttpRequest, data: dict[str, Any], *, oidc: bool
) -> dict[str, Any]:
    """DOT's document ``data`` with the RFC 8705 members (mutates and returns ``data``)."""
    data.update(_missing_endpoints(view, request, data, oidc=oidc))

    enabled = enabled_mtls_methods()
    token_methods = data.get("token_endpoint_auth_methods_supported")
    if token_methods is None:  # DOT omits it without a token endpoint
        token_methods = oauth2_settings.OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED
    for endpoint, member in AUTH_METHOD_MEMBERS.items():
        if endpoint in data:
            methods = with_mtls_methods(data.get(member, token_methods), enabled)
            if methods:
                data[member] = methods
            else:  # RFC 8414 §3.2: no empty arrays
                data.pop(member, None)

    data["tls_client_certificate_bound_access_tokens"] = bound_tokens_supported()
    # RFC 8414 §2 / RFC 9068 §4: the JWK set whenever it holds a key (never an mTLS alias).
    if "jwks_uri" not in data and _jwks_published():
        jwks_uri = _served_url(view, request, "jwks-info")
        if jwks_uri:
            data["jwks_uri"] = jwks_uri

    aliases: dict[str, str] = {}
    for member, view_name in DIRECT_ENDPOINTS:
        top_level = data.get(member)
        if not top_level or top_level != _served_url(view, request, view_name):
            continue  # not present, or served elsewhere (OIDC_USERINFO_ENDPOINT)
        alias = mtls_endpoint_url(view_name)
        if alias:
            aliases[member] = alias
    if aliases:  # RFC 8414 §3.2: omit, never publish an empty object
        data["mtls_endpoint_aliases"] = aliases
    else:
        data.pop("mtls_endpoint_aliases", None)
    return data


def _jwks_published() -> bool:
    """The JWK set at ``jwks-info`` is not empty (``jwks_info.jwk_set``)."""
    from .jwt_keys import published_keys

    oidc_key = oauth2_settings.OIDC_ENABLED and oauth2_settings.OIDC_RSA_PRIVATE_KEY
    return bool(oidc_key or published_keys())


def _rewrite(response: HttpResponse, data: dict[str, Any]) -> HttpResponse:
    """New JSON body, DOT's status and headers kept."""
    response.content = json.dumps(data).encode("utf-8")
    if response.has_header("Content-Length"):
        response["Content-Length"] = str(len(response.content))
    return response


def _json_of(response: HttpResponse) -> dict[str, Any] | None:
    if response.status_code != 200 or not response.get("Content-Type", "").startswith(
        "application/json"
    ):
        return None
    data = json.loads(response.content)
    return data if isinstance(data, dict) else None


@method_decorator(login_not_required, name="dispatch")
class MTLSOAuthServerMetadataView(OAuthServerMetadataView):  # type: ignore[misc]
    """RFC 8414 authorization server metadata with RFC 8705's members."""

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response: HttpResponse = super().get(request, *args, **kwargs)
        data = _json_of(response)
        if data is None:
            return response
        return _rewrite(response, add_mtls_members(self, request, data, oidc=False))


@method_decorator(login_not_required, name="dispatch")
class MTLSConnectDiscoveryInfoView(ConnectDiscoveryInfoView):  # type: ignore[misc]
    """OpenID Connect discovery with RFC 8705's members (404 while OIDC is off, as DOT's)."""

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response: HttpResponse = super().get(request, *args, **kwargs)
        data = _json_of(response)
        if data is None:
            return response
        return _rewrite(response, add_mtls_members(self, request, data, oidc=True))


@method_decorator(login_not_required, name="dispatch")
class MTLSOAuthProtectedResourceMetadataView(OAuthProtectedResourceMetadataView):  # type: ignore[misc]
    """RFC 9728 protected resource metadata with ``tls_client_certificate_bound_access_tokens``.

    The ``resource`` member stays DOT's: RFC 9728 §3.3 ties it to the URL the document was
    fetched from, so unlike the authorization server's documents it may differ per host.
    """

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response: HttpResponse = super().get(request, *args, **kwargs)
        data = _json_of(response)
        if data is None:
            return response
        data["tls_client_certificate_bound_access_tokens"] = bound_tokens_supported()
        return _rewrite(response, data)


# --- system checks (registered by the app config) --------------------------------------------


def check_metadata_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W006: ``MTLS_BASE_URL`` without ``OIDC_ISS_ENDPOINT``; W007: not an absolute https URL."""
    value = mtls_settings.MTLS_BASE_URL
    if value is None or value == "":
        return []
    messages: list[CheckMessage] = []
    if mtls_base_url() is None:
        messages.append(
            Warning(
                f"{SETTINGS_NAME}['MTLS_BASE_URL'] = {value!r} is not an absolute https URL, so "
                "no mtls_endpoint_aliases are published.",
                hint='Write the mTLS host\'s URL, e.g. "https://mtls.example.com" or '
                '"https://mtls.example.com/o" (the path where django_oauth_mtls.urls is '
                "included), without query or fragment.",
                id="oauth_mtls.W007",
            )
        )
    if not oauth2_settings.OIDC_ISS_ENDPOINT:
        messages.append(
            Warning(
                f"{SETTINGS_NAME}['MTLS_BASE_URL'] is set but OAUTH2_PROVIDER['OIDC_ISS_ENDPOINT'] "
                "is not: the metadata's issuer and endpoint URLs are built from each request's "
                "host, so the mTLS host publishes different metadata than the main host.",
                hint='Set OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"] to your issuer, e.g. '
                '"https://as.example.com".',
                id="oauth_mtls.W006",
            )
        )
    return messages
