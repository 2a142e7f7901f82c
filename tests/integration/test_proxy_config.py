"""``manage.py mtls_proxy_config``: the recipes that ship, with the user's values filled in.

For nginx, HAProxy, Apache and the two-host nginx, the output must be exactly what the e2e
suite runs: ``tests.e2e.servers.render`` of the same shipped file with the same values (that
renderer is the suite's own, strict one; its field names are spelled out there, not derived by
the package). The field names follow ``OAUTH2_MTLS``; a value never given stays a visible
placeholder.
"""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from django_oauth_mtls.recipes import RECIPES
from tests.e2e import servers

TESTED = {
    "nginx": "nginx.conf.template",
    "haproxy": "haproxy.cfg.template",
    "apache": "apache.conf.template",
    "nginx_two_hosts": "nginx-two-hosts.conf.template",
}
INGRESS = servers.RECIPES / "ingress-nginx.yaml.template"

#: A plausible value for every placeholder a user fills.
VALUES = {
    "listen": "0.0.0.0:443",
    "upstream": "127.0.0.1:8000",
    "server_cert": "/etc/ssl/as.example.com.pem",
    "server_key": "/etc/ssl/private/as.example.com.key",
    "server_pem": "/etc/haproxy/as.example.com.pem",
    "client_ca": "/etc/haproxy/client-ca.pem",
    "user": "www-data",
    "group": "www-data",
    "prefix": "/var/lib/nginx",
    "server_root": "/var/lib/apache2",
    "modules": "/usr/lib/apache2/modules",
    "main_host": "as.example.com",
    "mtls_host": "mtls.as.example.com",
    "app": "oauth",
    "namespace": "apps",
    "host": "as.example.com",
    "tls_secret": "as-example-com",
    "client_ca_secret": "client-ca",
    "service": "oauth",
    "service_port": "80",
    "app_port": "8000",
    "controller_namespace": "ingress-nginx",
}


def user_placeholders(path: Path) -> list[str]:
    names = dict.fromkeys(re.findall(r"\{\{\s*([a-z_]+)\s*\}\}", path.read_text()))
    return [name for name in names if name not in servers.FIELD_VALUES]


def options(names: list[str]) -> list[str]:
    return [arg for name in names for arg in (f"--{name.replace('_', '-')}", VALUES[name])]


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("mtls_proxy_config", *args, stdout=out, stderr=err, no_color=True)
    return out.getvalue(), err.getvalue()


def code_lines(text: str) -> list[str]:
    return [line.split("#", 1)[0] for line in text.splitlines() if line.split("#", 1)[0].strip()]


@pytest.fixture
def mtls(settings):
    """Set ``OAUTH2_MTLS`` for one test (the test settings' dict is copied, not edited)."""

    def configure(**values: object) -> None:
        settings.OAUTH2_MTLS = {**settings.OAUTH2_MTLS, **values}

    return configure


@pytest.mark.parametrize("proxy", TESTED)
def test_the_output_is_the_file_the_e2e_suite_runs(mtls, proxy: str):
    mtls(CERTIFICATE_SOURCE=RECIPES[proxy].source)
    path = servers.RECIPES / TESTED[proxy]
    names = user_placeholders(path)
    out, err = run(proxy, *options(names))
    assert out == servers.render(path, **{name: VALUES[name] for name in names})
    assert "{{" not in out.replace("{{ … }}", "")
    assert err == ""


@pytest.mark.parametrize("proxy", TESTED)
def test_without_values_every_placeholder_stays_visible(proxy: str):
    path = servers.RECIPES / TESTED[proxy]
    out, err = run(proxy)
    assert out == servers.with_field_names(path)  # only the field names are filled
    for name in user_placeholders(path):
        assert f"{{{{ {name} }}}}" in err
        assert f"--{name.replace('_', '-')}" in err


def test_some_values_fill_only_their_placeholders():
    out, err = run("nginx", "--listen", "443", "--upstream", "app:8000")
    assert "listen 443 ssl;" in out
    assert "proxy_pass http://app:8000;" in out
    assert "ssl_certificate     {{ server_cert }};" in out
    assert "{{ server_cert }}" in err and "{{ listen }}" not in err


def test_the_field_names_follow_the_settings(mtls):
    mtls(CERTIFICATE_HEADER="X-Client-Cert", VERIFY_HEADER="X-Client-Verify")
    custom = {
        "certificate_header": "X-Client-Cert",
        "certificate_header_underscored": "X_Client_Cert",
        "verify_header": "X-Client-Verify",
        "verify_header_underscored": "X_Client_Verify",
        "certificate_fields_pattern": "x.client.cert|x.client.verify",
    }
    outputs = {}
    for proxy, filename in TESTED.items():
        path = servers.RECIPES / filename
        names = user_placeholders(path)
        out, _ = run(proxy, *options(names))
        used = {k: v for k, v in custom.items() if f"{{{{ {k} }}}}" in path.read_text()}
        assert out == servers.render(path, **{name: VALUES[name] for name in names}, **used)
        # No default name is left where the proxy sets or strips fields.
        assert [line for line in code_lines(out) if re.search("x.ssl.client", line, re.I)] == []
        outputs[proxy] = " ".join(out.split())
    assert "proxy_set_header X-Client-Cert $ssl_client_escaped_cert;" in outputs["nginx"]
    assert "proxy_set_header X-Client-Verify $ssl_client_verify;" in outputs["nginx"]
    assert 'proxy_set_header X-Client-Cert "";' in outputs["nginx_two_hosts"]
    for line in (
        "http-request del-header X-Client-Cert",
        "http-request del-header X_Client_Cert",
        "http-request del-header X_Client_Verify",
        "http-request set-header X-Client-Cert %[ssl_c_der,base64] if { ssl_c_used }",
    ):
        assert line in outputs["haproxy"]
    for line in (
        "RequestHeader unset X_Client_Cert early",
        'SetEnvIfNoCase "^(?=[^_]*_)(x.client.cert|x.client.verify|client.cert)"',
        'RequestHeader set X-Client-Cert "%{SSL_CLIENT_CERT}s"',
    ):
        assert line in outputs["apache"]


