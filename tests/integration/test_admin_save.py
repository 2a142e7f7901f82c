"""The Application admin's add and change pages as a browser submits them (issue 17).

``browser_form`` reads the page's HTML form as a browser would (text areas' contents, selected
options, checked boxes), so what the page pre-fills is what gets posted back: a ``null`` in the
``jwks`` text area, for instance. Then: the add page registers a client from a pasted certificate
in one save, with labels in words; and a registration saved with a certificate at hand is checked
against it (the check's verdict as an admin message, the row saved either way).
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from oauth2_provider.models import get_application_model

from django_oauth_mtls.models import MTLSClient
from tests import pki

pytestmark = pytest.mark.django_db

DN = "CN=client-one,O=Example\\, Inc.,C=DE"


def app_url(name: str, *args) -> str:
    opts = get_application_model()._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{name}", args=args)


class _BrowserForm(HTMLParser):
    """The fields an admin change form posts, with the values the page shows."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, str] = {}
        self._in_form = False
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if tag == "form" and attributes.get("id", "").endswith("_form"):
            self._in_form = True
        if not self._in_form:
            return
        name = attributes.get("name", "")
        if "__prefix__" in name:  # the inline's empty template, which the admin's script clones
            return
        if tag == "input" and name:
            kind = attributes.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in attributes:
                    self.data[name] = attributes.get("value") or "on"
            elif kind not in ("submit", "file", "button"):
                self.data[name] = attributes.get("value", "")
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select:
            if "selected" in attributes or self._select not in self.data:
                self.data[self._select] = attributes.get("value", "")
        elif tag == "textarea":
            self._textarea = name
            self.data[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self._in_form = False

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.data[self._textarea] += data


def browser_form(response) -> dict[str, str]:
    parser = _BrowserForm()
    parser.feed(response.content.decode())
    # HTML drops the newline right after <textarea> (the admin writes one).
    return {
        key: value[1:] if value.startswith("\n") else value for key, value in parser.data.items()
    }


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def page_text(response) -> str:
    return unescape(re.sub(r"\s+", " ", response.content.decode()))


@pytest.fixture
def add_page(admin_client):
    """The add page's form as a browser would post it, with a confidential client filled in."""
    data = browser_form(admin_client.get(app_url("add")))
    data.update(
        {
            "name": "added in one save",
            "client_type": "confidential",
            "authorization_grant_type": "client-credentials",
            "_continue": "Save and continue editing",
        }
    )
    return data


# --- what the page shows -----------------------------------------------------------------------


def test_the_jwks_text_area_starts_empty(admin_client):
    data = browser_form(admin_client.get(app_url("add")))
    assert data["mtls-0-jwks"] == ""  # not "null"


def test_labels_are_words_with_the_rfc_names_as_help(admin_client):
    text = page_text(admin_client.get(app_url("add")))
    for field, label in [
        ("token_endpoint_auth_method", "Client authentication method"),
        ("tls_client_auth_subject_dn", "Subject DN"),
        ("tls_client_auth_san_dns", "SAN DNS name"),
        ("tls_client_auth_san_uri", "SAN URI"),
        ("tls_client_auth_san_ip", "SAN IP address"),
        ("tls_client_auth_san_email", "SAN email address"),
        ("jwks", "JWK set"),
        ("jwks_uri", "JWK set URL"),
        ("tls_client_certificate_bound_access_tokens", "Certificate-bound access tokens"),
        ("trust_pin_spki_sha256", "Trust pin (SPKI SHA-256)"),
    ]:
        assert re.search(
            rf'<label[^>]*for="id_mtls-0-{field}"[^>]*>{re.escape(label)}:?</label>', text
        ), field
        # The RFC 8705 / RFC 7591 name is the help text (id_<field>_helptext).
        help_text = re.search(
            rf'<div class="help" id="id_mtls-0-{field}_helptext"> <div>(.*?)</div>', text
        )
        assert help_text and field in help_text.group(1), field
    assert ">tls_client_auth_san_dns:</label>" not in text


def test_the_inline_is_titled_in_words(admin_client, make_app):
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    text = page_text(admin_client.get(app_url("change", app.pk)))
    title = re.search(r'<h3><b>([^<]*)</b> <span class="inline_label">([^<]*)</span>', text)
    assert title is not None
    assert title.groups() == (
        "MTLS client authentication (RFC 8705):",
        "tls_client_auth (PKI certificate) ",
    )
    assert f"tls_client_auth for {app.pk}" not in text
    assert str(MTLSClient.objects.get(pk=app.pk)) == "tls_client_auth (PKI certificate)"


# --- the add page, one save ------------------------------------------------------------------


def test_add_page_registers_from_a_certificate_in_one_save(
    admin_client, add_page, mtls_settings, client_cert
):
    """Method, certificate and what to take from it, then one "Save and continue editing"."""
    add_page.update(
        {
            "mtls-0-token_endpoint_auth_method": "tls_client_auth",
            "mtls-0-tls_client_certificate_bound_access_tokens": "on",
            "mtls-0-certificate_pem": client_cert.pem,
            "mtls-0-use_value": "san_dns",  # offered before any certificate was read
        }
    )
    response = admin_client.post(app_url("add"), add_page)
    assert response.status_code == 302, page_text(response)[-3000:]
    app = get_application_model().objects.get(name="added in one save")
    assert response["Location"] == app_url("change", app.pk)
    row = MTLSClient.objects.get(pk=app.pk)
    assert row.subject_field == ("tls_client_auth_san_dns", "client-one.example.com")
    assert row.tls_client_certificate_bound_access_tokens
    assert (
        "success",
        f"Checked: the certificate x5t#S256={client_cert.x5t_s256} authenticates "
        f"client_id={app.client_id}.",
    ) in messages_of(response)


def test_add_page_typed_value_in_one_save(admin_client, add_page):
    add_page.update(
        {
            "mtls-0-token_endpoint_auth_method": "tls_client_auth",
            "mtls-0-tls_client_auth_san_dns": "client-one.example.com",
        }
    )
    response = admin_client.post(app_url("add"), add_page)
    assert response.status_code == 302, page_text(response)[-3000:]
    row = MTLSClient.objects.get(application__name="added in one save")
    assert row.tls_client_auth_san_dns == "client-one.example.com"
    assert row.jwks is None
    assert [level for level, _text in messages_of(response)] == ["success"]  # nothing checked


def test_add_page_self_signed_in_one_save(admin_client, add_page, settings):
    settings.OAUTH2_MTLS = {}  # no trust anchors: self-signed clients need none
    certificate = pki.issue(pki.name(CN="self-signed"))
    add_page.update(
        {
            "mtls-0-token_endpoint_auth_method": "self_signed_tls_client_auth",
            "mtls-0-certificate_pem": certificate.pem,
            "mtls-0-use_value": "jwks",
        }
    )
    response = admin_client.post(app_url("add"), add_page)
    assert response.status_code == 302, page_text(response)[-3000:]
    row = MTLSClient.objects.get(application__name="added in one save")
    assert [key["kid"] for key in row.jwks["keys"]] == [certificate.x5t_s256]
    assert [level for level, _ in messages_of(response)] == ["success", "success"]


def test_a_certificate_without_a_choice_asks_once(admin_client, add_page, client_cert):
    """Issue 17: the first save came back with "found 0" as well as the helper's question."""
    add_page.update(
        {
            "mtls-0-token_endpoint_auth_method": "tls_client_auth",
            "mtls-0-certificate_pem": client_cert.pem,
        }
    )
    response = admin_client.post(app_url("add"), add_page)
    assert response.status_code == 200
    form = response.context["inline_admin_formsets"][0].formset.forms[0]
    assert form.errors == {
        "use_value": [
            "Choose which value of this certificate the client is registered with, or clear "
            "the certificate field."
        ]
    }
    assert "found 0" not in page_text(response)
    # The second save, with a value of the certificate now listed, works.
    data = browser_form(response)
    assert data["mtls-0-certificate_pem"] == client_cert.pem
    data.update({"mtls-0-use_value": "san_uri:spiffe://example.org/client-one", "_continue": "1"})
    response = admin_client.post(app_url("add"), data)
    assert response.status_code == 302
    row = MTLSClient.objects.get(application__name="added in one save")
    assert row.tls_client_auth_san_uri == "spiffe://example.org/client-one"


@pytest.mark.parametrize(
    ("use", "error"),
    [
        ("san_ip", "The certificate has 2 values of SAN IP address: choose one."),
        ("san_email", None),
    ],
)
def test_a_kind_with_several_values_asks_which(admin_client, add_page, client_cert, use, error):
    add_page.update(
        {
            "mtls-0-token_endpoint_auth_method": "tls_client_auth",
            "mtls-0-certificate_pem": client_cert.pem,
            "mtls-0-use_value": use,
        }
    )
    response = admin_client.post(app_url("add"), add_page)
    if error is None:
        assert response.status_code == 302
        return
    form = response.context["inline_admin_formsets"][0].formset.forms[0]
    assert form.errors == {"use_value": [error]}
    values = [value for value, _label in form.fields["use_value"].choices]
    assert "san_ip:192.0.2.10" in values and "san_ip:2001:db8::1" in values


def test_a_kind_the_certificate_lacks(admin_client, add_page):
    bare = pki.issue(pki.name(CN="bare"), issuer=pki.make_ca())
    add_page.update(
        {
            "mtls-0-token_endpoint_auth_method": "tls_client_auth",
            "mtls-0-certificate_pem": bare.pem,
            "mtls-0-use_value": "san_dns",
        }
    )
    response = admin_client.post(app_url("add"), add_page)
    form = response.context["inline_admin_formsets"][0].formset.forms[0]
    assert form.errors == {"use_value": ["The certificate has no SAN DNS name."]}


# --- the check on save -------------------------------------------------------------------------


def test_a_certificate_from_an_untrusted_ca_is_saved_with_a_warning(
    admin_client, make_app, mtls_settings
):
    """Issue 17: a registration that can never authenticate was saved without a word."""
    app = make_app(None)
    other = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"),
        issuer=pki.make_ca("Other CA"),
        dns=("client-one.example.com",),
    )
    data = browser_form(admin_client.get(app_url("change", app.pk)))
    data.update(
        {
            "mtls-0-token_endpoint_auth_method": "tls_client_auth",
            "mtls-0-certificate_pem": other.pem,
            "mtls-0-use_value": "san_dns",
            "_continue": "1",
        }
    )
    response = admin_client.post(app_url("change", app.pk), data)
    assert response.status_code == 302  # saved all the same
    row = MTLSClient.objects.get(pk=app.pk)
    assert row.tls_client_auth_san_dns == "client-one.example.com"
    warnings = [text for level, text in messages_of(response) if level == "warning"]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        f"The registration of client_id={app.client_id} is saved, but the token endpoint would "
        "refuse this certificate for it: refused — reason=chain_invalid: certificate chain does "
        "not validate to a trusted CA"
    )


