"""Issue 14 (security review), finding 2: every registered value is bounded.

``tls_client_auth_subject_dn`` ≤ 4,096 characters, each SAN value and ``jwks_uri`` ≤ 2,048,
``jwks`` ≤ ``JWKS_MAX_BYTES`` (``django_oauth_mtls.limits``). Enforced at registration (RFC 7591
and RFC 7592: 400 ``invalid_client_metadata``), in the admin form, by ``mtls_set_client`` and by
the model's validation; a row stored over a bound before (or by raw SQL) is reported by the
system check ``oauth_mtls.W008`` and refused at the token endpoint, where it is never parsed.
"""

from __future__ import annotations

import json
import logging
import time
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from oauth2_provider.models import get_application_model

from django_oauth_mtls import matching
from django_oauth_mtls.models import MTLSClient
from tests import pki
from tests.integration.conftest import token_request
from tests.integration.test_admin import app_url, edit, form_data, inline_form
from tests.integration.test_registration import counts, management, register, registered
from tests.jwks_server import jwk_set, self_signed

pytestmark = pytest.mark.django_db

Application = get_application_model()
DN = "CN=client-one,O=Example\\, Inc.,C=DE"
#: The fixture certificate's DN, padded with spaces RFC 4514 drops: it would match if parsed.
PADDED_DN = "CN=client-one" + " " * 5000 + ",O=Example\\, Inc.,C=DE"
LONG_URI = "https://client.example/" + "a" * 2100
TLS = {"token_endpoint_auth_method": "tls_client_auth"}
SELF = {"token_endpoint_auth_method": "self_signed_tls_client_auth"}


def over(field: str, bound: int) -> str:
    return f"{field} is longer than {bound} characters"


#: (metadata, the exact error_description)
OVER_BOUND = {
    "subject_dn": (
        {**TLS, "tls_client_auth_subject_dn": "CN=" + "a" * 4094},
        over("tls_client_auth_subject_dn", 4096),
    ),
    "subject_dn_padded": (
        {**TLS, "tls_client_auth_subject_dn": PADDED_DN},
        over("tls_client_auth_subject_dn", 4096),
    ),
    "san_dns": (
        {**TLS, "tls_client_auth_san_dns": "a" * 2049},
        over("tls_client_auth_san_dns", 2048),
    ),
    "san_uri": (
        {**TLS, "tls_client_auth_san_uri": LONG_URI},
        over("tls_client_auth_san_uri", 2048),
    ),
    "san_ip": ({**TLS, "tls_client_auth_san_ip": "1" * 2049}, over("tls_client_auth_san_ip", 2048)),
    "san_email": (
        {**TLS, "tls_client_auth_san_email": "a" * 2049 + "@example.com"},
        over("tls_client_auth_san_email", 2048),
    ),
    "jwks_uri": ({**SELF, "jwks_uri": LONG_URI}, over("jwks_uri", 2048)),
    "subject_with_another_method": (
        {"tls_client_auth_san_uri": LONG_URI},
        over("tls_client_auth_san_uri", 2048),
    ),
}


@pytest.fixture
def dcr(settings, mtls_settings, client, user):
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "DCR_ENABLED": True}
    client.force_login(user)
    return client


def set_max_jwks_bytes(settings, value: int) -> None:
    settings.OAUTH2_MTLS = {**settings.OAUTH2_MTLS, "JWKS_MAX_BYTES": value}


# --- RFC 7591 / RFC 7592 -------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(OVER_BOUND))
def test_registration_refuses_a_value_over_its_bound(case, dcr, caplog):
    metadata, description = OVER_BOUND[case]
    before = counts()
    with caplog.at_level(logging.WARNING, logger="django_oauth_mtls"):
        response = register(dcr, **metadata)
    assert response.status_code == 400, response.content
    assert response.json() == {"error": "invalid_client_metadata", "error_description": description}
    assert counts() == before
    assert any(
        "registration refused" in r.getMessage() and description in r.getMessage()
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]


