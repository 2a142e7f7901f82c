"""The spoofing matrix (issue #11 item 2): one test per way a client might forge or replay its
way to another client's identity, each through the real endpoints, each pinned to its exact
outcome — the intake reason code (``/api/certificate/``), the HTTP status, the OAuth ``error``
and the client-auth reason code (the ``client_authentication_failed`` signal).

RFC 9440 §4 (fields only from a trusted proxy; R9440-4-3), §2.2 (singleton; R9440-2.2-2), §2.3
(no chain without a leaf; R9440-2.3-3); RFC 8705 §2.1 and pitfall P8 (the app validates the
chain: a subject alone proves nothing); RFC 8705 §3 (a bound token needs its certificate);
pitfall P9 (the underscore alias).

| row | what the attacker sends | intake | response | reason |
|---|---|---|---|---|
| 1 | a certificate field from a peer outside ``TRUSTED_PROXIES`` | ``untrusted_peer`` | 401 ``invalid_client`` | ``no_certificate`` |
| 2 | ``Client_Cert`` (the underscore alias) beside the proxy's ``Client-Cert`` | ``duplicate`` | 401 ``invalid_client`` | ``no_certificate`` |
| 2b | ``Client_Cert`` alone, from an untrusted peer | ``untrusted_peer`` | 401 ``invalid_client`` | ``no_certificate`` |
| 3 | the certificate field twice (each singleton source) | ``duplicate`` | 401 ``invalid_client`` | ``no_certificate`` |
| 4 | one ``Client-Cert`` line holding a comma-joined list | ``duplicate`` | 401 ``invalid_client`` | ``no_certificate`` |
| 5 | ``Client-Cert-Chain`` without ``Client-Cert`` | ``chain_without_leaf`` | 401 ``invalid_client`` | ``no_certificate`` |
| 6 | an XFCC element of its own before Envoy's (victim's ``Cert``) | the last element's | 401 ``invalid_client`` | ``subject_mismatch`` / ``no_certificate`` |
| 7 | a forged ``X-Forwarded-For`` / ``Forwarded`` / ``X-Real-IP`` naming the proxy | ``untrusted_peer`` | 401 ``invalid_client`` | ``no_certificate`` |
| 8 | the PKI client's subject, self-signed | none | 401 ``invalid_client`` | ``chain_invalid`` |
| 9 | the PKI client's subject, from a CA named like the trusted CA (also in the chain field) | none | 401 ``invalid_client`` | ``chain_invalid`` |
| 10 | another client's valid certificate with this client's ``client_id`` | none | 401 ``invalid_client`` | ``subject_mismatch`` |
| 11 | a bound access token with another client's certificate | none | 401 ``invalid_token`` | — |
| 12 | a bound access token with no certificate | ``absent`` | 401 ``invalid_token`` | — |
| 13 | a bound refresh token (public client) with another certificate | none | 400 ``invalid_grant`` | — |
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from django_oauth_mtls import signals
from tests import pki
from tests.integration.conftest import authorization_code, code_grant, post_form, token_request
from tests.jwks_server import self_signed

pytestmark = pytest.mark.django_db

DN = "CN=client-one,O=Example\\, Inc.,C=DE"
VICTIM_SAN = "client-one.example.com"
OUTSIDER = "198.51.100.7"  # not in TRUSTED_PROXIES (127.0.0.1/32)
WHOAMI = "/api/whoami/"


@pytest.fixture
def reasons():
    """The client-auth reason codes of every refusal, in order (``client_authentication_failed``)."""
    seen: list[str] = []

    def receiver(sender: Any, reason: str, **kwargs: Any) -> None:
        seen.append(reason)

    signals.client_authentication_failed.connect(receiver, dispatch_uid="test_spoofing")
    yield seen
    signals.client_authentication_failed.disconnect(dispatch_uid="test_spoofing")


@pytest.fixture
def victim(make_app):
    """The PKI client an attacker wants to be: client-one, bound tokens."""
    return make_app(
        tls_client_auth_san_dns=VICTIM_SAN, tls_client_certificate_bound_access_tokens=True
    )


@pytest.fixture
def attacker_cert(root_ca):
    """Another client's valid certificate from the same trusted CA."""
    return pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-two"),
        issuer=root_ca,
        dns=("client-two.example.com",),
    )


def configure(settings: Any, **values: Any) -> None:
    settings.OAUTH2_MTLS = {**settings.OAUTH2_MTLS, **values}


def intake(client: Client, remote: str = "127.0.0.1", **meta: Any) -> dict[str, Any]:
    """What the app's intake concluded for these fields (the example's debug view)."""
    response = client.get("/api/certificate/", REMOTE_ADDR=remote, **meta)
    assert response.status_code == 200
    return response.json()


