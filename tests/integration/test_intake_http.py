"""The intake through Django: middleware, request attributes, logging (docs/api.md)."""

from __future__ import annotations

import logging

import pytest
from django.test import Client, RequestFactory, override_settings

import django_oauth_mtls
from django_oauth_mtls.intake import META_KEY, get_client_certificate
from django_oauth_mtls.middleware import ClientCertificateMiddleware
from tests import pki

URL = "/api/certificate/"


def get(client: Client, remote: str = "127.0.0.1", **headers: str):
    return client.get(URL, REMOTE_ADDR=remote, **headers)


def test_trusted_peer_header_is_seen(client: Client, client_cert: pki.Issued):
    response = get(client, HTTP_X_SSL_CLIENT_CERT=client_cert.nginx())
    assert response.status_code == 200
    assert response.json() == {
        "x5t#S256": client_cert.x5t_s256,
        "subject": "CN=client-one,O=Example\\, Inc.,C=DE",
        "problem": None,
    }
    assert response["Cache-Control"] == "no-store"


def test_same_header_from_another_peer_is_ignored_R9440_4_3(client: Client, client_cert, caplog):
    with caplog.at_level(logging.WARNING, logger="django_oauth_mtls"):
        response = get(client, remote="127.0.0.2", HTTP_X_SSL_CLIENT_CERT=client_cert.nginx())
    assert response.json() == {"x5t#S256": None, "subject": None, "problem": "untrusted_peer"}
    assert [r.getMessage() for r in caplog.records if "reason=untrusted_peer" in r.getMessage()]


def test_no_header_is_absent_and_not_logged(client: Client, caplog):
    with caplog.at_level(logging.DEBUG, logger="django_oauth_mtls"):
        response = get(client)
    assert response.json()["problem"] == "absent"
    assert not caplog.records


def big_value(issued: pki.Issued) -> str:
    return issued.nginx() + "%0A" * 9000


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"HTTP_X_SSL_CLIENT_CERT": "CERT,CERT"}, "duplicate"),
        ({"HTTP_X_SSL_CLIENT_CERT": "%%%not-pem"}, "malformed"),
        (
            {
                "HTTP_X_SSL_CLIENT_CERT": "-----BEGIN%20CERTIFICATE-----%0AaGVsbG8%3D%0A-----END%20CERTIFICATE-----"
            },
            "not_a_certificate",
        ),
    ],
)
def test_rejections_have_reason_codes(client: Client, headers, code, caplog):
    with caplog.at_level(logging.WARNING, logger="django_oauth_mtls"):
        response = get(client, **headers)
    assert response.status_code == 200
    assert response.json()["problem"] == code
    lines = [r.getMessage() for r in caplog.records if f"reason={code}" in r.getMessage()]
    assert len(lines) == 1, "logged exactly once per rejection"
    assert "BEGIN" not in lines[0] and "aGVsbG8" not in lines[0], "never a PEM in a log"


def test_too_large(client: Client, client_cert):
    assert (
        get(client, HTTP_X_SSL_CLIENT_CERT=big_value(client_cert)).json()["problem"] == "too_large"
    )


@override_settings(OAUTH2_MTLS={"CERTIFICATE_SOURCE": "rfc9440", "TRUSTED_PROXIES": ["127.0.0.1"]})
def test_chain_without_leaf(client: Client, client_cert):
    response = get(client, HTTP_CLIENT_CERT_CHAIN=client_cert.rfc9440())
    assert response.json()["problem"] == "chain_without_leaf"


@override_settings(OAUTH2_MTLS={"CERTIFICATE_SOURCE": "envoy", "TRUSTED_PROXIES": ["127.0.0.1"]})
def test_hash_mismatch(client: Client, client_cert):
    from urllib.parse import quote

    value = f'Hash={"ab" * 32};Cert="{quote(client_cert.pem, safe="")}"'
    assert get(client, HTTP_X_FORWARDED_CLIENT_CERT=value).json()["problem"] == "hash_mismatch"


@override_settings(OAUTH2_MTLS={"TRUSTED_PROXIES": ["127.0.0.1"]})
def test_source_disabled_by_default(client: Client, client_cert):
    response = get(client, HTTP_X_SSL_CLIENT_CERT=client_cert.nginx())
    assert response.json()["problem"] == "source_disabled"