def test_registration_refuses_a_jwks_over_jwks_max_bytes(settings, dcr):
    document = jwk_set(self_signed())
    size = len(json.dumps(document, separators=(",", ":")).encode())
    set_max_jwks_bytes(settings, size - 1)
    response = register(dcr, **SELF, jwks=document)
    assert response.json() == {
        "error": "invalid_client_metadata",
        "error_description": f"jwks is larger than {size - 1} bytes; publish it at a jwks_uri",
    }
    set_max_jwks_bytes(settings, size)
    assert register(dcr, **SELF, jwks=document).status_code == 201


def test_registration_of_a_2_4_mb_dn_is_refused_quickly(dcr):
    huge = "CN=client-one" + " " * 2_400_000 + ",C=DE"
    started = time.perf_counter()
    response = register(dcr, **TLS, tls_client_auth_subject_dn=huge)
    elapsed = time.perf_counter() - started
    assert response.status_code == 400
    assert response.json()["error_description"] == over("tls_client_auth_subject_dn", 4096)
    assert elapsed < 0.5, elapsed
    assert huge not in matching.PARSED_DNS


@pytest.mark.parametrize(
    "metadata",
    [
        {**TLS, "tls_client_auth_subject_dn": "CN=" + "a" * 4093},
        {**TLS, "tls_client_auth_san_uri": ("https://client.example/" + "a" * 2048)[:2048]},
        {**SELF, "jwks_uri": ("https://client.example/" + "a" * 2048)[:2048]},
    ],
    ids=["subject_dn", "san_uri", "jwks_uri"],
)
def test_registration_accepts_a_value_at_its_bound(metadata, dcr):
    (field, value), *_ = [(k, v) for k, v in metadata.items() if k != "token_endpoint_auth_method"]
    assert len(value) in (4096, 2048)
    body, _app = registered(dcr, **metadata)
    assert body[field] == value


def test_update_refuses_a_value_over_its_bound_and_changes_nothing(dcr):
    body, app = registered(dcr, **TLS, tls_client_auth_subject_dn=DN)
    payload = {
        "grant_types": ["client_credentials"],
        **TLS,
        "tls_client_auth_subject_dn": PADDED_DN,
    }
    response = management(dcr, body, "put", payload)
    assert (response.status_code, response.json()["error_description"]) == (
        400,
        over("tls_client_auth_subject_dn", 4096),
    )
    assert MTLSClient.objects.get(pk=app.pk).tls_client_auth_subject_dn == DN


# --- the admin, the command, the model -------------------------------------------------------------


@pytest.fixture
def pki_app(make_app):
    return make_app(tls_client_auth_subject_dn=DN)


@pytest.mark.parametrize(
    ("field", "value", "bound"),
    [
        ("tls_client_auth_subject_dn", PADDED_DN, 4096),
        ("tls_client_auth_san_uri", LONG_URI, 2048),
    ],
)
def test_admin_refuses_a_value_over_its_bound(admin_client, pki_app, field, value, bound):
    changes = {"tls_client_auth_subject_dn": "", field: value}
    response = edit(admin_client, pki_app, **changes)
    assert response.status_code == 200
    assert inline_form(response).errors[field] == [over(field, bound)]
    assert MTLSClient.objects.get(pk=pki_app.pk).tls_client_auth_subject_dn == DN


def test_admin_refuses_a_jwks_over_jwks_max_bytes(settings, admin_client, make_app):
    document = jwk_set(self_signed())
    size = len(json.dumps(document, separators=(",", ":")).encode())
    set_max_jwks_bytes(settings, size - 1)
    app = make_app(None)
    response = edit(
        admin_client,
        app,
        token_endpoint_auth_method=SELF["token_endpoint_auth_method"],
        jwks=json.dumps(document),
    )
    assert response.status_code == 200
    assert inline_form(response).errors["jwks"] == [
        f"jwks is larger than {size - 1} bytes; publish it at a jwks_uri"
    ]
    assert not MTLSClient.objects.filter(pk=app.pk).exists()


