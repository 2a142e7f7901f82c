"""Discovery metadata with RFC 8705's members, on both hosts (issue #9 item 1).

Rows R8705-3.3-1, R8705-5-2…5-6, R8414-2-1, R8414-3-1, R8414-3.2-1, R9728-2-1; pitfalls P13
and P17 (docs/metadata.md). Every document is fetched from the main host and from the mTLS
host (``Host`` header) and must be byte-identical when ``OIDC_ISS_ENDPOINT`` is set.

The URLconf of this module mounts ``django_oauth_mtls.urls`` under ``o/`` and its metadata
patterns at the root under a second instance namespace, as docs/metadata.md tells projects to.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.checks import Warning as CheckWarning
from django.test import Client
from django.urls import include, path, resolve
from oauth2_provider.oauth2_validators import OAuth2Validator

from django_oauth_mtls import metadata
from django_oauth_mtls import urls as mtls_urls
from django_oauth_mtls.metadata import check_metadata_settings
from django_oauth_mtls.oauth2_validators import MTLSValidatorMixin
from tests.integration.conftest import post_form, token_request
from tests.urls import urlpatterns as example_test_urlpatterns

urlpatterns = [
    path(
        "",
        include((mtls_urls.metadata_urlpatterns, "oauth2_provider"), namespace="oauth2_metadata"),
    ),
    *example_test_urlpatterns,
]

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db]

MAIN = "as.example.com"
MTLS = "mtls.example.com"
ISSUER = f"https://{MAIN}"
RFC8414 = "/.well-known/oauth-authorization-server"
RFC8414_FALLBACK = "/o/.well-known/oauth-authorization-server"
RFC8414_ISSUER_PATH = "/.well-known/oauth-authorization-server/tenant1"
OIDC = "/o/.well-known/openid-configuration"
RFC9728 = "/.well-known/oauth-protected-resource"
AS_DOCUMENTS = [RFC8414, RFC8414_FALLBACK, RFC8414_ISSUER_PATH]
DIRECT = {
    "token_endpoint",
    "revocation_endpoint",
    "introspection_endpoint",
    "registration_endpoint",
    "userinfo_endpoint",
    "device_authorization_endpoint",
}
MTLS_METHODS = ("tls_client_auth", "self_signed_tls_client_auth")
DOT_METHODS = ["client_secret_post", "client_secret_basic"]
AUTH_MEMBERS = (
    "token_endpoint_auth_methods_supported",
    "revocation_endpoint_auth_methods_supported",
    "introspection_endpoint_auth_methods_supported",
)


@pytest.fixture
def configured(settings: Any, ca_file: str) -> Any:
    """Both hosts allowed; issuer and mTLS host from configuration; PKI clients can authenticate."""
    settings.ALLOWED_HOSTS = [MAIN, MTLS, "testserver"]
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "OIDC_ISS_ENDPOINT": ISSUER,
        "DCR_ENABLED": True,
    }
    settings.OAUTH2_MTLS = {
        **settings.OAUTH2_MTLS,
        "TRUSTED_CA_CERTIFICATES": [ca_file],
        "MTLS_BASE_URL": f"https://{MTLS}/o",
    }
    return settings


def provider(settings: Any, **values: Any) -> None:
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, **values}


def mtls(settings: Any, **values: Any) -> None:
    settings.OAUTH2_MTLS = {**settings.OAUTH2_MTLS, **values}


def fetch(url: str, host: str = MAIN) -> Any:
    response = Client().get(url, HTTP_HOST=host, secure=True)
    assert response.status_code == 200, (url, host, response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/json"
    assert response["Access-Control-Allow-Origin"] == "*"  # DOT's CORS header kept
    return response


def document(url: str = RFC8414, host: str = MAIN) -> dict[str, Any]:
    data = json.loads(fetch(url, host).content)
    assert isinstance(data, dict)
    return data


def both_hosts(url: str = RFC8414) -> dict[str, Any]:
    """The document, after asserting both hosts serve the very same bytes (P13)."""
    main, alias = fetch(url, MAIN).content, fetch(url, MTLS).content
    assert main == alias
    data = json.loads(main)
    assert isinstance(data, dict)
    return data


# --- routing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "view"),
    [
        (RFC8414, metadata.MTLSOAuthServerMetadataView),
        (RFC8414_FALLBACK, metadata.MTLSOAuthServerMetadataView),
        (RFC8414_ISSUER_PATH, metadata.MTLSOAuthServerMetadataView),
        ("/o/.well-known/oauth-authorization-server/tenant1", metadata.MTLSOAuthServerMetadataView),
        (RFC9728, metadata.MTLSOAuthProtectedResourceMetadataView),
        (
            "/o/.well-known/oauth-protected-resource",
            metadata.MTLSOAuthProtectedResourceMetadataView,
        ),
        (
            "/.well-known/oauth-protected-resource/api",
            metadata.MTLSOAuthProtectedResourceMetadataView,
        ),
        (OIDC, metadata.MTLSConnectDiscoveryInfoView),
        ("/o/.well-known/openid-configuration/", metadata.MTLSConnectDiscoveryInfoView),
    ],
)
def test_dot_metadata_url_names_serve_our_views(url: str, view: type):
    assert resolve(url).func.view_class is view


def test_replacements_keep_the_other_entries():
    for name in (
        "introspect",
        "oauth-server-metadata",
        "oauth-server-metadata-issuer",
        "oauth-resource-metadata",
        "oauth-resource-metadata-path",
        "oidc-connect-discovery-info",
    ):
        assert name in mtls_urls.REPLACEMENTS


def test_the_example_project_serves_rfc8414_at_the_root(settings: Any):
    """The example's issuer has no path: its RFC 8414 document lives at the root (R8414-3-1)."""
    settings.ROOT_URLCONF = "example_project.urls"
    match = resolve(RFC8414)
    assert match.func.view_class is metadata.MTLSOAuthServerMetadataView
    settings.ALLOWED_HOSTS = ["testserver"]
    data = json.loads(Client().get(RFC8414, secure=True).content)
    assert data["issuer"] == "https://testserver"
    assert data["token_endpoint"] == "https://testserver/o/token/"


