"""The JOSE checks of a JWT access token at a resource server (RFC 9068 §4, RFC 8705 §3.1).

Pure module: no Django, no settings; everything comes in as arguments (the token, the keys by
``kid``, the accepted algorithms, the issuer, the audience, the leeway and the time), so it is
tested and fuzzed alone. ``check_access_token`` returns a ``VerifiedAccessToken`` or raises one
``JWTError`` whose ``reason`` is a code of the closed list ``JWT_REASONS``.

Parsing is strict (RFC 7515 §7.1 compact serialization): three base64url segments without
padding and with canonical trailing bits, at most ``MAX_TOKEN_CHARACTERS``, UTF-8 JSON objects
without duplicate member names (RFC 7515 §4, RFC 7519 §4: a parser differential between the AS
and this RS must not exist) or ``NaN``/``Infinity``. The header must say ``typ`` ``at+jwt``
(RFC 9068 §4 item 1; ``application/at+jwt`` too, case-insensitively, RFC 7515 §4.1.9), carry no
``crit`` (we understand no extension, RFC 7515 §4.1.11) and no ``b64`` other than ``true``
(RFC 7797), name an ``alg`` of the allow-list (never ``none``, never ``HS*``: a public key is no
MAC key, RFC 8725 §2.1, §3.1) and a ``kid`` of the trusted set. The key is only ever the one the
caller trusts under that ``kid``: ``jwk``, ``jku``, ``x5u``, ``x5c`` in the header are never read
(RFC 8725 §3.10). ``alg`` must agree with the key's type (EC P-256 ``ES256``, P-384 ``ES384``,
P-521 ``ES512``, RSA of at least 2048 bits ``PS*``/``RS*``, Ed25519 ``EdDSA``) and with the
key's own ``alg`` when it has one (RFC 7517 §4.4).

The signature is verified with ``cryptography`` directly, with one ``VerificationKey`` built
per key and reused (``jwt_keysets``; re-exported here): no jwcrypto on the request path.
Claims are parsed only after the signature verified, then: ``iss`` exact, ``aud`` (string or
array) contains the audience, ``exp`` required and later than ``now - leeway``, ``nbf`` and
``iat`` not later than ``now + leeway`` (RFC 9068 §4 items 3-7; RFC 7519 §4.1), ``cnf`` absent
or exactly ``{"x5t#S256": …}`` (RFC 8705 §3.1, ``binding.confirmation_thumbprint``).
"""

from __future__ import annotations

import binascii
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .binding import UnsupportedConfirmation, confirmation_thumbprint
from .exceptions import JWT_REASONS
from .jwt_keysets import UnusableKey, VerificationKey, key_from_jwk, keys_from_jwk_set

__all__ = [
    "ACCESS_TOKEN_TYPES",
    "JWT_REASONS",
    "MAX_TOKEN_CHARACTERS",
    "JWTError",
    "UnusableKey",
    "VerificationKey",
    "VerifiedAccessToken",
    "check_access_token",
    "is_jws",
    "key_from_jwk",
    "keys_from_jwk_set",
]

#: The longest token parsed (characters). Ours are under 1 KiB; RFC 9068 sets no bound.
MAX_TOKEN_CHARACTERS: Final = 8192
#: RFC 9068 §4 item 1, compared case-insensitively (RFC 7515 §4.1.9 allows the short form).
ACCESS_TOKEN_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})
#: The last NumericDate accepted (9999-12-31T23:59:59Z): a later one is malformed.
MAX_NUMERIC_DATE: Final = 253402300799

_BASE64URL: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64_VALUE: Final = {byte: index for index, byte in enumerate(_BASE64URL)}
_TO_STANDARD: Final = bytes.maketrans(b"-_+/=", b"+/!!!")
_PADDING: Final = (b"", b"", b"==", b"=")


