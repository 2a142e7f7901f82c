"""The bad-input inventory (issue #11 item 3): every bad certificate, JWK set and registration
metadata we know of, each through the real place it meets (token endpoint, ``jwks_uri`` fetch,
``MTLSClient.full_clean``, ``POST /o/register/``), each → the ``docs/api.md`` error, a reason
code, no 500, and nothing written (rows of every token, client and binding table counted before
and after).

``ROWS`` is the inventory; ``docs/bad-input.md`` shows it as a table, and
``test_the_doc_table_is_the_inventory`` keeps the two identical. To print the table::

    DJANGO_SETTINGS_MODULE=tests.settings .venv/.../bin/python -c \\
      "import django; django.setup(); from tests.integration.test_bad_input import table; print(table())"

Rows C18, J04, J12 and M12 found package bugs (B1-B3 of the issue #11 report: a 500 each); they
are fixed and stay here as regressions. A row's ``known`` would name a newly reported bug.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from django.core.cache import caches
from django.core.exceptions import ValidationError
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_refresh_token_model,
)

from django_oauth_mtls import jwks_fetch, signals
from django_oauth_mtls.models import AccessTokenBinding, MTLSClient, RefreshTokenBinding
from tests import pki
from tests.integration.conftest import post_form
from tests.jwks_server import JWKSServer, Route, jwk_of, jwk_set, self_signed

pytestmark = [pytest.mark.django_db]

DOC = Path(__file__).resolve().parents[2] / "docs" / "bad-input.md"
DN = "CN=client-one,O=Example\\, Inc.,C=DE"
SUBJECT = pki.name(C="DE", O="Example, Inc.", CN="client-one")
REGISTER_URL = "/o/register/"


# --- certificates that cryptography's builder cannot make ----------------------------------------


def _tlv(data: bytes, offset: int = 0) -> tuple[int, int, int]:
    """(tag, start of the content, end of the content) of the DER element at ``offset``."""
    tag = data[offset]
    first = data[offset + 1]
    if first < 0x80:
        return tag, offset + 2, offset + 2 + first
    count = first & 0x7F
    length = int.from_bytes(data[offset + 2 : offset + 2 + count], "big")
    return tag, offset + 2 + count, offset + 2 + count + length


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def _sequence(content: bytes) -> bytes:
    return b"\x30" + _der_length(len(content)) + content


def x509_v1(subject: x509.Name, issuer: pki.Issued | None = None) -> pki.Issued:
    """An X.509 v1 certificate (no version field, no extensions), signed by ``issuer`` or
    self-signed: built as v3 without extensions, version field removed, TBS re-signed."""
    key = pki.make_key()
    signer = issuer.key if issuer else key
    draft = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(pki.NOT_BEFORE)
        .not_valid_after(pki.NOT_AFTER)
        .sign(signer, hashes.SHA256())
    )
    der = draft.public_bytes(serialization.Encoding.DER)
    _tag, cert_start, _cert_end = _tlv(der)
    _tag, tbs_start, tbs_end = _tlv(der, cert_start)
    tbs_content = der[tbs_start:tbs_end]
    version = b"\xa0\x03\x02\x01\x02"
    assert tbs_content.startswith(version)
    tbs = _sequence(tbs_content[len(version) :])
    _tag, alg_start, alg_end = _tlv(der, tbs_end)
    algorithm = der[tbs_end:alg_end]
    assert isinstance(signer, ec.EllipticCurvePrivateKey)
    signature = signer.sign(tbs, ec.ECDSA(hashes.SHA256()))
    bit_string = b"\x03" + _der_length(len(signature) + 1) + b"\x00" + signature
    cert = x509.load_der_x509_certificate(_sequence(tbs + algorithm + bit_string))
    assert cert.version is x509.Version.v1
    return pki.Issued(cert=cert, key=key, chain=[issuer.cert] if issuer else [])


def version_22(issued: pki.Issued) -> str:
    """The nginx encoding of ``issued`` with its version INTEGER set to 22 (no such version)."""
    from urllib.parse import quote

    der = issued.der.replace(b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x16", 1)
    pem = x509_pem(der)
    return quote(pem, safe="-")


def x509_pem(der: bytes) -> str:
    import base64

    body = base64.b64encode(der).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n"


# --- the inventory -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    id: str
    input: str
    where: str
    response: str
    intake: str  # the intake reason code ("—" when the certificate was read)
    reason: str  # the client-auth reason code, or the metadata member named in the error
    run: Callable[[Ctx, Row], None]
    known: str = ""  # a reported package bug that makes this row fail today

    def cells(self) -> list[str]:
        note = f"known bug {self.known}: a 500 today" if self.known else ""
        return [self.id, self.input, self.where, self.response, self.intake, self.reason, note]


class Ctx:
    """What a row needs: the test client, the fixtures, and the loopback jwks_uri server."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    client: Any
    make_app: Callable[..., Any]
    settings: Any
    root_ca: pki.Issued
    server: JWKSServer
    reasons: list[str]


