"""The authorization server's JWK set (RFC 7517 §5; RFC 8414 §2 ``jwks_uri``; RFC 9068 §4).

Served at DOT's ``oauth2_provider:jwks-info`` URL (``.well-known/jwks.json`` under the include),
in place of DOT's view, whether OpenID Connect is on or off: DOT's OIDC signing keys (while OIDC
is on, as DOT publishes them: ``alg`` RS256) and then every access-token key of
``JWT_SIGNING_KEYS`` and ``JWT_PUBLISHED_KEYS`` (``jwt_keys.published_keys``), public members
only, each with ``kid``, ``alg`` and ``use: "sig"``. Headers are DOT's: ``Access-Control-Allow-
Origin: *`` and ``Cache-Control: public, max-age=OIDC_JWKS_MAX_AGE_SECONDS, …`` — the delay a
rotation waits for (``docs/keys.md``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from oauth2_provider.compat import login_not_required
from oauth2_provider.settings import oauth2_settings

from .jwt_keys import published_keys

__all__ = ["MTLSJwksInfoView", "jwk_set", "oidc_keys"]

log = logging.getLogger(__name__)


def oidc_keys() -> list[dict[str, Any]]:
    """DOT's OIDC keys as DOT's own view publishes them (none while OIDC is off)."""
    if not (oauth2_settings.OIDC_ENABLED and oauth2_settings.OIDC_RSA_PRIVATE_KEY):
        return []
    from oauth2_provider.utils import jwk_from_pem

    keys: list[dict[str, Any]] = []
    for pem in (
        oauth2_settings.OIDC_RSA_PRIVATE_KEY,
        *oauth2_settings.OIDC_RSA_PRIVATE_KEYS_INACTIVE,
    ):
        key = jwk_from_pem(pem)
        keys.append({"alg": "RS256", "use": "sig", "kid": key.thumbprint(),
                     **key.export_public(as_dict=True)})  # fmt: skip
    return keys


def jwk_set() -> dict[str, list[dict[str, Any]]]:
    """``{"keys": [...]}``: the OIDC keys, then the access-token keys; a ``kid`` already
    published is not repeated (a key shared with OIDC is check ``oauth_mtls.E012``)."""
    keys = oidc_keys()
    seen = {key["kid"] for key in keys}
    for key in published_keys():
        if key.kid in seen:
            log.error("access-token key %s is also DOT's OIDC key; published once", key.kid)
            continue
        seen.add(key.kid)
        keys.append(dict(key.public_jwk))
    return {"keys": keys}


@method_decorator(login_not_required, name="dispatch")
class MTLSJwksInfoView(View):
    """The JWK set of ID-token and access-token keys, with DOT's caching headers."""

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        response = JsonResponse(jwk_set())
        max_age = oauth2_settings.OIDC_JWKS_MAX_AGE_SECONDS
        response["Access-Control-Allow-Origin"] = "*"
        response["Cache-Control"] = (
            f"public, max-age={max_age}, stale-while-revalidate={max_age}, stale-if-error={max_age}"
        )
        return response