def token(client: Client, app: Any, remote: str = "127.0.0.1", **meta: Any) -> Any:
    body = {"grant_type": "client_credentials", "scope": "read", "client_id": app.client_id}
    return post_form(client, "/o/token/", body, REMOTE_ADDR=remote, **meta)


def assert_refused(response: Any, reasons: list[str], reason: str, status: int = 401) -> None:
    assert response.status_code == status, response.content
    assert response.json()["error"] == "invalid_client"
    assert reasons == [reason], reasons


def assert_invalid_token(response: Any, fragment: str) -> None:
    assert response.status_code == 401, response.content
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith("Bearer") and 'error="invalid_token"' in challenge
    assert fragment in challenge


def nothing_issued() -> None:
    from oauth2_provider.models import get_access_token_model

    assert not get_access_token_model().objects.exists()


# --- 1: the trust gate ---------------------------------------------------------------------------


def test_row01_field_from_a_peer_outside_trusted_proxies(
    client, victim, mtls_settings, client_cert, reasons
):
    meta = {"HTTP_X_SSL_CLIENT_CERT": client_cert.nginx()}
    assert intake(client, OUTSIDER, **meta)["problem"] == "untrusted_peer"
    response = token(client, victim, OUTSIDER, **meta)
    assert_refused(response, reasons, "no_certificate")
    assert "trusted proxy" in response.json()["error_description"]
    nothing_issued()


# --- 2: the underscore alias (P9) ----------------------------------------------------------------


def test_row02_underscore_alias_beside_the_proxy_field(
    client, victim, settings, mtls_settings, client_cert, attacker_cert, reasons
):
    """The proxy sets ``Client-Cert`` (the attacker's own certificate); the attacker adds
    ``Client_Cert: :victim:``. A WSGI server that keeps underscores folds both into
    ``HTTP_CLIENT_CERT`` and joins them with a comma, in either order: a singleton sent twice."""
    configure(settings, CERTIFICATE_SOURCE="rfc9440")
    for joined in (
        f"{attacker_cert.rfc9440()},{client_cert.rfc9440()}",
        f"{client_cert.rfc9440()},{attacker_cert.rfc9440()}",
    ):
        assert intake(client, HTTP_CLIENT_CERT=joined)["problem"] == "duplicate"
        reasons.clear()
        assert_refused(token(client, victim, HTTP_CLIENT_CERT=joined), reasons, "no_certificate")
    nothing_issued()


def test_row02b_underscore_alias_alone_from_an_untrusted_peer(
    client, victim, settings, mtls_settings, client_cert, reasons
):
    """Alone, ``Client_Cert`` *is* ``HTTP_CLIENT_CERT`` (the app cannot tell them apart, so the
    proxy must strip both spellings — docs/proxies.md); what the app enforces is the gate."""
    configure(settings, CERTIFICATE_SOURCE="rfc9440")
    meta = {"HTTP_CLIENT_CERT": client_cert.rfc9440()}
    assert intake(client, OUTSIDER, **meta)["problem"] == "untrusted_peer"
    assert_refused(token(client, victim, OUTSIDER, **meta), reasons, "no_certificate")
    nothing_issued()


# --- 3, 4: singletons ------------------------------------------------------------------------------

SINGLETONS = {
    "nginx": lambda c: c.nginx(),
    "apache": lambda c: c.apache(),
    "haproxy": lambda c: c.b64(),
    "azure_app_service": lambda c: c.b64(),
    "aws_alb": lambda c: c.nginx(),
    "pem": lambda c: c.nginx(),
    "rfc9440": lambda c: c.rfc9440(),
    "cloudflare": lambda c: c.rfc9440(),
}


@pytest.mark.parametrize("source", sorted(SINGLETONS))
def test_row03_duplicated_certificate_fields(
    source, client, victim, settings, mtls_settings, client_cert, attacker_cert, reasons
):
    """The certificate field sent twice: the proxy's value and one the client added, joined by
    the WSGI server with a comma (RFC 9110 §5.3). Never pick the first or the last."""
    from django_oauth_mtls.proxies import SOURCES, meta_key

    configure(settings, CERTIFICATE_SOURCE=source)
    key = meta_key(SOURCES[source].certificate_header)
    encode = SINGLETONS[source]
    joined = f"{encode(attacker_cert)},{encode(client_cert)}"
    assert intake(client, **{key: joined})["problem"] == "duplicate"
    assert_refused(token(client, victim, **{key: joined}), reasons, "no_certificate")
    nothing_issued()


