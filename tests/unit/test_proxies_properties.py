"""Property tests: any input to any parser gives a certificate or a reasoned "none".

At least 2,000 examples per parser on CI (``HYPOTHESIS_PROFILE=ci``, set by ``CI=true``).
"""

from __future__ import annotations

import base64
import ipaddress
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from django_oauth_mtls.exceptions import INTAKE_REASONS
from django_oauth_mtls.proxies import SOURCES, IntakeConfig, read_client_certificate
from tests import pki

LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)
VALID = pki.issue(pki.name(CN="prop"), dns=("prop.example",))

# Inputs biased toward what parsers meet: fragments of real encodings, mutated.
fragments = st.sampled_from(
    [
        VALID.pem,
        VALID.nginx(),
        VALID.apache(),
        VALID.b64(),
        VALID.rfc9440(),
        quote(VALID.pem, safe="+=/"),
        f'Cert="{quote(VALID.pem, safe="")}"',
        "-----BEGIN CERTIFICATE-----",
        "-----END CERTIFICATE-----",
        ":",
        ",",
        ";",
        '"',
        "%",
        "%0A",
        "(null)",
        "Hash=",
        "By=",
    ]
)


@st.composite
def field_values(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.text(max_size=300))
    if kind == 1:
        return "".join(draw(st.lists(fragments | st.text(max_size=8), max_size=6)))
    base = draw(fragments)
    if kind == 2:  # truncate
        return base[: draw(st.integers(0, len(base)))]
    position = draw(st.integers(0, len(base)))  # splice garbage in
    return base[:position] + draw(st.text(max_size=5)) + base[position:]


def field_key(source: str) -> str:
    cfg = IntakeConfig.build(source)
    return cfg.certificate_key


@pytest.mark.parametrize("source", sorted(SOURCES))
@given(value=field_values(), chain=st.none() | field_values())
def test_any_input_gives_a_certificate_or_a_reason(source, value, chain):
    cfg = IntakeConfig.build(source, trusted_proxies=LOOPBACK)
    meta = {"REMOTE_ADDR": "127.0.0.1", cfg.certificate_key: value}
    if chain is not None:
        meta[cfg.chain_key or "HTTP_CLIENT_CERT_CHAIN"] = chain
        meta["SSL_CLIENT_CERT_CHAIN_0"] = chain
    result = read_client_certificate(meta, cfg)
    if result.certificate is None:
        assert result.problem in INTAKE_REASONS
    else:
        assert result.problem is None
        assert len(result.certificate.x5t_s256) == 43


@given(der=st.binary(max_size=600) | st.just(VALID.der))
def test_callable_source_any_bytes(der):
    cfg = IntakeConfig.build("x.y", certificate_callable=lambda meta: der, trusted_proxies=LOOPBACK)
    result = read_client_certificate({"REMOTE_ADDR": "127.0.0.1"}, cfg)
    assert (result.certificate is None) == (result.problem is not None)
    assert result.problem is None or result.problem in INTAKE_REASONS


@given(data=st.binary(min_size=1, max_size=400))
def test_base64_der_of_any_bytes(data):
    value = base64.b64encode(data).decode()
    cfg = IntakeConfig.build("haproxy", trusted_proxies=LOOPBACK)
    result = read_client_certificate(
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_SSL_CLIENT_CERT": value}, cfg
    )
    assert result.problem in (INTAKE_REASONS - {"absent"}) | {None}
