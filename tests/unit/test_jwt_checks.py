"""The pure JOSE checks of JWT access tokens (RFC 9068 §4, RFC 7515, RFC 8725, RFC 8705 §3.1).

Tokens are forged with PyJWT (independent of our code) and keys made with ``cryptography``; one
thing wrong at a time, each refusal asserted by its reason code. Time is pinned (``NOW``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwcrypto import jwk

from django_oauth_mtls.binding import (
    UnsupportedConfirmation,
    confirmation_thumbprint,
    is_sha256_base64url,
)
from django_oauth_mtls.jwt_checks import (
    MAX_TOKEN_CHARACTERS,
    JWTError,
    UnusableKey,
    VerificationKey,
    check_access_token,
    is_jws,
    key_from_jwk,
    keys_from_jwk_set,
)

NOW = 1_800_000_000  # 2027-01-15T08:00:00Z
ISSUER = "https://as.example"
AUDIENCE = "https://api.example"
X5T = base64.urlsafe_b64encode(hashlib.sha256(b"certificate").digest()).rstrip(b"=").decode()

EC = ec.generate_private_key(ec.SECP256R1())
EC384 = ec.generate_private_key(ec.SECP384R1())
RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ED = ed25519.Ed25519PrivateKey.generate()
FOREIGN = ec.generate_private_key(ec.SECP256R1())

KEYS = {
    "ec": VerificationKey("ec", EC.public_key(), "ES256"),
    "ec384": VerificationKey("ec384", EC384.public_key(), "ES384"),
    "rsa": VerificationKey("rsa", RSA.public_key(), "PS256"),
    "ed": VerificationKey("ed", ED.public_key(), "EdDSA"),
}
PRIVATE = {
    "ec": (EC, "ES256"),
    "ec384": (EC384, "ES384"),
    "rsa": (RSA, "PS256"),
    "ed": (ED, "EdDSA"),
}


def claims(**changes):
    value = {
        "iss": ISSUER,
        "sub": "42",
        "aud": [AUDIENCE, "https://other.example"],
        "client_id": "client-1",
        "iat": NOW - 5,
        "exp": NOW + 300,
        "jti": "j1",
        "scope": "read write",
        "cnf": {"x5t#S256": X5T},
    }
    for name, new in changes.items():
        if new is ...:
            value.pop(name, None)
        else:
            value[name] = new
    return value


def forge(kid="ec", *, header=None, key=None, alg=None, **claim_changes):
    private, default_alg = PRIVATE.get(kid, (EC, "ES256"))
    headers = {"typ": "at+jwt", "kid": kid}
    headers.update(header or {})
    headers = {k: v for k, v in headers.items() if v is not ...}
    return jwt.encode(
        claims(**claim_changes),
        key if key is not None else private,
        algorithm=alg or default_alg,
        headers=headers,
    )


def check(token, keys=KEYS, **options):
    arguments = {
        "algorithms": ("ES256", "ES384", "PS256", "RS256", "EdDSA"),
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "leeway": 30,
        "now": NOW,
    }
    arguments.update(options)
    return check_access_token(token, keys, **arguments)


def reason(token, **options):
    with pytest.raises(JWTError) as caught:
        check(token, **options)
    return caught.value.reason


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: dict | bytes, payload: dict | bytes, signature: bytes = b"sig") -> str:
    parts = [h if isinstance(h, bytes) else json.dumps(h).encode() for h in (header, payload)]
    return ".".join([b64(parts[0]), b64(parts[1]), b64(signature)])


# --- accepted ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kid", ["ec", "ec384", "rsa", "ed"])
def test_a_good_token_of_every_key_type(kid):
    verified = check(forge(kid))
    assert verified.kid == kid and verified.alg == PRIVATE[kid][1]
    assert verified.x5t_s256 == X5T
    assert verified.claims["scope"] == "read write"
    assert verified.exp == NOW + 300


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"])
def test_typ_is_case_insensitive_with_or_without_application_RFC7515_4_1_9(typ):
    assert check(forge(header={"typ": typ})).kid == "ec"


def test_unbound_token_has_no_thumbprint():
    assert check(forge(cnf=...)).x5t_s256 is None


def test_aud_as_a_single_string():
    assert check(forge(aud=AUDIENCE)).claims["aud"] == AUDIENCE


def test_leeway_edges():
    assert check(forge(exp=NOW - 29))  # within the 30 s leeway
    assert check(forge(nbf=NOW + 30, iat=NOW + 30))


def test_an_unpinned_rsa_key_accepts_rs256_and_ps256():
    key = {"rsa": VerificationKey("rsa", RSA.public_key())}
    assert check(forge("rsa", alg="RS256"), keys=key).alg == "RS256"
    assert check(forge("rsa", alg="PS256"), keys=key).alg == "PS256"


def test_header_keys_are_never_read_RFC8725_3_10():
    """A JWK, jku, x5u or x5c in the header changes nothing: only the kid's trusted key counts."""
    public = jwk.JWK.from_pyca(FOREIGN.public_key()).export_public(as_dict=True)
    token = forge(key=FOREIGN, header={"jwk": public, "jku": "https://evil.example/jwks"})
    assert reason(token) == "jwt_signature"
    assert reason(forge(key=FOREIGN, header={"kid": ..., "jwk": public})) == "jwt_unknown_key"
    assert check(forge(header={"x5u": "https://evil.example/c.pem", "x5c": ["AAAA"]})).kid == "ec"


