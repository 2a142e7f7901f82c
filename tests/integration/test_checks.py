"""System checks: one test per id, plus ``manage.py check`` (docs/checks.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core import checks
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
    assert ids(
        CERTIFICATE_SOURCE="nginx", TRUSTED_PROXIES=["10.0.0.1"], TRUSTED_CA_CERTIFICATES=[]
    ) == ["oauth_mtls.W004"]
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


# --- JWT access tokens (jwt_issue_checks.py; RFC 9068) ----------------------------------------


def _pem(key, *, public: bool = False, password: bytes | None = None) -> bytes:
    from cryptography.hazmat.primitives import serialization

    if public:
        return key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


@pytest.fixture
def key_files(tmp_path):
    """name → path of key files generated at test time."""
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, rsa

    p256 = ec.generate_private_key(ec.SECP256R1())
    contents = {
        "good": _pem(p256),
        "good.pub": _pem(p256, public=True),
        "rsa1024": _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
        "p521": _pem(ec.generate_private_key(ec.SECP521R1())),
        "ed448": _pem(ed448.Ed448PrivateKey.generate()),
        "dsa": _pem(dsa.generate_private_key(key_size=2048)),
        "encrypted": _pem(p256, password=b"secret"),
        "junk": b"not a key\n",
    }
    paths = {}
    for name, data in contents.items():
        path = tmp_path / f"{name}.pem"
        path.write_bytes(data)
        paths[name] = str(path)
    paths["absent"] = str(tmp_path / "absent.pem")
    return paths


def jwt_ids(issuer: str | None = "https://as.example.com", provider=None, **mtls) -> list[str]:
    from django.conf import settings

    dot = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": issuer, **(provider or {})}
    with override_settings(OAUTH2_PROVIDER=dot):
        return ids(**mtls)


def test_jwt_configuration_without_problems(key_files):
    assert jwt_ids(ACCESS_TOKEN_FORMAT="jwt", JWT_SIGNING_KEYS=[key_files["good"]],
                   JWT_PUBLISHED_KEYS=[key_files["good.pub"]], JWT_AUDIENCE="https://api.example.com",
                   JWT_EXTRA_CLAIMS="tests.integration.test_jwt_issue.extra_claims") == []  # fmt: skip


def test_jwt_format_without_signing_keys_E008():
    assert jwt_ids(ACCESS_TOKEN_FORMAT="jwt", JWT_AUDIENCE="https://api.example.com") == [
        "oauth_mtls.E008"
    ]


def test_jwt_without_audience_E009(key_files):
    assert jwt_ids(ACCESS_TOKEN_FORMAT="jwt", JWT_SIGNING_KEYS=[key_files["good"]]) == [
        "oauth_mtls.E009"
    ]
    # Keys configured for per-client JWTs while the setting says opaque: the same rules apply.
    assert jwt_ids(JWT_SIGNING_KEYS=[key_files["good"]]) == ["oauth_mtls.E009"]


def test_jwt_without_issuer_E010(key_files):
    assert jwt_ids(issuer=None, ACCESS_TOKEN_FORMAT="jwt", JWT_SIGNING_KEYS=[key_files["good"]],
                   JWT_AUDIENCE="https://api.example.com") == ["oauth_mtls.E010"]  # fmt: skip


def test_opaque_format_needs_no_jwt_settings():
    assert jwt_ids(issuer=None, ACCESS_TOKEN_FORMAT="opaque") == []


@pytest.mark.parametrize(
    ("name", "setting", "fragment"),
    [
        ("absent", "JWT_SIGNING_KEYS", "cannot be read"),
        ("junk", "JWT_SIGNING_KEYS", "no PEM data"),
        ("rsa1024", "JWT_SIGNING_KEYS", "1024 bits"),
        ("p521", "JWT_PUBLISHED_KEYS", "secp521r1"),
        ("ed448", "JWT_SIGNING_KEYS", "Ed448"),
        ("dsa", "JWT_PUBLISHED_KEYS", "DSA"),
        ("encrypted", "JWT_SIGNING_KEYS", "encrypted"),
        ("good.pub", "JWT_SIGNING_KEYS", "public key, which cannot sign"),
    ],
)
def test_unusable_key_file_E011(key_files, name, setting, fragment):
    mtls = {"JWT_AUDIENCE": "https://api.example.com", "JWT_SIGNING_KEYS": [key_files["good"]]}
    mtls[setting] = [*mtls.get(setting, []), key_files[name]]
    with override_settings(OAUTH2_MTLS={**mtls, "TRUSTED_CA_CERTIFICATES": [ANY_PEM]}):
        from django.conf import settings

        dot = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": "https://as.example.com"}
        with override_settings(OAUTH2_PROVIDER=dot):
            messages = check_settings()
    assert [m.id for m in messages] == ["oauth_mtls.E011"]
    assert fragment in messages[0].msg and key_files[name] in messages[0].msg


@pytest.mark.parametrize("where", ["active", "inactive"])
def test_key_shared_with_dot_oidc_key_E012(tmp_path, where):
    from cryptography.hazmat.primitives.asymmetric import rsa

    shared = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "shared.pem"
    path.write_bytes(_pem(shared))
    other = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)).decode()
    oidc = (
        {"OIDC_RSA_PRIVATE_KEY": _pem(shared).decode()}
        if where == "active"
        else {
            "OIDC_RSA_PRIVATE_KEY": other,
            "OIDC_RSA_PRIVATE_KEYS_INACTIVE": [_pem(shared).decode()],
        }
    )
    assert jwt_ids(provider=oidc, JWT_SIGNING_KEYS=[str(path)],
                   JWT_AUDIENCE="https://api.example.com") == ["oauth_mtls.E012"]  # fmt: skip


def test_extra_claims_not_importable_E013(key_files):
    assert jwt_ids(JWT_SIGNING_KEYS=[key_files["good"]], JWT_AUDIENCE="https://api.example.com",
                   JWT_EXTRA_CLAIMS="tests.nowhere.claims") == ["oauth_mtls.E013"]  # fmt: skip


def test_unknown_access_token_format_E006():
    assert ids(ACCESS_TOKEN_FORMAT="JWT") == ["oauth_mtls.E006"]


def test_manage_py_check_reports_jwt_errors():
    with (
        override_settings(OAUTH2_MTLS={"ACCESS_TOKEN_FORMAT": "jwt"}),
        pytest.raises(SystemCheckError, match="oauth_mtls.E008"),
    ):
        call_command("check")


def test_jwt_checks_make_no_database_query(key_files):
    # No django_db mark here: any query would raise "Database access not allowed".
    assert jwt_ids(ACCESS_TOKEN_FORMAT="jwt", JWT_SIGNING_KEYS=[key_files["good"]]) == [
        "oauth_mtls.E009"
    ]


# --- how the project wires the app in (project_checks) ------------------------------------------


def project_ids() -> list[str]:
    from django_oauth_mtls.project_checks import check_admin, check_urls

    return [m.id for m in check_urls() + check_admin()]


def test_our_urls_and_admin_have_no_messages():
    assert project_ids() == []


@pytest.mark.django_db
@override_settings(ROOT_URLCONF="tests.urlconfs.dot")
def test_dot_urls_instead_of_ours_W030(django_assert_num_queries):
    """Issue 17: tokens bound, but the metadata and introspection said nothing of it."""
    from django_oauth_mtls.project_checks import check_urls

    with django_assert_num_queries(0):
        (message,) = check_urls()
    assert message.id == "oauth_mtls.W030"
    assert message.level == checks.WARNING
    assert message.obj == "tests.urlconfs.dot"
    assert message.msg.startswith(
        "DOT's own views answer 11 URL(s) that django_oauth_mtls.urls replaces "
        "(oauth2_provider:token, oauth2_provider:introspect, oauth2_provider:device-authorization, "
        "oauth2_provider:oauth-server-metadata, oauth2_provider:oauth-server-metadata-issuer, "
        "oauth2_provider:oauth-resource-metadata, oauth2_provider:oauth-resource-metadata-path, "
        "oauth2_provider:oidc-connect-discovery-info, oauth2_provider:jwks-info, "
        "oauth2_provider:dcr-register, oauth2_provider:dcr-register-management; /o/token/ is "
        "answered by oauth2_provider.views.base.TokenView)."
    )
    assert "introspection responses lack cnf" in message.msg
    assert 'include("django_oauth_mtls.urls")' in message.hint


@override_settings(ROOT_URLCONF="tests.urlconfs.dot_metadata_at_root")
def test_dot_metadata_at_the_root_W030():
    from django_oauth_mtls.project_checks import check_urls

    (message,) = check_urls()
    assert "(oauth2_metadata:oauth-server-metadata, " in message.msg
    assert "/.well-known/oauth-authorization-server is answered by " in message.msg
    assert "oauth2_provider:token" not in message.msg  # ours answer under o/


@override_settings(ROOT_URLCONF="tests.urlconfs.shadowed")
def test_dot_urls_shadowing_ours_W030():
    """Whose view answers is what counts: DOT's list first under the same prefix wins."""
    from django_oauth_mtls.project_checks import check_urls

    (message,) = check_urls()
    assert message.msg.startswith(
        "DOT's own views answer 6 URL(s) that django_oauth_mtls.urls replaces "
        "(oauth2_provider:token, oauth2_provider:introspect, oauth2_provider:device-authorization, "
        "dot:token, dot:introspect, dot:device-authorization; /o/token/ is answered by "
        "oauth2_provider.views.base.TokenView)."
    )
    assert "oauth-server-metadata" not in message.msg  # not in DOT's base list


