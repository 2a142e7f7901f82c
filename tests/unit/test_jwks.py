"""``jwks.parse_jwk_set``: x5c[0] must carry its JWK's key (RFC 7517 §4.7; RFC 8705 §2.2;
pitfalls P21, P22). Pure: no Django, no network."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from django_oauth_mtls.jwks import JWKSetError, parse_jwk_set
from tests import pki
from tests.jwks_server import jwk_of, jwk_set, self_signed

VECTORS = Path(__file__).resolve().parents[1] / "vectors"

# RFC 8705 Appendix A, Figure 3 (TV1): an EC P-256 JWK whose x5c is the X.509 v1 certificate
# of Figure 1 (expired 2022-05-02; validity plays no part here).
TV1_X5C = (
    "MIIBBjCBrAIBAjAKBggqhkjOPQQDAjAPMQ0wCwYDVQQDDARtdGxzMB4XDTE4MTAxODEyMzcwOVoXDTIyMDUwMjEyMzcw"
    "OVowDzENMAsGA1UEAwwEbXRsczBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNcnyxwqV6hY8QnhxxzFQ03C7HKW9Oyl"
    "MbnQZjjJ/Au08/coZwxS7LfA4vOLS9WuneIXhbGGWvsDSb0tH6IxLm8wCgYIKoZIzj0EAwIDSQAwRgIhAP0RC1E+vwJD"
    "/D1AGHGzuri+hlV/PpQEKTWUVeORWz83AiEA5x2eXZOVbUlJSGQgjwD5vaUaKlLR50Q2DmFfQj1L+SY="
)
TV1_JWK = {
    "kty": "EC",
    "x": "1yfLHCpXqFjxCeHHHMVDTcLscpb07KUxudBmOMn8C7Q",
    "y": "8_coZwxS7LfA4vOLS9WuneIXhbGGWvsDSb0tH6IxLm8",
    "crv": "P-256",
    "x5c": [TV1_X5C],
}


def tv1_der() -> bytes:
    pem = (VECTORS / "rfc8705-appendix-a.pem").read_bytes()
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def test_rfc8705_appendix_a_jwk_yields_the_certificate_TV1():
    assert parse_jwk_set({"keys": [TV1_JWK]}) == (tv1_der(),)


def test_wrapped_x5c_is_accepted_P22():
    wrapped = "\n".join(TV1_X5C[i : i + 64] for i in range(0, len(TV1_X5C), 64))
    assert parse_jwk_set({"keys": [{**TV1_JWK, "x5c": [" " + wrapped + "\n"]}]}) == (tv1_der(),)


def test_base64url_x5c_is_refused_P22():
    url_safe = TV1_X5C.replace("+", "-").replace("/", "_")
    with pytest.raises(JWKSetError, match="standard base64"):
        parse_jwk_set({"keys": [{**TV1_JWK, "x5c": [url_safe]}]})


def test_json_text_and_bytes_are_parsed():
    document = json.dumps({"keys": [TV1_JWK]})
    assert parse_jwk_set(document) == parse_jwk_set(document.encode()) == (tv1_der(),)


def test_only_x5c_0_is_the_client_certificate():
    client, other = self_signed("client"), self_signed("other")
    member = jwk_of(client)
    member["x5c"].append(base64.b64encode(other.der).decode())
    assert parse_jwk_set({"keys": [member]}) == (client.der,)


def test_two_keys_rsa_and_ec():
    ec_client = self_signed("ec")
    rsa_client = self_signed("rsa", key=pki.make_key("rsa"))
    assert parse_jwk_set(jwk_set(ec_client, rsa_client)) == (ec_client.der, rsa_client.der)


def test_keys_without_x5c_are_allowed_and_contribute_nothing():
    client = self_signed()
    bare = {k: v for k, v in jwk_of(self_signed("signing")).items() if k != "x5c"}
    assert parse_jwk_set({"keys": [bare, jwk_of(client)]}) == (client.der,)
    assert parse_jwk_set({"keys": []}) == ()


def test_x5c_of_another_key_is_refused():
    client, other = self_signed("client"), self_signed("other")
    member = jwk_of(client, x5c=[base64.b64encode(other.der).decode()])
    with pytest.raises(JWKSetError, match=r"keys\[0\]\.x5c\[0\] does not match the JWK's key"):
        parse_jwk_set({"keys": [member]})


def test_one_bad_member_refuses_the_whole_set():
    good, other = self_signed("good"), self_signed("other")
    bad = jwk_of(good, x5c=[base64.b64encode(other.der).decode()])
    with pytest.raises(JWKSetError, match=r"keys\[1\]"):
        parse_jwk_set({"keys": [jwk_of(good), bad]})


@pytest.mark.parametrize("member", ["d", "k"])
def test_private_or_symmetric_material_is_refused(member):
    with pytest.raises(JWKSetError, match="private or symmetric key material"):
        parse_jwk_set({"keys": [{**TV1_JWK, member: "AAAA"}]})


def test_x5t_s256_must_be_the_certificate_thumbprint():
    client = self_signed()
    assert parse_jwk_set({"keys": [jwk_of(client, **{"x5t#S256": client.x5t_s256})]})
    with pytest.raises(JWKSetError, match="x5t#S256"):
        parse_jwk_set({"keys": [jwk_of(client, **{"x5t#S256": self_signed().x5t_s256})]})


def test_x5t_sha1_must_be_the_certificate_thumbprint():
    client = self_signed()
    sha1 = base64.urlsafe_b64encode(client.cert.fingerprint(hashes.SHA1())).rstrip(b"=").decode()
    assert parse_jwk_set({"keys": [jwk_of(client, x5t=sha1)]})
    with pytest.raises(JWKSetError, match="x5t"):
        parse_jwk_set({"keys": [jwk_of(client, x5t="AAAA")]})


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "not valid JSON"),
        ([], '"keys" array'),
        ({"keys": {}}, '"keys" array'),
        ({"keys": ["x"]}, r"keys\[0\] is not an object"),
        ({"keys": [{**TV1_JWK, "x5c": []}]}, "non-empty array"),
        ({"keys": [{**TV1_JWK, "x5c": TV1_X5C}]}, "non-empty array"),
        ({"keys": [{**TV1_JWK, "x5c": [42]}]}, "not a string"),
        ({"keys": [{**TV1_JWK, "x5c": ["AAAA"]}]}, "not an X.509 certificate"),
        ({"keys": [{**TV1_JWK, "kty": "nope"}]}, "not a valid JWK"),
        ({"keys": [{**TV1_JWK, "crv": "P-384"}]}, r"keys\[0\]"),
    ],
)
def test_malformed_sets(document, message):
    with pytest.raises(JWKSetError, match=message):
        parse_jwk_set(document)


def test_x5c_with_a_curve_jose_cannot_express_is_refused():
    from cryptography.hazmat.primitives.asymmetric import ec

    small = self_signed("p192", key=ec.generate_private_key(ec.SECP192R1()))
    member = jwk_of(self_signed("p256"), x5c=[base64.b64encode(small.der).decode()])
    with pytest.raises(JWKSetError, match=r"keys\[0\]"):
        parse_jwk_set({"keys": [member]})
