"""System checks: one test per id, plus ``manage.py check`` (docs/checks.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_oauth_mtls.checks import check_settings

MW = "django_oauth_mtls.middleware.ClientCertificateMiddleware"


ANY_PEM = str(Path(__file__).parent.parent / "vectors" / "rfc9440-appendix-a-chain.pem")


def ids(**mtls) -> list[str]:
    """Check ids for these settings; a readable CA file is configured unless given (W004)."""
    mtls.setdefault("TRUSTED_CA_CERTIFICATES", [ANY_PEM])
    with override_settings(OAUTH2_MTLS=mtls):
        return [m.id for m in check_settings()]


def test_clean_configuration_has_no_messages():
    assert ids(CERTIFICATE_SOURCE="nginx", TRUSTED_PROXIES=["10.0.0.0/8"]) == []


def test_no_settings_no_messages():
    with override_settings(OAUTH2_MTLS=None):
        assert check_settings() == []


def test_not_a_dict():
    with override_settings(OAUTH2_MTLS=["nginx"]):
        assert [m.id for m in check_settings()] == ["oauth_mtls.E000"]


def test_unknown_source_E001():
    assert ids(CERTIFICATE_SOURCE="nginxx", TRUSTED_PROXIES=["10.0.0.1"]) == ["oauth_mtls.E001"]
    assert ids(CERTIFICATE_SOURCE="no.such.thing", TRUSTED_PROXIES=["10.0.0.1"]) == [
        "oauth_mtls.E001"
    ]


def test_importable_callable_source_is_fine():
    path = "tests.integration.test_intake_http.der_from_custom_header"
    assert ids(CERTIFICATE_SOURCE=path, TRUSTED_PROXIES=["10.0.0.1"]) == []


def test_source_without_trusted_proxies_W001():
    assert ids(CERTIFICATE_SOURCE="nginx") == ["oauth_mtls.W001"]
    assert ids(CERTIFICATE_SOURCE="nginx", TRUST_UNIX_SOCKET_PEERS=True) == []
    assert ids(CERTIFICATE_SOURCE="wsgi_environ") == []  # not gated


def test_middleware_missing_W002(settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != MW]
    assert ids(CERTIFICATE_SOURCE="nginx", TRUSTED_PROXIES=["10.0.0.1"]) == ["oauth_mtls.W002"]


def test_unknown_key_W003():
    assert ids(CERTIFICATE_SOURSE="nginx") == ["oauth_mtls.W003"]


def test_unreadable_files_E002(tmp_path):
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("hello")
    got = ids(TRUSTED_CA_CERTIFICATES=[str(tmp_path / "missing.pem"), str(not_pem)])
    assert got == ["oauth_mtls.E002", "oauth_mtls.E002"]
    pair = (str(tmp_path / "c.pem"), str(tmp_path / "k.pem"))
    assert ids(RESOURCE_SERVER_CERTIFICATE=pair, RESOURCE_SERVER_CLIENT_ID="rs") == [
        "oauth_mtls.E002",
        "oauth_mtls.E002",
    ]


def test_bad_trusted_proxies_E003():
    assert ids(TRUSTED_PROXIES="127.0.0.1") == ["oauth_mtls.E003"]
    assert ids(TRUSTED_PROXIES=["127.0.0.1", "localhost"]) == ["oauth_mtls.E003"]


def test_trust_everyone_C001():
    assert ids(CERTIFICATE_SOURCE="nginx", TRUSTED_PROXIES=["0.0.0.0/0"]) == ["oauth_mtls.C001"]
    assert ids(CERTIFICATE_SOURCE="nginx", TRUSTED_PROXIES=["::/0"]) == ["oauth_mtls.C001"]


def test_proxy_verification_without_verdict_E005():
    base = {"TRUSTED_PROXIES": ["10.0.0.1"], "TRUST_PROXY_VERIFICATION": True}
    assert ids(CERTIFICATE_SOURCE="rfc9440", **base) == ["oauth_mtls.E005"]
    assert ids(CERTIFICATE_SOURCE="nginx", **base) == []
    assert ids(CERTIFICATE_SOURCE="aws_alb", **base) == []
    assert ids(CERTIFICATE_SOURCE="cloudflare", VERIFY_HEADER="Cf-Verified", **base) == []


def test_bad_choices_E006():
    assert ids(REFRESH_TOKEN_BINDING="sometimes") == ["oauth_mtls.E006"]
    assert ids(BOUND_TOKEN_WITHOUT_CERTIFICATE="ignore") == ["oauth_mtls.E006"]


def test_manage_py_check_reports_critical():
    with (
        override_settings(
            OAUTH2_MTLS={"CERTIFICATE_SOURCE": "nginx", "TRUSTED_PROXIES": ["0.0.0.0/0"]}
        ),
        pytest.raises(SystemCheckError, match="oauth_mtls.C001"),
    ):
        call_command("check", "--deploy", "--fail-level", "ERROR")


def test_no_pki_trust_W004():
    assert ids(CERTIFICATE_SOURCE="nginx", TRUSTED_PROXIES=["10.0.0.1"], TRUSTED_CA_CERTIFICATES=[]) == [
        "oauth_mtls.W004"
    ]
    assert (
        ids(
            CERTIFICATE_SOURCE="nginx",
            TRUSTED_PROXIES=["10.0.0.1"],
            TRUSTED_CA_CERTIFICATES=[],
            TRUST_PROXY_VERIFICATION=True,
        )
        == []
    )


def test_validator_without_mixin_W005(settings):
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "OAUTH2_VALIDATOR_CLASS": "oauth2_provider.oauth2_validators.OAuth2Validator",
    }
    from oauth2_provider.settings import oauth2_settings

    oauth2_settings.reload()
    try:
        assert ids(CERTIFICATE_SOURCE="nginx", TRUSTED_PROXIES=["10.0.0.1"]) == ["oauth_mtls.W005"]
    finally:
        settings.OAUTH2_PROVIDER = {
            **settings.OAUTH2_PROVIDER,
            "OAUTH2_VALIDATOR_CLASS": "django_oauth_mtls.oauth2_validators.MTLSOAuth2Validator",
        }
        oauth2_settings.reload()


def test_resource_server_certificate_without_client_id_E007():
    pair = (ANY_PEM, ANY_PEM)
    assert ids(RESOURCE_SERVER_CERTIFICATE=pair) == ["oauth_mtls.E007"]
    assert ids(RESOURCE_SERVER_CERTIFICATE=pair, RESOURCE_SERVER_CLIENT_ID="rs") == []
