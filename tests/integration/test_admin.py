"""The admin as an operator uses it (Django's test client, a superuser): the mTLS inline on DOT's
Application admin, its certificate helper, the "Check a certificate" page (the reason codes the
token endpoint logs), and bound tokens on DOT's AccessToken admin.

``test_admin_under_swapped_application`` runs ``test_swapped_application_admin`` in a pytest
subprocess with ``--ds=tests.settings_swapped`` (Application swapped to
``swapped.SwappedApplication``); in this process that test skips.
"""

from __future__ import annotations

import datetime as dt
import re
from html import unescape
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.forms import CheckboxInput, FileInput
from django.urls import reverse
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_application_model

from django_oauth_mtls.models import AccessTokenBinding, MTLSClient
from tests import pki
from tests.integration.conftest import run_pytest_swapped

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SWAPPED_MODEL = "swapped.SwappedApplication"
DN = "CN=client-one,O=Example\\, Inc.,C=DE"


def app_url(name: str, *args) -> str:
    opts = get_application_model()._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{name}", args=args)


def token_url(name: str, *args) -> str:
    opts = get_access_token_model()._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{name}", args=args)


def form_data(response) -> dict:
    """What a browser would post back from an admin change form, unchanged."""
    context = response.context
    forms = [context["adminform"].form]
    for inline in context["inline_admin_formsets"]:
        forms.append(inline.formset.management_form)
        forms.extend(inline.formset.forms)
    data: dict = {}
    for form in forms:
        for field in form:
            value = field.value()
            if isinstance(field.field.widget, CheckboxInput):
                if value:
                    data[field.html_name] = "on"
            elif isinstance(field.field.widget, FileInput):
                continue
            elif isinstance(value, list | tuple):
                data[field.html_name] = [str(item) for item in value]
            else:
                data[field.html_name] = "" if value is None else str(value)
    return data


def inline_form(response):
    return response.context["inline_admin_formsets"][0].formset.forms[0]


def page_text(response) -> str:
    return unescape(re.sub(r"\s+", " ", response.content.decode()))


@pytest.fixture
def pki_app(make_app):
    return make_app(tls_client_auth_subject_dn=DN, tls_client_certificate_bound_access_tokens=True)


def edit(admin_client, app, **changes):
    """Open the change page, apply ``changes`` (inline names without the ``mtls-0-`` prefix)."""
    data = form_data(admin_client.get(app_url("change", app.pk)))
    for name, value in changes.items():
        key = name if name.startswith(("mtls-", "_")) or name in data else f"mtls-0-{name}"
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return admin_client.post(app_url("change", app.pk), data)


# --- the inline -------------------------------------------------------------------------------


def test_inline_renders_on_the_add_page(admin_client):
    response = admin_client.get(app_url("add"))
    assert response.status_code == 200
    text = response.content.decode()
    for name in (
        "token_endpoint_auth_method",
        "tls_client_auth_subject_dn",
        "tls_client_auth_san_dns",
        "tls_client_auth_san_uri",
        "tls_client_auth_san_ip",
        "tls_client_auth_san_email",
        "jwks",
        "jwks_uri",
        "tls_client_certificate_bound_access_tokens",
        "access_token_format",
        "trust_pin_spki_sha256",
        "certificate_pem",
        "certificate_file",
        "use_value",
    ):
        assert f'name="mtls-0-{name}"' in text, name
    assert 'enctype="multipart/form-data"' in text  # the PEM upload


def test_inline_renders_on_the_change_page_with_the_check_link(admin_client, pki_app):
    response = admin_client.get(app_url("change", pki_app.pk))
    assert response.status_code == 200
    text = page_text(response)
    assert DN in text
    check = app_url("check_certificate", pki_app.pk)
    assert text.count(f'href="{check}"') == 2  # object tools, and the inline


def test_add_an_application_with_mtls_metadata(admin_client):
    data = form_data(admin_client.get(app_url("add")))
    data.update(
        {
            "name": "added",
            "client_type": "confidential",
            "authorization_grant_type": "client-credentials",
            "mtls-0-token_endpoint_auth_method": "tls_client_auth",
            "mtls-0-tls_client_auth_san_dns": "client-one.example.com",
            "mtls-0-tls_client_certificate_bound_access_tokens": "on",
        }
    )
    response = admin_client.post(app_url("add"), data)
    assert response.status_code == 302, inline_form(response).errors
    row = MTLSClient.objects.get(application__name="added")
    assert row.tls_client_auth_san_dns == "client-one.example.com"
    assert row.tls_client_certificate_bound_access_tokens


