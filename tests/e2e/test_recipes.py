"""The proxy recipes: docs/proxies.md shows lines of deploy/*.template, which the e2e tests run.

No proxy needed: these run everywhere and keep the documentation and the tested files together.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.servers import DEPLOY, ROOT, render

DOC = ROOT / "docs" / "proxies.md"
TEMPLATES = {
    "nginx": DEPLOY / "nginx.conf.template",
    "haproxy": DEPLOY / "haproxy.cfg.template",
    "apache": DEPLOY / "apache.conf.template",
}
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
    lines = {normalized(line) for line in TEMPLATES[kind].read_text().splitlines()}
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
    names = set(re.findall(r"\{\{\s*([a-z_]+)\s*\}\}", text))
    rendered = render(TEMPLATES[kind], **{name: f"/x/{name}" for name in names})
    assert "{{" not in rendered.replace("{{ … }}", "")
    with pytest.raises(KeyError):
        render(TEMPLATES[kind], **dict.fromkeys(names, "x"), unexpected="x")


def test_the_doc_links_each_template():
    text = DOC.read_text()
    for path in TEMPLATES.values():
        assert f"deploy/{path.name}" in text
        assert Path(path).is_file()