# --- RFC 8414: methods and bound tokens -------------------------------------------------------


@pytest.mark.parametrize("url", AS_DOCUMENTS)
def test_both_methods_when_pki_clients_can_authenticate(configured: Any, url: str):
    data = both_hosts(url)
    for member in AUTH_MEMBERS:
        assert data[member] == [*DOT_METHODS, *MTLS_METHODS]
    assert data["tls_client_certificate_bound_access_tokens"] is True


@pytest.mark.parametrize("host", [MAIN, MTLS])
def test_proxy_verification_alone_enables_tls_client_auth(configured: Any, host: str):
    mtls(configured, TRUSTED_CA_CERTIFICATES=[], TRUST_PROXY_VERIFICATION=True)
    data = document(host=host)
    for member in AUTH_MEMBERS:
        assert data[member] == [*DOT_METHODS, *MTLS_METHODS]


@pytest.mark.parametrize("host", [MAIN, MTLS])
def test_without_trust_anchors_only_self_signed(configured: Any, host: str):
    mtls(configured, TRUSTED_CA_CERTIFICATES=[], TRUST_PROXY_VERIFICATION=False)
    data = document(host=host)
    for member in AUTH_MEMBERS:
        assert data[member] == [*DOT_METHODS, "self_signed_tls_client_auth"]
    assert data["tls_client_certificate_bound_access_tokens"] is True


@pytest.mark.parametrize("host", [MAIN, MTLS])
def test_without_a_certificate_source_no_mtls_at_all(configured: Any, host: str):
    mtls(configured, CERTIFICATE_SOURCE=None)
    data = document(host=host)
    for member in AUTH_MEMBERS:
        assert data[member] == DOT_METHODS
    assert data["tls_client_certificate_bound_access_tokens"] is False


@pytest.mark.parametrize("host", [MAIN, MTLS])
def test_without_our_validator_no_mtls_at_all(configured: Any, host: str):
    provider(configured, OAUTH2_VALIDATOR_CLASS="oauth2_provider.oauth2_validators.OAuth2Validator")
    data = document(host=host)
    for member in AUTH_MEMBERS:
        assert data[member] == DOT_METHODS
    assert data["tls_client_certificate_bound_access_tokens"] is False


class ProjectValidator(MTLSValidatorMixin, OAuth2Validator):
    """A project's own validator with the mixin in front."""


def test_a_subclass_of_the_mixin_counts_as_installed(configured: Any):
    provider(configured, OAUTH2_VALIDATOR_CLASS="tests.integration.test_metadata.ProjectValidator")
    assert document()["token_endpoint_auth_methods_supported"][-2:] == list(MTLS_METHODS)


def test_mtls_methods_listed_in_dot_settings_are_neither_duplicated_nor_kept_when_off(
    configured: Any,
):
    provider(
        configured,
        OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED=[
            "self_signed_tls_client_auth", "client_secret_basic", "tls_client_auth",
        ],
    )  # fmt: skip
    assert document()["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic", *MTLS_METHODS,
    ]  # fmt: skip
    mtls(configured, CERTIFICATE_SOURCE=None)
    assert document()["token_endpoint_auth_methods_supported"] == ["client_secret_basic"]