@pytest.mark.parametrize("value", ["jwt", "opaque", ""])
def test_access_token_format_per_client(admin_client, pki_app, value):
    """RFC 9068: the client's token format ("" follows OAUTH2_MTLS['ACCESS_TOKEN_FORMAT'])."""
    response = edit(admin_client, pki_app, access_token_format=value)
    assert response.status_code == 302, inline_form(response).errors
    assert MTLSClient.objects.get(pk=pki_app.pk).access_token_format == value


def test_access_token_format_refuses_other_values(admin_client, pki_app):
    response = edit(admin_client, pki_app, access_token_format="jws")
    assert response.status_code == 200
    assert "access_token_format" in inline_form(response).errors


def test_add_page_without_touching_the_inline_creates_no_row(admin_client):
    data = form_data(admin_client.get(app_url("add")))
    data.update(
        {"name": "plain", "client_type": "public", "authorization_grant_type": "client-credentials"}
    )
    assert admin_client.post(app_url("add"), data).status_code == 302
    assert not MTLSClient.objects.filter(application__name="plain").exists()


def test_add_page_refuses_mtls_for_a_public_client(admin_client):
    data = form_data(admin_client.get(app_url("add")))
    data.update(
        {
            "name": "public",
            "client_type": "public",
            "authorization_grant_type": "client-credentials",
            "mtls-0-token_endpoint_auth_method": "tls_client_auth",
            "mtls-0-tls_client_auth_san_dns": "client-one.example.com",
        }
    )
    response = admin_client.post(app_url("add"), data)
    assert response.status_code == 200
    assert inline_form(response).errors["token_endpoint_auth_method"] == [
        "mTLS methods require a confidential client."
    ]


def test_changing_client_type_and_method_together(admin_client, make_app):
    """The model checks the posted client type, not the stored one."""
    app = make_app(None, client_type="public")
    response = edit(
        admin_client,
        app,
        client_type="confidential",
        token_endpoint_auth_method="tls_client_auth",
        tls_client_auth_san_dns="client-one.example.com",
    )
    assert response.status_code == 302, inline_form(response).errors
    assert MTLSClient.objects.get(pk=app.pk).tls_client_auth_san_dns == "client-one.example.com"


@pytest.mark.parametrize(
    ("fields", "count"),
    [
        ({"tls_client_auth_subject_dn": ""}, 0),
        ({"tls_client_auth_san_dns": "client-one.example.com"}, 2),
    ],
    ids=["none", "two"],
)
def test_exactly_one_subject_value_is_a_form_error(admin_client, pki_app, fields, count):
    response = edit(admin_client, pki_app, **fields)
    assert response.status_code == 200
    errors = inline_form(response).non_field_errors()
    assert errors == [
        "tls_client_auth needs exactly one of tls_client_auth_subject_dn, _san_dns, _san_uri, "
        f"_san_ip, _san_email (found {count})."
    ]
    assert "exactly one of tls_client_auth_subject_dn" in page_text(response)
    assert MTLSClient.objects.get(pk=pki_app.pk).tls_client_auth_subject_dn == DN


def test_trust_pin_accepts_pem_and_hex(admin_client, pki_app, root_ca):
    from django_oauth_mtls.models import normalise_spki_pin

    expected = normalise_spki_pin(root_ca.pem)
    assert edit(admin_client, pki_app, trust_pin_spki_sha256=root_ca.pem).status_code == 302
    assert MTLSClient.objects.get(pk=pki_app.pk).trust_pin_spki_sha256 == expected
    import base64

    hex_pin = base64.urlsafe_b64decode(expected + "=").hex(":")
    assert edit(admin_client, pki_app, trust_pin_spki_sha256=hex_pin).status_code == 302
    assert MTLSClient.objects.get(pk=pki_app.pk).trust_pin_spki_sha256 == expected
    response = edit(admin_client, pki_app, trust_pin_spki_sha256="not a pin")
    assert response.status_code == 200
    assert "trust_pin_spki_sha256" in inline_form(response).errors


# --- the certificate helper ---------------------------------------------------------------------


