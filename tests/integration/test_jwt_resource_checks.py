"""System checks of the resource side of JWT access tokens (``jwt_resource_checks``; E020-E027,
W020; docs/checks.md): one test per id with ``override_settings``, plus ``manage.py check``.

No ``django_db`` mark anywhere: a query would raise "Database access not allowed".
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_oauth_mtls.checks import check_settings
from django_oauth_mtls.jwt_resource_checks import check_jwt_resource

AUDIENCE = "https://api.example.com"
ISSUER = "https://as.example.com"
JWKS_URI = "https://as.example.com/o/.well-known/jwks.json"

#: A separate resource server with nothing missing.
REMOTE = {
    "RESOURCE_SERVER_TOKEN_VALIDATION": "jwt",
    "RESOURCE_SERVER_AUDIENCE": AUDIENCE,
    "RESOURCE_SERVER_JWT_ISSUER": ISSUER,
    "RESOURCE_SERVER_JWKS_URI": JWKS_URI,
}


def rs_ids(provider: dict | None = None, **mtls) -> list[str]:
    """The resource checks' ids for ``OAUTH2_MTLS=mtls`` (DOT's settings updated by
    ``provider``; no ``OIDC_ISS_ENDPOINT`` unless given)."""
    dot = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": None, **(provider or {})}
    with override_settings(OAUTH2_MTLS=mtls, OAUTH2_PROVIDER=dot):
        return [message.id for message in check_jwt_resource()]


def messages(**mtls):
    with override_settings(OAUTH2_MTLS=mtls):
        return check_jwt_resource()


@pytest.fixture
def key_file(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "access-token.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(path)


def user_from_claims(claims):
    return None


NOT_CALLABLE = 42


# --- nothing to say ---------------------------------------------------------------------------


def test_no_settings_or_not_a_dict():
    with override_settings(OAUTH2_MTLS=None):
        assert check_jwt_resource() == []
    with override_settings(OAUTH2_MTLS=["jwt"]):
        assert check_jwt_resource() == []  # E000 (checks.py) reports it


def test_stored_token_modes_need_nothing():
    assert rs_ids() == []
    assert rs_ids(RESOURCE_SERVER_TOKEN_VALIDATION="database") == []
    assert rs_ids(RESOURCE_SERVER_TOKEN_VALIDATION="introspection") == []


@pytest.mark.parametrize("mode", ["jwt", "jwt_or_database"])
def test_remote_resource_server_without_problems(mode):
    assert rs_ids(**{**REMOTE, "RESOURCE_SERVER_TOKEN_VALIDATION": mode}) == []


def test_resource_on_the_authorization_server_without_problems(key_file):
    """Issuer from OIDC_ISS_ENDPOINT, keys from JWT_SIGNING_KEYS (or only published ones)."""
    provider = {"OIDC_ISS_ENDPOINT": ISSUER}
    for keys in ({"JWT_SIGNING_KEYS": [key_file]}, {"JWT_PUBLISHED_KEYS": [key_file]}):
        assert rs_ids(provider, RESOURCE_SERVER_TOKEN_VALIDATION="jwt_or_database",
                      RESOURCE_SERVER_AUDIENCE=AUDIENCE, **keys) == []  # fmt: skip


def test_private_addresses_are_fine_for_the_operators_uri():
    assert rs_ids(**{**REMOTE, "RESOURCE_SERVER_JWKS_URI": "https://10.0.0.5/jwks.json"}) == []
    assert rs_ids(**{**REMOTE, "RESOURCE_SERVER_JWKS_URI": "https://127.0.0.1:8443/j"}) == []


# --- one test per id --------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["JWT", "jwt_or_opaque", "", None, 1])
def test_unknown_mode_E020(value):
    assert rs_ids(RESOURCE_SERVER_TOKEN_VALIDATION=value) == ["oauth_mtls.E020"]
    [message] = messages(RESOURCE_SERVER_TOKEN_VALIDATION=value)
    assert "jwt_or_database" in message.hint and message.level >= 40


@pytest.mark.parametrize("mode", ["jwt", "jwt_or_database", "jwt_or_introspection"])
def test_jwt_mode_without_audience_E021(mode):
    provider = {"RESOURCE_SERVER_INTROSPECTION_URL": "https://as.example.com/o/introspect/"}
    mtls = {**REMOTE, "RESOURCE_SERVER_TOKEN_VALIDATION": mode}
    del mtls["RESOURCE_SERVER_AUDIENCE"]
    assert rs_ids(provider, **mtls) == ["oauth_mtls.E021"]
    assert rs_ids(provider, **mtls, RESOURCE_SERVER_AUDIENCE="") == ["oauth_mtls.E021"]


def test_jwt_mode_without_issuer_E022():
    mtls = {key: value for key, value in REMOTE.items() if key != "RESOURCE_SERVER_JWT_ISSUER"}
    assert rs_ids(**mtls) == ["oauth_mtls.E022"]
    # DOT's OIDC_ISS_ENDPOINT is the default issuer.
    assert rs_ids({"OIDC_ISS_ENDPOINT": ISSUER}, **mtls) == []


def test_jwt_mode_without_any_key_source_E023():
    mtls = {key: value for key, value in REMOTE.items() if key != "RESOURCE_SERVER_JWKS_URI"}
    assert rs_ids(**mtls) == ["oauth_mtls.E023"]
    assert rs_ids(**mtls, JWT_SIGNING_KEYS=[], JWT_PUBLISHED_KEYS=[]) == ["oauth_mtls.E023"]


def test_all_three_missing_at_once():
    assert rs_ids(RESOURCE_SERVER_TOKEN_VALIDATION="jwt") == [
        "oauth_mtls.E021",
        "oauth_mtls.E022",
        "oauth_mtls.E023",
    ]


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("http://as.example.com/o/.well-known/jwks.json", "must be an https URL"),
        ("as.example.com/o/.well-known/jwks.json", "must be an https URL"),
        ("https:///jwks.json", "has no host"),
        ("https://user:secret@as.example.com/jwks.json", "must not carry credentials"),
        ("https://as.example.com:99999/jwks.json", "not a valid URL"),
    ],
)
def test_jwks_uri_not_https_E024(uri, fragment):
    assert rs_ids(**{**REMOTE, "RESOURCE_SERVER_JWKS_URI": uri}) == ["oauth_mtls.E024"]
    [message] = messages(**{**REMOTE, "RESOURCE_SERVER_JWKS_URI": uri})
    assert fragment.replace("jwks_uri", "the URL") in message.msg
    # Set in a stored-token mode it is still a value that can never work.
    assert rs_ids(RESOURCE_SERVER_JWKS_URI=uri) == ["oauth_mtls.E024"]


def test_jwt_or_introspection_without_introspection_url_W020():
    mtls = {**REMOTE, "RESOURCE_SERVER_TOKEN_VALIDATION": "jwt_or_introspection"}
    assert rs_ids(**mtls) == ["oauth_mtls.W020"]
    [message] = messages(**mtls)
    assert message.level == 30 and "jwt_or_database" in message.hint
    provider = {"RESOURCE_SERVER_INTROSPECTION_URL": "https://as.example.com/o/introspect/"}
    assert rs_ids(provider, **mtls) == []


@pytest.mark.parametrize(
    "algorithms",
    [["ES256", "none"], ["HS256"], ["PS256", "hs512"], ["NONE"], ["ES256", "es256"], ["RSA-OAEP"]],
)
def test_algorithms_never_accepted_E025(algorithms):
    got = rs_ids(**REMOTE, RESOURCE_SERVER_JWT_ALGORITHMS=algorithms)
    usable = any(alg in ("ES256", "PS256") for alg in algorithms)
    assert got == (["oauth_mtls.E025"] if usable else ["oauth_mtls.E025", "oauth_mtls.E026"])
    # Set outside the jwt modes it is still wrong, but nothing is refused for it.
    assert rs_ids(RESOURCE_SERVER_JWT_ALGORITHMS=algorithms) == ["oauth_mtls.E025"]


def test_algorithms_not_a_list_E025():
    # A lone string would be read character by character: nothing usable.
    assert rs_ids(**REMOTE, RESOURCE_SERVER_JWT_ALGORITHMS="ES256") == [
        "oauth_mtls.E025",
        "oauth_mtls.E026",
    ]
    [first, _] = messages(**REMOTE, RESOURCE_SERVER_JWT_ALGORITHMS="ES256")
    assert "not a list" in first.msg


@pytest.mark.parametrize("algorithms", [[], None, ()])
def test_no_usable_algorithm_E026(algorithms):
    assert rs_ids(**REMOTE, RESOURCE_SERVER_JWT_ALGORITHMS=algorithms) == ["oauth_mtls.E026"]
    assert rs_ids(RESOURCE_SERVER_JWT_ALGORITHMS=algorithms) == []  # no JWT is ever checked


def test_usable_algorithm_lists():
    for algorithms in (["ES256"], ("PS256", "EdDSA"), ["RS512", "ES512"]):
        assert rs_ids(**REMOTE, RESOURCE_SERVER_JWT_ALGORITHMS=algorithms) == []


@pytest.mark.parametrize(
    "path",
    [
        "tests.nowhere.user_from_claims",
        "remote",  # not a dotted path
        "Local",
        f"{__name__}.no_such_function",
        f"{__name__}.NOT_CALLABLE",
    ],
)
def test_user_policy_not_importable_E027(path):
    assert rs_ids(**REMOTE, RESOURCE_SERVER_JWT_USER=path) == ["oauth_mtls.E027"]


def test_user_policies_that_work():
    for policy in ("local", None, f"{__name__}.user_from_claims"):
        assert rs_ids(**REMOTE, RESOURCE_SERVER_JWT_USER=policy) == []


def test_the_runtime_fails_closed_where_the_checks_complain():
    """What E020, E025 and E026 report is what the resource then does: JWTs only, and only
    algorithms of the allow-list."""
    from django_oauth_mtls.conf import mtls_settings

    with override_settings(OAUTH2_MTLS={"RESOURCE_SERVER_TOKEN_VALIDATION": "JWT",
                                        "RESOURCE_SERVER_JWT_ALGORITHMS": "ES256"}):  # fmt: skip
        assert mtls_settings.RESOURCE_SERVER_TOKEN_VALIDATION == "jwt"
        assert mtls_settings.RESOURCE_SERVER_JWT_ALGORITHMS == ()
    with override_settings(OAUTH2_MTLS={"RESOURCE_SERVER_JWT_ALGORITHMS": 256}):
        assert mtls_settings.RESOURCE_SERVER_JWT_ALGORITHMS == ()
    with override_settings(OAUTH2_MTLS={"RESOURCE_SERVER_JWT_ALGORITHMS": ["none", "ES256"]}):
        assert mtls_settings.RESOURCE_SERVER_JWT_ALGORITHMS == ("ES256",)


def test_messages_say_the_fix_and_the_consequence():
    every = messages(RESOURCE_SERVER_TOKEN_VALIDATION="jwt", RESOURCE_SERVER_JWKS_URI="http://x/",
                     RESOURCE_SERVER_JWT_ALGORITHMS=["HS256"], RESOURCE_SERVER_JWT_USER="x.y")  # fmt: skip
    assert [m.id for m in every] == [
        "oauth_mtls.E021",
        "oauth_mtls.E022",
        "oauth_mtls.E024",
        "oauth_mtls.E025",
        "oauth_mtls.E026",
        "oauth_mtls.E027",
    ]
    for message in every:
        assert message.hint and message.msg.rstrip().endswith(".")


def test_settings_check_is_not_affected():
    """checks.check_settings keeps its own ids; the resource rules are a separate check."""
    with override_settings(OAUTH2_MTLS={"RESOURCE_SERVER_TOKEN_VALIDATION": "jwt",
                                        "TRUSTED_CA_CERTIFICATES": []}):  # fmt: skip
        assert not any(m.id in {"oauth_mtls.E021", "oauth_mtls.E022"} for m in check_settings())


def test_manage_py_check_reports_resource_errors():
    with (
        override_settings(OAUTH2_MTLS={**REMOTE, "RESOURCE_SERVER_JWKS_URI": "http://as/jwks"}),
        pytest.raises(SystemCheckError, match="oauth_mtls.E024"),
    ):
        call_command("check")


def test_manage_py_check_passes_a_good_remote_resource_server():
    with override_settings(OAUTH2_MTLS={**REMOTE, "CERTIFICATE_SOURCE": "nginx",
                                        "TRUSTED_PROXIES": ["127.0.0.1/32"]}):  # fmt: skip
        call_command("check")  # warnings are printed, errors would raise