def test_no_auth_method_list_is_ever_empty(configured: Any):
    """RFC 8414 §3.2: members with zero elements are omitted."""
    provider(configured, OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED=["tls_client_auth"])
    mtls(configured, CERTIFICATE_SOURCE=None)
    data = document()
    for member in AUTH_MEMBERS:
        assert member not in data


def test_the_bound_tokens_member_is_a_json_boolean(configured: Any):
    """P17: ``true``, never ``"true"``; and ``false`` is published, not omitted."""
    assert b'"tls_client_certificate_bound_access_tokens": true' in fetch(RFC8414).content
    mtls(configured, CERTIFICATE_SOURCE=None)
    assert b'"tls_client_certificate_bound_access_tokens": false' in fetch(RFC8414).content


# --- mtls_endpoint_aliases -------------------------------------------------------------------


def assert_aliases_well_formed(data: dict[str, Any]) -> dict[str, str]:
    """RFC 8705 §5 as the conformance suite reads it (R8705-5-2, 5-4; P13)."""
    aliases = data["mtls_endpoint_aliases"]
    assert isinstance(aliases, dict) and aliases
    assert "authorization_endpoint" not in aliases
    for member, url in aliases.items():
        assert member.endswith("_endpoint"), member
        assert member in DIRECT, member
        assert member in data, f"{member} is aliased but not at the top level"
        assert url.startswith(f"https://{MTLS}/"), url
        assert data[member].startswith(f"{ISSUER}/")  # top level stays on the main host
        assert url.removeprefix(f"https://{MTLS}") == data[member].removeprefix(ISSUER)
    return dict(aliases)


@pytest.mark.parametrize("url", AS_DOCUMENTS)
def test_aliases_for_what_clients_call_directly(configured: Any, url: str):
    data = both_hosts(url)
    assert assert_aliases_well_formed(data) == {
        "token_endpoint": f"https://{MTLS}/o/token/",
        "revocation_endpoint": f"https://{MTLS}/o/revoke_token/",
        "introspection_endpoint": f"https://{MTLS}/o/introspect/",
        "registration_endpoint": f"https://{MTLS}/o/register/",
        "device_authorization_endpoint": f"https://{MTLS}/o/device-authorization/",
    }
    assert data["issuer"] == ISSUER
    assert data["authorization_endpoint"] == f"{ISSUER}/o/authorize/"
    assert data["token_endpoint"] == f"{ISSUER}/o/token/"
    assert data["device_authorization_endpoint"] == f"{ISSUER}/o/device-authorization/"


def test_registration_is_aliased_only_while_dcr_is_on(configured: Any):
    provider(configured, DCR_ENABLED=False)
    data = both_hosts()
    assert "registration_endpoint" not in data
    assert "registration_endpoint" not in assert_aliases_well_formed(data)


def test_device_authorization_only_while_its_grant_is_advertised(configured: Any):
    provider(
        configured,
        OAUTH2_GRANT_TYPES_SUPPORTED=["authorization_code", "client_credentials", "refresh_token"],
    )
    data = both_hosts()
    assert "device_authorization_endpoint" not in data
    assert "device_authorization_endpoint" not in assert_aliases_well_formed(data)


@pytest.mark.parametrize(
    ("base", "token_alias"),
    [
        # No path: the main host's paths.
        (f"https://{MTLS}", f"https://{MTLS}/o/token/"),
        (f"https://{MTLS}/", f"https://{MTLS}/o/token/"),
        (f"https://{MTLS}:8443", f"https://{MTLS}:8443/o/token/"),
        # A path stands for the include's mount point (a proxy may rewrite it).
        (f"https://{MTLS}/o/", f"https://{MTLS}/o/token/"),
        (f"https://{MTLS}/mtls/oauth", f"https://{MTLS}/mtls/oauth/token/"),
    ],
)
def test_mtls_base_url_forms(configured: Any, base: str, token_alias: str):
    mtls(configured, MTLS_BASE_URL=base)
    assert both_hosts()["mtls_endpoint_aliases"]["token_endpoint"] == token_alias


@pytest.mark.parametrize(
    "base", [None, "", "http://mtls.example.com/o", "mtls.example.com", "/o", "https://x/o?a=b"]
)
def test_no_aliases_without_a_valid_mtls_base_url(configured: Any, base: str | None):
    mtls(configured, MTLS_BASE_URL=base)
    for host in (MAIN, MTLS):
        assert "mtls_endpoint_aliases" not in document(host=host)