@pytest.mark.parametrize("depth", [33, 5000, 100_000])
def test_admin_refuses_a_deeply_nested_jwks_without_a_500(admin_client, make_app, depth):
    app = make_app(None)
    data = form_data(admin_client.get(app_url("change", app.pk)))
    data.update(
        {
            "mtls-0-token_endpoint_auth_method": "self_signed_tls_client_auth",
            "mtls-0-jwks": '{"keys":' + "[" * depth + "]" * depth + "}",
        }
    )
    admin_client.raise_request_exception = False
    response = admin_client.post(app_url("change", app.pk), data)
    assert response.status_code == 200
    # First ours, then the model's (it saw no jwks), as for any jwks that is not JSON.
    assert inline_form(response).errors["jwks"][0] == "jwks nests JSON deeper than 32 levels"


def test_mtls_set_client_refuses_a_certificate_value_over_its_bound(make_app, tmp_path):
    long_dn = pki.issue(pki.name(O="x" * 5000, CN="client"), uris=(LONG_URI,))
    path = tmp_path / "long.pem"
    path.write_text(long_dn.pem)
    app = make_app(None)
    for use, field, bound in (
        ("subject_dn", "tls_client_auth_subject_dn", 4096),
        ("san_uri", "tls_client_auth_san_uri", 2048),
    ):
        with pytest.raises(CommandError) as info:
            call_command(
                "mtls_set_client",
                app.client_id,
                "--certificate",
                str(path),
                "--use",
                use,
                stdout=StringIO(),
            )
        assert (
            str(info.value) == f"the client's metadata is not valid: {field}: {over(field, bound)}"
        )
    assert not MTLSClient.objects.filter(pk=app.pk).exists()


def test_model_validation_refuses_without_parsing(make_app):
    matching.PARSED_DNS.clear()
    huge = "CN=client-one" + " " * 2_400_000 + ",C=DE"
    row = MTLSClient(application=make_app(None), **TLS, tls_client_auth_subject_dn=huge)
    started = time.perf_counter()
    with pytest.raises(ValidationError) as info:
        row.full_clean()
    assert time.perf_counter() - started < 0.5
    assert info.value.message_dict == {
        "tls_client_auth_subject_dn": [over("tls_client_auth_subject_dn", 4096)]
    }
    assert len(matching.PARSED_DNS) == 0


def test_model_validation_refuses_a_jwks_over_jwks_max_bytes(settings, make_app):
    document = jwk_set(self_signed())
    set_max_jwks_bytes(settings, 100)
    row = MTLSClient(application=make_app(None), **SELF, jwks=document)
    with pytest.raises(ValidationError) as info:
        row.full_clean()
    assert info.value.message_dict == {
        "jwks": ["jwks is larger than 100 bytes; publish it at a jwks_uri"]
    }


# --- rows already stored over a bound ----------------------------------------------------------


def store_over_bound(app, **values) -> None:
    """Write past every check, as a row written before the bounds or by raw SQL would be."""
    MTLSClient.objects.filter(pk=app.pk).update(**values)


def refusal(client, app, certificate, caplog) -> tuple[str, str]:
    """(error_description, the log line's reason and detail) of a refused token request."""
    with caplog.at_level(logging.WARNING, logger="django_oauth_mtls"):
        response = token_request(client, app, certificate)
    assert response.status_code == 401, response.content
    body = response.json()
    assert body["error"] == "invalid_client"
    # A fixed description, whatever was registered: never the value, never its length.
    assert len(body["error_description"]) < 200
    (line,) = [r.getMessage() for r in caplog.records if "reason=" in r.getMessage()]
    assert f"client_id={app.client_id} reason=" in line
    return body["error_description"], line.split("reason=", 1)[1]


def test_the_token_endpoint_refuses_a_dn_over_its_bound(
    client, make_app, mtls_settings, client_cert, caplog
):
    app = make_app(tls_client_auth_subject_dn=DN)
    assert token_request(client, app, client_cert).status_code == 200
    store_over_bound(app, tls_client_auth_subject_dn=PADDED_DN)  # parsed, it would match
    matching.PARSED_DNS.clear()
    _description, logged = refusal(client, app, client_cert, caplog)
    assert logged.startswith("subject_mismatch ")
    assert "the registered tls_client_auth_subject_dn is longer than 4096 characters" in logged
    assert len(matching.PARSED_DNS) == 0  # never parsed, never cached


