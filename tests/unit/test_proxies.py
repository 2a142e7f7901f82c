"""Proxy formats, the trust gate and the reason codes (RFC 9440 §2, §4; docs/api.md sources)."""

from __future__ import annotations

import ipaddress
from urllib.parse import quote

import pytest

from django_oauth_mtls.proxies import (
    SOURCES,
    IntakeConfig,
    is_trusted_peer,
    meta_key,
    read_client_certificate,
)
from tests import pki
from tests.vectors import loader

LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))
CAPTURED = loader.expected()["proxy-captures/*-with-cert.http"]


def config(source: str, **kwargs) -> IntakeConfig:
    kwargs.setdefault("trusted_proxies", LOOPBACK)
    return IntakeConfig.build(source, **kwargs)


def read(source: str, fields: dict[str, str], remote: str = "127.0.0.1", **kwargs):
    meta = {"REMOTE_ADDR": remote, **fields}
    return read_client_certificate(meta, config(source, **kwargs))


# --- real captures (nginx 1.22, HAProxy 2.6, Apache 2.4 on Debian) ---------------------------


@pytest.mark.parametrize(
    ("capture", "source", "header"),
    [
        ("nginx-optional-no-ca-with-cert.http", "nginx", "X-SSL-Client-Escaped-Cert"),
        ("nginx-verify-on-with-cert.http", "nginx", "X-SSL-Client-Escaped-Cert"),
        ("haproxy-with-cert.http", "haproxy", None),
        ("apache-with-cert.http", "apache", None),
    ],
)
def test_captures_give_the_expected_certificate(capture, source, header):
    fields = loader.capture_headers(capture)
    result = read(source, fields, certificate_header=header)
    assert result.problem is None, result.detail
    cert = result.certificate
    assert cert.x5t_s256 == CAPTURED["x5t#S256"]
    assert cert.subject == CAPTURED["subject"]
    assert list(cert.san_dns + cert.san_uri + cert.san_email) == CAPTURED["san"]
    assert cert.not_after.isoformat() == CAPTURED["not_after"]


@pytest.mark.parametrize(
    ("capture", "source", "header"),
    [
        ("nginx-optional-no-ca-no-cert.http", "nginx", "X-SSL-Client-Escaped-Cert"),
        ("apache-no-cert.http", "apache", None),
    ],
)
def test_captures_without_certificate_are_absent(capture, source, header):
    result = read(source, loader.capture_headers(capture), certificate_header=header)
    assert result.certificate is None and result.problem == "absent"


def test_nginx_obsolete_folded_field_is_not_the_default():
    """The capture's X-SSL-Client-Cert holds tab-folded $ssl_client_cert (obsolete).

    It is not what the docs tell users to send, but the PEM reader tolerates its whitespace
    and yields the same certificate, never another one.
    """
    fields = loader.capture_headers("nginx-optional-no-ca-with-cert.http")
    assert "\t" in fields["HTTP_X_SSL_CLIENT_CERT"]
    result = read("nginx", fields)  # default field X-SSL-Client-Cert
    assert result.certificate.x5t_s256 == CAPTURED["x5t#S256"]


def test_proxy_verdict_is_read_only_when_trusted():
    fields = loader.capture_headers("nginx-verify-on-with-cert.http")
    plain = read("nginx", fields, certificate_header="X-SSL-Client-Escaped-Cert")
    assert plain.certificate.proxy_verified is None
    trusted = read(
        "nginx",
        fields,
        certificate_header="X-SSL-Client-Escaped-Cert",
        trust_proxy_verification=True,
    )
    assert trusted.certificate.proxy_verified is True
    failed = loader.capture_headers("nginx-optional-no-ca-with-cert.http")
    result = read(
        "nginx",
        failed,
        certificate_header="X-SSL-Client-Escaped-Cert",
        trust_proxy_verification=True,
    )
    assert result.certificate.proxy_verified is False


def test_haproxy_verdict():
    fields = loader.capture_headers("haproxy-with-cert.http")
    assert read("haproxy", fields, trust_proxy_verification=True).certificate.proxy_verified is True
    fields["HTTP_X_SSL_CLIENT_VERIFY"] = "18"
    assert (
        read("haproxy", fields, trust_proxy_verification=True).certificate.proxy_verified is False
    )


# --- RFC 9440 ----------------------------------------------------------------------------------


def test_rfc9440_appendix_a_leaf_and_chain():
    from django_oauth_mtls.certificates import ders_from_pem

    ders = ders_from_pem(loader.text("rfc9440-appendix-a-chain.pem").encode())
    import base64

    sf = [f":{base64.b64encode(d).decode()}:" for d in ders]
    result = read(
        "rfc9440", {"HTTP_CLIENT_CERT": sf[0], "HTTP_CLIENT_CERT_CHAIN": ", ".join(sf[1:])}
    )
    assert result.problem is None
    expected = loader.expected()["rfc9440-appendix-a-chain.pem"]
    assert result.certificate.x5t_s256 == expected[0]["x5t#S256"]
    assert result.certificate.chain == tuple(ders[1:])


