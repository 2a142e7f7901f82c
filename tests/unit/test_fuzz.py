"""Fuzzing on CI with a fixed budget (issue #11 item 1): every target of ``fuzz.targets`` — each
intake source, the XFCC splitter, the RFC 9440 SF parsing, DER/PEM decoding, the DN parser,
``normalise_registered_value``, the SAN matchers, the trust gate, the JWK-set parser and the
JOSE checks of JWT access tokens (``jwt.*``) — under hypothesis (the conftest's profile: 2,000
examples per target when ``CI`` is set, 300 locally) and under the seeded mutation loop (2,000
cases per target, deterministic).

A case passes when the code returned what its contract promises or raised its documented refusal
(``IntakeError``, ``RegisteredValueError``, ``JWKSetError``, ``JWTError``, ``UnusableKey``).
Exceptions that are already-reported package bugs (``fuzz.targets.KNOWN_FINDINGS``, empty since
B1-B3 were fixed) would be tolerated here; the bugs found so far are pinned below as regression tests.
``make fuzz`` (``python -m fuzz.run --cases 100000``) runs the same targets for longer.
"""

from __future__ import annotations

import base64
import json
import random
from collections import Counter

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings

from django_oauth_mtls.certificates import certificate_from_der
from django_oauth_mtls.exceptions import IntakeError
from django_oauth_mtls.jwks import JWKSetError, parse_jwk_set
from django_oauth_mtls.proxies import SOURCES, IntakeConfig, read_client_certificate
from fuzz.targets import KNOWN_FINDINGS, LEAF, LOOPBACK, NO_SAN, TARGETS, known_finding

MUTATION_CASES = 2000

# Mutated DER with a zero or negative serial: cryptography warns that it will refuse those later.
pytestmark = pytest.mark.filterwarnings("ignore:Parsed a serial number:UserWarning")

#: Known findings met during this session, by (target, bug id) — reported, not failed.
KNOWN_SEEN: Counter[tuple[str, str]] = Counter()


def _run(name: str, case: object) -> None:
    try:
        TARGETS[name].run(case)
    except Exception as exc:
        bug = known_finding(name, exc)
        if bug is None:
            raise
        KNOWN_SEEN[(name, bug)] += 1


def test_every_source_and_parser_has_a_target():
    names = set(TARGETS)
    assert {f"intake.{source}" for source in SOURCES} <= names
    assert {
        "intake.callable",
        "parser.xfcc",
        "parser.rfc9440_sf",
        "certificates.der",
        "certificates.pem",
        "matching.parse_dn",
        "matching.normalise_registered_value",
        "matching.san_dns",
        "matching.san_uri",
        "matching.san_email",
        "matching.san_ip",
        "matching.certificate_matches",
        "matching.subject_dn",
        "proxies.trust_gate",
        "jwks.parse_jwk_set",
        "jwt.check_access_token",
        "jwt.keys_from_jwk_set",
    } <= names


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_hypothesis(name):
    """The profile's budget of hypothesis examples, none outside the target's contract."""
    target = TARGETS[name]

    @settings(
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
    )
    @given(target.strategy)
    def check(case):
        _run(name, case)

    check()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_mutation_loop(name):
    """2,000 seeded structure-aware mutations of real encodings (the ``make fuzz`` loop)."""
    target = TARGETS[name]
    rng = random.Random(f"ci:{name}")
    for _ in range(MUTATION_CASES):
        _run(name, target.generate(rng))


def test_known_findings_are_documented():
    assert KNOWN_FINDINGS == {}  # B1-B3 are fixed; new findings fail the run
    for bug in {bug for _target, bug in KNOWN_SEEN}:
        assert bug in KNOWN_FINDINGS


# --- the findings B1-B3, fixed in the package: regressions --------------------------------------


def version_22(der: bytes) -> bytes:
    """The DER with its version INTEGER (``A0 03 02 01 02``) set to 22: not v1, v2 or v3."""
    marker = b"\xa0\x03\x02\x01\x02"
    assert marker in der
    return der.replace(marker, b"\xa0\x03\x02\x01\x16", 1)


def test_B1_invalid_version_is_not_a_certificate():
    with pytest.raises(IntakeError) as caught:
        certificate_from_der(version_22(LEAF.der))
    assert caught.value.code == "not_a_certificate"


@pytest.mark.parametrize("source", ["haproxy", "rfc9440"])
def test_B1_invalid_version_through_the_intake(source):
    config = IntakeConfig.build(source, trusted_proxies=LOOPBACK)
    encoded = base64.b64encode(version_22(LEAF.der)).decode()
    value = f":{encoded}:" if source == "rfc9440" else encoded
    result = read_client_certificate(
        {"REMOTE_ADDR": "127.0.0.1", config.certificate_key: value}, config
    )
    assert (result.certificate, result.problem) == (None, "not_a_certificate")


def test_B1_invalid_version_in_a_jwk_set():
    from fuzz.targets import _jwk

    key = _jwk(NO_SAN)
    key["x5c"] = [base64.b64encode(version_22(NO_SAN.der)).decode()]
    with pytest.raises(JWKSetError):
        parse_jwk_set({"keys": [key]})


def test_B2_deeply_nested_json_is_a_jwk_set_error():
    with pytest.raises(JWKSetError):
        parse_jwk_set('{"keys": ' + "[" * 5000 + "]" * 5000 + "}")


@pytest.mark.parametrize("member", ["x5t#S256", "x5t"])
def test_B3_non_ascii_thumbprint_is_a_jwk_set_error(member):
    from fuzz.targets import _jwk

    with pytest.raises(JWKSetError):
        parse_jwk_set(json.dumps({"keys": [{**_jwk(NO_SAN), member: "é"}]}))


def test_a_v1_certificate_is_still_a_certificate():
    """The fix for B1 must not refuse X.509 v1 (RFC 8705 Appendix A's certificate is v1)."""
    from django_oauth_mtls.certificates import der_from_pem
    from tests.vectors.loader import text

    der = der_from_pem(text("rfc8705-appendix-a.pem").encode())
    certificate = certificate_from_der(der)
    assert certificate.certificate is not None
    assert certificate.certificate.version is x509.Version.v1
