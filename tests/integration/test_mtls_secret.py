"""Issue 14 (security review), finding 1: "no secret to steal".

DOT gives every application a ``client_secret``. A client whose method is ``tls_client_auth`` or
``self_signed_tls_client_auth`` holds a random secret of DOT's usual length, stored hashed and
never shown — never blank (an empty secret matches an empty password) and never one somebody
has seen. Each path that makes a client an mTLS client is tested: RFC 7591 registration, an RFC
7592 update, the admin's add and change pages, ``manage.py mtls_set_client`` and the model.
"""

from __future__ import annotations

import json
from io import StringIO
from typing import Any, ClassVar

import pytest
from django.contrib.auth.hashers import check_password, identify_hasher
from django.core.exceptions import ValidationError
from django.core.management import call_command
from oauth2_provider.models import get_application_model

from django_oauth_mtls.models import MTLSClient
from tests import pki
from tests.integration.conftest import SECRET
from tests.integration.test_admin import app_url, edit, form_data, inline_form, page_text
from tests.integration.test_registration import management, register, registered
from tests.jwks_server import jwk_set, self_signed

pytestmark = pytest.mark.django_db

Application = get_application_model()
DN = "CN=client-one,O=Example\\, Inc.,C=DE"
SECRET_LENGTH = 128  # DOT's CLIENT_SECRET_GENERATOR_LENGTH


class RecordingSecrets:
    """DOT's secret generator, remembering every secret it made (DOT's own length)."""

    made: ClassVar[list[str]] = []

    def hash(self) -> str:
        from oauth2_provider.generators import ClientSecretGenerator

        secret: str = ClientSecretGenerator().hash()
        self.made.append(secret)
        return secret


@pytest.fixture
def recorded(settings) -> list[str]:
    RecordingSecrets.made = []
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "CLIENT_SECRET_GENERATOR_CLASS": f"{__name__}.RecordingSecrets",
    }
    return RecordingSecrets.made


@pytest.fixture
def dcr(settings, mtls_settings, client, user):
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "DCR_ENABLED": True}
    client.force_login(user)
    return client


def assert_unknown_secret(app: Any, *known: str) -> str:
    """The application's secret is non-empty, hashed, and none of ``known`` verifies."""
    app.refresh_from_db()
    assert app.client_secret, "an mTLS client must not hold a blank secret"
    identify_hasher(app.client_secret)  # raises ValueError when stored in clear
    assert app.hash_client_secret
    for secret in known:
        assert not check_password(secret, app.client_secret), "a known secret still verifies"
        assert app.client_secret != secret
    return str(app.client_secret)


# --- RFC 7591 / RFC 7592 -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["tls_client_auth", "self_signed_tls_client_auth"])
def test_registration_replaces_the_secret_dot_generated(method, recorded, dcr):
    metadata: dict[str, Any] = {"token_endpoint_auth_method": method}
    if method == "tls_client_auth":
        metadata["tls_client_auth_subject_dn"] = DN
    else:
        metadata["jwks"] = jwk_set(self_signed())
    body, app = registered(dcr, **metadata)
    assert "client_secret" not in body
    assert "client_secret_expires_at" not in body
    dot_secret = recorded[0]  # the Application's default, in DOT's response before we drop it
    assert len(dot_secret) == SECRET_LENGTH
    assert_unknown_secret(app, dot_secret)
    # The new secret is one of DOT's generator's, so it has DOT's length.
    assert any(check_password(secret, app.client_secret) for secret in recorded[1:])


def test_update_from_a_secret_to_an_mtls_method_invalidates_the_old_secret(dcr):
    body, app = registered(dcr)
    old = body["client_secret"]
    assert check_password(old, Application.objects.get(pk=app.pk).client_secret)
    payload = {
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_subject_dn": DN,
    }
    response = management(dcr, body, "put", payload)
    assert response.status_code == 200, response.content
    assert "client_secret" not in response.json()
    assert_unknown_secret(app, old)
    read = management(dcr, response.json()).json()
    assert "client_secret" not in read


def test_update_between_mtls_methods_keeps_the_unknown_secret(dcr):
    body, app = registered(
        dcr, token_endpoint_auth_method="tls_client_auth", tls_client_auth_subject_dn=DN
    )
    before = assert_unknown_secret(app)
    payload = {
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "self_signed_tls_client_auth",
        "jwks": jwk_set(self_signed()),
    }
    response = management(dcr, body, "put", payload)
    assert response.status_code == 200, response.content
    assert "client_secret" not in response.json()
    assert assert_unknown_secret(app) == before  # no needless re-hash


def test_a_secret_method_still_gets_its_secret(dcr):
    response = register(dcr, token_endpoint_auth_method="client_secret_post")
    assert response.status_code == 201
    body = response.json()
    app = Application.objects.get(client_id=body["client_id"])
    assert check_password(body["client_secret"], app.client_secret)


# --- the admin --------------------------------------------------------------------------------


@pytest.mark.parametrize("hashed", [True, False], ids=["hash-checked", "hash-unchecked"])
def test_admin_add_page_never_keeps_the_secret_it_showed(admin_client, hashed):
    page = admin_client.get(app_url("add"))
    data = form_data(page)
    shown = data["client_secret"]
    assert len(shown) == SECRET_LENGTH  # DOT shows its generated secret on the add page
    # The admin is told what happens to it when an mTLS method is chosen below.
    assert "replaced on save by a random, hashed secret" in page_text(page)
    data.update(
        {
            "name": "added",
            "client_type": "confidential",
            "authorization_grant_type": "client-credentials",
            "mtls-0-token_endpoint_auth_method": "tls_client_auth",
            "mtls-0-tls_client_auth_san_dns": "client-one.example.com",
        }
    )
    if not hashed:
        data.pop("hash_client_secret", None)  # an unchecked box is not posted
    response = admin_client.post(app_url("add"), data)
    assert response.status_code == 302, inline_form(response).errors
    assert_unknown_secret(Application.objects.get(name="added"), shown)