def test_rfc9440_unpadded_byte_sequence_is_accepted(client_cert):
    value = client_cert.rfc9440().replace("=", "")
    assert read("rfc9440", {"HTTP_CLIENT_CERT": value}).certificate.x5t_s256 == client_cert.x5t_s256


@pytest.mark.parametrize("value", ["MIIB", ":MIIB", ":not base64!:", ": :", "::", ":-_-_:"])
def test_rfc9440_malformed(value):
    assert read("rfc9440", {"HTTP_CLIENT_CERT": value}).problem == "malformed"


def test_rfc9440_not_a_certificate():
    assert read("rfc9440", {"HTTP_CLIENT_CERT": ":aGVsbG8=:"}).problem == "not_a_certificate"


def test_rfc9440_chain_without_leaf_R9440_2_3_3(client_cert):
    result = read("rfc9440", {"HTTP_CLIENT_CERT_CHAIN": client_cert.rfc9440()})
    assert result.certificate is None and result.problem == "chain_without_leaf"


def test_rfc9440_duplicate_singleton_R9440_2_2_2(client_cert):
    value = f"{client_cert.rfc9440()}, {client_cert.rfc9440()}"
    assert read("rfc9440", {"HTTP_CLIENT_CERT": value}).problem == "duplicate"


# --- every source with a certificate made here -------------------------------------------------


def encodings(issued: pki.Issued, root: pki.Issued) -> dict[str, dict[str, str]]:
    import base64

    chain_b64 = base64.b64encode(root.der).decode()
    return {
        "rfc9440": {"HTTP_CLIENT_CERT": issued.rfc9440()},
        "nginx": {"HTTP_X_SSL_CLIENT_CERT": issued.nginx()},
        "apache": {"HTTP_X_SSL_CLIENT_CERT": issued.apache()},
        "haproxy": {"HTTP_X_SSL_CLIENT_CERT": issued.b64()},
        "envoy": {
            "HTTP_X_FORWARDED_CLIENT_CERT": f'By=spiffe://example.org/proxy;Cert="{quote(issued.pem, safe="")}"'
        },
        "traefik": {"HTTP_X_FORWARDED_TLS_CLIENT_CERT": f"{issued.b64()},{chain_b64}"},
        "aws_alb": {"HTTP_X_AMZN_MTLS_CLIENTCERT_LEAF": quote(issued.pem, safe="+=/")},
        "aws_alb_passthrough": {
            "HTTP_X_AMZN_MTLS_CLIENTCERT": quote(issued.pem + root.pem, safe="+=/")
        },
        "azure_app_service": {"HTTP_X_ARR_CLIENTCERT": issued.b64()},
        "cloudflare": {"HTTP_CLIENT_CERT": issued.rfc9440()},
        "pem": {"HTTP_X_CLIENT_CERT": issued.pem},
        "wsgi_environ": {"SSL_CLIENT_CERT": issued.pem},
    }


def test_every_source_is_covered(client_cert, root_ca):
    assert set(encodings(client_cert, root_ca)) == set(SOURCES)


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_every_source_reads_its_default_field(source, client_cert, root_ca):
    result = read(source, encodings(client_cert, root_ca)[source])
    assert result.problem is None, result.detail
    assert result.certificate.x5t_s256 == client_cert.x5t_s256


@pytest.mark.parametrize("source", sorted(set(SOURCES) - {"wsgi_environ"}))
def test_every_gated_source_ignores_an_untrusted_peer_R9440_4_3(source, client_cert, root_ca):
    result = read(source, encodings(client_cert, root_ca)[source], remote="127.0.0.2")
    assert result.certificate is None and result.problem == "untrusted_peer"


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_every_source_refuses_oversized_fields(source, client_cert, root_ca):
    fields = encodings(client_cert, root_ca)[source]
    size = max(len(v) for v in fields.values()) - 1
    assert read(source, fields, max_header_bytes=size).problem == "too_large"


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_every_source_without_field_is_absent(source):
    assert read(source, {}).problem == "absent"


def test_no_source_is_disabled(client_cert):
    result = read_client_certificate(
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_SSL_CLIENT_CERT": client_cert.nginx()},
        IntakeConfig.build(None, trusted_proxies=LOOPBACK),
    )
    assert result.problem == "source_disabled"


@pytest.mark.parametrize(
    "source", ["nginx", "apache", "haproxy", "azure_app_service", "pem", "aws_alb"]
)
def test_singletons_with_a_comma_are_duplicates(source, client_cert, root_ca):
    key, value = next(iter(encodings(client_cert, root_ca)[source].items()))
    assert read(source, {key: f"{value},{value}"}).problem == "duplicate"