# --- refused: one thing wrong at a time ------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"iss": "https://evil.example"}, "jwt_issuer"),
        ({"iss": ISSUER + "/"}, "jwt_issuer"),
        ({"iss": ...}, "jwt_issuer"),
        ({"aud": "https://other.example"}, "jwt_audience"),
        ({"aud": [AUDIENCE.upper()]}, "jwt_audience"),
        ({"aud": ...}, "jwt_audience"),
        ({"aud": [AUDIENCE, 7]}, "jwt_audience"),
        ({"exp": NOW - 31}, "jwt_expired"),
        ({"exp": NOW - 30}, "jwt_expired"),
        ({"exp": ...}, "jwt_malformed"),
        ({"exp": "1900000000"}, "jwt_malformed"),
        ({"exp": True}, "jwt_malformed"),
        ({"exp": 10**20}, "jwt_malformed"),
        ({"nbf": NOW + 31}, "jwt_not_yet_valid"),
        ({"iat": NOW + 31}, "jwt_not_yet_valid"),
        ({"nbf": "soon"}, "jwt_malformed"),
        ({"scope": ["read"]}, "jwt_malformed"),
        ({"client_id": 1}, "jwt_malformed"),
        ({"cnf": {"jkt": X5T}}, "jwt_malformed"),
        ({"cnf": {"x5t#S256": X5T, "jkt": "x"}}, "jwt_malformed"),
        ({"cnf": {"x5t#S256": X5T + "="}}, "jwt_malformed"),
        ({"cnf": {"x5t#S256": X5T[:-1] + "B"}}, "jwt_malformed"),  # non-canonical
        ({"cnf": None}, "jwt_malformed"),
        ({"cnf": {}}, "jwt_malformed"),
    ],
)
def test_one_claim_wrong(changes, expected):
    assert reason(forge(**changes)) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ({"typ": ...}, "jwt_type"),
        ({"typ": "JWT"}, "jwt_type"),
        ({"typ": "application/jwt"}, "jwt_type"),
        ({"typ": "at+jwt; q=1"}, "jwt_type"),
        ({"kid": ...}, "jwt_unknown_key"),
        ({"kid": "unknown"}, "jwt_unknown_key"),
        ({"crit": ["exp"]}, "jwt_malformed"),
        ({"b64": False}, "jwt_malformed"),
    ],
)
def test_one_header_member_wrong(header, expected):
    assert reason(forge(header=header)) == expected


