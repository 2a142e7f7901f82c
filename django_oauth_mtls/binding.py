"""Certificate-bound tokens: the confirmation claim and its check (RFC 8705 §3, RFC 7800).

Pure module. The binding is the SHA-256 thumbprint of the client certificate's DER
(``x5t#S256``); a protected resource accepts a bound token only over a connection whose
certificate has the same thumbprint, compared in constant time.
"""

from __future__ import annotations

import hmac

__all__ = ["CNF_MEMBER", "cnf", "thumbprints_match"]

#: RFC 8705 §3.1: the confirmation method member.
CNF_MEMBER = "x5t#S256"


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