@override_settings(OAUTH2_MTLS={"CERTIFICATE_SOURCE": "nginx", "TRUSTED_PROXIES": []})
def test_empty_trusted_proxies_trusts_nobody(client: Client, client_cert):
    response = get(client, HTTP_X_SSL_CLIENT_CERT=client_cert.nginx())
    assert response.json()["problem"] == "untrusted_peer"


@override_settings(OAUTH2_MTLS={"CERTIFICATE_SOURCE": "rfc9440", "TRUSTED_PROXIES": ["127.0.0.1"]})
def test_underscore_alias_reaches_the_same_meta_key(client: Client, client_cert):
    """``Client_Cert`` becomes ``HTTP_CLIENT_CERT`` on servers that keep underscores (P9):
    only the trust gate protects the app, so from an untrusted peer it is refused."""
    meta = {"HTTP_CLIENT_CERT": client_cert.rfc9440()}  # what the alias turns into
    assert get(client, remote="198.51.100.7", **meta).json()["problem"] == "untrusted_peer"
    assert get(client, **meta).json()["x5t#S256"] == client_cert.x5t_s256


@override_settings(
    OAUTH2_MTLS={
        "CERTIFICATE_SOURCE": "nginx",
        "TRUSTED_PROXIES": ["::1"],
        "TRUST_UNIX_SOCKET_PEERS": True,
    }
)
def test_ipv6_and_unix_socket_peers(client: Client, client_cert):
    header = {"HTTP_X_SSL_CLIENT_CERT": client_cert.nginx()}
    assert get(client, remote="::1", **header).json()["problem"] is None
    assert get(client, remote="", **header).json()["problem"] is None
    assert get(client, remote="127.0.0.1", **header).json()["problem"] == "untrusted_peer"


def test_middleware_sets_request_attributes(rf: RequestFactory, client_cert):
    seen = {}

    def view(request):
        seen["cert"] = request.client_certificate
        seen["problem"] = request.client_certificate_problem
        return None

    request = rf.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_SSL_CLIENT_CERT=client_cert.nginx())
    ClientCertificateMiddleware(view)(request)
    assert seen["cert"].x5t_s256 == client_cert.x5t_s256 and seen["problem"] is None


def test_meta_copy_reuses_the_answer_and_logs_once(rf: RequestFactory, caplog):
    """The validator sees oauthlib's copy of META: the answer travels with it."""
    request = rf.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_SSL_CLIENT_CERT="x,y")
    with caplog.at_level(logging.WARNING, logger="django_oauth_mtls"):
        first = get_client_certificate(request)
        copy = request.META.copy()
        second = get_client_certificate(copy)
    assert first == second == (None, "duplicate")
    assert META_KEY in copy
    assert len(caplog.records) == 1


def test_meta_key_cannot_come_from_a_header(client: Client):
    """A client cannot plant the per-request answer: headers become HTTP_* keys."""
    response = get(client, **{"HTTP_DJANGO_OAUTH_MTLS.INTAKE": "x"})
    assert response.json()["problem"] == "absent"


def test_lazy_reexport():
    assert django_oauth_mtls.get_client_certificate is get_client_certificate
    with pytest.raises(AttributeError):
        django_oauth_mtls.nope  # noqa: B018


def test_dotted_path_source(client: Client, client_cert, settings):
    settings.OAUTH2_MTLS = {
        "CERTIFICATE_SOURCE": "tests.integration.test_intake_http.der_from_custom_header",
        "TRUSTED_PROXIES": ["127.0.0.1"],
    }
    response = get(client, HTTP_X_CUSTOM_DER_HEX=client_cert.der.hex())
    assert response.json()["x5t#S256"] == client_cert.x5t_s256


def der_from_custom_header(meta):
    value = meta.get("HTTP_X_CUSTOM_DER_HEX")
    return bytes.fromhex(value) if value else None


def test_unimportable_dotted_path_reads_nothing(client: Client, client_cert, settings, caplog):
    settings.OAUTH2_MTLS = {
        "CERTIFICATE_SOURCE": "no.such.module",
        "TRUSTED_PROXIES": ["127.0.0.1"],
    }
    with caplog.at_level(logging.ERROR, logger="django_oauth_mtls"):
        response = get(client, HTTP_X_SSL_CLIENT_CERT=client_cert.nginx())
    assert response.json()["problem"] == "source_disabled"
    assert any("cannot be imported" in r.getMessage() for r in caplog.records)