def configure(ctx: Ctx, **values: Any) -> None:
    ctx.settings.OAUTH2_MTLS = {**ctx.settings.OAUTH2_MTLS, **values}


# --- runners: the token endpoint -----------------------------------------------------------------


def _token_runner(
    app: Callable[[Ctx], Any],
    meta: Callable[[Ctx], dict[str, str]],
    *,
    source: str = "nginx",
    accepted: bool = False,
    settings: dict[str, Any] | None = None,
) -> Callable[[Ctx, Row], None]:
    def run(ctx: Ctx, row: Row) -> None:
        configure(ctx, CERTIFICATE_SOURCE=source, **(settings or {}))
        application = app(ctx)
        fields = meta(ctx)
        seen = ctx.client.get("/api/certificate/", REMOTE_ADDR="127.0.0.1", **fields)
        assert seen.status_code == 200, seen.content
        expected_intake = None if row.intake == "—" else row.intake.strip("`")
        assert seen.json()["problem"] == expected_intake, seen.json()
        before = counts()
        body = {
            "grant_type": "client_credentials",
            "scope": "read",
            "client_id": application.client_id,
        }
        response = post_form(ctx.client, "/o/token/", body, REMOTE_ADDR="127.0.0.1", **fields)
        assert response.status_code != 500
        if accepted:
            assert response.status_code == 200, response.content
            after = counts()
            assert after.pop("AccessToken") == before.pop("AccessToken") + 1
            assert after == before
            return
        status, error = row.response.split()
        assert (response.status_code, response.json()["error"]) == (int(status), error.strip("`"))
        assert ctx.reasons == [row.reason.strip("`")], ctx.reasons
        assert counts() == before, "a refused request wrote something"

    return run


def pki_client(ctx: Ctx) -> Any:
    return ctx.make_app(tls_client_auth_subject_dn=DN)


def self_signed_client(*certificates: pki.Issued) -> Callable[[Ctx], Any]:
    return lambda ctx: ctx.make_app("self_signed_tls_client_auth", jwks=jwk_set(*certificates))


def jwks_uri_client(path: str, route: Callable[[Ctx], Route]) -> Callable[[Ctx], Any]:
    def make(ctx: Ctx) -> Any:
        uri = ctx.server.serve(path, route(ctx))
        return ctx.make_app("self_signed_tls_client_auth", jwks_uri=uri)

    return make


def nginx(issued: pki.Issued) -> Callable[[Ctx], dict[str, str]]:
    return lambda ctx: {"HTTP_X_SSL_CLIENT_CERT": issued.nginx()}


def field(key: str, value: str) -> Callable[[Ctx], dict[str, str]]:
    return lambda ctx: {key: value}


def by_root(**kwargs: Any) -> Callable[[Ctx], dict[str, str]]:
    """A client-one certificate issued by the trusted root at request time."""
    return lambda ctx: {
        "HTTP_X_SSL_CLIENT_CERT": pki.issue(SUBJECT, issuer=ctx.root_ca, **kwargs).nginx()
    }


def _v1_by_root(ctx: Ctx) -> dict[str, str]:
    return {"HTTP_X_SSL_CLIENT_CERT": x509_v1(SUBJECT, issuer=ctx.root_ca).nginx()}