def test_same_document_on_both_hosts_and_any_other_allowed_host(configured: Any):
    """Absolute URLs come from configuration, never from the request's Host (P13)."""
    reference = fetch(RFC8414, MAIN).content
    assert fetch(RFC8414, MTLS).content == reference
    assert fetch(RFC8414, "testserver").content == reference
    assert Client().get(RFC8414, HTTP_HOST=MTLS).content == reference  # plain http too
    assert MTLS.encode() in reference and b"testserver" not in reference


def test_without_oidc_iss_endpoint_the_request_host_shows_through(configured: Any):
    """What W006 warns about: DOT builds URLs from the request then."""
    provider(configured, OIDC_ISS_ENDPOINT="")
    main, alias = document(host=MAIN), document(host=MTLS)
    assert main["token_endpoint"] == f"https://{MAIN}/o/token/"
    assert alias["token_endpoint"] == f"https://{MTLS}/o/token/"
    assert main["mtls_endpoint_aliases"] == alias["mtls_endpoint_aliases"]


# --- OIDC ------------------------------------------------------------------------------------


@pytest.fixture
def oidc(configured: Any) -> Any:
    provider(configured, OIDC_ENABLED=True)
    return configured


def test_oidc_discovery_is_404_while_oidc_is_off(configured: Any):
    assert Client().get(OIDC, HTTP_HOST=MAIN).status_code == 404


@pytest.mark.parametrize("url", [OIDC, RFC8414])
def test_oidc_on_userinfo_at_the_top_level_and_aliased(oidc: Any, url: str):
    data = both_hosts(url)
    assert data["userinfo_endpoint"] == f"{ISSUER}/o/userinfo/"
    aliases = assert_aliases_well_formed(data)
    assert aliases["userinfo_endpoint"] == f"https://{MTLS}/o/userinfo/"
    assert set(aliases) == DIRECT


def test_oidc_discovery_carries_the_mtls_members(oidc: Any):
    data = both_hosts(OIDC)
    assert data["issuer"] == ISSUER
    for member in AUTH_MEMBERS:
        assert data[member] == [*DOT_METHODS, *MTLS_METHODS]
    assert data["tls_client_certificate_bound_access_tokens"] is True
    # The endpoints DOT's OIDC document leaves out, so that they can be aliased (P13).
    assert data["revocation_endpoint"] == f"{ISSUER}/o/revoke_token/"
    assert data["introspection_endpoint"] == f"{ISSUER}/o/introspect/"
    assert data["registration_endpoint"] == f"{ISSUER}/o/register/"


def test_oidc_discovery_uses_its_own_method_list(oidc: Any):
    provider(oidc, OIDC_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED=["client_secret_basic"])
    data = document(OIDC)
    for member in AUTH_MEMBERS:
        assert data[member] == ["client_secret_basic", *MTLS_METHODS]


def test_a_userinfo_served_elsewhere_is_not_aliased(oidc: Any):
    provider(oidc, OIDC_USERINFO_ENDPOINT="https://userinfo.example.net/me")
    for url in (OIDC, RFC8414):
        data = both_hosts(url)
        assert data["userinfo_endpoint"] == "https://userinfo.example.net/me"
        assert "userinfo_endpoint" not in assert_aliases_well_formed(data)


# --- RFC 9728 --------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [RFC9728, "/.well-known/oauth-protected-resource/api"])
@pytest.mark.parametrize("host", [MAIN, MTLS])
def test_protected_resource_metadata_supports_bound_tokens(configured: Any, url: str, host: str):
    data = document(url, host)
    assert data["tls_client_certificate_bound_access_tokens"] is True
    assert data["authorization_servers"] == [ISSUER]
    mtls(configured, CERTIFICATE_SOURCE=None)
    assert document(url, host)["tls_client_certificate_bound_access_tokens"] is False


def test_protected_resource_keeps_dot_resource_per_host(configured: Any):
    """RFC 9728 §3.3 ties ``resource`` to the URL the document came from."""
    assert document(RFC9728, MAIN)["resource"] == f"https://{MAIN}"
    assert document(RFC9728, MTLS)["resource"] == f"https://{MTLS}"


# --- the alias endpoints behave as the main ones (R8705-5-5) ---------------------------------


