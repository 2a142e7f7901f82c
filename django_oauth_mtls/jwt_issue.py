"""Issuing JWT access tokens (RFC 9068 §2) that carry the certificate binding (RFC 8705 §3.1).

The validator calls in here where DOT stores an access token (``_create_access_token``, and
the in-place update of DOT's non-rotating refresh), after DOT settled the expiry and the RFC
8707 ``resource``. For a jwt-format token the JWS replaces the value in oauthlib's ``token``
dict *before* DOT stores it, so DOT's ``token``/``token_checksum`` (plain or RFC 9700 hashed
storage) and the JSON the token endpoint answers with are both the JWS. Refresh tokens, ID
tokens and codes stay DOT's; front-channel (implicit) tokens stay opaque: only requests that
went through a token-endpoint grant's ``validate_grant_type`` are minted (``note_token_request``).

* Header: ``typ: "at+jwt"`` (RFC 9068 §2.1), ``alg`` and ``kid`` of the signing key.
* Claims (RFC 9068 §2.2): ``iss`` (DOT's ``OIDC_ISS_ENDPOINT``), ``sub`` (the user's pk, or the
  ``client_id`` when there is no user), ``aud`` (the RFC 8707 resources, else ``JWT_AUDIENCE``,
  then also stored as the token's ``resource``), ``client_id``, ``iat``, ``exp`` (whole seconds,
  the stored expiry), ``jti``, ``scope``, and ``cnf: {"x5t#S256": …}`` exactly when bound.
  ``JWT_EXTRA_CLAIMS`` adds claims; it never replaces one of ``REGISTERED_CLAIMS``.
* An OpenID Connect ID token issued beside it gets its ``at_hash`` (OIDC Core §3.1.3.6) for
  the JWS, re-signed with DOT's key for the client (oauthlib computed it from the opaque value).
* ``JWT_RESOURCES`` (any format): a ``resource`` outside it is ``invalid_target`` (RFC 8707
  §2), refused in ``validate_grant_type`` before anything is stored, and again on the resources
  DOT settled (inherited from the grant or the refresh token).
* No usable key, issuer or audience at run time: 503 ``temporarily_unavailable`` with the
  token endpoint's JSON and ``no-store`` (``docs/keys.md``), the transaction rolled back; the
  system checks ``oauth_mtls.E008``–``E013`` make that rare.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from oauthlib.oauth2.rfc6749.errors import OAuth2Error

from .binding import cnf
from .exceptions import TokenEndpointHeaders
from .jwt_keys import AccessTokenKey

if TYPE_CHECKING:
    from jwcrypto.jwk import JWK

__all__ = [
    "REGISTERED_CLAIMS",
    "TOKEN_TYPE",
    "AccessTokenUnavailableError",
    "InvalidTargetError",
    "access_token_claims",
    "access_token_format",
    "at_hash",
    "minted",
    "note_token_request",
    "reissue_in_place",
    "sign_access_token",
]

log = logging.getLogger(__name__)

#: RFC 9068 §2.1: the ``typ`` header of an access token.
TOKEN_TYPE = "at+jwt"
#: Claims ``JWT_EXTRA_CLAIMS`` can never set (RFC 9068 §2.2, RFC 7519 §4.1, RFC 8705 §3.1).
REGISTERED_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id", "scope", "cnf"}
)


class _TokenEndpointError(TokenEndpointHeaders, OAuth2Error):  # type: ignore[misc]
    """Raised while tokens are saved, past oauthlib's handler (``TokenEndpointHeaders``)."""


class InvalidTargetError(_TokenEndpointError):
    """RFC 8707 §2: a ``resource`` this server does not issue tokens for."""

    error = "invalid_target"
    status_code = 400


class AccessTokenUnavailableError(_TokenEndpointError):
    """The server cannot sign an access token now (no usable key, issuer or audience): 503
    ``temporarily_unavailable`` — a server condition, not the client's fault, and never a 500."""

    error = "temporarily_unavailable"
    status_code = 503


# --- pure: claims and signature -----------------------------------------------------------------