def test_the_check_on_save_follows_trust_proxy_verification(admin_client, make_app, settings):
    """The proxy judges the chain; the rest (the subject value) is still checked."""
    settings.OAUTH2_MTLS = {
        "CERTIFICATE_SOURCE": "nginx",
        "TRUSTED_PROXIES": ["127.0.0.1/32"],
        "TRUST_PROXY_VERIFICATION": True,
    }
    app = make_app(None)
    other = pki.issue(pki.name(CN="anyone"), issuer=pki.make_ca("Other CA"), dns=("a.example",))
    data = browser_form(admin_client.get(app_url("change", app.pk)))
    data.update(
        {
            "mtls-0-token_endpoint_auth_method": "tls_client_auth",
            "mtls-0-certificate_pem": other.pem,
            "mtls-0-use_value": "san_dns",
        }
    )
    response = admin_client.post(app_url("change", app.pk), data)
    assert response.status_code == 302
    assert [level for level, _ in messages_of(response)] == ["success", "success"]


def test_no_certificate_no_check(admin_client, make_app, mtls_settings):
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    data = browser_form(admin_client.get(app_url("change", app.pk)))
    data["mtls-0-tls_client_auth_san_dns"] = "client-two.example.com"
    response = admin_client.post(app_url("change", app.pk), data)
    assert response.status_code == 302
    assert [level for level, _ in messages_of(response)] == ["success"]