def test_a_kid_that_is_no_string():
    header = {"typ": "at+jwt", "alg": "ES256", "kid": 1}
    assert reason(raw_token(header, claims())) == "jwt_unknown_key"


def test_alg_none_RFC8725_2_1():
    token = jwt.encode(claims(), None, algorithm="none", headers={"typ": "at+jwt", "kid": "ec"})
    assert reason(token) == "jwt_algorithm"
    # Even if someone puts it in the allow-list.
    assert reason(token, algorithms=("none", "ES256")) == "jwt_algorithm"


def test_hs256_keyed_with_the_public_jwk_RFC8725_2_1():
    """PyJWT itself refuses to HMAC with a JWK, so the token is made with hmac directly."""
    public = json.dumps(jwk.JWK.from_pyca(EC.public_key()).export_public(as_dict=True)).encode()
    header = b64(json.dumps({"typ": "at+jwt", "alg": "HS256", "kid": "ec"}).encode())
    signing_input = f"{header}.{b64(json.dumps(claims()).encode())}"
    mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64(mac)}"
    assert reason(token) == "jwt_algorithm"
    assert reason(token, algorithms=("HS256", "ES256")) == "jwt_algorithm"


def test_a_foreign_key_under_a_known_kid():
    assert reason(forge(key=FOREIGN)) == "jwt_signature"


@pytest.mark.parametrize(
    ("kid", "alg", "expected"),
    [
        ("ec", "ES384", "jwt_algorithm"),  # P-256 key, ES384 header
        ("rsa", "RS256", "jwt_algorithm"),  # our RSA key is pinned to PS256
        ("ed", "ES256", "jwt_algorithm"),
        ("ec", "PS512", "jwt_algorithm"),  # not in the allow-list
    ],
)
def test_alg_must_fit_the_key(kid, alg, expected):
    private = {"ES384": EC384, "RS256": RSA, "ES256": EC, "PS512": RSA}[alg]
    assert reason(forge(kid, key=private, alg=alg)) == expected


def test_an_empty_signature():
    header, payload, _signature = forge().split(".")
    assert reason(f"{header}.{payload}.") == "jwt_signature"


def test_a_flipped_signature_byte():
    header, payload, signature = forge().split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[5] ^= 0x01
    assert reason(f"{header}.{payload}.{b64(bytes(raw))}") == "jwt_signature"


def test_an_edited_payload_fails_the_signature():
    header, _payload, signature = forge().split(".")
    other = b64(json.dumps(claims(scope="admin")).encode())
    assert reason(f"{header}.{other}.{signature}") == "jwt_signature"


@pytest.mark.parametrize(
    "junk",
    [
        "", ".", "..", "a.b", "a.b.c.d", "a.b.c.d.e", "abc", "Bearer x", "é.é.é", "a..c", "..c",
        "eyJ.eyJ.", "\x00.\x00.\x00", "a b.c.d", "QQ===.QQ.QQ", "A.A.A",
    ],
)  # fmt: skip
def test_junk_is_malformed(junk):
    assert reason(junk) == "jwt_malformed"


def test_strict_base64url():
    header, payload, signature = forge().split(".")
    for bad in (header + "=", header.replace("_", "/").replace("-", "+") + "+/", "*" + header):
        assert reason(f"{bad}.{payload}.{signature}") == "jwt_malformed"
    # a signature with non-zero unused trailing bits: one encoding per byte string
    last = signature[-1]
    twin = signature[:-1] + ("B" if last == "A" else chr(ord(last) + 1))
    assert reason(f"{header}.{payload}.{twin}") in ("jwt_malformed", "jwt_signature")