def test_token_from_the_alias_then_used_on_each_host(
    configured: Any, make_app: Any, client_cert: Any
):
    app = make_app(
        tls_client_auth_san_dns="client-one.example.com",
        tls_client_certificate_bound_access_tokens=True,
    )
    aliases = both_hosts()["mtls_endpoint_aliases"]
    token_path = aliases["token_endpoint"].removeprefix(f"https://{MTLS}")
    client = Client()
    response = token_request(client, app, client_cert, headers={"HTTP_HOST": MTLS, "secure": True})
    assert token_path == "/o/token/"
    assert response.status_code == 200, response.content
    token = response.json()["access_token"]

    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token}", "REMOTE_ADDR": "127.0.0.1"}
    on_alias = client.get(
        "/api/whoami/", HTTP_HOST=MTLS, HTTP_X_SSL_CLIENT_CERT=client_cert.nginx(), **bearer
    )
    assert on_alias.status_code == 200, on_alias.content
    assert on_alias.json()["x5t#S256"] == client_cert.x5t_s256
    # The main host's proxy strips certificate fields: the bound token alone is refused.
    on_main = client.get("/api/whoami/", HTTP_HOST=MAIN, **bearer)
    assert on_main.status_code == 401
    assert 'error="invalid_token"' in on_main["WWW-Authenticate"]

    # An mTLS client calling the main host's token endpoint without a certificate: invalid_client.
    refused = post_form(
        client,
        "/o/token/",
        {"grant_type": "client_credentials", "client_id": app.client_id},
        HTTP_HOST=MAIN,
        REMOTE_ADDR="127.0.0.1",
    )
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"


# --- system checks ---------------------------------------------------------------------------


def check_ids(settings: Any, **values: Any) -> list[str]:
    mtls(settings, **values)
    messages = check_metadata_settings()
    assert all(isinstance(m, CheckWarning) for m in messages)
    return [m.id for m in messages]


def test_no_mtls_base_url_no_messages(configured: Any):
    assert check_ids(configured, MTLS_BASE_URL=None) == []
    provider(configured, OIDC_ISS_ENDPOINT="")
    assert check_ids(configured, MTLS_BASE_URL=None) == []


def test_clean_configuration_no_messages(configured: Any):
    assert check_ids(configured) == []
    assert check_ids(configured, MTLS_BASE_URL="https://mtls.example.com") == []


def test_mtls_base_url_without_issuer_W006(configured: Any):
    provider(configured, OIDC_ISS_ENDPOINT="")
    assert check_ids(configured) == ["oauth_mtls.W006"]


@pytest.mark.parametrize(
    "base",
    ["http://mtls.example.com/o", "mtls.example.com", "/o", "https:///o", "https://m/o#x", 42],
)
def test_mtls_base_url_not_absolute_https_W007(configured: Any, base: Any):
    assert check_ids(configured, MTLS_BASE_URL=base) == ["oauth_mtls.W007"]


def test_both_warnings(configured: Any):
    provider(configured, OIDC_ISS_ENDPOINT="")
    assert check_ids(configured, MTLS_BASE_URL="http://mtls") == [
        "oauth_mtls.W007",
        "oauth_mtls.W006",
    ]


# --- jwks_uri: the JWK set of JWT access-token keys (RFC 8414 §2, RFC 9068 §4) -------------------


@pytest.fixture
def access_token_key(tmp_path: Any) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from django_oauth_mtls import jwt_keys

    path = tmp_path / "access-token-key.pem"
    path.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    jwt_keys.reset()
    yield str(path)
    jwt_keys.reset()


def test_jwks_info_is_ours_whether_oidc_is_on_or_off():
    from django_oauth_mtls.jwks_info import MTLSJwksInfoView

    assert "jwks-info" in mtls_urls.REPLACEMENTS
    assert resolve("/o/.well-known/jwks.json").func.view_class is MTLSJwksInfoView


@pytest.mark.parametrize("url", AS_DOCUMENTS)
def test_jwks_uri_when_access_token_keys_are_published(
    configured: Any, access_token_key: str, url: str
):
    mtls(configured, JWT_SIGNING_KEYS=[access_token_key])
    data = both_hosts(url)
    assert data["jwks_uri"] == f"{ISSUER}/o/.well-known/jwks.json"
    assert "jwks_uri" not in data["mtls_endpoint_aliases"]  # never an mTLS alias
    keys = document("/o/.well-known/jwks.json")["keys"]
    assert [key["kid"] for key in keys] and all(key["use"] == "sig" for key in keys)


@pytest.mark.parametrize("url", AS_DOCUMENTS)
def test_no_jwks_uri_while_the_set_is_empty(configured: Any, url: str):
    assert "jwks_uri" not in both_hosts(url)
    assert document("/o/.well-known/jwks.json") == {"keys": []}