def test_custom_header_name(client_cert):
    result = read(
        "nginx", {"HTTP_X_CLIENT_PEM": client_cert.nginx()}, certificate_header="x-client-pem"
    )
    assert result.certificate.x5t_s256 == client_cert.x5t_s256


def test_url_encoded_pem_uses_unquote_not_unquote_plus(client_cert):
    """AWS ALB keeps ``+`` literal: ``unquote_plus`` would turn it into a space (P10)."""
    value = quote(client_cert.pem, safe="+=/")
    assert "+" in value or "/" in value
    assert read("aws_alb", {"HTTP_X_AMZN_MTLS_CLIENTCERT_LEAF": value}).certificate is not None


def test_apache_null_is_absent():
    assert read("apache", {"HTTP_X_SSL_CLIENT_CERT": "(null)"}).problem == "absent"


def test_pem_with_trailing_junk_is_malformed(client_cert):
    assert read("pem", {"HTTP_X_CLIENT_CERT": client_cert.pem + "junk"}).problem == "malformed"


def test_non_text_field_is_malformed():
    assert read("nginx", {"HTTP_X_SSL_CLIENT_CERT": b"bytes"}).problem == "malformed"


# --- Envoy XFCC ------------------------------------------------------------------------------


def xfcc(issued: pki.Issued, *, hash_hex: str | None = None, chain: str | None = None) -> str:
    parts = ["By=spiffe://example.org/ns/default/sa/proxy"]
    if hash_hex is not None:
        parts.append(f"Hash={hash_hex}")
    parts.append(f'Cert="{quote(issued.pem, safe="")}"')
    if chain is not None:
        parts.append(f'Chain="{quote(chain, safe="")}"')
    parts.append('Subject="CN=client-one,O=Example\\, Inc.,C=DE";URI=spiffe://example.org/client')
    return ";".join(parts)


def test_envoy_hash_must_agree(client_cert):
    import hashlib

    good = hashlib.sha256(client_cert.der).hexdigest()
    ok = read("envoy", {"HTTP_X_FORWARDED_CLIENT_CERT": xfcc(client_cert, hash_hex=good.upper())})
    assert ok.certificate.x5t_s256 == client_cert.x5t_s256
    bad = read("envoy", {"HTTP_X_FORWARDED_CLIENT_CERT": xfcc(client_cert, hash_hex="0" * 64)})
    assert bad.problem == "hash_mismatch"
    junk = read("envoy", {"HTTP_X_FORWARDED_CLIENT_CERT": xfcc(client_cert, hash_hex="zz")})
    assert junk.problem == "malformed"


def test_envoy_takes_the_last_element(client_cert, root_ca):
    """An element a client sent earlier is never the one we read (SANITIZE_SET aside)."""
    attacker = pki.issue(pki.name(CN="attacker"))
    value = f"{xfcc(attacker)},{xfcc(client_cert)}"
    result = read("envoy", {"HTTP_X_FORWARDED_CLIENT_CERT": value})
    assert result.certificate.x5t_s256 == client_cert.x5t_s256


def test_envoy_chain_includes_the_leaf(client_cert, root_ca):
    value = xfcc(client_cert, chain=client_cert.pem + root_ca.pem)
    result = read("envoy", {"HTTP_X_FORWARDED_CLIENT_CERT": value})
    assert result.certificate.chain == (root_ca.der,)


def test_envoy_without_cert(client_cert):
    import hashlib

    only_hash = f"By=spiffe://x;Hash={hashlib.sha256(client_cert.der).hexdigest()}"
    assert read("envoy", {"HTTP_X_FORWARDED_CLIENT_CERT": only_hash}).problem == "malformed"
    chain_only = f'By=spiffe://x;Chain="{quote(client_cert.pem, safe="")}"'
    assert (
        read("envoy", {"HTTP_X_FORWARDED_CLIENT_CERT": chain_only}).problem == "chain_without_leaf"
    )


def test_envoy_unterminated_quote(client_cert):
    value = 'By=x;Cert="abc'
    assert read("envoy", {"HTTP_X_FORWARDED_CLIENT_CERT": value}).problem == "malformed"


# --- Traefik ---------------------------------------------------------------------------------


def test_traefik_v2_escaped_and_v3_plain(client_cert, root_ca):
    plain = f"{client_cert.b64()},{root_ca.b64()}"
    escaped = quote(plain, safe="")
    assert "%2C" in escaped
    for value in (plain, escaped):
        result = read("traefik", {"HTTP_X_FORWARDED_TLS_CLIENT_CERT": value})
        assert result.certificate.x5t_s256 == client_cert.x5t_s256
        assert result.certificate.chain == (root_ca.der,)


