"""The proxy recipes: docs/proxies.md shows lines of the templates the package ships
(``django_oauth_mtls/recipes/*.template``), which the e2e tests run.

Most need no proxy: they run everywhere and keep the documentation and the tested files
together. The documentation shows the field names as the sources' defaults
(``X-SSL-Client-Cert``), which the templates hold as placeholders (``mtls_proxy_config`` fills in
the project's). The last two ask each proxy's own syntax check (``nginx -t``, ``haproxy -c``,
``apache2 -t``) about what ``mtls_proxy_config`` prints: refused while a placeholder is left,
accepted with other field names.
"""

from __future__ import annotations

import re
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.conftest import require_tool
from tests.e2e.servers import (
    APACHE_MODULES,
    FIELD_VALUES,
    RECIPES,
    ROOT,
    render,
    with_field_names,
    worker_identity,
)

DOC = ROOT / "docs" / "proxies.md"
VENDORS_DOC = ROOT / "docs" / "proxies-vendors.md"
TEMPLATES = {
    "nginx": RECIPES / "nginx.conf.template",
    "haproxy": RECIPES / "haproxy.cfg.template",
    "apache": RECIPES / "apache.conf.template",
}
INGRESS = RECIPES / "ingress-nginx.yaml.template"
#: Lines each recipe must keep: the ones that strip client-sent copies and set the field.
REQUIRED = {
    "nginx": [
        "ssl_verify_client optional_no_ca;",
        "underscores_in_headers off;",
        "proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;",
        'proxy_set_header Client-Cert "";',
    ],
    "haproxy": [
        "http-request del-header X-SSL-Client-Cert",
        "http-request del-header X_SSL_Client_Cert",
        "http-request del-header Client_Cert",
        "http-request del-header _ -m sub",
        "http-request set-header X-SSL-Client-Cert %[ssl_c_der,base64] if { ssl_c_used }",
    ],
    "apache": [
        "SSLOptions +ExportCertData",
        "RequestHeader unset X-SSL-Client-Cert early",
        "RequestHeader unset X_SSL_Client_Cert early",
        "RequestHeader unset Client_Cert early",
        'RequestHeader set X-SSL-Client-Cert "%{SSL_CLIENT_CERT}s"',
    ],
}


def normalized(line: str) -> str:
    return " ".join(line.split())


def template_lines(kind: str) -> set[str]:
    lines = {normalized(line) for line in with_field_names(TEMPLATES[kind]).splitlines()}
    # Trailing comments are part of a line; a doc line may also leave them out.
    lines |= {normalized(line.split(" #", 1)[0]) for line in list(lines) if " #" in line}
    return lines


def doc_blocks(kind: str) -> list[list[str]]:
    pattern = re.compile(rf"^```{kind}\n(.*?)^```", re.DOTALL | re.MULTILINE)
    return [block.splitlines() for block in pattern.findall(DOC.read_text())]


@pytest.mark.parametrize("kind", TEMPLATES)
def test_every_line_the_doc_shows_is_in_the_template(kind: str):
    blocks = doc_blocks(kind)
    assert blocks, f"docs/proxies.md has no ```{kind} block"
    lines = template_lines(kind)
    drift = [
        line for block in blocks for line in block if line.strip() and normalized(line) not in lines
    ]
    assert drift == [], f"in docs/proxies.md but not in {TEMPLATES[kind].name}"


@pytest.mark.parametrize("kind", TEMPLATES)
def test_the_template_keeps_the_lines_that_strip_client_copies(kind: str):
    lines = template_lines(kind)
    assert [line for line in REQUIRED[kind] if normalized(line) not in lines] == []


@pytest.mark.parametrize("kind", TEMPLATES)
def test_the_template_renders_with_every_placeholder_filled(kind: str):
    text = TEMPLATES[kind].read_text()
    names = set(re.findall(r"\{\{\s*([a-z_]+)\s*\}\}", text)) - FIELD_VALUES.keys()
    rendered = render(TEMPLATES[kind], **{name: f"/x/{name}" for name in names})
    assert "{{" not in rendered.replace("{{ … }}", "")
    with pytest.raises(KeyError):
        render(TEMPLATES[kind], **dict.fromkeys(names, "x"), unexpected="x")


def test_the_doc_names_each_template_and_the_command():
    text = DOC.read_text()
    for kind, path in TEMPLATES.items():
        assert f"recipes/{path.name}" in text
        assert f"mtls_proxy_config {kind}" in text
        assert Path(path).is_file()


def test_every_field_name_of_the_recipes_is_a_placeholder():
    """A literal default field name in a template would not follow CERTIFICATE_HEADER."""
    for path in [*TEMPLATES.values(), RECIPES / "nginx-two-hosts.conf.template"]:
        code = [line.split("#", 1)[0] for line in path.read_text().splitlines()]
        code = [line for line in code if "SetEnvIf" not in line]  # a regex, checked below
        assert [line for line in code if re.search(r"x.ssl.client", line, re.IGNORECASE)] == []
    assert "{{ certificate_fields_pattern }}" in TEMPLATES["apache"].read_text()


