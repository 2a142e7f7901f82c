"""The admin in a real browser (Playwright driving Debian's Chromium) against a live server.

An operator logs in, opens an Application, pastes the client's certificate into the mTLS
inline's helper, saves, picks the certificate's DNS SAN, saves again, then runs "Check a
certificate" and sees the match. Another adds an application with its mTLS registration in one
save. Skips when Chromium is absent (fails on CI). pytest-django's ``live_server`` shares the
in-memory SQLite connection with its thread, so nothing touches the database while the browser
runs (the ORM is used before and after).

``MTLS_SCREENSHOTS=docs/img`` writes the add page's inline and the check page as PNG files
(``admin-add.png``, ``admin-check.png``) referenced from docs/operators.md.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from django_oauth_mtls import truststore
from django_oauth_mtls.validation import validation_cache
from tests import pki
from tests.conftest import require_tool

pytestmark = pytest.mark.e2e

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "browser-admin-password"
SCREENSHOTS = os.environ.get("MTLS_SCREENSHOTS")
#: WCAG 2.1 contrast ratio of an element's text against the first opaque background behind it.
CONTRAST = """(element) => {
  const rgba = (css) => css.match(/[\\d.]+/g).map(Number);
  const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  let node = element, background = [255, 255, 255];
  while (node) {
    const colour = rgba(getComputedStyle(node).backgroundColor);
    if (colour.length < 4 || colour[3] > 0) { background = colour; break; }
    node = node.parentElement;
  }
  const [light, dark] = [luminance(rgba(getComputedStyle(element).color)), luminance(background)]
    .sort((a, b) => b - a);
  return (light + 0.05) / (dark + 0.05);
}"""


@pytest.fixture
def trusted_ca(settings, tmp_path: Path, root_ca: pki.Issued):
    path = tmp_path / "trusted-ca.pem"
    path.write_text(root_ca.pem)
    settings.OAUTH2_MTLS = {
        "CERTIFICATE_SOURCE": "nginx",
        "TRUSTED_PROXIES": ["127.0.0.1/32"],
        "TRUSTED_CA_CERTIFICATES": [str(path)],
    }
    truststore.reset()
    validation_cache.clear()
    yield
    truststore.reset()
    validation_cache.clear()


def test_operator_registers_a_san_from_a_pasted_certificate_and_checks_it(
    live_server, transactional_db, trusted_ca, client_cert: pki.Issued
):
    chromium = require_tool("chromium")
    from django.contrib.auth import get_user_model
    from oauth2_provider.models import get_application_model

    from django_oauth_mtls.models import MTLSClient

    get_user_model().objects.create_superuser("operator", "operator@example.com", PASSWORD)
    app = get_application_model().objects.create(
        name="browser client",
        client_type="confidential",
        authorization_grant_type="client-credentials",
    )
    opts = get_application_model()._meta
    change_url = f"{live_server.url}/admin/{opts.app_label}/{opts.model_name}/{app.pk}/change/"

    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)
            page.goto(f"{live_server.url}/admin/login/?next=/admin/")
            page.fill("#id_username", "operator")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            expect(page.locator("#user-tools")).to_contain_text("operator")

            page.goto(change_url)
            page.select_option("#id_mtls-0-token_endpoint_auth_method", "tls_client_auth")
            page.fill("#id_mtls-0-certificate_pem", client_cert.pem)
            page.click("input[name=_continue]")
            # First save: the helper offers the certificate's values and shows its thumbprint.
            expect(page.locator("code.x5t-s256")).to_have_text(client_cert.x5t_s256)
            page.select_option("#id_mtls-0-use_value", "san_dns:client-one.example.com")
            page.click("input[name=_continue]")
            expect(page.locator("ul.messagelist")).to_contain_text("changed successfully")
            expect(page.locator("#id_mtls-0-tls_client_auth_san_dns")).to_have_value(
                "client-one.example.com"
            )

            page.click("a.mtls-check-certificate")
            page.fill("#id_certificate_pem", client_cert.pem)
            page.click("input[name=_check]")
            verdict = page.locator("#mtls-check-verdict")
            expect(verdict).to_have_class("match")
            expect(verdict).to_contain_text(f"match — client '{app.client_id}' authenticates")
            expect(page.locator("#mtls-check-steps li.step-match")).to_contain_text(
                'tls_client_auth_san_dns = "client-one.example.com" matches'
            )
        finally:
            browser.close()

    row = MTLSClient.objects.get(pk=app.pk)
    assert row.token_endpoint_auth_method == "tls_client_auth"
    assert row.subject_field == ("tls_client_auth_san_dns", "client-one.example.com")


def test_operator_adds_a_client_in_one_save_and_checks_it(
    live_server, transactional_db, trusted_ca, client_cert: pki.Issued
):
    """Issue 17: on the add page the first "Save and continue editing" came back with "found 0"
    and only a second save worked. Now: the application, the method, the certificate and what
    to take from it, one save, and the change page with the registration stored and checked."""
    chromium = require_tool("chromium")
    from django.contrib.auth import get_user_model
    from oauth2_provider.models import get_application_model

    from django_oauth_mtls.models import MTLSClient

    get_user_model().objects.create_superuser("operator", "operator@example.com", PASSWORD)
    opts = get_application_model()._meta
    add_url = f"{live_server.url}/admin/{opts.app_label}/{opts.model_name}/add/"
    untrusted = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"),
        issuer=pki.make_ca("Untrusted CA"),
        dns=("client-one.example.com",),
    )

    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(20_000)
            page.goto(f"{live_server.url}/admin/login/?next=/admin/")
            page.fill("#id_username", "operator")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            expect(page.locator("#user-tools")).to_contain_text("operator")

            page.goto(add_url)
            expect(page.locator("#id_mtls-0-jwks")).to_have_value("")  # not "null"
            expect(page.locator("label[for=id_mtls-0-tls_client_auth_san_dns]")).to_have_text(
                "SAN DNS name:"
            )
            page.fill("#id_name", "billing service")
            page.check("input[name=client_type][value=confidential]")
            page.check("input[name=authorization_grant_type][value=client-credentials]")
            page.select_option("#id_mtls-0-token_endpoint_auth_method", "tls_client_auth")
            page.check("#id_mtls-0-tls_client_certificate_bound_access_tokens")
            page.fill("#id_mtls-0-certificate_pem", client_cert.pem)
            page.select_option("#id_mtls-0-use_value", "san_dns")
            if SCREENSHOTS:
                page.locator("#mtls-group").screenshot(path=f"{SCREENSHOTS}/admin-add.png")
            page.click("input[name=_continue]")  # the one save

            messages = page.locator("ul.messagelist")
            expect(messages).to_contain_text("was added successfully")
            expect(messages).to_contain_text(
                f"Checked: the certificate x5t#S256={client_cert.x5t_s256} authenticates"
            )
            expect(page).to_have_url(
                re.compile(rf"/admin/{opts.app_label}/{opts.model_name}/\d+/change/$")
            )
            expect(page.locator("#id_mtls-0-tls_client_auth_san_dns")).to_have_value(
                "client-one.example.com"
            )
            expect(page.locator("#mtls-0 h3 .inline_label")).to_have_text(
                "tls_client_auth (PKI certificate)"
            )

            page.click("a.mtls-check-certificate")
            page.fill("#id_certificate_pem", untrusted.pem)
            page.click("input[name=_check]")
            verdict = page.locator("#mtls-check-verdict")
            expect(verdict).to_have_class("refused")
            assert verdict.locator(".mtls-verdict-label").evaluate(CONTRAST) >= 4.5
            page.fill("#id_certificate_pem", client_cert.pem)
            page.click("input[name=_check]")
            expect(verdict).to_have_class("match")
            # The label was nearly invisible: the success background colour used as text colour.
            assert verdict.locator(".mtls-verdict-label").evaluate(CONTRAST) >= 4.5
            assert verdict.locator("code").evaluate(CONTRAST) >= 4.5
            if SCREENSHOTS:
                page.screenshot(path=f"{SCREENSHOTS}/admin-check.png", full_page=True)
        finally:
            browser.close()

    app = get_application_model().objects.get(name="billing service")
    row = MTLSClient.objects.get(pk=app.pk)
    assert row.subject_field == ("tls_client_auth_san_dns", "client-one.example.com")
    assert row.tls_client_certificate_bound_access_tokens