def _bad_version(ctx: Ctx) -> dict[str, str]:
    return {"HTTP_X_SSL_CLIENT_CERT": version_22(pki.issue(SUBJECT, issuer=ctx.root_ca))}


# --- runners: registration metadata -----------------------------------------------------------------


def _metadata_runner(
    model: dict[str, Any] | None,
    dcr: dict[str, Any] | str | None,
    *,
    model_method: str = "tls_client_auth",
) -> Callable[[Ctx, Row], None]:
    """``model``: MTLSClient fields for ``full_clean`` (→ ``ValidationError`` naming ``reason``);
    ``dcr``: a registration body (→ 400 ``invalid_client_metadata`` naming ``reason``)."""

    def run(ctx: Ctx, row: Row) -> None:
        # "`model key` / `text of the error_description`", or one of them for one place.
        parts = [part.strip().strip("`") for part in row.reason.split(" / ")]
        model_key, dcr_text = parts[0], parts[-1]
        if model is not None:
            application = ctx.make_app(None)
            before = counts()
            instance = MTLSClient(
                application=application, token_endpoint_auth_method=model_method, **model
            )
            with pytest.raises(ValidationError) as caught:
                instance.full_clean()
            assert model_key in caught.value.message_dict, caught.value.message_dict
            assert counts() == before
        if dcr is not None:
            ctx.settings.OAUTH2_PROVIDER = {**ctx.settings.OAUTH2_PROVIDER, "DCR_ENABLED": True}
            ctx.client.force_login(ctx.user)
            before = counts()
            payload = (
                dcr
                if isinstance(dcr, str)
                else json.dumps(
                    {"client_name": "bad", "grant_types": ["client_credentials"], **dcr}
                )
            )
            response = ctx.client.post(REGISTER_URL, payload, content_type="application/json")
            assert response.status_code == 400, response.content
            body = response.json()
            assert body["error"] == "invalid_client_metadata", body
            assert dcr_text in body.get("error_description", ""), body
            assert counts() == before, "a refused registration wrote something"

    return run


def _public_only(run: Callable[[Ctx, Row], None]) -> Callable[[Ctx, Row], None]:
    """The row as a production deployment sees it: ``JWKS_ALLOW_PRIVATE_ADDRESSES`` off."""

    def wrapped(ctx: Ctx, row: Row) -> None:
        configure(ctx, JWKS_ALLOW_PRIVATE_ADDRESSES=False)
        run(ctx, row)

    return wrapped


def _huge_jwks() -> dict[str, Any]:
    keys = [jwk_of(self_signed(f"k{i}")) for i in range(1)]
    return {"keys": keys, "padding": "x" * 70_000}


def _mismatched_jwk() -> dict[str, Any]:
    a, b = self_signed("a"), self_signed("b")
    return {"keys": [{**jwk_of(a), "x5c": jwk_of(b)["x5c"]}]}


def _json(route_document: Any, **kwargs: Any) -> Callable[[Ctx], Route]:
    body = (
        route_document if isinstance(route_document, bytes) else json.dumps(route_document).encode()
    )
    return lambda ctx: Route(body=body, headers={"Content-Type": "application/json"}, **kwargs)


# Certificates made once (module import): cheap EC keys, fixed dates unless stated.
SELF_V1 = x509_v1(pki.name(CN="self-signed-v1"))
SELF_SIGNED = self_signed("bad-input-self-signed")
SELF_RSA_1024 = self_signed("rsa-1024", key=pki.make_key("rsa", 1024))
SELF_EXPIRED = self_signed(
    "expired-self-signed",
    not_before=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
    not_after=dt.datetime(2021, 1, 1, tzinfo=dt.UTC),
)
SELF_ENCIPHER_ONLY = self_signed("encipher-only", key_usage=pki.key_usage(key_encipherment=True))
LARGE = pki.issue(SUBJECT, dns=tuple(f"host-{i:04d}.example.com" for i in range(700)))
assert len(LARGE.nginx()) > 16384