def ingress_section() -> str:
    text = VENDORS_DOC.read_text()
    start = text.index("## Kubernetes: ingress-nginx")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_the_ingress_doc_shows_lines_of_the_shipped_manifest():
    lines = {normalized(line) for line in INGRESS.read_text().splitlines()}
    lines |= {normalized(line.split(" #", 1)[0]) for line in list(lines) if " #" in line}
    blocks = re.findall(r"^```yaml\n(.*?)^```", ingress_section(), re.DOTALL | re.MULTILINE)
    assert blocks, "the ingress-nginx section shows no ```yaml block"
    drift = [
        line for block in blocks for line in block.splitlines()
        if line.strip() and normalized(line) not in lines
    ]  # fmt: skip
    assert drift == [], f"in docs/proxies-vendors.md but not in {INGRESS.name}"


def test_the_ingress_doc_says_it_is_untested_and_needs_a_network_policy():
    section = ingress_section()
    assert "not tested against a real cluster" in section.lower()
    assert "kind: NetworkPolicy" in section
    for setting in (
        '"CERTIFICATE_HEADER": "ssl-client-cert"',
        '"VERIFY_HEADER": "ssl-client-verify"',
    ):
        assert setting in section
    assert "mtls_proxy_config ingress_nginx" in section


#: How each proxy checks a configuration without starting, and the config's file name.
SYNTAX_CHECK = {
    "nginx": (
        ("nginx",),
        "nginx.conf",
        lambda tool, path: [tool, "-t", "-p", str(path.parent), "-c", str(path)],
    ),
    "haproxy": (("haproxy",), "haproxy.cfg", lambda tool, path: [tool, "-c", "-f", str(path)]),
    "apache": (
        ("apache2", "httpd"),
        "apache.conf",
        lambda tool, path: [tool, "-t", "-f", str(path)],
    ),
}


@pytest.mark.e2e
@pytest.mark.parametrize("kind", TEMPLATES)
def test_the_proxy_refuses_a_recipe_with_a_placeholder_left(kind: str, tmp_path: Path):
    """What ``mtls_proxy_config`` prints for values never given (the template with only its
    field names filled, tests/integration/test_proxy_config.py) does not start the proxy, and
    the line it stops at holds a placeholder: never an empty value that would run."""
    tools, filename, argv = SYNTAX_CHECK[kind]
    tool = require_tool(*tools)
    config = tmp_path / filename
    text = with_field_names(TEMPLATES[kind])
    config.write_text(text)
    result = subprocess.run(
        argv(tool, config), capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode != 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    numbers = [int(n) for n in re.findall(r"(?:\.conf:|\.cfg:|line )(\d+)", output)]
    lines = text.splitlines()
    assert any("{{" in lines[n - 1] for n in numbers if 0 < n <= len(lines)), output


@pytest.mark.e2e
@pytest.mark.parametrize("kind", TEMPLATES)
def test_the_proxy_accepts_the_recipe_with_other_field_names(
    kind: str, tmp_path: Path, settings, e2e_pki
):
    """``mtls_proxy_config`` with a project's own field names (``CERTIFICATE_HEADER``,
    ``VERIFY_HEADER``) and every value filled: the proxy's own syntax check passes, Apache's
    derived pattern included. The default names run for real in test_proxies.py."""
    tools, filename, argv = SYNTAX_CHECK[kind]
    tool = require_tool(*tools)
    settings.OAUTH2_MTLS = {
        **settings.OAUTH2_MTLS,
        "CERTIFICATE_SOURCE": kind,
        "CERTIFICATE_HEADER": "X-Client-Cert",
        "VERIFY_HEADER": "X-Client-Verify",
    }
    user, group = worker_identity()
    tls = e2e_pki.tls
    values = {
        "listen": "127.0.0.1:8443",
        "upstream": "127.0.0.1:8000",
        "server_cert": tls.server_cert,
        "server_key": tls.server_key,
        "server_pem": tls.server_pem,
        "client_ca": tls.ca,
        "user": user,
        "group": group,
        "prefix": tmp_path,
        "server_root": tmp_path,
        "modules": APACHE_MODULES,
    }
    names = set(re.findall(r"\{\{\s*([a-z_]+)\s*\}\}", TEMPLATES[kind].read_text()))
    args = [
        f"--{name.replace('_', '-')}={values[name]}" for name in sorted(names) if name in values
    ]
    out = StringIO()
    call_command("mtls_proxy_config", kind, *args, stdout=out, stderr=StringIO())
    assert "X_Client_Cert" in out.getvalue() or kind == "nginx"
    config = tmp_path / filename
    config.write_text(out.getvalue())
    result = subprocess.run(
        argv(tool, config), capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