def test_pem_helper_offers_the_dn_and_each_san_then_writes_the_choice(
    admin_client, pki_app, client_cert
):
    response = edit(admin_client, pki_app, certificate_pem=client_cert.pem)
    assert response.status_code == 200  # first submit: the values to choose from
    form = inline_form(response)
    assert form.errors["use_value"] == [
        "Choose which value of this certificate the client is registered with, or clear the "
        "certificate field."
    ]
    values = [value for value, _label in form.fields["use_value"].choices if value]
    assert values == [
        "subject_dn:CN=client-one,O=Example\\, Inc.,C=DE",
        "san_dns:client-one.example.com",
        "san_uri:spiffe://example.org/client-one",
        "san_ip:192.0.2.10",
        "san_ip:2001:db8::1",
        "san_email:ops@example.com",
        "jwks",
    ]
    text = page_text(response)
    assert f'<code class="x5t-s256">{client_cert.x5t_s256}</code>' in text
    assert "SAN URI = spiffe://example.org/client-one" in text  # labels in words
    assert "tls_client_auth needs exactly one" not in text  # the choice is the news, not "found 0"

    data = form_data(response)  # second submit: the PEM is still there; pick the URI SAN
    data["mtls-0-use_value"] = "san_uri:spiffe://example.org/client-one"
    response = admin_client.post(app_url("change", pki_app.pk), data)
    assert response.status_code == 302, inline_form(response).errors
    row = MTLSClient.objects.get(pk=pki_app.pk)
    assert row.subject_field == ("tls_client_auth_san_uri", "spiffe://example.org/client-one")
    assert row.tls_client_auth_subject_dn == ""  # the others are cleared


def test_pem_helper_ip_san_and_dn(admin_client, pki_app, client_cert):
    response = edit(
        admin_client, pki_app, certificate_pem=client_cert.pem, use_value="san_ip:2001:db8::1"
    )
    assert response.status_code == 302, inline_form(response).errors
    assert MTLSClient.objects.get(pk=pki_app.pk).subject_field == (
        "tls_client_auth_san_ip",
        "2001:db8::1",
    )
    response = edit(
        admin_client,
        pki_app,
        certificate_pem=client_cert.pem,
        use_value=f"subject_dn:{DN}",
    )
    assert response.status_code == 302
    row = MTLSClient.objects.get(pk=pki_app.pk)
    assert row.subject_field == ("tls_client_auth_subject_dn", DN)
    assert row.tls_client_auth_san_ip == ""


def test_pem_helper_upload_keeps_the_pem_for_the_second_submit(admin_client, pki_app, client_cert):
    upload = SimpleUploadedFile("client.pem", client_cert.pem.encode(), "application/x-pem-file")
    response = edit(admin_client, pki_app, certificate_file=upload)
    assert response.status_code == 200
    form = inline_form(response)
    assert "san_email:ops@example.com" in dict(form.fields["use_value"].choices)
    data = form_data(response)
    assert data["mtls-0-certificate_pem"] == client_cert.pem  # copied into the textarea
    data["mtls-0-use_value"] = "san_email:ops@example.com"
    assert admin_client.post(app_url("change", pki_app.pk), data).status_code == 302
    assert MTLSClient.objects.get(pk=pki_app.pk).tls_client_auth_san_email == "ops@example.com"


def test_pem_helper_refuses_garbage_and_a_value_for_another_method(
    admin_client, pki_app, client_cert
):
    response = edit(admin_client, pki_app, certificate_pem="-----BEGIN CERTIFICATE-----\nnope")
    assert response.status_code == 200
    assert inline_form(response).errors["certificate_pem"] == [
        "This is not a usable PEM certificate (malformed: no PEM certificate block)."
    ]
    response = edit(
        admin_client,
        pki_app,
        token_endpoint_auth_method="self_signed_tls_client_auth",
        certificate_pem=client_cert.pem,
        use_value="san_dns:client-one.example.com",
    )
    assert response.status_code == 200
    assert inline_form(response).errors["token_endpoint_auth_method"] == [
        "Choose tls_client_auth to register the certificate's tls_client_auth_san_dns."
    ]


def test_pem_helper_registers_a_self_signed_certificate_in_jwks(admin_client, make_app):
    first = pki.issue(pki.name(CN="self-signed one"))
    second = pki.issue(pki.name(CN="self-signed two"))
    app = make_app(None)
    for certificate in (first, second, second):
        response = edit(
            admin_client,
            app,
            token_endpoint_auth_method="self_signed_tls_client_auth",
            certificate_pem=certificate.pem,
            use_value="jwks",
        )
        assert response.status_code == 302, inline_form(response).errors
    jwks = MTLSClient.objects.get(pk=app.pk).jwks
    assert [key["kid"] for key in jwks["keys"]] == [first.x5t_s256, second.x5t_s256]
    assert jwks["keys"][1]["x5c"] == [second.b64()]
    text = page_text(admin_client.get(app_url("change", app.pk)))
    assert f"<code>{first.x5t_s256}</code> CN=self-signed one" in text  # registered certificates
    assert f"<code>{second.x5t_s256}</code> CN=self-signed two" in text