def access_token_claims(
    *,
    issuer: str,
    subject: str,
    audience: Sequence[str],
    client_id: str,
    issued_at: int,
    expires_at: int,
    jwt_id: str,
    scope: str,
    x5t_s256: str | None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The RFC 9068 §2.2 claim set; ``extra`` adds claims outside ``REGISTERED_CLAIMS``."""
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        # RFC 7519 §4.1.3: one audience as a string, several as an array.
        "aud": audience[0] if len(audience) == 1 else list(audience),
        "client_id": client_id,
        "iat": issued_at,
        "exp": expires_at,
        "jti": jwt_id,
        "scope": scope,
    }
    if x5t_s256:
        claims["cnf"] = cnf(x5t_s256)  # RFC 8705 §3.1
    for name, value in (extra or {}).items():
        if name not in REGISTERED_CLAIMS:
            claims[name] = value
    return claims


def sign_access_token(claims: Mapping[str, Any], key: AccessTokenKey, private: JWK) -> str:
    """The compact JWS (RFC 7515 §3.1) of ``claims`` with the header ``{"alg", "kid", "typ":
    "at+jwt"}``. The key comes from jwcrypto (``private.get_op_key``, cached there); the
    signature is ``cryptography``'s, called directly: jwcrypto's JWS object costs ~5× the
    signature itself on the token endpoint's path."""
    header = json.dumps({"alg": key.alg, "kid": key.kid, "typ": TOKEN_TYPE}, separators=(",", ":"))
    payload = json.dumps(claims, separators=(",", ":"), ensure_ascii=False)
    signing_input = _b64encode(header.encode("utf-8")) + "." + _b64encode(payload.encode("utf-8"))
    signature = _signature(key.alg, private.get_op_key("sign"), signing_input.encode("ascii"))
    return signing_input + "." + _b64encode(signature)


def _signature(alg: str, private_key: Any, data: bytes) -> bytes:
    """RFC 7518 §3.4 (ECDSA: ``R || S``, each the curve's size), §3.5 (RSASSA-PSS, MGF1, salt
    the hash's length), RFC 8037 §3.1 (Ed25519)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    if alg in ("ES256", "ES384"):
        digest = hashes.SHA256() if alg == "ES256" else hashes.SHA384()
        r, s = decode_dss_signature(private_key.sign(data, ec.ECDSA(digest)))
        size = (private_key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if alg == "PS256":
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return private_key.sign(data, pss, hashes.SHA256())  # type: ignore[no-any-return]
    if alg == "EdDSA":
        return private_key.sign(data)  # type: ignore[no-any-return]
    raise ValueError(f"no signer for alg {alg!r}")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def at_hash(access_token: str) -> str:
    """OIDC Core §3.1.3.6 ``at_hash`` for an ID token signed with RS256 or HS256 (SHA-256)."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


# --- glue: which requests, which format -----------------------------------------------------------


def note_token_request(request: Any) -> None:
    """Called by ``validate_grant_type`` (token-endpoint grants only, before anything is
    stored): mark the request as one whose access token may be a JWT, and refuse a
    ``resource`` outside ``JWT_RESOURCES`` (oauthlib answers with its JSON and ``no-store``)."""
    from .state import request_state

    request_state(request).token_endpoint = True
    _refuse_unlisted(request, _named_resources(request))


def _named_resources(request: Any) -> list[str]:
    """Every ``resource`` in the body, repeated or not (RFC 8707 §2; oauthlib refuses query
    parameters at the token endpoint)."""
    pairs = getattr(request, "decoded_body", None) or []
    return [str(value) for key, value in pairs if key == "resource"]


def _refuse_unlisted(request: Any, resources: Sequence[str]) -> None:
    from .conf import mtls_settings

    allowed = mtls_settings.JWT_RESOURCES
    if not allowed:
        return
    unlisted = [uri for uri in resources if uri not in allowed]
    if unlisted:
        log.warning(
            "token refused: client_id=%s reason=invalid_target resource=%s",
            getattr(getattr(request, "client", None), "client_id", "-"),
            unlisted[0][:200],
        )
        raise InvalidTargetError(
            description="the requested resource is not one this server issues tokens for",
            request=request,
        )


def access_token_format(client: Any) -> str:
    """``"jwt"`` or ``"opaque"``: the client's ``MTLSClient.access_token_format``, else the
    setting."""
    from .conf import mtls_settings
    from .models import mtls_client_of

    mtls = mtls_client_of(client)
    chosen = getattr(mtls, "access_token_format", "") if mtls is not None else ""
    if chosen in ("jwt", "opaque"):
        return str(chosen)
    return mtls_settings.ACCESS_TOKEN_FORMAT


def _wants_jwt(request: Any) -> bool:
    from .state import request_state

    return request_state(request).token_endpoint and access_token_format(request.client) == "jwt"


# --- glue: minting ------------------------------------------------------------------------------


@contextmanager
def minted(request: Any, token: dict[str, Any], expires: dt.datetime) -> Iterator[dt.datetime]:
    """Around DOT's ``_create_access_token``: for a jwt-format token, put the JWS into
    ``token["access_token"]`` and yield the expiry to store (whole seconds, the JWT's ``exp``);
    ``request.resource`` is the JWT's audience while DOT stores the token. For an opaque token
    only ``JWT_RESOURCES`` is enforced and ``expires`` is yielded unchanged."""
    settled = list(getattr(request, "resource", None) or [])
    _refuse_unlisted(request, settled)
    if not _wants_jwt(request):
        yield expires
        return
    expires = expires.replace(microsecond=0)
    audience = _mint(request, token, expires, settled)
    request.resource = list(audience)
    try:
        yield expires
    finally:
        request.resource = settled


def reissue_in_place(request: Any, token: dict[str, Any], access_token_id: Any) -> None:
    """After DOT refreshed an access token in place (no rotation): for the jwt format, store and
    answer a new JWS for it (one more UPDATE of that row, inside DOT's transaction)."""
    from oauth2_provider.models import get_access_token_model, set_token_value

    settled = list(getattr(request, "resource", None) or [])
    _refuse_unlisted(request, settled)
    if not _wants_jwt(request):
        return
    access_token = get_access_token_model().objects.get(pk=access_token_id)
    expires = access_token.expires.replace(microsecond=0)
    audience = _mint(request, token, expires, settled)
    access_token.expires = expires
    access_token.resource = list(audience)
    set_token_value(access_token, token["access_token"])
    access_token.save(update_fields=["token", "token_checksum", "expires", "resource"])


def _mint(
    request: Any, token: dict[str, Any], expires: dt.datetime, resources: list[str]
) -> list[str]:
    """Sign the access token; replace ``token["access_token"]`` (and the ID token's
    ``at_hash``). Returns the audience."""
    from oauth2_provider.settings import oauth2_settings

    from .conf import mtls_settings
    from .jwt_keys import signing_key
    from .state import request_state

    client_id = str(request.client.client_id)
    loaded = signing_key()
    issuer = oauth2_settings.OIDC_ISS_ENDPOINT
    audience = resources or list(mtls_settings.JWT_AUDIENCE)
    if loaded is None:
        reason = "no_signing_key"
    elif not issuer:
        reason = "no_issuer"
    elif not audience:
        reason = "no_audience"
    else:
        reason = ""
    if loaded is None or reason:
        log.error("access token not issued: client_id=%s reason=%s", client_id, reason)
        raise AccessTokenUnavailableError(
            description="the authorization server cannot issue access tokens now", request=request
        )
    key, private = loaded
    user = getattr(request, "user", None)
    user_pk = getattr(user, "pk", None)
    claims = access_token_claims(
        issuer=str(issuer),
        # RFC 9068 §2.2: the resource owner, or the client itself when there is none.
        subject=str(user_pk) if user_pk is not None else client_id,
        audience=audience,
        client_id=client_id,
        issued_at=int(time.time()),
        expires_at=int(expires.timestamp()),
        jwt_id=uuid.uuid4().hex,
        scope=str(token["scope"]),
        x5t_s256=request_state(request).bind_to,
    )
    claims.update(_extra_claims(request, claims, client_id))
    try:
        value = sign_access_token(claims, key, private)
    except Exception as exc:  # jwcrypto raises several types; none may become a 500
        log.error("access token not issued: client_id=%s reason=signing kid=%s error=%s",
                  client_id, key.kid, type(exc).__name__)  # fmt: skip
        raise AccessTokenUnavailableError(
            description="the authorization server cannot issue access tokens now", request=request
        ) from exc
    token["access_token"] = value
    if token.get("id_token"):
        token["id_token"] = _with_at_hash(request, str(token["id_token"]), value)
    return audience


@lru_cache(maxsize=8)
def _extra_claims_callable(path: str) -> Any:
    from django.utils.module_loading import import_string

    return import_string(path)


def _extra_claims(request: Any, claims: Mapping[str, Any], client_id: str) -> dict[str, Any]:
    """``JWT_EXTRA_CLAIMS(request, claims)``; a failing hook fails the token (fail closed: the
    claims it adds may be what a resource authorizes on)."""
    from .conf import mtls_settings

    path = mtls_settings.JWT_EXTRA_CLAIMS
    if not path:
        return {}
    try:
        extra = _extra_claims_callable(path)(request, dict(claims))
        if extra is None:
            return {}
        if not isinstance(extra, Mapping):
            raise TypeError(f"returned {type(extra).__name__}, not a dict")
        json.dumps(extra)
    except Exception as exc:
        log.error("access token not issued: client_id=%s reason=extra_claims error=%s: %s",
                  client_id, type(exc).__name__, exc)  # fmt: skip
        raise AccessTokenUnavailableError(
            description="the authorization server cannot issue access tokens now", request=request
        ) from exc
    refused = sorted(name for name in extra if name in REGISTERED_CLAIMS)
    if refused:
        log.warning("JWT_EXTRA_CLAIMS cannot set registered claims: %s", ", ".join(refused))
    return {str(name): value for name, value in extra.items() if name not in REGISTERED_CLAIMS}


def _with_at_hash(request: Any, id_token: str, access_token: str) -> str:
    """The ID token oauthlib and DOT just built, with ``at_hash`` of the JWS, re-signed with
    the same header and DOT's key for the client (its ``jti``, stored by DOT, is unchanged)."""
    from jwcrypto.jwt import JWT

    header_b64, payload_b64, _signature = id_token.split(".")
    header = json.loads(_b64decode(header_b64))
    claims = json.loads(_b64decode(payload_b64))
    if "at_hash" not in claims:
        return id_token
    claims["at_hash"] = at_hash(access_token)
    resigned = JWT(header=json.dumps(header), claims=json.dumps(claims, default=str))
    resigned.make_signed_token(request.client.jwk_key)
    return str(resigned.serialize())


def _b64decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
