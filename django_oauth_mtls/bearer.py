"""Verifying a bearer token for this package's resource-side classes (RFC 6750 §2.1; RFC 9068 §4).

``verify_request(request, scopes)`` answers what DOT's ``OAuthLibCore.verify_request`` answers —
``(valid, oauthlib_request)``, the validator having set ``access_token``, ``user``, ``client``,
``scopes`` or ``oauth2_error`` — for ``MTLSOAuth2Authentication``, ``mtls_protected_resource``
and ``MTLSProtectedResourceMixin``. Two things are cheaper than DOT's path:

* the ``OAuthLibCore`` is built once per process (DOT's views keep one per view class; DOT's
  ``get_oauthlib_core()`` builds a validator and a whole oauthlib ``Server`` per call), and
  rebuilt when ``OAUTH2_PROVIDER`` changes;
* in a jwt mode (``RESOURCE_SERVER_TOKEN_VALIDATION``), a JWS in the ``Authorization`` header
  goes to the validator's ``validate_bearer_token`` directly, on a ``BearerRequest``: an oauthlib
  ``Request`` that skips decoding the URI query and the body (the token is in the header, and
  nothing on the bearer path reads them). Every request parameter answers ``None`` on it, so none
  can reach the validator's state. Everything else (no header, an opaque token, a token in the
  query or the body, DOT's own endpoints on the AS) takes DOT's full path, unchanged.

The validator is the same object either way: the checks, the binding and the refusals are the
same. Only the work oauthlib does before calling it is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from django.conf import settings
from django.core.signals import setting_changed
from django.http import HttpRequest
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from oauth2_provider.oauth2_backends import get_oauthlib_core
from oauthlib.common import Request

from .conf import JWT_MODES, mtls_settings
from .jwt_checks import is_jws

__all__ = [
    "AUTHORIZATION_SERVER_ENDPOINTS",
    "JWT_MODES",
    "BearerRequest",
    "at_authorization_server_endpoint",
    "at_authorization_server_path",
    "ResourceConfig",
    "oauthlib_core",
    "resource_config",
    "verify_request",
]

#: DOT's endpoints on the AS that validate bearer tokens against the database in every mode.
AUTHORIZATION_SERVER_ENDPOINTS: Final = ("oauth2_provider:user-info", "oauth2_provider:introspect")


@dataclass(frozen=True, slots=True)
class ResourceConfig:
    """The resource side's JWT settings, read once per settings change (``conf`` properties,
    defaults included)."""

    mode: str
    audience: str | None
    issuer: str | None
    algorithms: tuple[str, ...]
    leeway: int
    jwks_uri: str | None
    user: str | None
    require_bound: bool


_config: tuple[object, ResourceConfig] | None = None


def resource_config() -> ResourceConfig:
    """The current ``ResourceConfig``. Re-read when ``OAUTH2_MTLS`` is another object or a
    ``setting_changed`` for ``OAUTH2_MTLS``/``OAUTH2_PROVIDER`` was sent (``override_settings``,
    pytest's ``settings``); the request path then costs one attribute read, not a dozen."""
    global _config
    raw = getattr(settings, "OAUTH2_MTLS", None)
    cached = _config
    if cached is not None and cached[0] is raw:
        return cached[1]
    config = ResourceConfig(
        mode=mtls_settings.RESOURCE_SERVER_TOKEN_VALIDATION,
        audience=mtls_settings.RESOURCE_SERVER_AUDIENCE,
        issuer=mtls_settings.RESOURCE_SERVER_JWT_ISSUER,
        algorithms=mtls_settings.RESOURCE_SERVER_JWT_ALGORITHMS,
        leeway=mtls_settings.JWT_LEEWAY_SECONDS,
        jwks_uri=mtls_settings.RESOURCE_SERVER_JWKS_URI,
        user=mtls_settings.RESOURCE_SERVER_JWT_USER,
        require_bound=mtls_settings.REQUIRE_BOUND_TOKENS,
    )
    _config = (raw, config)
    return config


_core: Any = None


def oauthlib_core() -> Any:
    """DOT's ``OAuthLibCore``, built once per process; rebuilt when ``OAUTH2_PROVIDER``
    changes."""
    global _core
    core = _core
    if core is None:
        core = _core = get_oauthlib_core()
    return core


def _forget(*, setting: str, **kwargs: Any) -> None:
    global _core, _config
    if setting == "OAUTH2_PROVIDER":
        _core = None
    if setting in ("OAUTH2_PROVIDER", "OAUTH2_MTLS"):
        _config = None


setting_changed.connect(_forget, dispatch_uid="django_oauth_mtls.bearer")


@lru_cache(maxsize=16)
def _endpoint_paths(urlconf: str, prefix: str) -> frozenset[str]:
    paths: set[str] = set()
    for name in AUTHORIZATION_SERVER_ENDPOINTS:
        try:
            paths.add(reverse(name, urlconf=urlconf))
        except NoReverseMatch:
            continue  # a resource server without DOT's URLs
    return frozenset(paths)


def _path_of(uri: str) -> str:
    """The path of oauthlib's absolute ``request.uri`` (no query, no fragment)."""
    head = uri.split("?", 1)[0].split("#", 1)[0]
    scheme = head.find("://")
    if scheme < 0:
        return head
    slash = head.find("/", scheme + 3)
    return head[slash:] if slash >= 0 else "/"


def at_authorization_server_path(path: str) -> bool:
    """Whether ``path`` is DOT's userinfo or introspection endpoint here."""
    urlconf = get_urlconf() or settings.ROOT_URLCONF
    return path in _endpoint_paths(str(urlconf), get_script_prefix())


def at_authorization_server_endpoint(request: Any) -> bool:
    """Whether oauthlib's ``request`` is for DOT's userinfo or introspection endpoint."""
    uri = request.__dict__.get("uri")
    return isinstance(uri, str) and at_authorization_server_path(_path_of(uri))


#: oauthlib's parameter defaults: what a ``BearerRequest`` answers for any of them.
_NO_PARAMETERS: Final = dict(Request("https://localhost/")._params)


class BearerRequest(Request):  # type: ignore[misc]
    """An oauthlib ``Request`` for a bearer token sent in the ``Authorization`` header: no query
    or body decoding, no request parameters (each answers ``None``); ``uri`` is built when first
    read (nothing on the JWT path reads it)."""

    def __init__(self, django_request: HttpRequest, headers: dict[str, Any]) -> None:
        self._django_request = django_request
        self.http_method = django_request.method or "GET"
        self.headers = headers
        self.body = None
        self.decoded_body = None
        self.oauth_params: list[Any] = []
        self.validator_log: dict[str, Any] = {}
        self._params = dict(_NO_PARAMETERS)

    @property
    def uri(self) -> str:
        """The absolute URI, as DOT gives oauthlib (``build_absolute_uri``)."""
        value = self.__dict__.get("_uri")
        if value is None:
            value = self.__dict__["_uri"] = self._django_request.build_absolute_uri()
        return str(value)

    @uri.setter
    def uri(self, value: str) -> None:
        self.__dict__["_uri"] = value


def _header_jws(request: HttpRequest) -> str | None:
    """The JWS of ``Authorization: Bearer <JWS>`` when the short path applies, else ``None``."""
    header = request.META.get("HTTP_AUTHORIZATION")
    if not isinstance(header, str) or not header:
        return None
    parts = header.split()
    # oauthlib's get_token_from_header: exactly "Bearer <token>", scheme case-insensitive.
    if len(parts) != 2 or parts[0].lower() != "bearer" or not is_jws(parts[1]):
        return None
    if resource_config().mode not in JWT_MODES:
        return None
    if "access_token" in request.META.get("QUERY_STRING", "") and "access_token" in request.GET:
        return None  # DOT's RFC 9700 rule on tokens in the query string applies: its path
    match = getattr(request, "resolver_match", None)
    if match is not None and _names_an_as_endpoint(match):
        return None  # DOT's endpoints on the AS validate against the database
    return str(parts[1])


def _names_an_as_endpoint(match: Any) -> bool:
    """Whether Django resolved the request to DOT's userinfo or introspection URL name."""
    name = f"oauth2_provider:{match.url_name}"
    return name in AUTHORIZATION_SERVER_ENDPOINTS and "oauth2_provider" in match.app_names


def verify_request(request: Any, scopes: Sequence[str]) -> tuple[bool, Any]:
    """``(valid, oauthlib_request)`` as DOT's ``OAuthLibCore.verify_request``, for a Django or
    a DRF request."""
    core = oauthlib_core()
    django_request: HttpRequest = getattr(request, "_request", request)
    token = _header_jws(django_request)
    bearer = getattr(core.server, "tokens", {}).get("Bearer") if token is not None else None
    if token is None or bearer is None:
        return core.verify_request(request, scopes=list(scopes))  # type: ignore[no-any-return]
    oauthlib_request = BearerRequest(django_request, core.extract_headers(django_request))
    oauthlib_request.token_type = "Bearer"
    oauthlib_request.scopes = list(scopes)
    valid = bearer.request_validator.validate_bearer_token(
        token, oauthlib_request.scopes, oauthlib_request
    )
    return bool(valid), oauthlib_request