# --- the certificate check -------------------------------------------------------------------


def check(admin_client, app, pem: str):
    response = admin_client.post(app_url("check_certificate", app.pk), {"certificate_pem": pem})
    assert response.status_code == 200
    return response.context["explanation"], page_text(response)


def test_check_page_renders(admin_client, pki_app):
    response = admin_client.get(app_url("check_certificate", pki_app.pk))
    assert response.status_code == 200
    assert 'name="certificate_pem"' in response.content.decode()
    assert response.context["explanation"] is None


def test_check_a_matching_certificate(admin_client, pki_app, mtls_settings, client_cert):
    explanation, text = check(admin_client, pki_app, client_cert.pem)
    assert explanation.matched
    assert [step.name for step in explanation.steps] == ["intake", "client", "chain", "match"]
    assert f"x5t#S256={client_cert.x5t_s256}" in text
    plain = re.sub(r"<[^>]+>", "", text)
    assert (
        "chain: valid: CN=client-one,O=Example\\, Inc.,C=DE → O=Test PKI,CN=Test Root CA" in plain
    )
    assert f"verdict: match — client '{pki_app.client_id}' authenticates" in plain


def test_check_subject_mismatch(admin_client, make_app, mtls_settings, client_cert):
    app = make_app(tls_client_auth_san_dns="client-two.example.com")
    explanation, text = check(admin_client, app, client_cert.pem)
    assert explanation.reason == "subject_mismatch"
    assert [(s.name, s.ok) for s in explanation.steps][-2:] == [("chain", True), ("match", False)]
    assert 'data-reason="subject_mismatch"' in text
    assert (
        "refused — reason=subject_mismatch: the certificate does not match the registered tls_client_auth_san_dns"
        in text
    )


def test_check_untrusted_ca(admin_client, pki_app, mtls_settings):
    other = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"), issuer=pki.make_ca("Other CA")
    )
    explanation, text = check(admin_client, pki_app, other.pem)
    assert explanation.reason == "chain_invalid"
    assert explanation.steps[-1].name == "chain"
    assert 'data-reason="chain_invalid"' in text


def test_check_expired(admin_client, pki_app, mtls_settings, root_ca):
    expired = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"),
        issuer=root_ca,
        not_after=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),  # expired on 2026-01-02
    )
    explanation, text = check(admin_client, pki_app, expired.pem)
    assert explanation.reason == "expired"
    assert 'data-reason="expired"' in text


def test_check_with_the_chain_pasted_after_the_leaf(admin_client, pki_app, settings, tmp_path):
    """Intermediates after the leaf are the presented chain, as a proxy's chain field."""
    from django_oauth_mtls import truststore

    root = pki.make_ca("Chain Root")
    intermediate = pki.issue(pki.name(CN="Chain Intermediate"), issuer=root, ca=True)
    leaf = pki.issue(pki.name(C="DE", O="Example, Inc.", CN="client-one"), issuer=intermediate)
    (tmp_path / "root.pem").write_text(root.pem)
    settings.OAUTH2_MTLS = {"TRUSTED_CA_CERTIFICATES": [str(tmp_path / "root.pem")]}
    truststore.reset()
    explanation, _ = check(admin_client, pki_app, leaf.pem)
    assert explanation.reason == "chain_invalid"
    explanation, _ = check(admin_client, pki_app, leaf.pem + intermediate.pem)
    assert explanation.matched, explanation.verdict
    truststore.reset()


def test_check_garbage_and_an_application_without_mtls(
    admin_client, make_app, pki_app, client_cert
):
    explanation, text = check(admin_client, pki_app, "not a certificate")
    assert (explanation.reason, explanation.intake_problem) == ("no_certificate", "malformed")
    assert "refused — reason=no_certificate (intake: malformed)" in text
    plain = make_app(None)
    explanation, _ = check(admin_client, plain, client_cert.pem)
    assert explanation.reason == "method_conflict"
    assert "no mTLS metadata" in explanation.steps[1].outcome


def test_check_requires_a_certificate(admin_client, pki_app):
    response = admin_client.post(app_url("check_certificate", pki_app.pk), {"certificate_pem": " "})
    assert response.context["explanation"] is None
    assert "Paste or upload a certificate." in response.content.decode()


