"""Fuzz targets for the JOSE checks of JWT access tokens (RFC 9068 §4, RFC 7515, RFC 8705 §3.1).

``jwt.check_access_token`` feeds ``django_oauth_mtls.jwt_checks.check_access_token`` tokens made
three ways: structure-aware (a header and a claims set from real templates, one to three members
changed, removed, duplicated or retyped, serialized with odd but sometimes valid JSON, then
*signed* — with the right key, another key under a known ``kid``, ``none``, or HMAC keyed with the
public JWK — so mutations reach the claim checks behind the signature), textual mutations of real
tokens, and segment surgery (padding, ``+``/``/``, swapped segments, a flipped signature byte).
Its contract: a ``VerifiedAccessToken`` whose claims satisfy what was asked (issuer, audience,
expiry, ``cnf``), or ``JWTError`` with a reason of the closed list; nothing else.

``jwt.keys_from_jwk_set`` feeds mutated JWK sets to ``keys_from_jwk_set``: usable keys by ``kid``,
or ``UnusableKey``. Pure: no Django import.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import strategies as st

from django_oauth_mtls.jwt_checks import (
    ACCESS_TOKEN_TYPES,
    JWT_REASONS,
    JWTError,
    UnusableKey,
    VerificationKey,
    VerifiedAccessToken,
    check_access_token,
    keys_from_jwk_set,
)

__all__ = ["jwt_targets", "sign", "token_seeds"]

ISSUER = "https://as.example"
AUDIENCE = "https://api.example"
NOW = 1_800_000_000
LEEWAY = 30
ALGORITHMS = ("ES256", "ES384", "PS256", "RS256", "EdDSA")
X5T = base64.urlsafe_b64encode(hashlib.sha256(b"fuzz certificate").digest()).rstrip(b"=").decode()

EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ED_KEY = ed25519.Ed25519PrivateKey.generate()
FOREIGN_EC_KEY = ec.generate_private_key(ec.SECP256R1())
SIGNERS: dict[str, tuple[str, Any]] = {  # kid → (alg, private key)
    "ec": ("ES256", EC_KEY),
    "rsa": ("PS256", RSA_KEY),
    "ed": ("EdDSA", ED_KEY),
}
KEYS: dict[str, VerificationKey] = {
    "ec": VerificationKey("ec", EC_KEY.public_key(), "ES256"),
    "rsa": VerificationKey("rsa", RSA_KEY.public_key()),  # every RSA alg, as an unpinned JWK
    "ed": VerificationKey("ed", ED_KEY.public_key(), "EdDSA"),
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign(alg: str, key: Any, signing_input: bytes) -> bytes:
    """A JWS signature (RFC 7518 §3) made with ``cryptography`` directly."""
    if alg == "none":
        return b""
    if alg.startswith("HS"):
        return hmac.new(key, signing_input, hashlib.sha256).digest()
    if alg.startswith("ES"):
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if alg == "PS256":
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return bytes(key.sign(signing_input, pss, hashes.SHA256()))
    if alg == "RS256":
        return bytes(key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256()))
    return bytes(key.sign(signing_input))  # EdDSA


def _compact(header: bytes, claims: bytes, alg: str, key: Any) -> str:
    signing_input = f"{_b64(header)}.{_b64(claims)}".encode("ascii")
    return f"{signing_input.decode()}.{_b64(sign(alg, key, signing_input))}"


def _claims(bound: bool = True) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "client-1",
        "aud": [AUDIENCE, "https://other.example"],
        "client_id": "client-1",
        "iat": NOW - 10,
        "exp": NOW + 300,
        "jti": "d0a7c1",
        "scope": "read write",
    }
    if bound:
        claims["cnf"] = {"x5t#S256": X5T}
    return claims


def token_seeds() -> list[str]:
    seeds = []
    for kid, (alg, key) in SIGNERS.items():
        for bound in (True, False):
            header = json.dumps({"typ": "at+jwt", "alg": alg, "kid": kid}).encode()
            seeds.append(_compact(header, json.dumps(_claims(bound)).encode(), alg, key))
    return seeds


SEEDS = token_seeds()
#: Values a mutated member may take: wrong types, edge numbers, near-miss strings.
ODD_VALUES: list[Any] = [
    None, True, 0, -1, 1.5, NOW - LEEWAY, NOW - LEEWAY + 1, NOW + LEEWAY, NOW + LEEWAY + 1,
    10**30, -(10**30), 1e308, "", "x", "AT+JWT", "application/AT+JWT", "JWT", "none", "HS256",
    "ES256", "PS256", "RS256", "EdDSA", "ES512", "ec", "rsa", "ed", ISSUER, ISSUER + "/", AUDIENCE,
    [AUDIENCE], [AUDIENCE, 1], [], {}, {"x5t#S256": X5T}, {"x5t#S256": X5T, "jkt": "x"},
    {"jkt": X5T}, {"x5t#S256": X5T[:-1] + "B"}, {"x5t#S256": X5T + "="}, ["b64"], [1],
    {"kty": "EC"},
]  # fmt: skip
HEADER_MEMBERS = ["typ", "alg", "kid", "crit", "b64", "jwk", "jku", "x5u", "x5c", "cty", "zip"]
CLAIM_MEMBERS = ["iss", "aud", "exp", "nbf", "iat", "sub", "client_id", "scope", "jti", "cnf"]


def _mutate_object(rng: random.Random, value: dict[str, Any], members: list[str]) -> None:
    for _ in range(rng.randint(1, 3)):
        name = rng.choice(members)
        pick = rng.random()
        if pick < 0.3:
            value.pop(name, None)
        elif pick < 0.9:
            value[name] = rng.choice(ODD_VALUES)
        else:
            value[name] = {"nested": [value.get(name)] * rng.randint(0, 3)}


def _serialize(rng: random.Random, value: dict[str, Any]) -> bytes:
    text = json.dumps(value, separators=rng.choice(((",", ":"), (", ", ": "))))
    pick = rng.random()
    if pick < 0.05 and len(value) > 0:  # a duplicate member, after the original
        name = rng.choice(list(value))
        text = text[:-1] + f', "{name}": {json.dumps(rng.choice(ODD_VALUES))}' + "}"
    elif pick < 0.08:
        text = text.replace("}", "NaN}", 1) if rng.random() < 0.5 else " " + text + "\n"
    elif pick < 0.1:
        return text.encode("utf-16")
    elif pick < 0.12:
        depth = rng.choice((50, 2000))
        text = text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    return text.encode("utf-8")


def _structured(rng: random.Random) -> str:
    kid = rng.choice(list(SIGNERS))
    alg, key = SIGNERS[kid]
    header: dict[str, Any] = {"typ": rng.choice(("at+jwt", "application/at+jwt")), "alg": alg}
    header["kid"] = kid
    claims = _claims(rng.random() < 0.6)
    if rng.random() < 0.5:
        _mutate_object(rng, header, HEADER_MEMBERS)
    if rng.random() < 0.7:
        _mutate_object(rng, claims, CLAIM_MEMBERS)
    pick = rng.random()
    if pick < 0.75:  # the header's own alg with the right key, when it names one we have
        named = header.get("alg")
        sign_alg = named if isinstance(named, str) and named in ("ES256", "PS256", "RS256") else alg
        sign_key = {"ES256": EC_KEY, "PS256": RSA_KEY, "RS256": RSA_KEY}.get(sign_alg, key)
    elif pick < 0.85:
        sign_alg, sign_key = "ES256", FOREIGN_EC_KEY  # a foreign key under a known kid
    elif pick < 0.93:
        sign_alg, sign_key = "none", None
        header["alg"] = "none"
    else:  # HS256 keyed with the public key's bytes (the classic confusion)
        sign_alg, sign_key = "HS256", json.dumps({"kid": kid, "kty": "EC"}).encode()
        header["alg"] = "HS256"
    try:
        return _compact(_serialize(rng, header), _serialize(rng, claims), sign_alg, sign_key)
    except (TypeError, ValueError):
        return rng.choice(SEEDS)


def _surgery(rng: random.Random, token: str) -> str:
    parts = token.split(".")
    op = rng.randrange(6)
    if op == 0 and len(parts) == 3:  # flip one signature byte
        signature = bytearray(base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4)))
        if signature:
            signature[rng.randrange(len(signature))] ^= 1 << rng.randrange(8)
        parts[2] = _b64(bytes(signature))
    elif op == 1:  # padding, or the standard alphabet
        k = rng.randrange(len(parts))
        parts[k] = (
            parts[k] + "=" * rng.randint(1, 2)
            if rng.random() < 0.5
            else (parts[k].replace("-", "+").replace("_", "/"))
        )
    elif op == 2:  # a segment from another token
        other = rng.choice(SEEDS).split(".")
        k = rng.randrange(min(len(parts), len(other)))
        parts[k] = other[k]
    elif op == 3:  # too many or too few segments
        parts = parts + [parts[-1]] * rng.randint(1, 2) if rng.random() < 0.5 else parts[:-1]
    elif op == 4:  # an oversized token
        parts[-1] = parts[-1] + "A" * rng.choice((4000, 8200))
    else:  # the last bits of a segment
        k = rng.randrange(len(parts))
        if parts[k]:
            parts[k] = parts[k][:-1] + rng.choice("AB_-9")
    return ".".join(parts)


def _generate(rng: random.Random) -> str:
    from fuzz.targets import mutate_text

    pick = rng.random()
    if pick < 0.5:
        return _structured(rng)
    if pick < 0.75:
        return _surgery(rng, rng.choice(SEEDS) if rng.random() < 0.7 else _structured(rng))
    return mutate_text(rng, rng.choice(SEEDS), SEEDS)


def _check_run(token: str) -> None:
    from fuzz.targets import ContractViolation

    try:
        verified = check_access_token(
            token,
            KEYS,
            algorithms=ALGORITHMS,
            issuer=ISSUER,
            audience=AUDIENCE,
            leeway=LEEWAY,
            now=NOW,
        )
    except JWTError as exc:
        if exc.reason not in JWT_REASONS:
            raise ContractViolation(f"reason outside the closed list: {exc.reason!r}") from exc
        return
    if not isinstance(verified, VerifiedAccessToken):
        raise ContractViolation("check_access_token returned something else")
    claims, header = verified.claims, verified.header
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    problems = [
        claims.get("iss") != ISSUER and "iss",
        AUDIENCE not in audiences and "aud",
        not verified.exp > NOW - LEEWAY and "exp",
        str(header.get("typ", "")).lower() not in ACCESS_TOKEN_TYPES and "typ",
        verified.alg not in KEYS[verified.kid].algorithms and "alg/key",
        verified.alg in ("none", "HS256") and "alg",
        verified.x5t_s256 not in (None, X5T) and "cnf",
        ("cnf" in claims) != (verified.x5t_s256 is not None) and "cnf presence",
    ]
    found = [problem for problem in problems if problem]
    if found:
        raise ContractViolation(f"accepted a token violating {found}")


# --- JWK sets of an authorization server -------------------------------------------------------


def _public_jwk(key: Any, kid: str, alg: str | None) -> dict[str, Any]:
    from jwcrypto import jwk

    members: dict[str, Any] = jwk.JWK.from_pyca(key.public_key()).export_public(as_dict=True)
    members["kid"] = kid
    if alg:
        members["alg"] = alg
    return members


JWKS_SEEDS = [
    json.dumps({"keys": [_public_jwk(EC_KEY, "ec", "ES256"), _public_jwk(RSA_KEY, "rsa", None)]}),
    json.dumps({"keys": [_public_jwk(ED_KEY, "ed", "EdDSA"), {"kty": "oct", "kid": "k"}]}),
    json.dumps({"keys": [{**_public_jwk(EC_KEY, "ec", "PS256"), "use": "enc"}]}),
]


def _jwks_generate(rng: random.Random) -> Any:
    from fuzz.targets import mutate_text

    text = rng.choice(JWKS_SEEDS)
    if rng.random() < 0.5:
        document = json.loads(text)
        key = rng.choice(document["keys"])
        member = rng.choice(["kty", "crv", "x", "y", "n", "e", "kid", "alg", "use", "key_ops", "d"])
        key[member] = rng.choice(ODD_VALUES + [mutate_text(rng, str(key.get(member, "")))])
        return document
    return mutate_text(rng, text, JWKS_SEEDS)


def _jwks_run(case: Any) -> None:
    from fuzz.targets import ContractViolation

    document = case
    if isinstance(case, str):
        try:
            document = json.loads(case)
        except (ValueError, RecursionError):
            return
    try:
        keys, skipped = keys_from_jwk_set(document)
    except UnusableKey:
        return
    for kid, key in keys.items():
        if not isinstance(kid, str) or key.kid != kid or not key.algorithms:
            raise ContractViolation(f"unusable key returned under {kid!r}")
    if not all(isinstance(problem, str) for problem in skipped):
        raise ContractViolation("skipped reasons are not text")


def _target(
    name: str, run: Callable[[Any], None], generate: Callable[[random.Random], Any], doc: str
) -> Any:
    from fuzz.targets import Target, _raw_text, _splice_from_bytes, _with_randoms

    seeds = SEEDS if name == "jwt.check_access_token" else JWKS_SEEDS
    return Target(
        name,
        run,
        generate,
        _with_randoms(generate, _raw_text() | st.sampled_from(seeds)),
        lambda data: _splice_from_bytes(data, seeds),
        doc=doc,
        seeds=seeds,
    )


def jwt_targets() -> list[Any]:
    """The targets, built when ``fuzz.targets`` builds its registry."""
    return [
        _target(
            "jwt.check_access_token",
            _check_run,
            _generate,
            "check_access_token: a VerifiedAccessToken meeting every check, or JWTError(reason)",
        ),
        _target(
            "jwt.keys_from_jwk_set",
            _jwks_run,
            _jwks_generate,
            "keys_from_jwk_set: usable keys by kid and skipped reasons, or UnusableKey",
        ),
    ]