@override_settings(ROOT_URLCONF="tests.urlconfs.subclassed")
def test_a_subclass_of_our_view_is_ours():
    from django_oauth_mtls.project_checks import check_urls

    assert check_urls() == []


@pytest.fixture
def application_admin():
    """Register another Application admin on admin.site for the test; put ours back after."""
    from django.contrib import admin
    from oauth2_provider.models import get_application_model

    model = get_application_model()
    original = admin.site._registry[model]

    def register(admin_class):
        admin.site.unregister(model)
        if admin_class is not None:
            admin.site.register(model, admin_class)

    yield register
    admin.site._registry[model] = original


def test_a_project_admin_without_the_inline_W031(application_admin):
    from oauth2_provider.admin import ApplicationAdmin

    from django_oauth_mtls.project_checks import check_admin

    class ProjectAdmin(ApplicationAdmin):
        list_display = (*ApplicationAdmin.list_display, "client_id")

    application_admin(ProjectAdmin)
    (message,) = check_admin()
    assert message.id == "oauth_mtls.W031"
    assert message.level == checks.WARNING
    assert message.msg.startswith(
        "The oauth2_provider.Application admin registered on admin.site "
        "(tests.integration.test_checks.test_a_project_admin_without_the_inline_W031.<locals>."
        "ProjectAdmin) has no MTLSClientInline"
    )
    assert "MTLSApplicationAdminMixin" in message.hint