def test_check_with_proxy_verification_offers_the_verdict(
    admin_client, pki_app, settings, client_cert
):
    settings.OAUTH2_MTLS = {
        "CERTIFICATE_SOURCE": "nginx",
        "TRUSTED_PROXIES": ["127.0.0.1/32"],
        "TRUST_PROXY_VERIFICATION": True,
    }
    url = app_url("check_certificate", pki_app.pk)
    response = admin_client.post(url, {"certificate_pem": client_cert.pem})
    assert response.context["explanation"].reason == "chain_invalid"
    response = admin_client.post(url, {"certificate_pem": client_cert.pem, "proxy_verified": "on"})
    assert response.context["explanation"].matched


def test_check_page_needs_staff(client, pki_app):
    response = client.get(app_url("check_certificate", pki_app.pk))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


# --- bound tokens on DOT's AccessToken admin ----------------------------------------------------


@pytest.fixture
def tokens(pki_app, client_cert):
    AccessToken = get_access_token_model()
    expires = timezone.now() + dt.timedelta(hours=1)
    bound = AccessToken.objects.create(
        application=pki_app, token="bound-token-value-0001", expires=expires, scope="read"
    )
    AccessTokenBinding.objects.create(access_token=bound, x5t_s256=client_cert.x5t_s256)
    unbound = AccessToken.objects.create(
        application=pki_app, token="unbound-token-value-02", expires=expires, scope="read"
    )
    return bound, unbound


def test_access_token_list_shows_and_searches_the_thumbprint(
    admin_client, tokens, client_cert, django_assert_max_num_queries
):
    bound, unbound = tokens
    with django_assert_max_num_queries(8):  # list_select_related: no query per row
        response = admin_client.get(token_url("changelist"))
    assert response.status_code == 200
    text = page_text(response)
    assert "Bound to x5t#S256" in text
    assert client_cert.x5t_s256 in text
    response = admin_client.get(token_url("changelist"), {"q": client_cert.x5t_s256})
    assert [t.pk for t in response.context["cl"].result_list] == [bound.pk]
    response = admin_client.get(token_url("changelist"), {"q": client_cert.x5t_s256[:12]})
    assert [t.pk for t in response.context["cl"].result_list] == [bound.pk]
    response = admin_client.get(token_url("changelist"), {"certificate_bound": "no"})
    assert [t.pk for t in response.context["cl"].result_list] == [unbound.pk]
    response = admin_client.get(token_url("changelist"), {"certificate_bound": "yes"})
    assert [t.pk for t in response.context["cl"].result_list] == [bound.pk]


def test_access_token_change_page_shows_the_thumbprint(admin_client, tokens, client_cert):
    bound, _unbound = tokens
    text = page_text(admin_client.get(token_url("change", bound.pk)))
    assert client_cert.x5t_s256 in text
    assert "bound-token-value-0001" not in text  # DOT's masking still applies


# --- a swapped Application ----------------------------------------------------------------------


def test_swapped_application_admin(admin_client, make_app, mtls_settings, client_cert, tokens):
    """Runs only under ``--ds=tests.settings_swapped`` (see the next test)."""
    if getattr(django_settings, "OAUTH2_PROVIDER_APPLICATION_MODEL", None) != SWAPPED_MODEL:
        pytest.skip("runs in a subprocess under tests.settings_swapped")
    assert get_application_model()._meta.label == SWAPPED_MODEL
    assert app_url("add") == "/admin/swapped/swappedapplication/add/"
    data = form_data(admin_client.get(app_url("add")))
    assert "mtls-0-certificate_pem" in data
    data.update(
        {
            "name": "swapped",
            "client_type": "confidential",
            "authorization_grant_type": "client-credentials",
            "mtls-0-token_endpoint_auth_method": "tls_client_auth",
            "mtls-0-certificate_pem": client_cert.pem,
            "mtls-0-use_value": "san_dns:client-one.example.com",
        }
    )
    response = admin_client.post(app_url("add"), data)
    assert response.status_code == 302, inline_form(response).errors
    app = get_application_model().objects.get(name="swapped")
    assert app.mtls.tls_client_auth_san_dns == "client-one.example.com"
    explanation, _ = check(admin_client, app, client_cert.pem)
    assert explanation.matched
    response = admin_client.get(token_url("changelist"), {"q": client_cert.x5t_s256})
    assert len(response.context["cl"].result_list) == 1


def test_admin_under_swapped_application():
    result = run_pytest_swapped(
        f"{Path(__file__).relative_to(ROOT)}::test_swapped_application_admin"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout, result.stdout