ROWS: list[Row] = [
    # --- certificates at the token endpoint ---
    Row("C01", "garbage in the certificate field (`hello world`)", "token, `tls_client_auth`",
        "401 `invalid_client`", "`malformed`", "`no_certificate`",
        _token_runner(pki_client, field("HTTP_X_SSL_CLIENT_CERT", "hello world"))),
    Row("C02", "well-formed base64 that is not DER (`:aGVsbG8gd29ybGQ=:`)", "token, `tls_client_auth`",
        "401 `invalid_client`", "`not_a_certificate`", "`no_certificate`",
        _token_runner(pki_client, field("HTTP_CLIENT_CERT", ":aGVsbG8gd29ybGQ=:"), source="rfc9440")),
    Row("C03", "truncated PEM (cut after 300 characters)", "token, `tls_client_auth`",
        "401 `invalid_client`", "`malformed`", "`no_certificate`",
        _token_runner(pki_client, lambda ctx: {"HTTP_X_SSL_CLIENT_CERT": pki.issue(SUBJECT, issuer=ctx.root_ca).nginx()[:300]})),
    Row("C04", "truncated DER (half the bytes, valid base64)", "token, `tls_client_auth`",
        "401 `invalid_client`", "`not_a_certificate`", "`no_certificate`",
        _token_runner(pki_client, lambda ctx: {"HTTP_CLIENT_CERT": ":" + __import__("base64").b64encode(pki.issue(SUBJECT, issuer=ctx.root_ca).der[:200]).decode() + ":"}, source="rfc9440")),
    Row("C05", "PEM with trailing junk", "token, `tls_client_auth`",
        "401 `invalid_client`", "`malformed`", "`no_certificate`",
        _token_runner(pki_client, lambda ctx: {"HTTP_X_SSL_CLIENT_CERT": pki.issue(SUBJECT, issuer=ctx.root_ca).nginx() + "junk"})),
    Row("C06", "two PEM blocks in a singleton field", "token, `tls_client_auth`",
        "401 `invalid_client`", "`malformed`", "`no_certificate`",
        _token_runner(pki_client, lambda ctx: {"HTTP_X_SSL_CLIENT_CERT": pki.issue(SUBJECT, issuer=ctx.root_ca).nginx() + ctx.root_ca.nginx()})),
    Row("C07", "a field over `MAX_HEADER_BYTES` (16384): a certificate with 700 SANs", "token, `tls_client_auth`",
        "401 `invalid_client`", "`too_large`", "`no_certificate`",
        _token_runner(pki_client, nginx(LARGE))),
    Row("C08", "X.509 v1 from the trusted CA, PKI client (refused)", "token, `tls_client_auth`",
        "401 `invalid_client`", "—", "`chain_invalid`",
        _token_runner(pki_client, _v1_by_root)),
    Row("C09", "X.509 v1, self-signed client (accepted: RFC 8705's own example is v1)", "token, `self_signed_tls_client_auth`",
        "200", "—", "—",
        _token_runner(self_signed_client(SELF_V1), nginx(SELF_V1), accepted=True)),
    Row("C10", "RSA-1024 key from the trusted CA", "token, `tls_client_auth`",
        "401 `invalid_client`", "—", "`weak_key`",
        _token_runner(pki_client, by_root(key=pki.make_key("rsa", 1024)))),
    Row("C11", "RSA-1024 key, self-signed client (stored without DCR)", "token, `self_signed_tls_client_auth`",
        "401 `invalid_client`", "—", "`weak_key`",
        _token_runner(self_signed_client(SELF_RSA_1024), nginx(SELF_RSA_1024))),
    Row("C12", "expired (2026-01-01 to 2026-01-02)", "token, `tls_client_auth`",
        "401 `invalid_client`", "—", "`expired`",
        _token_runner(pki_client, by_root(not_after=dt.datetime(2026, 1, 2, tzinfo=dt.UTC)))),
    Row("C13", "not yet valid (from 2035)", "token, `tls_client_auth`",
        "401 `invalid_client`", "—", "`not_yet_valid`",
        _token_runner(pki_client, by_root(not_before=dt.datetime(2035, 1, 1, tzinfo=dt.UTC)))),
    Row("C14", "wrong EKU (serverAuth only)", "token, `tls_client_auth`",
        "401 `invalid_client`", "—", "`wrong_eku`",
        _token_runner(pki_client, by_root(eku=(ExtendedKeyUsageOID.SERVER_AUTH,)))),
    Row("C15", "expired, self-signed client", "token, `self_signed_tls_client_auth`",
        "401 `invalid_client`", "—", "`expired`",
        _token_runner(self_signed_client(SELF_EXPIRED), nginx(SELF_EXPIRED))),
    Row("C16", "XFCC `Hash` of another certificate", "token, `tls_client_auth`",
        "401 `invalid_client`", "`hash_mismatch`", "`no_certificate`",
        _token_runner(pki_client, lambda ctx: {"HTTP_X_FORWARDED_CLIENT_CERT": "Hash=" + "ab" * 32 + ';Cert="' + pki.issue(SUBJECT, issuer=ctx.root_ca).nginx() + '"'}, source="envoy")),
    Row("C17", "`Client-Cert-Chain` member that is not a certificate", "token, `tls_client_auth`",
        "401 `invalid_client`", "`not_a_certificate`", "`no_certificate`",
        _token_runner(pki_client, lambda ctx: {"HTTP_CLIENT_CERT": pki.issue(SUBJECT, issuer=ctx.root_ca).rfc9440(), "HTTP_CLIENT_CERT_CHAIN": ":aGVsbG8=:"}, source="rfc9440")),
    Row("C18", "an X.509 version that does not exist (22)", "token, `tls_client_auth`",
        "401 `invalid_client`", "`not_a_certificate`", "`no_certificate`",
        _token_runner(pki_client, _bad_version)),
    Row("C19", "keyUsage without digitalSignature (`keyEncipherment` only)", "token, `tls_client_auth`",
        "401 `invalid_client`", "—", "`wrong_key_usage`",
        _token_runner(pki_client, by_root(key_usage=pki.key_usage(key_encipherment=True)))),
    Row("C20", "keyUsage without digitalSignature, self-signed client", "token, `self_signed_tls_client_auth`",
        "401 `invalid_client`", "—", "`wrong_key_usage`",
        _token_runner(self_signed_client(SELF_ENCIPHER_ONLY), nginx(SELF_ENCIPHER_ONLY))),
    # --- JWK sets ---
    Row("J01", "`jwks` that is not valid JSON (a string)", "`MTLSClient.full_clean`",
        "`ValidationError`", "—", "`jwks`",
        _metadata_runner({"jwks": '{"keys": ['}, None, model_method="self_signed_tls_client_auth")),
    Row("J02", "`jwks` whose `x5c[0]` does not carry the JWK's key", "`full_clean` / `POST /o/register/`",
        "`ValidationError` / 400 `invalid_client_metadata`", "—", "`jwks`",
        _metadata_runner({"jwks": _mismatched_jwk()},
                         {"token_endpoint_auth_method": "self_signed_tls_client_auth", "jwks": _mismatched_jwk()},
                         model_method="self_signed_tls_client_auth")),
    Row("J03", "`jwks` over `JWKS_MAX_BYTES` (70 kB)", "`POST /o/register/`",
        "400 `invalid_client_metadata`", "—", "`jwks`",
        _metadata_runner(None, {"token_endpoint_auth_method": "self_signed_tls_client_auth", "jwks": _huge_jwks()})),
    Row("J04", "`jwks` with a non-ASCII `x5t#S256`", "`full_clean` / `POST /o/register/`",
        "`ValidationError` / 400 `invalid_client_metadata`", "—", "`jwks`",
        _metadata_runner({"jwks": {"keys": [{**jwk_of(SELF_SIGNED), "x5t#S256": "é"}]}},
                         {"token_endpoint_auth_method": "self_signed_tls_client_auth",
                          "jwks": {"keys": [{**jwk_of(SELF_SIGNED), "x5t#S256": "é"}]}},
                         model_method="self_signed_tls_client_auth")),
    Row("J05", "`jwks_uri` answering invalid JSON", "token, `self_signed_tls_client_auth`",
        "401 `invalid_client`", "—", "`jwk_set_unavailable`",
        _token_runner(jwks_uri_client("/j05", _json(b'{"keys": [')), nginx(SELF_SIGNED))),
    Row("J06", "`jwks_uri` set whose `x5c[0]` does not carry the JWK's key", "token, `self_signed_tls_client_auth`",
        "401 `invalid_client`", "—", "`jwk_set_unavailable`",
        _token_runner(jwks_uri_client("/j06", _json(_mismatched_jwk())), nginx(SELF_SIGNED))),
    Row("J07", "`jwks_uri` set over `JWKS_MAX_BYTES` (no Content-Length)", "token, `self_signed_tls_client_auth`",
        "401 `invalid_client`", "—", "`jwk_set_unavailable`",
        _token_runner(jwks_uri_client("/j07", _json({**jwk_set(SELF_SIGNED), "padding": "x" * 70_000}, content_length=False)), nginx(SELF_SIGNED))),
    Row("J08", "`jwks_uri` timing out (answers after 2 s; timeout 0.5 s)", "token, `self_signed_tls_client_auth`",
        "401 `invalid_client`", "—", "`jwk_set_unavailable`",
        _token_runner(jwks_uri_client("/j08", _json(jwk_set(SELF_SIGNED), delay=2.0)), nginx(SELF_SIGNED),
                      settings={"JWKS_FETCH_TIMEOUT_SECONDS": 0.5})),
    Row("J09", "`jwks_uri` redirecting (302 to a good set)", "token, `self_signed_tls_client_auth`",
        "401 `invalid_client`", "—", "`jwk_set_unavailable`",
        _token_runner(jwks_uri_client("/j09", lambda ctx: Route(status=302, headers={"Location": ctx.server.serve_json("/j09-good", jwk_set(SELF_SIGNED))})), nginx(SELF_SIGNED))),
    Row("J10", "`jwks_uri` answering 404", "token, `self_signed_tls_client_auth`",
        "401 `invalid_client`", "—", "`jwk_set_unavailable`",
        _token_runner(jwks_uri_client("/j10", lambda ctx: Route(status=404, body=b"not found")), nginx(SELF_SIGNED))),
    Row("J11", "`jwks_uri` answering non-JSON (an HTML page)", "token, `self_signed_tls_client_auth`",
        "401 `invalid_client`", "—", "`jwk_set_unavailable`",
        _token_runner(jwks_uri_client("/j11", lambda ctx: Route(body=b"<html>hello</html>", headers={"Content-Type": "text/html"})), nginx(SELF_SIGNED))),
    Row("J12", "`jwks_uri` answering JSON nested 5,000 deep (10 kB)", "token, `self_signed_tls_client_auth`",
        "401 `invalid_client`", "—", "`jwk_set_unavailable`",
        _token_runner(jwks_uri_client("/j12", _json(b'{"keys": ' + b"[" * 5000 + b"]" * 5000 + b"}")), nginx(SELF_SIGNED))),
    # --- registration metadata ---
    Row("M01", "`jwks` together with `jwks_uri`", "`full_clean` / `POST /o/register/`",
        "`ValidationError` / 400 `invalid_client_metadata`", "—", "`jwks_uri`",
        _metadata_runner({"jwks": jwk_set(SELF_SIGNED), "jwks_uri": "https://jwks.example.test/jwks"},
                         {"token_endpoint_auth_method": "self_signed_tls_client_auth",
                          "jwks": jwk_set(SELF_SIGNED), "jwks_uri": "https://jwks.example.test/jwks"},
                         model_method="self_signed_tls_client_auth")),
    Row("M02", "two subject fields (`_subject_dn` and `_san_dns`)", "`full_clean` / `POST /o/register/`",
        "`ValidationError` / 400 `invalid_client_metadata`", "—", "`__all__` / `tls_client_auth`",
        _metadata_runner({"tls_client_auth_subject_dn": DN, "tls_client_auth_san_dns": "client-one.example.com"},
                         {"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": DN,
                          "tls_client_auth_san_dns": "client-one.example.com"})),
    Row("M03", "no subject field for `tls_client_auth`", "`full_clean` / `POST /o/register/`",
        "`ValidationError` / 400 `invalid_client_metadata`", "—", "`__all__` / `tls_client_auth`",
        _metadata_runner({}, {"token_endpoint_auth_method": "tls_client_auth"})),
    Row("M04", "IP with a leading zero (`010.0.0.1`)", "`full_clean` / `POST /o/register/`",
        "`ValidationError` / 400 `invalid_client_metadata`", "—", "`tls_client_auth_san_ip`",
        _metadata_runner({"tls_client_auth_san_ip": "010.0.0.1"},
                         {"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_san_ip": "010.0.0.1"})),
    Row("M05", "IP as a network (`10.0.0.0/8`)", "`full_clean` / `POST /o/register/`",
        "`ValidationError` / 400 `invalid_client_metadata`", "—", "`tls_client_auth_san_ip`",
        _metadata_runner({"tls_client_auth_san_ip": "10.0.0.0/8"},
                         {"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_san_ip": "10.0.0.0/8"})),
    Row("M06", "IP with a zone id (`fe80::1%eth0`)", "`full_clean` / `POST /o/register/`",
        "`ValidationError` / 400 `invalid_client_metadata`", "—", "`tls_client_auth_san_ip`",
        _metadata_runner({"tls_client_auth_san_ip": "fe80::1%eth0"},
                         {"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_san_ip": "fe80::1%eth0"})),
    Row("M07", "IP out of range (`192.0.2.256`)", "`full_clean` / `POST /o/register/`",
        "`ValidationError` / 400 `invalid_client_metadata`", "—", "`tls_client_auth_san_ip`",
        _metadata_runner({"tls_client_auth_san_ip": "192.0.2.256"},
                         {"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_san_ip": "192.0.2.256"})),
    Row("M08", "flag as a string (`\"true\"`)", "`full_clean` / `POST /o/register/`",
        "`ValidationError` / 400 `invalid_client_metadata`", "—", "`tls_client_certificate_bound_access_tokens`",
        _metadata_runner({"tls_client_auth_san_dns": "client-one.example.com",
                          "tls_client_certificate_bound_access_tokens": "true"},
                         {"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_san_dns": "client-one.example.com",
                          "tls_client_certificate_bound_access_tokens": "true"})),
    Row("M09", "flag as a number (`1`)", "`POST /o/register/`",
        "400 `invalid_client_metadata`", "—", "`tls_client_certificate_bound_access_tokens`",
        _metadata_runner(None, {"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_san_dns": "client-one.example.com",
                                "tls_client_certificate_bound_access_tokens": 1})),
    Row("M10", "subject value as an array (`[\"client-one.example.com\"]`)", "`POST /o/register/`",
        "400 `invalid_client_metadata`", "—", "`tls_client_auth_san_dns`",
        _metadata_runner(None, {"token_endpoint_auth_method": "tls_client_auth",
                                "tls_client_auth_san_dns": ["client-one.example.com"]})),
    Row("M11", "`jwks_uri` over http", "`full_clean` / `POST /o/register/`",
        "`ValidationError` / 400 `invalid_client_metadata`", "—", "`jwks_uri`",
        _metadata_runner({"jwks_uri": "http://jwks.example.test/jwks"},
                         {"token_endpoint_auth_method": "self_signed_tls_client_auth", "jwks_uri": "http://jwks.example.test/jwks"},
                         model_method="self_signed_tls_client_auth")),
    Row("M12", "registration body nested 5,000 deep", "`POST /o/register/`",
        "400 `invalid_client_metadata`", "—", "`JSON`",
        _metadata_runner(None, '{"client_name": "x", "jwks": ' + "[" * 5000 + "]" * 5000 + "}")),
    Row("M13", "`jwks_uri` on an IPv6 site-local literal (`https://[fec0::1]/jwks`)", "`full_clean` / `POST /o/register/`",
        "`ValidationError` / 400 `invalid_client_metadata`", "—", "`jwks_uri` / `jwks_uri points to a site-local address`",
        _public_only(_metadata_runner({"jwks_uri": "https://[fec0::1]/jwks"},
                                      {"token_endpoint_auth_method": "self_signed_tls_client_auth", "jwks_uri": "https://[fec0::1]/jwks"},
                                      model_method="self_signed_tls_client_auth"))),
]  # fmt: skip