@pytest.mark.parametrize(
    "header",
    [
        b'{"typ":"at+jwt","alg":"ES256","kid":"ec","kid":"rsa"}',  # duplicate member
        b'{"typ":"at+jwt","alg":"ES256","kid":"ec","x":NaN}',
        b'["typ"]',
        b"\xff\xfe{}",
        '{"typ":"at+jwt","alg":"ES256","kid":"ec"}'.encode("utf-16"),
        b'{"typ":"at+jwt","alg":"ES256","kid":"ec","d":' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
)
def test_header_json_is_strict(header):
    assert reason(raw_token(header, claims())) == "jwt_malformed"


def test_duplicate_claims_are_malformed_even_when_signed():
    private, _alg = PRIVATE["ec"]
    body = json.dumps(claims())[:-1] + ', "aud": "https://other.example"}'
    header = b64(json.dumps({"typ": "at+jwt", "alg": "ES256", "kid": "ec"}).encode())
    signing_input = f"{header}.{b64(body.encode())}"
    from fuzz.jwt_targets import sign

    token = f"{signing_input}.{b64(sign('ES256', private, signing_input.encode()))}"
    assert reason(token) == "jwt_malformed"


def test_size_bound():
    assert reason("A" * (MAX_TOKEN_CHARACTERS + 1)) == "jwt_malformed"
    assert reason(forge(scope="x" * MAX_TOKEN_CHARACTERS)) == "jwt_malformed"


def test_error_carries_a_closed_reason():
    with pytest.raises(ValueError):
        JWTError("something_else")


def test_is_jws():
    assert is_jws("a.b.c") and not is_jws("opaque") and not is_jws("a.b.c.d.e")


# --- keys -------------------------------------------------------------------------------------


def test_keys_refused_by_type_and_size():
    with pytest.raises(UnusableKey):
        VerificationKey(
            "k", rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
        )
    with pytest.raises(UnusableKey):
        VerificationKey("k", ec.generate_private_key(ec.SECP256K1()).public_key())
    with pytest.raises(UnusableKey):
        VerificationKey("k", EC.public_key(), "PS256")


def public_jwk(private, **members):
    value = jwk.JWK.from_pyca(private.public_key()).export_public(as_dict=True)
    value.update(members)
    return value


def test_jwk_set_parsing():
    document = {
        "keys": [
            public_jwk(EC, kid="ec", alg="ES256", use="sig"),
            public_jwk(RSA, kid="rsa"),
            public_jwk(ED, kid="ed", key_ops=["verify"]),
            public_jwk(EC384, kid="enc", use="enc"),
            {k: v for k, v in public_jwk(EC384).items() if k != "kid"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {**public_jwk(FOREIGN, kid="dup")},
            {**public_jwk(EC, kid="dup")},
            "not an object",
        ]
    }
    keys, skipped = keys_from_jwk_set(document)
    assert set(keys) == {"ec", "rsa", "ed"}
    assert keys["rsa"].algorithms >= {"PS256", "RS256"}
    assert keys["ec"].algorithms == {"ES256"}
    assert len(skipped) == 5  # enc, no kid, oct, the duplicated kid (both dropped), not an object
    assert "dup" not in keys
    assert check(forge("rsa", alg="RS256"), keys=keys).alg == "RS256"
    with pytest.raises(UnusableKey):
        keys_from_jwk_set({"keys": "nope"})
    with pytest.raises(UnusableKey):
        key_from_jwk({**public_jwk(EC, kid="p"), "d": "AAAA"})


# --- the cnf rule, shared with introspection ------------------------------------------------


def test_confirmation_thumbprint_rule():
    assert confirmation_thumbprint({}) is None
    assert confirmation_thumbprint({"cnf": {"x5t#S256": X5T}}) == X5T
    for bad in ({"jkt": X5T}, {}, None, [], {"x5t#S256": X5T[:-1] + "B"}):
        with pytest.raises(UnsupportedConfirmation):
            confirmation_thumbprint({"cnf": bad})
    assert is_sha256_base64url(X5T) and not is_sha256_base64url(X5T + "\n")