class JWTError(ValueError):
    """A JWT access token refused; ``reason`` is one of ``JWT_REASONS``, ``detail`` is for the
    log only (it never carries the token)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in JWT_REASONS:
            raise ValueError(f"unknown JWT reason code {reason!r}")
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True, slots=True)
class VerifiedAccessToken:
    """What ``check_access_token`` accepted."""

    header: dict[str, Any]
    claims: dict[str, Any]
    kid: str
    alg: str
    #: RFC 8705 §3.1: the bound thumbprint, or ``None`` (unbound).
    x5t_s256: str | None
    exp: float


# --- parsing ----------------------------------------------------------------------------------


def is_jws(token: str) -> bool:
    """Whether ``token`` has the shape of a JWS compact serialization (two dots).

    Opaque tokens from DOT's generator never contain a dot; a JWE has four.
    """
    return token.count(".") == 2


def _segment(raw: bytes) -> bytes:
    """RFC 7515 §2: base64url without padding, its unused trailing bits zero (one encoding
    per byte string)."""
    tail = len(raw) % 4
    if tail == 1:
        raise JWTError("jwt_malformed", "a segment has an impossible length")
    if tail and _B64_VALUE.get(raw[-1], 0) & (0x0F if tail == 2 else 0x03):
        raise JWTError("jwt_malformed", "a segment is not canonical base64url")
    try:
        # '+', '/' and '=' become '!', which strict mode refuses with anything else outside
        # the alphabet.
        return binascii.a2b_base64(raw.translate(_TO_STANDARD) + _PADDING[tail], strict_mode=True)
    except (binascii.Error, ValueError):
        raise JWTError("jwt_malformed", "a segment is not base64url") from None


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise JWTError("jwt_malformed", "duplicate member names")
    return result


def _no_constant(name: str) -> Any:
    raise JWTError("jwt_malformed", f"{name} is not JSON")


_DECODER: Final = json.JSONDecoder(object_pairs_hook=_unique_members, parse_constant=_no_constant)


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = _DECODER.decode(data.decode("utf-8"))
    except JWTError:
        raise
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        raise JWTError("jwt_malformed", f"the {what} is not a UTF-8 JSON text") from None
    if not isinstance(value, dict):
        raise JWTError("jwt_malformed", f"the {what} is not a JSON object")
    return value


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        if name in claims:
            raise JWTError("jwt_malformed", f"{name} is null")
        return None
    # RFC 7519 §2 NumericDate: a JSON number (not a boolean), finite, within year 9999.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise JWTError("jwt_malformed", f"{name} is not a number")
    if not math.isfinite(value) or not -MAX_NUMERIC_DATE <= value <= MAX_NUMERIC_DATE:
        raise JWTError("jwt_malformed", f"{name} is out of range")
    return float(value)


def _optional_string(claims: Mapping[str, Any], name: str) -> None:
    if name in claims and not isinstance(claims[name], str):
        raise JWTError("jwt_malformed", f"{name} is not a string")


def check_access_token(
    token: str,
    keys: Mapping[str, VerificationKey],
    *,
    algorithms: Iterable[str],
    issuer: str,
    audience: str,
    leeway: float,
    now: float,
) -> VerifiedAccessToken:
    """Verify the JWS ``token`` and check its claims (RFC 9068 §4); raise ``JWTError``.

    ``keys`` maps ``kid`` to the trusted keys; ``algorithms`` is the allow-list (``none`` and
    ``HS*`` are refused whatever it says); ``now`` is seconds since the epoch.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARACTERS or not token.isascii():
        raise JWTError("jwt_malformed", "not an ASCII string of at most 8192 characters")
    raw = token.encode("ascii")
    parts = raw.split(b".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise JWTError("jwt_malformed", "not a JWS compact serialization")
    header_b64, payload_b64, signature_b64 = parts
    header = _json_object(_segment(header_b64), "header")

    # RFC 9068 §4 item 1 (and §2.1): explicit typing, against token confusion (RFC 8725 §3.11).
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
        raise JWTError("jwt_type", "typ is not at+jwt")
    alg = header.get("alg")
    if (
        not isinstance(alg, str)
        or alg == "none"
        or alg.upper().startswith("HS")
        or alg not in algorithms
    ):
        raise JWTError("jwt_algorithm", "alg is not accepted here")
    # RFC 7515 §4.1.11: we understand no extension; RFC 7797: an unencoded payload is refused.
    if "crit" in header:
        raise JWTError("jwt_malformed", "crit names an extension this server does not support")
    if header.get("b64", True) is not True:
        raise JWTError("jwt_malformed", "b64 other than true")
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None or not isinstance(kid, str):
        raise JWTError("jwt_unknown_key", "kid names no trusted key")
    if alg not in key.algorithms:
        raise JWTError("jwt_algorithm", "alg does not fit the key")
    signature = _segment(signature_b64)
    payload = _segment(payload_b64)  # base64url checked before any cryptography runs
    signing_input = raw[: len(header_b64) + 1 + len(payload_b64)]
    if not key.verify(alg, signature, signing_input):
        raise JWTError("jwt_signature", "the signature does not verify")

    claims = _json_object(payload, "claims set")
    # RFC 9068 §4 item 3: iss exactly.
    if claims.get("iss") != issuer or not isinstance(issuer, str):
        raise JWTError("jwt_issuer", "iss is not the expected issuer")
    # RFC 9068 §4 item 4: aud contains this resource (RFC 7519 §4.1.3: a string or an array).
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if (
        not isinstance(audiences, list)
        or audience not in audiences
        or not all(isinstance(entry, str) for entry in audiences)
    ):
        raise JWTError("jwt_audience", "aud does not contain this resource")
    # RFC 9068 §4 item 6-7, RFC 7519 §4.1.4-6, with leeway for clock skew.
    exp = _numeric_date(claims, "exp")
    if exp is None:
        raise JWTError("jwt_malformed", "exp is missing")
    nbf = _numeric_date(claims, "nbf")
    iat = _numeric_date(claims, "iat")
    if exp <= now - leeway:
        raise JWTError("jwt_expired", "exp has passed")
    if nbf is not None and nbf > now + leeway:
        raise JWTError("jwt_not_yet_valid", "nbf is in the future")
    if iat is not None and iat > now + leeway:
        raise JWTError("jwt_not_yet_valid", "iat is in the future")
    for name in ("sub", "client_id", "scope", "jti"):
        _optional_string(claims, name)
    try:
        x5t_s256 = confirmation_thumbprint(claims)  # RFC 8705 §3.1, §7.2
    except UnsupportedConfirmation as exc:
        raise JWTError("jwt_malformed", str(exc)) from None
    return VerifiedAccessToken(
        header=header, claims=claims, kid=kid, alg=alg, x5t_s256=x5t_s256, exp=exp
    )