@pytest.mark.parametrize("separator", [", ", ",", " , "])
def test_row04_comma_joined_singleton_value(
    separator, client, victim, settings, mtls_settings, client_cert, reasons
):
    """One ``Client-Cert`` line holding an SF list — even of the same certificate twice."""
    configure(settings, CERTIFICATE_SOURCE="rfc9440")
    value = separator.join([client_cert.rfc9440(), client_cert.rfc9440()])
    assert intake(client, HTTP_CLIENT_CERT=value)["problem"] == "duplicate"
    assert_refused(token(client, victim, HTTP_CLIENT_CERT=value), reasons, "no_certificate")
    nothing_issued()


# --- 5: a chain without a leaf --------------------------------------------------------------------


def test_row05_chain_without_client_cert(
    client, victim, settings, mtls_settings, client_cert, root_ca, reasons
):
    """RFC 9440 §2.3: ``Client-Cert-Chain`` MUST NOT appear without ``Client-Cert``; the leaf is
    never taken from the chain field."""
    configure(settings, CERTIFICATE_SOURCE="rfc9440")
    meta = {"HTTP_CLIENT_CERT_CHAIN": f"{client_cert.rfc9440()}, {root_ca.rfc9440()}"}
    assert intake(client, **meta)["problem"] == "chain_without_leaf"
    response = token(client, victim, **meta)
    assert_refused(response, reasons, "no_certificate")
    assert "carries no client certificate" in response.json()["error_description"]
    nothing_issued()


# --- 6: XFCC ---------------------------------------------------------------------------------------


def xfcc(cert: pki.Issued | None) -> str:
    import hashlib
    from urllib.parse import quote

    parts = ["By=spiffe://cluster.local/ns/default/sa/api"]
    if cert is not None:
        parts += [
            f"Hash={hashlib.sha256(cert.der).hexdigest()}",
            f'Cert="{quote(cert.pem, safe="")}"',
        ]
    return ";".join(parts)


def test_row06_xfcc_element_sent_by_the_client(
    client, victim, settings, mtls_settings, client_cert, attacker_cert, reasons
):
    """With ``forward_client_cert_details: APPEND_FORWARD`` Envoy appends its element to what
    the client sent; only the last element is Envoy's. The client's element (the victim's
    certificate, a valid hash) is ignored: the attacker is its own certificate, or nobody."""
    configure(settings, CERTIFICATE_SOURCE="envoy")
    forged = xfcc(client_cert)
    # The attacker presented its own certificate to Envoy.
    value = f"{forged},{xfcc(attacker_cert)}"
    assert intake(client, HTTP_X_FORWARDED_CLIENT_CERT=value)["x5t#S256"] == attacker_cert.x5t_s256
    response = token(client, victim, HTTP_X_FORWARDED_CLIENT_CERT=value)
    assert_refused(response, reasons, "subject_mismatch")
    # The attacker presented none: Envoy's element has no Cert.
    value = f"{forged},{xfcc(None)}"
    assert intake(client, HTTP_X_FORWARDED_CLIENT_CERT=value)["problem"] == "malformed"
    reasons.clear()
    assert_refused(
        token(client, victim, HTTP_X_FORWARDED_CLIENT_CERT=value), reasons, "no_certificate"
    )
    nothing_issued()


# --- 7: X-Forwarded-For is never consulted ----------------------------------------------------------


@pytest.mark.parametrize(
    "forged",
    [
        {"HTTP_X_FORWARDED_FOR": "127.0.0.1"},
        {"HTTP_X_FORWARDED_FOR": f"127.0.0.1, {OUTSIDER}"},
        {"HTTP_FORWARDED": "for=127.0.0.1;proto=https"},
        {"HTTP_X_REAL_IP": "127.0.0.1"},
    ],
    ids=["xff", "xff-list", "forwarded", "x-real-ip"],
)
def test_row07_forged_forwarding_headers(
    forged, client, victim, mtls_settings, client_cert, reasons
):
    meta = {"HTTP_X_SSL_CLIENT_CERT": client_cert.nginx(), **forged}
    assert intake(client, OUTSIDER, **meta)["problem"] == "untrusted_peer"
    assert_refused(token(client, victim, OUTSIDER, **meta), reasons, "no_certificate")
    nothing_issued()


# --- 8, 9: a subject alone proves nothing (P8) ------------------------------------------------------


def test_row08_pki_subject_self_signed(client, make_app, mtls_settings, reasons):
    app = make_app(tls_client_auth_subject_dn=DN)
    forged = pki.issue(pki.name(C="DE", O="Example, Inc.", CN="client-one"), dns=(VICTIM_SAN,))
    assert intake(client, HTTP_X_SSL_CLIENT_CERT=forged.nginx())["problem"] is None
    response = token(client, app, HTTP_X_SSL_CLIENT_CERT=forged.nginx())
    assert_refused(response, reasons, "chain_invalid")
    nothing_issued()