def test_the_default_field_names_when_the_settings_leave_them_out(mtls):
    mtls(CERTIFICATE_HEADER=None, VERIFY_HEADER=None)
    out, _ = run("nginx")
    assert "proxy_set_header X-SSL-Client-Cert   $ssl_client_escaped_cert;" in out


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("X_Client_Cert", "letters, digits and hyphens"),
        ("X-Client Cert", "letters, digits and hyphens"),
        ("Client-Cert", "set or strip for other uses"),
        ("x-forwarded-proto", "set or strip for other uses"),
    ],
)
def test_a_field_name_the_recipes_cannot_carry_is_refused(mtls, header: str, message: str):
    mtls(CERTIFICATE_HEADER=header)
    with pytest.raises(CommandError, match=message) as info:
        run("nginx")
    assert 'OAUTH2_MTLS["CERTIFICATE_HEADER"]' in str(info.value)


def test_the_same_name_for_both_fields_is_refused(mtls):
    mtls(CERTIFICATE_HEADER="X-Cert", VERIFY_HEADER="x-cert")
    with pytest.raises(CommandError, match="must differ"):
        run("haproxy")


def test_an_unknown_proxy_is_refused():
    with pytest.raises(CommandError, match="unknown proxy 'caddy'; choose one of apache, "):
        run("caddy")


def test_a_hyphen_names_the_same_recipe():
    assert run("ingress-nginx")[0] == run("ingress_nginx")[0]


def test_an_option_the_recipe_has_no_place_for_is_refused():
    with pytest.raises(CommandError, match="the nginx recipe has no server_pem"):
        run("nginx", "--server-pem", "/etc/haproxy/x.pem")


@pytest.mark.parametrize("value", ["", "/etc/ssl/my cert.pem", "x;y", "a{b", "$host", 'a"b'])
def test_a_value_that_cannot_be_written_unquoted_is_refused(value: str):
    with pytest.raises(CommandError, match="server_cert"):
        run("nginx", "--server-cert", value)


def test_a_recipe_for_another_source_is_noted(mtls):
    mtls(CERTIFICATE_SOURCE="haproxy")
    _, err = run("nginx", *options(user_placeholders(servers.RECIPES / TESTED["nginx"])))
    assert 'This recipe feeds CERTIFICATE_SOURCE "nginx"; OAUTH2_MTLS has "haproxy"' in err


# --- ingress-nginx ------------------------------------------------------------------------------


def test_the_ingress_manifest_fills_in_and_parses():
    yaml = pytest.importorskip("yaml")
    out, err = run("ingress_nginx", *options(user_placeholders(INGRESS)))
    assert "{{" not in out.replace("{{ … }}", "")
    ingress, policy = yaml.safe_load_all(out)
    assert ingress["kind"] == "Ingress"
    assert ingress["metadata"] == {
        "name": "oauth",
        "namespace": "apps",
        "annotations": {
            "nginx.ingress.kubernetes.io/auth-tls-secret": "apps/client-ca",
            "nginx.ingress.kubernetes.io/auth-tls-verify-client": "optional_no_ca",
            "nginx.ingress.kubernetes.io/auth-tls-pass-certificate-to-upstream": "true",
        },
    }
    assert ingress["spec"]["tls"] == [{"hosts": ["as.example.com"], "secretName": "as-example-com"}]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend == {"service": {"name": "oauth", "port": {"number": 80}}}
    assert policy["kind"] == "NetworkPolicy"
    assert policy["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "oauth"}}
    (rule,) = policy["spec"]["ingress"]
    (peer,) = rule["from"]  # one peer: namespace AND pod selector
    assert peer["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}
    }
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "controller"
    assert rule["ports"] == [{"protocol": "TCP", "port": 8000}]
    assert "NOT TESTED" in err


def test_an_unfilled_ingress_manifest_is_not_valid_yaml():
    yaml = pytest.importorskip("yaml")
    out, _ = run("ingress_nginx", "--namespace", "apps")
    with pytest.raises(yaml.YAMLError):
        list(yaml.safe_load_all(out))


def test_the_ingress_recipe_names_the_settings_it_needs(mtls):
    mtls(CERTIFICATE_HEADER=None, VERIFY_HEADER=None)
    _, err = run("ingress_nginx")
    assert 'set OAUTH2_MTLS["CERTIFICATE_HEADER"] = "ssl-client-cert"' in err
    assert 'set OAUTH2_MTLS["VERIFY_HEADER"] = "ssl-client-verify"' in err
    mtls(CERTIFICATE_HEADER="SSL-Client-Cert", VERIFY_HEADER="ssl-client-verify")
    _, err = run("ingress_nginx")
    assert "OAUTH2_MTLS[" not in err