def counts() -> dict[str, int]:
    """Rows in every table a token request or a registration may write."""
    models = {
        "Application": get_application_model(),
        "MTLSClient": MTLSClient,
        "AccessToken": get_access_token_model(),
        "RefreshToken": get_refresh_token_model(),
        "Grant": get_grant_model(),
        "AccessTokenBinding": AccessTokenBinding,
        "RefreshTokenBinding": RefreshTokenBinding,
    }
    return {name: model.objects.count() for name, model in models.items()}


# --- the doc ------------------------------------------------------------------------------------------

HEADER = [
    "id",
    "bad input",
    "where",
    "response",
    "intake reason",
    "client-auth reason / member",
    "note",
]


def table() -> str:
    """The inventory as the Markdown table of ``docs/bad-input.md``."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row.cells()).rstrip() + " |" for row in ROWS]
    return "\n".join(lines)


def test_the_doc_table_is_the_inventory():
    text = DOC.read_text()
    start = text.index("<!-- inventory: start -->") + len("<!-- inventory: start -->")
    end = text.index("<!-- inventory: end -->")
    assert text[start:end].strip() == table(), "docs/bad-input.md is stale: paste table() there"


def test_rows_are_unique_and_use_the_contract_codes():
    from django_oauth_mtls.exceptions import CLIENT_AUTH_REASONS, INTAKE_REASONS

    assert len({row.id for row in ROWS}) == len(ROWS)
    for row in ROWS:
        if row.intake != "—":
            assert row.intake.strip("`") in INTAKE_REASONS, row.id
        if row.where.startswith("token") and row.reason != "—":
            assert row.reason.strip("`") in CLIENT_AUTH_REASONS, row.id


# --- the rows -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    with JWKSServer() as running:
        yield running


@pytest.fixture
def ctx(client, make_app, mtls_settings, root_ca, server, user, monkeypatch):
    mtls_settings.OAUTH2_MTLS = {**mtls_settings.OAUTH2_MTLS, "JWKS_ALLOW_PRIVATE_ADDRESSES": True}
    monkeypatch.setattr(jwks_fetch, "_ssl_context", server.client_context)
    server.reset()
    caches["default"].clear()
    client.raise_request_exception = False
    reasons: list[str] = []

    def receiver(sender: Any, reason: str, **kwargs: Any) -> None:
        reasons.append(reason)

    signals.client_authentication_failed.connect(receiver, dispatch_uid="test_bad_input")
    yield Ctx(
        client=client,
        make_app=make_app,
        settings=mtls_settings,
        root_ca=root_ca,
        server=server,
        user=user,
        reasons=reasons,
    )
    signals.client_authentication_failed.disconnect(dispatch_uid="test_bad_input")
    caches["default"].clear()


def _params() -> list[Any]:
    params = []
    for row in ROWS:
        marks = (
            [
                pytest.mark.xfail(
                    strict=True, reason=f"known package bug {row.known} (issue #11 report)"
                )
            ]
            if row.known
            else []
        )
        params.append(pytest.param(row, id=row.id, marks=marks))
    return params


@pytest.mark.parametrize("row", _params())
def test_bad_input(row: Row, ctx: Ctx):
    row.run(ctx, row)


def test_x509_v1_helper_makes_v1():
    assert SELF_V1.cert.version is x509.Version.v1
    assert SELF_V1.cert.subject == pki.name(CN="self-signed-v1")
    # Self-signed v1: the signature verifies with its own key.
    public = SELF_V1.cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(
        SELF_V1.cert.signature, SELF_V1.cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256())
    )
    assert isinstance(SELF_RSA_1024.key, rsa.RSAPrivateKey) and SELF_RSA_1024.key.key_size == 1024
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", SELF_V1.x5t_s256)