def test_row09_pki_subject_from_a_ca_named_like_the_trusted_ca(
    client, make_app, settings, mtls_settings, root_ca, reasons
):
    impostor = pki.make_ca("Test Root CA")  # the trusted root's DN, another key
    assert impostor.cert.subject == root_ca.cert.subject
    forged = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"), issuer=impostor, dns=(VICTIM_SAN,)
    )
    app = make_app(tls_client_auth_subject_dn=DN)
    assert_refused(
        token(client, app, HTTP_X_SSL_CLIENT_CERT=forged.nginx()), reasons, "chain_invalid"
    )
    # The impostor CA offered in the chain field changes nothing.
    configure(settings, CERTIFICATE_SOURCE="rfc9440")
    reasons.clear()
    meta = {"HTTP_CLIENT_CERT": forged.rfc9440(), "HTTP_CLIENT_CERT_CHAIN": impostor.rfc9440()}
    assert_refused(token(client, app, **meta), reasons, "chain_invalid")
    nothing_issued()


# --- 10: another client's certificate ---------------------------------------------------------------


def test_row10_another_clients_certificate_with_this_client_id(
    client, victim, mtls_settings, attacker_cert, reasons
):
    """The conformance suite's ensure-client-id-in-token-endpoint: a valid certificate of the
    same CA does not make its holder any client it names."""
    response = token(client, victim, HTTP_X_SSL_CLIENT_CERT=attacker_cert.nginx())
    assert_refused(response, reasons, "subject_mismatch")
    nothing_issued()


# --- 11, 12: bound access tokens --------------------------------------------------------------------


def bound_token(client: Client, app: Any, cert: pki.Issued) -> str:
    response = token_request(client, app, cert)
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def test_row11_bound_token_with_another_clients_certificate(
    client, victim, mtls_settings, client_cert, attacker_cert
):
    access = bound_token(client, victim, client_cert)
    response = client.get(
        WHOAMI,
        HTTP_AUTHORIZATION=f"Bearer {access}",
        HTTP_X_SSL_CLIENT_CERT=attacker_cert.nginx(),
        REMOTE_ADDR="127.0.0.1",
    )
    assert_invalid_token(response, "bound to another client certificate")
    # A self-signed certificate with the victim's subject is "another certificate" too.
    lookalike = pki.issue(pki.name(C="DE", O="Example, Inc.", CN="client-one"), dns=(VICTIM_SAN,))
    response = client.get(
        WHOAMI,
        HTTP_AUTHORIZATION=f"Bearer {access}",
        HTTP_X_SSL_CLIENT_CERT=lookalike.nginx(),
        REMOTE_ADDR="127.0.0.1",
    )
    assert_invalid_token(response, "bound to another client certificate")


def test_row12_bound_token_with_no_certificate(client, victim, mtls_settings, client_cert):
    access = bound_token(client, victim, client_cert)
    assert intake(client)["problem"] == "absent"
    response = client.get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {access}", REMOTE_ADDR="127.0.0.1")
    assert_invalid_token(response, "no client certificate was presented")
    # The same certificate from an untrusted peer is no certificate either.
    response = client.get(
        WHOAMI,
        HTTP_AUTHORIZATION=f"Bearer {access}",
        HTTP_X_SSL_CLIENT_CERT=client_cert.nginx(),
        REMOTE_ADDR=OUTSIDER,
    )
    assert_invalid_token(response, "no client certificate was presented")


# --- 13: a bound refresh token ---------------------------------------------------------------------


def test_row13_bound_refresh_token_with_another_certificate(client, make_app, mtls_settings, user):
    """RFC 8705 §4: a public client's refresh token is bound to the certificate it was issued
    with; a self-signed certificate of the attacker's gets ``invalid_grant``, no token."""
    from oauth2_provider.models import get_access_token_model

    holder, thief = self_signed("holder"), self_signed("thief")
    app = make_app(
        "none",
        client_type="public",
        grant_type="authorization-code",
        tls_client_certificate_bound_access_tokens=True,
    )
    code, verifier = authorization_code(client, app, user)
    issued = token_request(
        client,
        app,
        holder,
        data=code_grant(code, verifier),
    )
    assert issued.status_code == 200, issued.content
    before = get_access_token_model().objects.count()
    refresh = {"grant_type": "refresh_token", "refresh_token": issued.json()["refresh_token"]}
    for cert in (thief, None):
        response = token_request(client, app, cert, data=refresh)
        assert response.status_code == 400, response.content
        assert response.json()["error"] == "invalid_grant"
    assert get_access_token_model().objects.count() == before
    assert token_request(client, app, holder, data=refresh).status_code == 200