@pytest.mark.parametrize("route", ["inline", "mixin", "none"])
def test_a_project_admin_with_the_inline_or_the_mixin(application_admin, route):
    from oauth2_provider.admin import ApplicationAdmin

    from django_oauth_mtls.admin import MTLSApplicationAdminMixin, MTLSClientInline
    from django_oauth_mtls.project_checks import check_admin

    class WithInline(ApplicationAdmin):
        inlines = [MTLSClientInline]

    class WithMixin(MTLSApplicationAdminMixin, ApplicationAdmin):
        pass

    application_admin({"inline": WithInline, "mixin": WithMixin, "none": None}[route])
    assert check_admin() == []


def test_no_contrib_admin_no_W031(application_admin):
    from oauth2_provider.admin import ApplicationAdmin

    from django_oauth_mtls.project_checks import check_admin

    class ProjectAdmin(ApplicationAdmin):
        pass

    application_admin(ProjectAdmin)
    with override_settings(
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "oauth2_provider",
            "django_oauth_mtls",
        ]
    ):
        assert check_admin() == []
    assert [m.id for m in check_admin()] == ["oauth_mtls.W031"]


def test_manage_py_check_on_a_misconfigured_project(application_admin, capsys):
    """What a project that kept DOT's URLs and re-registered DOT's admin is told."""
    from io import StringIO

    from oauth2_provider.admin import ApplicationAdmin

    class ProjectAdmin(ApplicationAdmin):
        pass

    ProjectAdmin.__module__, ProjectAdmin.__qualname__ = "myproject.admin", "ProjectAdmin"
    application_admin(ProjectAdmin)
    out, err = StringIO(), StringIO()
    with override_settings(ROOT_URLCONF="tests.urlconfs.dot"):
        call_command("check", stdout=out, stderr=err)
    text = err.getvalue()
    print(text)  # shown with -s
    assert "tests.urlconfs.dot: (oauth_mtls.W030) DOT's own views answer 11 URL(s)" in text
    assert (
        "oauth2_provider.Application: (oauth_mtls.W031) The oauth2_provider.Application admin "
        "registered on admin.site (myproject.admin.ProjectAdmin) has no MTLSClientInline" in text
    )
