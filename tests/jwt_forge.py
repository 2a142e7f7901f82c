"""Forging JWT access tokens in tests, with PyJWT (independent of the package's code).

``Signer`` holds a key made with ``cryptography`` at test time, its PEM (for ``JWT_SIGNING_KEYS``
or a JWK set) and its ``kid`` (the RFC 7638 thumbprint, as the AS names it). ``token()`` makes an
RFC 9068 token with every claim right; keyword arguments change one claim (``...`` removes it),
``header=`` one header member, ``key=``/``alg=`` sign with something else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ISSUER = "https://as.example"
AUDIENCE = "https://api.example"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_private_key(kind: str = "ec") -> Any:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ed":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


@dataclass
class Signer:
    kind: str = "ec"
    kid: str | None = None
    key: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        from jwcrypto import jwk

        if self.key is None:
            self.key = make_private_key(self.kind)
        if self.kid is None:
            self.kid = jwk.JWK.from_pyca(self.key.public_key()).thumbprint()

    @property
    def alg(self) -> str:
        return {"ec": "ES256", "rsa": "PS256", "ed": "EdDSA"}[self.kind]

    @property
    def pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def write(self, directory: Path, name: str = "signing.pem") -> str:
        path = directory / name
        path.write_text(self.pem)
        path.chmod(0o600)
        return str(path)

    def public_jwk(self, **members: Any) -> dict[str, Any]:
        from jwcrypto import jwk

        value: dict[str, Any] = jwk.JWK.from_pyca(self.key.public_key()).export_public(as_dict=True)
        value.update(kid=self.kid, alg=self.alg, use="sig", **members)
        return value

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        value: dict[str, Any] = {
            "iss": ISSUER,
            "sub": "client-1",
            "aud": [AUDIENCE],
            "client_id": "client-1",
            "iat": now,
            "exp": now + 300,
            "jti": b64(hashlib.sha256(str(time.perf_counter_ns()).encode()).digest()[:12]),
            "scope": "read",
        }
        for name, new in changes.items():
            if new is ...:
                value.pop(name, None)
            else:
                value[name] = new
        return value

    def token(
        self,
        *,
        x5t: str | None = None,
        header: dict[str, Any] | None = None,
        key: Any = None,
        alg: str | None = None,
        **changes: Any,
    ) -> str:
        """A token bound to ``x5t`` (unbound when ``None``)."""
        if x5t is not None:
            changes.setdefault("cnf", {"x5t#S256": x5t})
        headers: dict[str, Any] = {"typ": "at+jwt", "kid": self.kid}
        headers.update(header or {})
        headers = {name: value for name, value in headers.items() if value is not ...}
        return jwt.encode(
            self.claims(**changes),
            self.key if key is None else key,
            algorithm=alg or self.alg,
            headers=headers,
        )

    def hs256_with_public_jwk(self, x5t: str | None = None) -> str:
        """HS256 keyed with the public JWK's bytes (PyJWT refuses to; hmac does it)."""
        secret = json.dumps(self.public_jwk()).encode()
        claims = self.claims(**({"cnf": {"x5t#S256": x5t}} if x5t else {}))
        header = b64(json.dumps({"typ": "at+jwt", "alg": "HS256", "kid": self.kid}).encode())
        signing_input = f"{header}.{b64(json.dumps(claims).encode())}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64(mac)}"


def flip_signature_byte(token: str) -> str:
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return f"{header}.{payload}.{b64(bytes(raw))}"
