"""Public keys that verify JWS signatures; the AS's JWK set (RFC 7515 §5.2, RFC 7517, RFC 7518).

Pure module: no Django, no settings. A ``VerificationKey`` is built once per key (from a
``cryptography`` public key, or from a public JWK with ``key_from_jwk``) with one prepared
verifier per algorithm the key may verify: EC P-256 ``ES256``, P-384 ``ES384``, P-521 ``ES512``,
RSA of at least 2048 bits ``PS256``/``PS384``/``PS512``/``RS256``/``RS384``/``RS512``, Ed25519
``EdDSA`` (RFC 8037). An ``alg`` pins the key to one of them (RFC 7517 §4.4). Verification calls
``cryptography`` directly: no jwcrypto on the request path (jwcrypto only reads JWK members).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

__all__ = [
    "MIN_RSA_KEY_BITS",
    "UnusableKey",
    "VerificationKey",
    "key_from_jwk",
    "keys_from_jwk_set",
]

#: RFC 7518 §3.3, §3.5: RSA keys below this are refused.
MIN_RSA_KEY_BITS: Final = 2048
_EC_ALGORITHMS: Final = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_RSA_ALGORITHMS: Final = ("PS256", "PS384", "PS512", "RS256", "RS384", "RS512")
_HASHES: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}


class UnusableKey(ValueError):
    """A key that cannot verify access tokens here (type, size, use or ``alg``)."""


Verifier = Callable[[bytes, bytes], None]  # (signature, signing input); raises InvalidSignature


class VerificationKey:
    """A public key with one prepared verifier per algorithm it may verify.

    ``VerificationKey(kid, public_key, alg=None)``: ``alg`` pins the key to one algorithm (our
    keys, and a JWK's ``alg`` member); without it every algorithm of the key's type is allowed.
    Raises ``UnusableKey`` for another key type, an RSA key under 2048 bits, or a pin that does
    not fit the key.
    """

    __slots__ = ("_verifiers", "algorithms", "kid")

    def __init__(self, kid: str, public_key: Any, alg: str | None = None) -> None:
        self.kid = kid
        verifiers = _verifiers_for(public_key)
        if alg is not None:
            if alg not in verifiers:
                raise UnusableKey(f"alg {alg!r} does not fit a {type(public_key).__name__}")
            verifiers = {alg: verifiers[alg]}
        self._verifiers: dict[str, Verifier] = verifiers
        self.algorithms: frozenset[str] = frozenset(verifiers)

    def verify(self, alg: str, signature: bytes, signing_input: bytes) -> bool:
        verifier = self._verifiers.get(alg)
        if verifier is None:
            return False
        try:
            verifier(signature, signing_input)
        except (InvalidSignature, ValueError, UnsupportedAlgorithm):
            return False
        return True

    def __repr__(self) -> str:
        return f"VerificationKey(kid={self.kid!r}, algorithms={sorted(self.algorithms)})"


def _ecdsa(key: ec.EllipticCurvePublicKey, digest: type[hashes.HashAlgorithm]) -> Verifier:
    size = (key.curve.key_size + 7) // 8
    algorithm = ec.ECDSA(digest())

    def verify(signature: bytes, data: bytes) -> None:
        # RFC 7518 §3.4: R || S, each exactly the coordinate size.
        if len(signature) != 2 * size:
            raise InvalidSignature
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        key.verify(encode_dss_signature(r, s), data, algorithm)

    return verify


def _rsa(key: rsa.RSAPublicKey, alg: str) -> Verifier:
    digest = _HASHES[alg[2:]]()
    if alg.startswith("PS"):
        # RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash output.
        pad: padding.AsymmetricPadding = padding.PSS(
            mgf=padding.MGF1(_HASHES[alg[2:]]()), salt_length=digest.digest_size
        )
    else:
        pad = padding.PKCS1v15()

    def verify(signature: bytes, data: bytes) -> None:
        key.verify(signature, data, pad, digest)

    return verify


def _eddsa(key: ed25519.Ed25519PublicKey) -> Verifier:
    def verify(signature: bytes, data: bytes) -> None:
        key.verify(signature, data)

    return verify


def _verifiers_for(public_key: Any) -> dict[str, Verifier]:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        alg = _EC_ALGORITHMS.get(public_key.curve.name)
        if alg is None:
            raise UnusableKey(f"EC curve {public_key.curve.name} is not supported")
        return {alg: _ecdsa(public_key, _HASHES[alg[2:]])}
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_KEY_BITS:
            raise UnusableKey(f"RSA key of {public_key.key_size} bits (at least 2048)")
        return {alg: _rsa(public_key, alg) for alg in _RSA_ALGORITHMS}
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return {"EdDSA": _eddsa(public_key)}
    raise UnusableKey(f"{type(public_key).__name__} keys are not supported")


# --- JWK sets (the AS's keys; never the token's header) ------------------------------------

#: RFC 7518 §6: members only a private or symmetric key carries.
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def key_from_jwk(member: Mapping[str, Any]) -> VerificationKey:
    """A ``VerificationKey`` from one public JWK with a ``kid``; ``UnusableKey`` otherwise
    (no ``kid``, private or symmetric material, ``use`` other than ``sig``, ``key_ops``
    without ``verify``, an unsupported type, curve or size)."""
    from jwcrypto import jwk

    kid = member.get("kid")
    if not isinstance(kid, str) or not kid:
        raise UnusableKey("a key without kid cannot be selected")
    if _PRIVATE_MEMBERS.intersection(member):
        raise UnusableKey(f"key {kid!r} carries private or symmetric key material")
    alg = member.get("alg")
    if alg is not None and not isinstance(alg, str):
        raise UnusableKey(f"key {kid!r} has a non-string alg")
    try:
        # jwcrypto checks the members and honours use/key_ops (RFC 7517 §4.2, §4.3).
        public_key = jwk.JWK(**member).get_op_key("verify")
    except Exception as exc:  # jwcrypto raises many types for bad members
        raise UnusableKey(f"key {kid!r} is not a usable JWK: {type(exc).__name__}") from None
    return VerificationKey(kid, public_key, alg)


def keys_from_jwk_set(document: Any) -> tuple[dict[str, VerificationKey], list[str]]:
    """The usable keys of a JWK set by ``kid``, and why each other key was skipped.

    A ``kid`` that appears twice is dropped entirely: which key it names would be a guess.
    Raises ``UnusableKey`` when ``document`` is not a JWK set at all.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise UnusableKey('a JWK set is an object with a "keys" array')
    keys: dict[str, VerificationKey] = {}
    skipped: list[str] = []
    duplicates: set[str] = set()
    for index, member in enumerate(document["keys"]):
        if not isinstance(member, Mapping):
            skipped.append(f"keys[{index}] is not an object")
            continue
        try:
            key = key_from_jwk(member)
        except UnusableKey as exc:
            skipped.append(f"keys[{index}]: {exc}")
            continue
        if key.kid in keys or key.kid in duplicates:
            duplicates.add(key.kid)
            keys.pop(key.kid, None)
            skipped.append(f"keys[{index}]: kid {key.kid!r} appears more than once")
            continue
        keys[key.kid] = key
    return keys, skipped
