"""``manage.py mtls_set_client`` and ``manage.py mtls_explain`` (call_command, StringIO).

The certificates come from ``tests/pki.py`` (valid 2026-01-01 to 2036-01-01 unless a test says
otherwise); ``mtls_settings`` trusts the test root CA and reads nginx's field from 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from django_oauth_mtls.jwks import parse_jwk_set
from django_oauth_mtls.models import MTLSClient
from tests import pki
from tests.integration.conftest import token_request

pytestmark = pytest.mark.django_db

DN = "CN=client-one,O=Example\\, Inc.,C=DE"


def run(name: str, *args: str) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out, no_color=True)
    return out.getvalue()


def refused(name: str, *args: str) -> tuple[CommandError, str]:
    out = StringIO()
    with pytest.raises(CommandError) as info:
        call_command(name, *args, stdout=out, no_color=True)
    return info.value, out.getvalue()


@pytest.fixture
def pem_file(tmp_path):
    def write(issued: pki.Issued, *chain: pki.Issued, name: str = "client.pem") -> str:
        path = tmp_path / name
        path.write_text(issued.pem + "".join(c.pem for c in chain))
        return str(path)

    return write


# --- mtls_set_client -------------------------------------------------------------------------


def test_set_subject_dn_then_the_token_endpoint_accepts_the_certificate(
    client, make_app, mtls_settings, client_cert, pem_file
):
    app = make_app(None)
    output = run(
        "mtls_set_client",
        app.client_id,
        "--certificate",
        pem_file(client_cert),
        "--use",
        "subject_dn",
        "--bound-tokens",
    )
    assert output.splitlines() == [
        f"client_id: {app.client_id}",
        "token_endpoint_auth_method: tls_client_auth",
        f"registered: tls_client_auth_subject_dn = {DN}",
        f"certificate x5t#S256: {client_cert.x5t_s256}",
        "tls_client_certificate_bound_access_tokens: true",
        "saved",
        f"check: match — client '{app.client_id}' authenticates with this certificate "
        "(tls_client_auth)",
    ]
    row = MTLSClient.objects.get(pk=app.pk)
    assert row.subject_field == ("tls_client_auth_subject_dn", DN)
    response = token_request(client, app, client_cert)
    assert response.status_code == 200, response.content
    assert response.json()["token_type"] == "Bearer"


def test_set_a_san_replaces_the_registered_value(make_app, client_cert, pem_file):
    app = make_app(tls_client_auth_subject_dn=DN, tls_client_certificate_bound_access_tokens=True)
    run(
        "mtls_set_client", app.client_id, "--certificate", pem_file(client_cert), "--use", "san_uri"
    )
    row = MTLSClient.objects.get(pk=app.pk)
    assert row.subject_field == ("tls_client_auth_san_uri", "spiffe://example.org/client-one")
    assert row.tls_client_auth_subject_dn == ""
    assert row.tls_client_certificate_bound_access_tokens  # unchanged without the flag
    run(
        "mtls_set_client",
        app.client_id,
        "--certificate",
        pem_file(client_cert),
        "--use",
        "san_email",
        "--no-bound-tokens",
    )
    row.refresh_from_db()
    assert row.subject_field == ("tls_client_auth_san_email", "ops@example.com")
    assert not row.tls_client_certificate_bound_access_tokens


def test_several_sans_of_a_type_need_value(make_app, client_cert, pem_file):
    app = make_app(None)
    path = pem_file(client_cert)
    error, _ = refused("mtls_set_client", app.client_id, "--certificate", path, "--use", "san_ip")
    assert str(error) == (
        "the certificate has 2 san_ip values; choose one with --value: 192.0.2.10, 2001:db8::1"
    )
    run(
        "mtls_set_client",
        app.client_id,
        "--certificate",
        path,
        "--use",
        "san_ip",
        "--value",
        "2001:0db8:0::1",  # compared as addresses
    )
    assert MTLSClient.objects.get(pk=app.pk).tls_client_auth_san_ip == "2001:db8::1"
    error, _ = refused(
        "mtls_set_client",
        app.client_id,
        "--certificate",
        path,
        "--use",
        "san_dns",
        "--value",
        "other.example.com",
    )
    assert str(error) == (
        "'other.example.com' is not a san_dns value of the certificate "
        "(it has: client-one.example.com)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--use", "san_email"], "the certificate has no san_email value"),
        ([], "tls_client_auth needs --use subject_dn|san_dns|san_uri|san_ip|san_email"),
        (
            ["--use", "subject_dn", "--value", "x"],
            "--value applies to the SAN types; subject_dn is the whole DN",
        ),
        (
            ["--method", "self_signed_tls_client_auth", "--use", "san_dns"],
            "--use and --value apply to tls_client_auth only",
        ),
        (
            ["--use", "subject_dn", "--append"],
            "--append applies to self_signed_tls_client_auth only",
        ),
    ],
)
def test_set_client_usage_errors(make_app, pem_file, args, message):
    bare = pki.issue(pki.name(CN="bare"), issuer=pki.make_ca())
    app = make_app(None)
    error, _ = refused("mtls_set_client", app.client_id, "--certificate", pem_file(bare), *args)
    assert str(error) == message
    assert not MTLSClient.objects.filter(pk=app.pk).exists()


def test_set_client_refusals(make_app, client_cert, pem_file, tmp_path):
    error, _ = refused(
        "mtls_set_client", "nope", "--certificate", pem_file(client_cert), "--use", "subject_dn"
    )
    assert str(error) == "no application with client_id 'nope'"
    public = make_app(None, client_type="public")
    error, _ = refused(
        "mtls_set_client",
        public.client_id,
        "--certificate",
        pem_file(client_cert),
        "--use",
        "san_dns",
    )
    assert str(error) == (
        "the client's metadata is not valid: token_endpoint_auth_method: "
        "mTLS methods require a confidential client."
    )
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello")
    error, _ = refused(
        "mtls_set_client", public.client_id, "--certificate", str(garbage), "--use", "san_dns"
    )
    assert str(error) == f"{garbage} is not a PEM certificate (malformed: no PEM certificate block)"
    error, _ = refused(
        "mtls_set_client",
        public.client_id,
        "--certificate",
        str(tmp_path / "missing.pem"),
        "--use",
        "san_dns",
    )
    assert str(error).startswith(f"cannot read {tmp_path / 'missing.pem'}: ")


def test_set_self_signed_writes_a_jwks_with_x5c(client, make_app, mtls_settings, pem_file):
    first = pki.issue(pki.name(CN="self-signed client"), dns=("self.example",))
    second = pki.issue(pki.name(CN="self-signed client"), key=pki.make_key("rsa"))
    app = make_app(None)
    output = run(
        "mtls_set_client",
        app.client_id,
        "--certificate",
        pem_file(first),
        "--method",
        "self_signed_tls_client_auth",
    )
    assert "registered: jwks with 1 key(s), this certificate as x5c[0]" in output
    row = MTLSClient.objects.get(pk=app.pk)
    (key,) = row.jwks["keys"]
    assert key["kty"] == "EC" and key["crv"] == "P-256" and {"x", "y"} <= key.keys()
    assert "d" not in key
    assert key["x5c"] == [first.b64()]
    assert key["kid"] == key["x5t#S256"] == first.x5t_s256
    assert parse_jwk_set(row.jwks) == (first.der,)  # the key members match x5c[0]
    assert token_request(client, app, first).status_code == 200

    run(  # rotation: keep the first, add the second (an RSA key)
        "mtls_set_client",
        app.client_id,
        "--certificate",
        pem_file(second, name="2.pem"),
        "--method",
        "self_signed_tls_client_auth",
        "--append",
    )
    row.refresh_from_db()
    assert parse_jwk_set(row.jwks) == (first.der, second.der)
    assert row.jwks["keys"][1]["kty"] == "RSA"
    run(  # without --append the set is replaced
        "mtls_set_client",
        app.client_id,
        "--certificate",
        pem_file(second, name="2.pem"),
        "--method",
        "self_signed_tls_client_auth",
    )
    row.refresh_from_db()
    assert parse_jwk_set(row.jwks) == (second.der,)


@pytest.mark.parametrize("strict", [False, True], ids=["warns", "strict"])
def test_set_client_checks_the_saved_registration(make_app, mtls_settings, pem_file, strict):
    """Issue 17: a certificate that does not chain to TRUSTED_CA_CERTIFICATES was registered
    without a word. It is still saved; the command warns (exit 0), or fails with --strict."""
    other = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"),
        issuer=pki.make_ca("Other CA"),
        dns=("client-one.example.com",),
    )
    app = make_app(None)
    path = pem_file(other)
    args = ["mtls_set_client", app.client_id, "--certificate", path, "--use", "san_dns"]
    out, err = StringIO(), StringIO()
    if strict:
        with pytest.raises(CommandError) as info:
            call_command(*args, "--strict", stdout=out, stderr=err, no_color=True)
        assert info.value.returncode == 1
        assert str(info.value) == "saved, but the certificate would be refused: chain_invalid"
    else:
        call_command(*args, stdout=out, stderr=err, no_color=True)  # exit status 0
    assert out.getvalue().splitlines()[-1] == "saved"
    warning, hint = err.getvalue().splitlines()
    assert warning.startswith(
        f"warning: The registration of client_id={app.client_id} is saved, but the token "
        "endpoint would refuse this certificate for it: refused — reason=chain_invalid: "
        "certificate chain does not validate to a trusted CA"
    )
    assert (
        hint
        == f"Each step: manage.py mtls_explain --client-id {app.client_id} --certificate {path}"
    )
    row = MTLSClient.objects.get(pk=app.pk)  # saved either way
    assert row.subject_field == ("tls_client_auth_san_dns", "client-one.example.com")


def test_set_client_self_signed_is_checked_too(make_app, pem_file):
    expired = pki.issue(
        pki.name(CN="self-signed"),
        not_after=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),  # expired on 2026-01-02
    )
    app = make_app(None)
    out, err = StringIO(), StringIO()
    call_command(
        "mtls_set_client",
        app.client_id,
        "--certificate",
        pem_file(expired),
        "--method",
        "self_signed_tls_client_auth",
        stdout=out,
        stderr=err,
        no_color=True,
    )
    assert "reason=expired" in err.getvalue()
    assert MTLSClient.objects.get(pk=app.pk).jwks["keys"][0]["kid"] == expired.x5t_s256


# --- mtls_explain ----------------------------------------------------------------------------


def lines(output: str) -> list[str]:
    return output.splitlines()


def test_explain_a_match_from_a_file(make_app, mtls_settings, client_cert, pem_file):
    app = make_app(tls_client_auth_subject_dn=DN)
    path = pem_file(client_cert)
    output = run("mtls_explain", "--client-id", app.client_id, "--certificate", path)
    assert lines(output) == [
        f"intake: file {path}: x5t#S256={client_cert.x5t_s256}, "
        f'subject="{DN}", SAN dns=client-one.example.com uri=spiffe://example.org/client-one '
        "ip=192.0.2.10,2001:db8::1 email=ops@example.com, "
        "valid 2026-01-01T00:00:00+00:00 to 2036-01-01T00:00:00+00:00",
        f"client: client_id={app.client_id}, method=tls_client_auth, "
        f'registered tls_client_auth_subject_dn="{DN}", tokens not bound by default',
        f"chain: valid: {DN} → O=Test PKI,CN=Test Root CA",
        f'match: tls_client_auth_subject_dn = "{DN}" matches',
        f"verdict: match — client '{app.client_id}' authenticates with this certificate "
        "(tls_client_auth)",
    ]


def test_explain_a_match_from_a_proxy_header(make_app, mtls_settings, client_cert):
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    output = run(
        "mtls_explain",
        "--client-id",
        app.client_id,
        f"--header={client_cert.nginx()}",
        "--source",
        "nginx",
    )
    first, *_, last = lines(output)
    assert first.startswith(
        "intake: source=nginx field=X-SSL-Client-Cert peer=127.0.0.1: "
        f"x5t#S256={client_cert.x5t_s256}, "
    )
    assert 'match: tls_client_auth_san_dns = "client-one.example.com" matches' in lines(output)
    assert last.startswith("verdict: match — ")


def test_explain_another_source_than_the_configured_one(make_app, mtls_settings, client_cert):
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    output = run(
        "mtls_explain",
        "--client-id",
        app.client_id,
        "--header",
        client_cert.rfc9440(),
        "--source",
        "rfc9440",
        "--chain-header",
        f":{pki.make_ca().b64()}:",
    )
    assert lines(output)[0].startswith("intake: source=rfc9440 field=Client-Cert peer=127.0.0.1: ")
    assert ", 1 chain certificate(s)" in lines(output)[0]
    assert lines(output)[-1].startswith("verdict: match")


def test_explain_subject_mismatch(make_app, mtls_settings, client_cert, pem_file):
    app = make_app(tls_client_auth_san_dns="client-two.example.com")
    error, output = refused(
        "mtls_explain", "--client-id", app.client_id, "--certificate", pem_file(client_cert)
    )
    assert (str(error), error.returncode) == ("refused: subject_mismatch", 1)
    assert lines(output)[2:] == [
        f"chain: valid: {DN} → O=Test PKI,CN=Test Root CA",
        "match: REFUSED subject_mismatch: the certificate does not match the registered "
        "tls_client_auth_san_dns",
        "verdict: refused — reason=subject_mismatch: the certificate does not match the "
        "registered tls_client_auth_san_dns",
    ]


def test_explain_untrusted_ca(make_app, mtls_settings, pem_file):
    other = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"), issuer=pki.make_ca("Other CA")
    )
    app = make_app(tls_client_auth_subject_dn=DN)
    error, output = refused(
        "mtls_explain", "--client-id", app.client_id, "--certificate", pem_file(other)
    )
    assert (str(error), error.returncode) == ("refused: chain_invalid", 1)
    chain, verdict = lines(output)[2:]
    assert chain.startswith(
        "chain: REFUSED chain_invalid: certificate chain does not validate to a trusted CA"
    )
    assert verdict.startswith("verdict: refused — reason=chain_invalid: ")


def test_explain_expired(make_app, mtls_settings, client_cert, pem_file):
    app = make_app(tls_client_auth_subject_dn=DN)
    error, output = refused(
        "mtls_explain",
        "--client-id",
        app.client_id,
        "--certificate",
        pem_file(client_cert),
        "--at",
        "2036-02-01T00:00:00Z",  # a month after the certificate expires
    )
    assert (str(error), error.returncode) == ("refused: expired", 1)
    chain, verdict = lines(output)[2:]
    assert chain.startswith("chain: REFUSED expired: ")
    assert verdict.startswith("verdict: refused — reason=expired: ")


def test_explain_a_header_the_intake_refuses(make_app, mtls_settings, client_cert):
    app = make_app(tls_client_auth_subject_dn=DN)
    error, output = refused(
        "mtls_explain",
        "--client-id",
        app.client_id,
        "--header=-----BEGIN%20CERTIFICATE-----",
    )
    assert (str(error), error.returncode) == ("refused: no_certificate", 1)
    assert lines(output)[0] == (
        "intake: source=nginx field=X-SSL-Client-Cert peer=127.0.0.1: REFUSED malformed "
        "(no PEM certificate block)"
    )
    assert lines(output)[-1] == (
        "verdict: refused — reason=no_certificate (intake: malformed): the token endpoint "
        "would see no usable client certificate"
    )
    error, output = refused(
        "mtls_explain",
        "--client-id",
        app.client_id,
        f"--header={client_cert.nginx()}",
        "--remote-addr",
        "203.0.113.9",
    )
    assert lines(output)[0] == (
        "intake: source=nginx field=X-SSL-Client-Cert peer=203.0.113.9: REFUSED untrusted_peer "
        "(peer is not in TRUSTED_PROXIES)"
    )


def test_explain_with_proxy_verification(make_app, settings, client_cert):
    settings.OAUTH2_MTLS = {
        "CERTIFICATE_SOURCE": "nginx",
        "TRUSTED_PROXIES": ["10.0.0.0/8"],
        "TRUST_PROXY_VERIFICATION": True,
    }
    app = make_app(tls_client_auth_subject_dn=DN)
    args = ("mtls_explain", "--client-id", app.client_id, f"--header={client_cert.nginx()}")
    output = run(*args, "--verify-header", "SUCCESS")
    assert "peer=10.0.0.0: " in lines(output)[0] and "proxy verified: yes" in lines(output)[0]
    assert "chain: verified by the proxy (TRUST_PROXY_VERIFICATION)" in lines(output)
    error, output = refused(*args, "--verify-header", "FAILED:unable to get issuer")
    assert str(error) == "refused: chain_invalid"


def test_explain_self_signed(make_app, mtls_settings, pem_file):
    registered = pki.issue(pki.name(CN="self-signed client"))
    stranger = pki.issue(pki.name(CN="self-signed client"))
    app = make_app(None)
    run(
        "mtls_set_client",
        app.client_id,
        "--certificate",
        pem_file(registered),
        "--method",
        "self_signed_tls_client_auth",
    )
    output = run(
        "mtls_explain", "--client-id", app.client_id, "--certificate", pem_file(registered)
    )
    assert lines(output)[2:] == [
        "certificate: validity and key strength ok (no chain validation for self-signed)",
        "match: the certificate is x5c[0] of a JWK in the client's set",
        f"verdict: match — client '{app.client_id}' authenticates with this certificate "
        "(self_signed_tls_client_auth)",
    ]
    error, output = refused(
        "mtls_explain",
        "--client-id",
        app.client_id,
        "--certificate",
        pem_file(stranger, name="s.pem"),
    )
    assert str(error) == "refused: not_in_jwk_set"
    assert lines(output)[-2] == (
        "match: REFUSED not_in_jwk_set: the certificate is not in the client's registered JWK set"
    )
    error, output = refused(
        "mtls_explain",
        "--client-id",
        app.client_id,
        "--certificate",
        pem_file(registered),
        "--at",
        dt.datetime(2040, 1, 1).isoformat(),
    )
    assert str(error) == "refused: expired"
    assert lines(output)[-2].startswith("certificate: REFUSED expired: ")


def test_explain_a_client_without_mtls_metadata(make_app, mtls_settings, client_cert, pem_file):
    app = make_app(None)
    error, output = refused(
        "mtls_explain", "--client-id", app.client_id, "--certificate", pem_file(client_cert)
    )
    assert str(error) == "refused: method_conflict"
    assert (
        lines(output)[1]
        == f"client: client_id={app.client_id}, no mTLS metadata (authenticates as in DOT)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--client-id", "nope", "--certificate", "x.pem"], "no application with client_id 'nope'"),
        (
            ["--certificate", "/nonexistent/x.pem"],
            "cannot read /nonexistent/x.pem: No such file or directory",
        ),
        (["--certificate", "x.pem", "--source", "nginx"], "--source applies to --header only"),
        (
            ["--header", "x", "--source", "nginx", "--chain-header", "y"],
            "the nginx source has no chain field",
        ),
        (
            ["--header", "x", "--source", "rfc9440", "--verify-header", "y"],
            "the rfc9440 source has no verdict field (VERIFY_HEADER)",
        ),
        (
            ["--certificate", "x.pem", "--at", "tomorrow"],
            "--at 'tomorrow' is not an ISO 8601 date and time",
        ),
    ],
)
def test_explain_usage_errors_exit_2(make_app, mtls_settings, args, message):
    app = make_app(tls_client_auth_subject_dn=DN)
    if "--client-id" not in args:
        args = ["--client-id", app.client_id, *args]
    error, _ = refused("mtls_explain", *args)
    assert (str(error), error.returncode) == (message, 2)


# --- --access-token-format (issue #15: the per-client format) --------------------------------------


def test_access_token_format_without_a_certificate(
    client, make_app, mtls_settings, client_cert, tmp_path
):
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    out = run("mtls_set_client", app.client_id, "--access-token-format", "jwt")
    assert "access_token_format: jwt" in out and "saved" in out
    assert MTLSClient.objects.get(pk=app.pk).access_token_format == "jwt"
    # The registration itself is untouched: the certificate still authenticates.
    assert MTLSClient.objects.get(pk=app.pk).tls_client_auth_san_dns == "client-one.example.com"
    run("mtls_set_client", app.client_id, "--access-token-format", "setting", "--bound-tokens")
    row = MTLSClient.objects.get(pk=app.pk)
    assert row.access_token_format == "" and row.tls_client_certificate_bound_access_tokens


def test_access_token_format_with_a_certificate(make_app, client_cert, pem_file):
    app = make_app(None)
    run(
        "mtls_set_client",
        app.client_id,
        "--certificate",
        pem_file(client_cert),
        "--use",
        "san_dns",
        "--access-token-format",
        "opaque",
    )
    assert MTLSClient.objects.get(pk=app.pk).access_token_format == "opaque"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [],
            "--certificate is required, unless --access-token-format or --bound-tokens changes an existing registration",
        ),
        (["--access-token-format", "jwt", "--use", "san_dns"], "--use needs --certificate"),
    ],
)
def test_access_token_format_usage_errors(make_app, args, message):
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    error, _ = refused("mtls_set_client", app.client_id, *args)
    assert str(error) == message


def test_access_token_format_needs_a_registration(make_app):
    app = make_app(None)
    error, _ = refused("mtls_set_client", app.client_id, "--access-token-format", "jwt")
    assert "has no mTLS registration yet" in str(error)
