"""Remote resource servers (issue #8; R8705-3.2-2, R8705-7.2-1; pitfalls P11, P18).

The AS runs in a subprocess with its own database (``tests/as_server.py``): the example project
behind ``runserver_mtls``, so the RS's introspection call carries a real client certificate over
real TLS. The RS is this process (pytest-django's database) in DOT's resource-server mode,
authenticating to the AS with its certificate alone. Branches the AS cannot produce (``cnf``
members we do not understand, odd ``exp``) use a stubbed ``requests.post``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth import get_user_model
from django.utils import timezone
from oauth2_provider.models import get_access_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings

from django_oauth_mtls.models import AccessTokenBinding
from django_oauth_mtls.oauth2_validators import MTLSOAuth2Validator, MTLSValidatorMixin
from django_oauth_mtls.resource_server import (
    INTROSPECTION_TIMEOUT_SECONDS,
    UNSUPPORTED_CNF_DESCRIPTION,
    ResourceServerMixin,
    UnsupportedConfirmation,
    confirmation_thumbprint,
)
from tests import pki
from tests.as_server import AuthorizationServer, authorization_server

AccessToken = get_access_token_model()

DECORATED = "/test/decorated/"
WHOAMI = "/api/whoami/"
PLAIN_SECRET = "plain-client-secret"


class LocalRSValidator(MTLSValidatorMixin, ResourceServerMixin, OAuth2Validator):  # type: ignore[misc]
    """What ``MTLSOAuth2Validator`` is once ``MTLSValidatorMixin`` includes the RS mixin."""


#: The standard validator as soon as it includes ResourceServerMixin, the local one until then.
VALIDATOR = (
    "django_oauth_mtls.oauth2_validators.MTLSOAuth2Validator"
    if issubclass(MTLSOAuth2Validator, ResourceServerMixin)
    else f"{__name__}.LocalRSValidator"
)


# --- certificates and files ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def rs_cert(root_ca: pki.Issued) -> pki.Issued:
    return pki.issue(
        pki.name(O="Example, Inc.", CN="resource-server"), issuer=root_ca, dns=("rs.example.com",)
    )


@pytest.fixture(scope="module")
def other_cert(root_ca: pki.Issued) -> pki.Issued:
    return pki.issue(
        pki.name(O="Example, Inc.", CN="client-two"),
        issuer=root_ca,
        dns=("client-two.example.com",),
    )


@pytest.fixture(scope="module")
def rs_files(tmp_path_factory: pytest.TempPathFactory, rs_cert: pki.Issued) -> tuple[str, str]:
    directory = tmp_path_factory.mktemp("rs")
    cert, key = directory / "rs.pem", directory / "rs-key.pem"
    cert.write_text(rs_cert.pem)
    key.write_text(rs_cert.key_pem)
    return str(cert), str(key)


@pytest.fixture(scope="module")
def as_server(tmp_path_factory: pytest.TempPathFactory, root_ca: pki.Issued) -> Any:
    apps = [
        {"name": "rs", "method": "tls_client_auth", "san_dns": "rs.example.com"},
        {
            "name": "client",
            "method": "tls_client_auth",
            "san_dns": "client-one.example.com",
            "bound": True,
        },
        {"name": "plain", "method": None, "secret": PLAIN_SECRET},
    ]
    with authorization_server(
        tmp_path_factory.mktemp("as"), trusted_ca=root_ca, apps=apps
    ) as server:
        yield server


def rs_configuration(
    settings: Any, introspection_url: str, rs_files: tuple[str, str], **mtls: Any
) -> None:
    """This process as a remote RS: DOT's resource-server mode, our certificate to the AS."""
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "OAUTH2_VALIDATOR_CLASS": VALIDATOR,
        "RESOURCE_SERVER_INTROSPECTION_URL": introspection_url,
    }
    settings.OAUTH2_MTLS = {
        "CERTIFICATE_SOURCE": "nginx",
        "TRUSTED_PROXIES": ["127.0.0.1/32"],
        "RESOURCE_SERVER_CERTIFICATE": rs_files,
        **mtls,
    }


@pytest.fixture
def rs(db: Any, settings: Any, as_server: AuthorizationServer, rs_files: tuple[str, str]) -> Any:
    rs_configuration(
        settings,
        as_server.introspection_url,
        rs_files,
        RESOURCE_SERVER_CA_BUNDLE=str(as_server.server_ca_file),
        RESOURCE_SERVER_CLIENT_ID=as_server.client_ids["rs"],
    )
    return settings