def test_aws_alb_passthrough_chain(client_cert, root_ca):
    value = quote(client_cert.pem + root_ca.pem, safe="+=/")
    result = read("aws_alb_passthrough", {"HTTP_X_AMZN_MTLS_CLIENTCERT": value})
    assert result.certificate.chain == (root_ca.der,)


def test_aws_alb_leaf_is_implicitly_verified(client_cert):
    value = quote(client_cert.pem, safe="+=/")
    result = read(
        "aws_alb", {"HTTP_X_AMZN_MTLS_CLIENTCERT_LEAF": value}, trust_proxy_verification=True
    )
    assert result.certificate.proxy_verified is True


def test_cloudflare_verdict_from_configured_field(client_cert):
    fields = {"HTTP_CLIENT_CERT": client_cert.rfc9440(), "HTTP_CF_CLIENT_CERT_VERIFIED": "true"}
    kwargs = {"verify_header": "CF-Client-Cert-Verified", "trust_proxy_verification": True}
    assert read("cloudflare", fields, **kwargs).certificate.proxy_verified is True
    fields["HTTP_CF_CLIENT_CERT_VERIFIED"] = "false"
    assert read("cloudflare", fields, **kwargs).certificate.proxy_verified is False


def test_wsgi_environ_is_not_gated_and_reads_chain(client_cert, root_ca):
    meta = {"SSL_CLIENT_CERT": client_cert.pem, "SSL_CLIENT_CERT_CHAIN_0": root_ca.pem}
    result = read("wsgi_environ", meta, remote="203.0.113.9")
    assert result.certificate.chain == (root_ca.der,)


def test_wsgi_environ_ignores_headers(client_cert):
    """A client-sent ``SSL-Client-Cert`` header is ``HTTP_SSL_CLIENT_CERT``, never read."""
    assert read("wsgi_environ", {"HTTP_SSL_CLIENT_CERT": client_cert.pem}).problem == "absent"


# --- callable sources ------------------------------------------------------------------------


def test_callable_source(client_cert):
    def from_meta(meta):
        return meta.get("my.cert")

    cfg = IntakeConfig.build("x.y", certificate_callable=from_meta, trusted_proxies=LOOPBACK)
    meta = {"REMOTE_ADDR": "127.0.0.1", "my.cert": client_cert.der}
    assert read_client_certificate(meta, cfg).certificate.x5t_s256 == client_cert.x5t_s256
    meta["REMOTE_ADDR"] = "10.0.0.1"
    assert read_client_certificate(meta, cfg).problem == "untrusted_peer"


@pytest.mark.parametrize(
    ("returned", "code"),
    [
        (None, "absent"),
        (b"garbage", "not_a_certificate"),
        ("text", "malformed"),
        (ValueError, "malformed"),
    ],
)
def test_callable_source_bad_results(returned, code):
    def from_meta(meta):
        if returned is ValueError:
            raise ValueError("boom")
        return returned

    cfg = IntakeConfig.build("x.y", certificate_callable=from_meta, trusted_proxies=LOOPBACK)
    assert read_client_certificate({"REMOTE_ADDR": "127.0.0.1"}, cfg).problem == code


# --- the trust gate --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote", "trusted"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),  # IPv4-mapped IPv6 is matched as its IPv4 address
        ("127.0.0.2", False),
        ("::2", False),
        ("", False),
        ("not-an-ip", False),
        ("127.0.0.1, 10.0.0.1", False),
    ],
)
def test_trust_gate(remote, trusted):
    assert is_trusted_peer(remote, LOOPBACK) is trusted


def test_unix_socket_peer_only_when_configured():
    assert is_trusted_peer("", (), True) is True
    assert is_trusted_peer("", (), False) is False


def test_empty_trusted_proxies_trusts_nobody():
    assert is_trusted_peer("127.0.0.1", ()) is False


def test_x_forwarded_for_is_never_consulted(client_cert):
    fields = {"HTTP_X_SSL_CLIENT_CERT": client_cert.nginx(), "HTTP_X_FORWARDED_FOR": "127.0.0.1"}
    assert read("nginx", fields, remote="203.0.113.5").problem == "untrusted_peer"


def test_meta_key():
    assert meta_key("X-SSL-Client-Cert") == "HTTP_X_SSL_CLIENT_CERT"
    assert meta_key("client-cert") == "HTTP_CLIENT_CERT"


def test_xfcc_split_respects_quotes_and_escapes():
    from django_oauth_mtls.proxies import split_xfcc

    value = 'By=spiffe://a;Subject="CN=x\\";y,z";URI=u,Hash=ab;DNS=d'
    assert split_xfcc(value) == [
        [("by", "spiffe://a"), ("subject", 'CN=x";y,z'), ("uri", "u")],
        [("hash", "ab"), ("dns", "d")],
    ]