def test_admin_change_to_an_mtls_method_replaces_the_secret(admin_client, make_app):
    app = make_app(None)  # a secret client, its secret stored in clear (hash_client_secret off)
    response = edit(
        admin_client,
        app,
        token_endpoint_auth_method="tls_client_auth",
        tls_client_auth_san_dns="client-one.example.com",
    )
    assert response.status_code == 302, inline_form(response).errors
    assert_unknown_secret(app, SECRET)


def test_admin_change_from_client_secret_basic_row_to_mtls(admin_client, make_app):
    app = make_app("client_secret_basic")
    response = edit(
        admin_client,
        app,
        token_endpoint_auth_method="self_signed_tls_client_auth",
        jwks=json.dumps(jwk_set(self_signed())),
    )
    assert response.status_code == 302, inline_form(response).errors
    assert_unknown_secret(app, SECRET)


def test_admin_shows_no_secret_for_an_mtls_client(admin_client, make_app):
    app = make_app(tls_client_auth_subject_dn=DN)
    stored = assert_unknown_secret(app, SECRET)
    response = admin_client.get(app_url("change", app.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="client_secret"' not in html
    assert 'name="hash_client_secret"' not in html
    assert stored not in html
    text = page_text(response)
    assert (
        "This client authenticates with its certificate. It holds a random, hashed secret that "
        "was never shown and authenticates nothing"
    ) in text
    # Saving the page unchanged keeps that secret (nothing to rotate) and the client.
    response = admin_client.post(app_url("change", app.pk), form_data(response))
    assert response.status_code == 302, response.context and inline_form(response).errors
    assert assert_unknown_secret(app, SECRET) == stored


def test_admin_shows_the_secret_field_again_after_leaving_mtls(admin_client, make_app):
    app = make_app(tls_client_auth_subject_dn=DN)
    response = edit(
        admin_client,
        app,
        token_endpoint_auth_method="client_secret_basic",
        tls_client_auth_subject_dn="",
    )
    assert response.status_code == 302, inline_form(response).errors
    html = admin_client.get(app_url("change", app.pk)).content.decode()
    assert 'name="client_secret"' in html  # the operator can now set a secret to hand out


# --- the command and the model -----------------------------------------------------------------


@pytest.mark.parametrize("existing", [None, "client_secret_basic"])
def test_mtls_set_client_replaces_the_secret(existing, make_app, client_cert, tmp_path):
    app = make_app(existing)
    path = tmp_path / "client.pem"
    path.write_text(client_cert.pem)
    call_command(
        "mtls_set_client",
        app.client_id,
        "--certificate",
        str(path),
        "--use",
        "subject_dn",
        stdout=StringIO(),
    )
    stored = assert_unknown_secret(app, SECRET)
    # Run again (a new certificate for the same client): the secret is not touched.
    call_command(
        "mtls_set_client",
        app.client_id,
        "--certificate",
        str(path),
        "--use",
        "san_dns",
        stdout=StringIO(),
    )
    assert assert_unknown_secret(app, SECRET) == stored


def test_model_save_is_the_one_place(make_app):
    app = make_app(None)
    row = MTLSClient.objects.create(
        application=app,
        token_endpoint_auth_method="self_signed_tls_client_auth",
        jwks=jwk_set(self_signed()),
    )
    stored = assert_unknown_secret(app, SECRET)
    row.token_endpoint_auth_method = "tls_client_auth"
    row.tls_client_auth_san_dns = "client-one.example.com"
    row.save()
    assert assert_unknown_secret(app) == stored


@pytest.mark.parametrize(
    ("secret", "hashed"),
    [("", False), ("", True), (SECRET, True), ("md5$salt$0123456789abcdef", False)],
    ids=["blank", "blank-hash-flag", "in-clear", "hash-compared-in-clear"],
)
def test_a_secret_someone_may_know_is_replaced_on_the_next_save(make_app, secret, hashed):
    """Written past save() (QuerySet.update, raw SQL): the next save of the row fixes it."""
    app = make_app(tls_client_auth_subject_dn=DN)
    Application.objects.filter(pk=app.pk).update(client_secret=secret, hash_client_secret=hashed)
    MTLSClient.objects.get(pk=app.pk).save()
    assert_unknown_secret(app, secret)


def test_hs256_needs_a_shared_secret_so_it_is_no_mtls_client(make_app):
    app = make_app(None)
    app.algorithm = "HS256"
    app.save()
    row = MTLSClient(
        application=app, token_endpoint_auth_method="tls_client_auth", tls_client_auth_subject_dn=DN
    )
    with pytest.raises(ValidationError) as info:
        row.full_clean()
    assert info.value.message_dict["token_endpoint_auth_method"] == [
        "HS256 signs ID tokens with the client secret; an mTLS client holds no usable secret. "
        "Choose RS256 or no algorithm."
    ]


def test_the_pki_client_still_authenticates(client, make_app, mtls_settings, client_cert):
    from tests.integration.conftest import token_request

    app = make_app(tls_client_auth_subject_dn=DN)
    assert token_request(client, app, client_cert).status_code == 200
    assert token_request(client, app, pki.issue(pki.name(CN="x"))).status_code == 401