@pytest.fixture
def introspections(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every ``requests.post`` the RS makes, passed through to the real AS."""
    calls: list[dict[str, Any]] = []
    real_post = requests.post

    def spy(url: str, **kwargs: Any) -> Any:
        calls.append({"url": url, **kwargs})
        return real_post(url, **kwargs)

    monkeypatch.setattr(requests, "post", spy)
    return calls


def get(client: Any, token: str, cert: pki.Issued | None = None, url: str = DECORATED) -> Any:
    extra = {"HTTP_AUTHORIZATION": f"Bearer {token}", "REMOTE_ADDR": "127.0.0.1"}
    if cert is not None:
        extra["HTTP_X_SSL_CLIENT_CERT"] = cert.nginx()
    return client.get(url, **extra)


def assert_invalid_token(response: Any, fragment: str = "") -> None:
    assert response.status_code == 401, response.content
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith("Bearer") and 'error="invalid_token"' in challenge, challenge
    assert fragment in challenge, challenge


def cached(token: str) -> Any:
    checksum = hashlib.sha256(token.encode()).hexdigest()
    return (
        AccessToken.objects.select_related("mtls_binding").filter(token_checksum=checksum).first()
    )


def binding(token: str) -> str | None:
    row = AccessTokenBinding.objects.filter(
        access_token__token_checksum=hashlib.sha256(token.encode()).hexdigest()
    ).first()
    return row.x5t_s256 if row else None


def wait_for_line(server: AuthorizationServer, fragment: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(server.lines):
            if fragment in line:
                return line
        time.sleep(0.05)
    raise AssertionError(f"{fragment!r} not in the AS's output:\n{server.output}")


# --- against the real AS ----------------------------------------------------------------------------


def test_bound_token_works_at_the_rs_with_its_certificate_R8705_3_2_2(
    client, rs, as_server, client_cert, introspections
):
    body = as_server.token("client", client_cert)
    token = body["access_token"]
    assert get(client, token, client_cert).status_code == 200
    assert len(introspections) == 1
    # The binding is cached with the token, in the RS's own database.
    row = cached(token)
    assert row is not None and row.application is None
    assert binding(token) == client_cert.x5t_s256
    # Cached: the next request does not ask the AS again, and the binding is still enforced.
    assert get(client, token, client_cert).status_code == 200
    response = get(client, token, client_cert, url=WHOAMI)
    assert response.status_code == 200
    assert response.json() == {"client_id": None, "x5t#S256": client_cert.x5t_s256}
    assert len(introspections) == 1


def test_cache_never_outlives_the_token(client, rs, as_server, client_cert):
    token = as_server.token("client", client_cert)["access_token"]
    introspected = as_server.post(
        "/o/introspect/", {"token": token, "client_id": as_server.client_ids["client"]}, client_cert
    ).json()
    assert introspected["active"] is True and introspected["cnf"] == {
        "x5t#S256": client_cert.x5t_s256
    }
    assert get(client, token, client_cert).status_code == 200
    assert cached(token).expires <= dt.datetime.fromtimestamp(introspected["exp"], tz=dt.UTC)


def test_stolen_bound_token_is_refused(client, rs, as_server, client_cert, other_cert):
    token = as_server.token("client", client_cert)["access_token"]
    # First use by the thief: introspected, cached bound, refused.
    assert_invalid_token(get(client, token), "no client certificate")
    assert binding(token) == client_cert.x5t_s256
    assert_invalid_token(get(client, token, other_cert), "another client certificate")
    assert_invalid_token(get(client, token, other_cert, url=WHOAMI))
    # The holder of the key is not locked out by the thief's attempts.
    assert get(client, token, client_cert).status_code == 200


def test_rs_authenticates_with_its_certificate_only(
    client, rs, as_server, client_cert, rs_cert, introspections
):
    assert oauth2_settings.RESOURCE_SERVER_AUTH_TOKEN is None
    assert oauth2_settings.RESOURCE_SERVER_INTROSPECTION_CREDENTIALS is None
    token = as_server.token("client", client_cert)["access_token"]
    assert get(client, token, client_cert).status_code == 200
    (call,) = introspections
    assert call["data"] == {"token": token, "client_id": as_server.client_ids["rs"]}
    assert not call["headers"]  # no Authorization: no secret, no bearer token
    assert call["cert"] == rs.OAUTH2_MTLS["RESOURCE_SERVER_CERTIFICATE"]
    assert call["verify"] == str(as_server.server_ca_file)
    assert call["timeout"] == INTROSPECTION_TIMEOUT_SECONDS
    line = wait_for_line(
        as_server, f"client authenticated by certificate: client_id={as_server.client_ids['rs']}"
    )
    assert "method=tls_client_auth" in line and rs_cert.x5t_s256 in line


def test_unbound_token_is_cached_unbound(client, rs, as_server, client_cert):
    token = as_server.token("plain", auth=(as_server.client_ids["plain"], PLAIN_SECRET))[
        "access_token"
    ]
    assert get(client, token).status_code == 200
    assert cached(token) is not None and binding(token) is None
    assert get(client, token, client_cert).status_code == 200  # a certificate does not hurt (P14)
    rs.OAUTH2_MTLS = {**rs.OAUTH2_MTLS, "REQUIRE_BOUND_TOKENS": True}
    assert_invalid_token(
        get(client, token, client_cert), "certificate-bound access token is required"
    )


def test_revocation_is_seen_after_the_cache_window(client, rs, as_server, client_cert):
    token = as_server.token("client", client_cert)["access_token"]
    assert get(client, token, client_cert).status_code == 200
    revoked = as_server.post(
        "/o/revoke_token/",
        {"token": token, "client_id": as_server.client_ids["client"]},
        client_cert,
    )
    assert revoked.status_code == 200, revoked.text
    # DOT's documented semantics: the cached row keeps answering until it expires...
    assert get(client, token, client_cert).status_code == 200
    # ...then the AS is asked again and says inactive.
    AccessToken.objects.filter(pk=cached(token).pk).update(
        expires=timezone.now() - dt.timedelta(seconds=1)
    )
    assert_invalid_token(get(client, token, client_cert))


def test_as_refuses_a_client_id_the_certificate_does_not_match(
    client, rs, as_server, client_cert, introspections
):
    rs.OAUTH2_MTLS = {**rs.OAUTH2_MTLS, "RESOURCE_SERVER_CLIENT_ID": as_server.client_ids["client"]}
    token = as_server.token("client", client_cert)["access_token"]
    assert_invalid_token(get(client, token, client_cert))
    assert len(introspections) == 1 and cached(token) is None


def test_the_as_certificate_is_verified_with_the_ca_bundle(
    client, rs, as_server, client_cert, ca_file, caplog
):
    rs.OAUTH2_MTLS = {**rs.OAUTH2_MTLS, "RESOURCE_SERVER_CA_BUNDLE": ca_file}  # not the AS's CA
    token = as_server.token("client", client_cert)["access_token"]
    with caplog.at_level(logging.ERROR, logger="django_oauth_mtls.resource_server"):
        assert_invalid_token(get(client, token, client_cert))
    assert cached(token) is None
    assert any("failed POST" in record.getMessage() for record in caplog.records)
    assert token not in caplog.text


def test_without_a_certificate_or_dot_credentials_nothing_is_introspected(
    client, rs, as_server, client_cert, introspections
):
    """DOT's rule stands: no way to authenticate, no introspection."""
    rs.OAUTH2_MTLS = {k: v for k, v in rs.OAUTH2_MTLS.items() if k != "RESOURCE_SERVER_CERTIFICATE"}
    token = as_server.token("client", client_cert)["access_token"]
    assert_invalid_token(get(client, token, client_cert))
    assert introspections == []


# --- stubbed AS: the answers a well-behaved AS does not give ---------------------------------------------


class StubResponse:
    def __init__(self, content: Any, status_code: int = 200) -> None:
        self.content, self.status_code, self.reason = content, status_code, "stub"

    def json(self) -> Any:
        if isinstance(self.content, Exception):
            raise self.content
        return self.content


STUB_URL = "https://as.example/o/introspect/"
TOKEN = "stub-access-token-value"
CHECKSUM = hashlib.sha256(TOKEN.encode()).hexdigest()
X5T = base64.urlsafe_b64encode(hashlib.sha256(b"some certificate").digest()).rstrip(b"=").decode()


@pytest.fixture
def stub(db: Any, settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """The RS with ``requests.post`` answering ``stub.content``; ``stub.calls`` records the calls."""
    cert, key = tmp_path / "rs.pem", tmp_path / "rs-key.pem"
    rs_configuration(
        settings, STUB_URL, (str(cert), str(key)), RESOURCE_SERVER_CLIENT_ID="rs-client"
    )

    class Stub:
        content: Any = None
        status_code = 200
        calls: list[dict[str, Any]] = []

        def answer(self, **claims: Any) -> None:
            self.content = {
                "active": True,
                "scope": "read",
                "exp": int(time.time()) + 3600,
                **claims,
            }

    state = Stub()
    state.calls = []

    def post(url: str, **kwargs: Any) -> StubResponse:
        state.calls.append({"url": url, **kwargs})
        return StubResponse(state.content, state.status_code)

    monkeypatch.setattr(requests, "post", post)
    state.settings = settings  # type: ignore[attr-defined]
    return state


def expired_cached_row(x5t: str | None) -> Any:
    row = AccessToken.objects.create(
        token=TOKEN,
        token_checksum=CHECKSUM,
        application=None,
        scope="read",
        expires=timezone.now() - dt.timedelta(minutes=1),
    )
    if x5t:
        AccessTokenBinding.objects.create(access_token=row, x5t_s256=x5t)
    return row


NON_CANONICAL = X5T[:-1] + ("B" if X5T[-1] != "B" else "C")  # same bytes, non-zero padding bits


@pytest.mark.parametrize(
    "cnf",
    [
        {"jkt": X5T},
        {"x5t#S256": X5T, "jkt": X5T},
        {"x5t": X5T},
        {},
        None,
        "x5t#S256",
        [X5T],
        {"x5t#S256": X5T[:42]},
        {"x5t#S256": X5T + "A"},
        {"x5t#S256": X5T[:-2] + "+/"},
        {"x5t#S256": X5T + "="},
        {"x5t#S256": 123},
        {"x5t#S256": NON_CANONICAL},
    ],
    ids=[
        "jkt-only",
        "x5t-and-jkt",
        "sha1-x5t",
        "empty",
        "null",
        "string",
        "list",
        "short",
        "long",
        "not-base64url",
        "padded",
        "number",
        "non-canonical",
    ],
)
def test_unknown_cnf_is_refused_never_unbound_R8705_7_2_P18(client, stub, client_cert, cnf, caplog):
    assert NON_CANONICAL != X5T
    expired_cached_row(None)  # an earlier, now expired, cached row for the same token
    stub.answer(cnf=cnf)
    with caplog.at_level(logging.WARNING, logger="django_oauth_mtls.resource_server"):
        assert_invalid_token(get(client, TOKEN, client_cert), UNSUPPORTED_CNF_DESCRIPTION)
    assert not AccessToken.objects.filter(token_checksum=CHECKSUM).exists()  # not cached at all
    assert not AccessTokenBinding.objects.exists()
    assert any("token refused" in record.getMessage() for record in caplog.records)
    # Not even where binding is not required, nor for the DRF path.
    assert_invalid_token(get(client, TOKEN, client_cert, url="/test/mtls-any/"))


def test_confirmation_thumbprint():
    assert confirmation_thumbprint({"active": True}) is None
    assert confirmation_thumbprint({"cnf": {"x5t#S256": X5T}}) == X5T
    with pytest.raises(UnsupportedConfirmation, match="jkt"):
        confirmation_thumbprint({"cnf": {"jkt": "x"}})


def test_no_cnf_removes_an_earlier_binding(client, stub):
    expired_cached_row(X5T)
    stub.answer()
    assert get(client, TOKEN).status_code == 200
    assert cached(TOKEN) is not None and binding(TOKEN) is None


def test_a_cnf_on_re_introspection_binds_the_cached_row(client, stub, client_cert):
    expired_cached_row(None)
    stub.answer(cnf={"x5t#S256": client_cert.x5t_s256})
    assert_invalid_token(get(client, TOKEN), "no client certificate")
    assert binding(TOKEN) == client_cert.x5t_s256
    assert get(client, TOKEN, client_cert).status_code == 200


def test_the_binding_is_enforced_without_an_extra_query(
    client, stub, client_cert, django_assert_max_num_queries
):
    stub.answer(cnf={"x5t#S256": client_cert.x5t_s256})
    assert get(client, TOKEN, client_cert).status_code == 200
    with django_assert_max_num_queries(1):  # the cached token with its binding
        assert get(client, TOKEN, client_cert).status_code == 200


@pytest.mark.parametrize(
    ("exp_in", "expected_in"),
    [(3600, 60), (30, 30), (None, 60)],
    ids=["capped-by-caching-seconds", "token-expires-first", "no-exp"],
)
def test_cache_lifetime_is_min_of_exp_and_caching_seconds(client, stub, exp_in, expected_in):
    oauth2 = {**stub.settings.OAUTH2_PROVIDER, "RESOURCE_SERVER_TOKEN_CACHING_SECONDS": 60}
    stub.settings.OAUTH2_PROVIDER = oauth2
    now = time.time()
    stub.answer()
    if exp_in is None:
        del stub.content["exp"]
    else:
        stub.content["exp"] = int(now) + exp_in
    assert get(client, TOKEN).status_code == 200
    remaining = cached(TOKEN).expires.timestamp() - now
    assert expected_in - 2 <= remaining <= expected_in + 1


@pytest.mark.parametrize(
    "answer",
    [
        {"active": False},
        {"active": "true", "scope": "read"},
        {"active": True, "scope": "read", "exp": "tomorrow"},
        {"active": True, "scope": "read", "aud": {"not": "a list"}},
        ["active"],
        ValueError("not JSON"),
    ],
    ids=[
        "inactive",
        "active-not-boolean",
        "exp-not-a-number",
        "aud-malformed",
        "not-an-object",
        "not-json",
    ],
)
def test_answers_that_are_not_an_active_token(client, stub, answer):
    stub.content = answer
    assert_invalid_token(get(client, TOKEN))
    assert not AccessToken.objects.exists()


def test_as_error_status_refuses(client, stub):
    stub.answer()
    stub.status_code = 401
    assert_invalid_token(get(client, TOKEN))
    assert not AccessToken.objects.exists()


def test_introspection_request_shape(client, stub):
    stub.answer(cnf={"x5t#S256": X5T})
    get(client, TOKEN)
    (call,) = stub.calls
    assert call["url"] == STUB_URL
    assert call["data"] == {"token": TOKEN, "client_id": "rs-client"}
    assert call["headers"] is None
    assert call["cert"] == stub.settings.OAUTH2_MTLS["RESOURCE_SERVER_CERTIFICATE"]
    assert call["verify"] is True  # no RESOURCE_SERVER_CA_BUNDLE: the system's CAs
    assert call["timeout"] == INTROSPECTION_TIMEOUT_SECONDS


def test_the_certificate_wins_over_dot_credentials(client, stub):
    """A secret alongside the certificate would be a second method (RFC 6749 §2.3)."""
    stub.settings.OAUTH2_PROVIDER = {
        **stub.settings.OAUTH2_PROVIDER,
        "RESOURCE_SERVER_INTROSPECTION_CREDENTIALS": ("rs-client", "secret"),
        "RESOURCE_SERVER_AUTH_TOKEN": "bearer-for-introspection",
    }
    stub.answer()
    assert get(client, TOKEN).status_code == 200
    assert stub.calls[0]["headers"] is None
    assert stub.calls[0]["data"] == {"token": TOKEN, "client_id": "rs-client"}


def test_dot_credentials_without_a_certificate_still_store_cnf(client, stub, client_cert):
    stub.settings.OAUTH2_MTLS = {
        k: v for k, v in stub.settings.OAUTH2_MTLS.items() if k != "RESOURCE_SERVER_CERTIFICATE"
    }
    stub.settings.OAUTH2_PROVIDER = {
        **stub.settings.OAUTH2_PROVIDER,
        "RESOURCE_SERVER_INTROSPECTION_CREDENTIALS": ("rs-client", "secret"),
    }
    stub.answer(cnf={"x5t#S256": client_cert.x5t_s256})
    assert_invalid_token(get(client, TOKEN), "no client certificate")
    (call,) = stub.calls
    assert call["headers"] == {
        "Authorization": "Basic " + base64.b64encode(b"rs-client:secret").decode()
    }
    assert call["data"] == {"token": TOKEN} and call["cert"] is None
    assert binding(TOKEN) == client_cert.x5t_s256


def test_certificate_without_client_id_does_not_introspect(client, stub, caplog):
    stub.settings.OAUTH2_MTLS = {
        k: v for k, v in stub.settings.OAUTH2_MTLS.items() if k != "RESOURCE_SERVER_CLIENT_ID"
    }
    stub.answer()
    with caplog.at_level(logging.ERROR, logger="django_oauth_mtls.resource_server"):
        assert_invalid_token(get(client, TOKEN))
    assert stub.calls == []
    assert "RESOURCE_SERVER_CLIENT_ID" in caplog.text


def test_username_creates_the_user(client, stub):
    stub.answer(username="bob")
    assert get(client, TOKEN).status_code == 200
    assert cached(TOKEN).user == get_user_model().objects.get(username="bob")


def test_aud_restricts_the_cached_token(client, stub):
    stub.answer(aud="https://other-rs.example/")
    assert_invalid_token(get(client, TOKEN), "not valid for this resource")
    assert cached(TOKEN).resource == ["https://other-rs.example/"]


def test_outside_resource_server_mode_dot_is_unchanged(client, stub):
    stub.settings.OAUTH2_PROVIDER = {
        k: v
        for k, v in stub.settings.OAUTH2_PROVIDER.items()
        if k != "RESOURCE_SERVER_INTROSPECTION_URL"
    }
    stub.answer()
    assert_invalid_token(get(client, TOKEN))
    assert stub.calls == []
