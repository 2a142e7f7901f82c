"""The pure halves of ``jwt_keys`` and ``jwt_issue``: PEM → key, ``kid``, ``alg``, claims, JWS.

No database, no settings. ``kid`` is recomputed here from the key's public numbers (RFC 7638 §3)
and every JWS is verified with PyJWT, never with the code that made it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x25519

from django_oauth_mtls.jwt_issue import (
    REGISTERED_CLAIMS,
    access_token_claims,
    at_hash,
    sign_access_token,
)
from django_oauth_mtls.jwt_keys import KeyFileError, algorithm_for, key_from_pem, load_key_file

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def private_pem(key: Any, password: bytes | None = None) -> bytes:
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def public_pem(key: Any) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def b64(value: int, length: int | None = None) -> str:
    data = value.to_bytes(length or (value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rfc7638(public: Any) -> str:
    """RFC 7638 §3.2-3.3: SHA-256 of the required members, lexicographic, no whitespace."""
    if isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        members = {"e": b64(numbers.e), "kty": "RSA", "n": b64(numbers.n)}
    elif isinstance(public, ec.EllipticCurvePublicKey):
        numbers = public.public_numbers()
        size = (public.curve.key_size + 7) // 8
        crv = {"secp256r1": "P-256", "secp384r1": "P-384"}[public.curve.name]
        members = {"crv": crv, "kty": "EC", "x": b64(numbers.x, size), "y": b64(numbers.y, size)}
    else:
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        members = {
            "crv": "Ed25519",
            "kty": "OKP",
            "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
        }
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return (
        base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    )


KEYS = {
    "ec-p256": (lambda: ec.generate_private_key(ec.SECP256R1()), "ES256"),
    "ec-p384": (lambda: ec.generate_private_key(ec.SECP384R1()), "ES384"),
    "rsa-2048": (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "PS256"),
    "rsa-3072": (lambda: rsa.generate_private_key(public_exponent=65537, key_size=3072), "PS256"),
    "ed25519": (ed25519.Ed25519PrivateKey.generate, "EdDSA"),
}


@pytest.mark.parametrize("name", sorted(KEYS))
def test_private_pem_gives_kid_alg_and_public_members_only(name: str):
    make, alg = KEYS[name]
    private = make()
    key, private_jwk = key_from_pem(private_pem(private))
    assert key.alg == alg
    assert key.kid == rfc7638(private.public_key())
    assert private_jwk is not None and private_jwk.has_private
    assert not key.jwk.has_private
    assert not PRIVATE_MEMBERS & set(key.public_jwk)
    assert key.public_jwk["kid"] == key.kid and key.public_jwk["alg"] == alg
    assert key.public_jwk["use"] == "sig"
    jwt.PyJWK.from_dict(key.public_jwk)  # PyJWT reads it


@pytest.mark.parametrize("name", sorted(KEYS))
def test_public_pem_gives_the_same_kid_and_no_private_key(name: str):
    private = KEYS[name][0]()
    from_private, _ = key_from_pem(private_pem(private))
    from_public, private_jwk = key_from_pem(public_pem(private))
    assert private_jwk is None
    assert from_public == from_private  # equality is (kid, alg)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024), "1024 bits"),
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2047), "2047 bits"),
        (lambda: ec.generate_private_key(ec.SECP521R1()), "secp521r1"),
        (lambda: ec.generate_private_key(ec.SECP256K1()), "secp256k1"),
        (lambda: dsa.generate_private_key(key_size=2048), "DSA"),
        (ed448.Ed448PrivateKey.generate, "Ed448"),
        (x25519.X25519PrivateKey.generate, "X25519"),
    ],
)
def test_weak_or_unsupported_keys_are_refused(make: Any, fragment: str):
    private = make()
    with pytest.raises(KeyFileError, match=fragment):
        key_from_pem(private_pem(private))
    with pytest.raises(KeyFileError, match=fragment):
        algorithm_for(private.public_key())


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "no PEM data"),
        (b"not a key", "no PEM data"),
        (
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "no private or public key",
        ),
        (
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "no private or public key",
        ),
    ],
)
def test_not_a_key(data: bytes, fragment: str):
    with pytest.raises(KeyFileError, match=fragment):
        key_from_pem(data)


def test_encrypted_key_is_refused():
    with pytest.raises(KeyFileError, match="encrypted"):
        key_from_pem(private_pem(ec.generate_private_key(ec.SECP256R1()), b"passphrase"))


def test_load_key_file(tmp_path):
    with pytest.raises(KeyFileError, match="cannot be read"):
        load_key_file(str(tmp_path / "absent.pem"))
    big = tmp_path / "big.pem"
    big.write_bytes(b"-----BEGIN" + b"A" * 70000)
    with pytest.raises(KeyFileError, match="larger than"):
        load_key_file(str(big))


# --- jwt_issue's pure part -------------------------------------------------------------------------


def claims(**changes: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "issuer": "https://as.example.com",
        "subject": "42",
        "audience": ["https://api.example.com"],
        "client_id": "client-1",
        "issued_at": 1_800_000_000,
        "expires_at": 1_800_000_300,
        "jwt_id": "j-1",
        "scope": "read write",
        "x5t_s256": None,
        **changes,
    }
    return access_token_claims(**arguments)


def test_claims_rfc9068():
    assert claims() == {
        "iss": "https://as.example.com",
        "sub": "42",
        "aud": "https://api.example.com",
        "client_id": "client-1",
        "iat": 1_800_000_000,
        "exp": 1_800_000_300,
        "jti": "j-1",
        "scope": "read write",
    }
    assert claims(audience=["https://a.example", "https://b.example"])["aud"] == [
        "https://a.example",
        "https://b.example",
    ]
    assert claims(x5t_s256="abc")["cnf"] == {"x5t#S256": "abc"}


def test_extra_claims_never_replace_registered_ones():
    extra = dict.fromkeys(REGISTERED_CLAIMS, "forged") | {"tenant": "acme"}
    result = claims(extra=extra, x5t_s256="abc")
    assert result["tenant"] == "acme"
    assert result == claims(x5t_s256="abc") | {"tenant": "acme"}


@pytest.mark.parametrize("name", sorted(KEYS))
def test_signed_token_verifies_with_pyjwt(name: str):
    key, private_jwk = key_from_pem(private_pem(KEYS[name][0]()))
    assert private_jwk is not None
    token = sign_access_token(claims(x5t_s256="abc"), key, private_jwk)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
    decoded = jwt.decode(
        token,
        key=jwt.PyJWK.from_dict(key.public_jwk),
        algorithms=[key.alg],
        audience="https://api.example.com",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert decoded == claims(x5t_s256="abc")


def test_at_hash_oidc_core_example():
    # OpenID Connect Core 1.0, Appendix A.3: access_token "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
    assert at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y") == "77QmUPtjPfzWtF2AnpK9RQ"