def test_the_token_endpoint_refuses_a_san_over_its_bound(
    client, make_app, mtls_settings, root_ca, caplog
):
    long_san = pki.issue(pki.name(CN="long-uri"), issuer=root_ca, uris=(LONG_URI,))
    app = make_app(tls_client_auth_san_uri="https://client.example/short")
    store_over_bound(app, tls_client_auth_san_uri=LONG_URI)  # exactly the certificate's SAN
    _description, logged = refusal(client, app, long_san, caplog)
    assert logged.startswith("subject_mismatch ")
    assert "the registered tls_client_auth_san_uri is longer than 2048 characters" in logged


def test_the_token_endpoint_refuses_a_jwks_over_jwks_max_bytes(
    client, make_app, mtls_settings, caplog
):
    certificate = self_signed("self-signed-client")
    app = make_app("self_signed_tls_client_auth", jwks=jwk_set(certificate))
    assert token_request(client, app, certificate).status_code == 200
    set_max_jwks_bytes(mtls_settings, 100)  # the set was stored under a larger bound
    _description, logged = refusal(client, app, certificate, caplog)
    assert logged.startswith("jwk_set_unavailable ")
    assert "the registered jwks is larger than 100 bytes" in logged


def test_the_token_endpoint_refuses_a_jwks_uri_over_its_bound(
    client, make_app, mtls_settings, caplog
):
    from django.db import DataError, connection, transaction

    certificate = self_signed("self-signed-client")
    app = make_app("self_signed_tls_client_auth", jwks_uri="https://client.example/jwks")
    if connection.vendor != "sqlite":
        # jwks_uri is a varchar(2048): a database that enforces lengths refuses the row itself.
        with pytest.raises(DataError), transaction.atomic():
            store_over_bound(app, jwks_uri=LONG_URI)
        return
    store_over_bound(app, jwks_uri=LONG_URI)
    _description, logged = refusal(client, app, certificate, caplog)
    assert logged.startswith("jwk_set_unavailable ")
    assert "the registered jwks_uri is longer than 2048 characters" in logged
    assert "fetch" not in " ".join(r.getMessage() for r in caplog.records)  # nothing fetched


def test_system_check_W008_reports_rows_over_a_bound(settings, make_app):
    from django_oauth_mtls.checks import check_stored_values

    pki_app = make_app(tls_client_auth_subject_dn=DN)
    self_app = make_app("self_signed_tls_client_auth", jwks=jwk_set(self_signed()))
    fine = make_app(tls_client_auth_san_dns="client-one.example.com")
    assert check_stored_values(databases=["default"]) == []
    store_over_bound(pki_app, tls_client_auth_subject_dn=PADDED_DN)
    set_max_jwks_bytes(settings, 100)
    (message,) = check_stored_values(databases=["default"])
    assert message.id == "oauth_mtls.W008"
    assert f"client_id={pki_app.client_id} (tls_client_auth_subject_dn" in message.msg
    assert f"client_id={self_app.client_id} (jwks" in message.msg
    assert fine.client_id not in message.msg
    assert PADDED_DN not in message.msg
    assert "mtls_set_client" in message.hint


def test_system_check_W008_runs_only_when_databases_are_checked(make_app):
    from django_oauth_mtls.checks import check_stored_values

    app = make_app(tls_client_auth_subject_dn=DN)
    store_over_bound(app, tls_client_auth_subject_dn=PADDED_DN)
    with CaptureQueriesContext(connection) as queries:
        assert check_stored_values(databases=None) == []
    assert len(queries) == 0
    err = StringIO()
    call_command("check", stderr=err, stdout=StringIO())
    assert "oauth_mtls.W008" not in err.getvalue()
    call_command("check", "--database", "default", stderr=err, stdout=StringIO())
    assert "oauth_mtls.W008" in err.getvalue()