def test_the_check_never_fetches(make_app, monkeypatch):
    """A self-signed client whose set lives at a jwks_uri is not checked on save: nothing is
    fetched (the check does not even start)."""
    from django_oauth_mtls import diagnosis
    from django_oauth_mtls.certificate_metadata import read_pem_certificate

    def refuse(*args, **kwargs):
        raise AssertionError("checked (and so fetched) on save")

    monkeypatch.setattr(diagnosis, "authenticate_certificate", refuse)
    row = MTLSClient(
        application=make_app(None),
        token_endpoint_auth_method="self_signed_tls_client_auth",
        jwks_uri="https://client.example/jwks.json",
    )
    certificate = read_pem_certificate(pki.issue(pki.name(CN="self")).pem.encode())
    assert diagnosis.check_on_save(row, certificate, source="pasted PEM") is None


def test_without_the_mixin_the_inline_names_the_command(make_app):
    """A project's admin with MTLSClientInline alone has no check page: the inline says what to
    run instead of linking to a page that does not exist."""
    from django.contrib import admin

    from django_oauth_mtls.admin_inline import MTLSClientInline, check_certificate_url

    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    assert check_certificate_url(app.pk, "no-such-site") is None
    inline = MTLSClientInline(get_application_model(), admin.AdminSite(name="no-such-site"))
    text = inline.check_link(MTLSClient.objects.get(pk=app.pk))
    assert text == (
        "This admin has no check page; <code>manage.py mtls_explain --client-id "
        f"{app.client_id} --certificate FILE</code>"
    )
