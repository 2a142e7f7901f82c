"""Certificate-bound tokens: the confirmation claim and its check (RFC 8705 §3, RFC 7800).

Pure module. The binding is the SHA-256 thumbprint of the client certificate's DER
(``x5t#S256``); a protected resource accepts a bound token only over a connection whose
certificate has the same thumbprint, compared in constant time.

``confirmation_thumbprint`` is the one rule for reading a ``cnf`` someone else wrote (an
introspection answer, RFC 8705 §3.2; a JWT access token's claims, §3.1): exactly
``{"x5t#S256": <canonical base64url SHA-256>}``, or no ``cnf`` at all. ``x5t_s256_of`` gives the
thumbprint a token is bound to, whichever kind of token it is.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "CNF_MEMBER",
    "UnsupportedConfirmation",
    "cnf",
    "confirmation_thumbprint",
    "is_sha256_base64url",
    "thumbprints_match",
    "x5t_s256_of",
]

#: RFC 8705 §3.1: the confirmation method member.
CNF_MEMBER: Final = "x5t#S256"

#: 42 free characters, then one whose two low bits (unused by 256 bits) are zero.
_SHA256_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]")


class UnsupportedConfirmation(ValueError):
    """A ``cnf`` that cannot be enforced here: the token must be refused."""


def cnf(x5t_s256: str) -> dict[str, str]:
    """RFC 7800 §3.1 confirmation claim for a certificate thumbprint."""
    return {CNF_MEMBER: x5t_s256}


def thumbprints_match(bound: str, presented: str | None) -> bool:
    """Constant-time equality of two thumbprints; no certificate never matches."""
    if not presented or not bound:
        return False
    return hmac.compare_digest(
        bound.encode("ascii", "replace"), presented.encode("ascii", "replace")
    )


def is_sha256_base64url(value: object) -> bool:
    """43 base64url characters, no padding, decoding to 32 bytes and re-encoding identically
    (the last character carries 2 unused bits, which must be zero)."""
    return isinstance(value, str) and _SHA256_BASE64URL.fullmatch(value) is not None


def confirmation_thumbprint(content: Mapping[str, Any]) -> str | None:
    """The ``cnf["x5t#S256"]`` of an introspection answer or JWT claims; ``None`` without ``cnf``.

    Raises ``UnsupportedConfirmation`` for any ``cnf`` that is not exactly
    ``{"x5t#S256": <canonical base64url of 32 bytes>}``: a member we do not understand (``jkt``,
    a future hash) might be the only thing binding the token, so it is never ignored (RFC 8705
    §7.2; RFC 7800 §3.1 allows one key per ``cnf``).
    """
    if "cnf" not in content:
        return None
    confirmation = content["cnf"]
    if not isinstance(confirmation, Mapping):
        raise UnsupportedConfirmation(f"cnf is not a JSON object ({type(confirmation).__name__})")
    others = sorted(str(member) for member in confirmation if member != CNF_MEMBER)
    if others:
        raise UnsupportedConfirmation(f"unsupported cnf member(s): {', '.join(others)}")
    if CNF_MEMBER not in confirmation:
        raise UnsupportedConfirmation("cnf has no confirmation member")
    value = confirmation[CNF_MEMBER]
    if not is_sha256_base64url(value):
        raise UnsupportedConfirmation("cnf x5t#S256 is not a base64url SHA-256 thumbprint")
    return str(value)


def x5t_s256_of(token: Any) -> str | None:
    """The ``x5t#S256`` a token is bound to, or ``None`` (unbound, or no token).

    Works for a ``JWTAccessToken`` (its ``cnf``, no query) and for DOT's ``AccessToken`` (its
    binding row: no query when it was loaded with ``select_related("mtls_binding")``, as the
    validator does)::

        if x5t_s256_of(request.auth) is None: ...  # an unbound token
    """
    if token is None:
        return None
    try:
        value = token.x5t_s256  # a JWTAccessToken
    except AttributeError:
        pass
    else:
        return value if isinstance(value, str) and value else None
    try:
        # Django's RelatedObjectDoesNotExist (no binding row) is an AttributeError too.
        binding = token.mtls_binding
    except AttributeError:
        return None
    value = getattr(binding, "x5t_s256", None)
    return value if isinstance(value, str) and value else None
