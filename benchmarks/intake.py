"""Intake cost per request: from ``META`` to a ``ClientCertificate`` (issue #10's P4 goal).

For every source of ``django_oauth_mtls.proxies.SOURCES``, a dotted-path callable and a request
without a certificate, two paths are timed:

* ``pure``: ``read_client_certificate(meta, config)``, no Django;
* ``django``: ``django_oauth_mtls.intake.get_client_certificate(meta)`` with ``OAUTH2_MTLS``
  set through Django settings (adds the settings/config lookup and the per-request ``META``
  caching; it stores its answer in the dict, so every call gets a fresh copy, made untimed).

``cold`` clears the parse caches (``_parse_fields``, ``_parse_der``, ``is_trusted_peer``) before
every call, untimed: a certificate never seen before. ``cached`` repeats the identical value: a
busy client. Goal (issue #10, P4): median cold ≤ 100 µs, median cached ≤ 20 µs per row.

The sample is a typical PKI client certificate: RSA-2048 key, issued by an RSA-2048 CA, subject
C/O/CN, SAN DNS/URI/e-mail, EKU clientAuth (about 1 KB of DER); each proxy encodes it as its
documentation says (``docs/api.md``). Every sample is checked to give the expected thumbprint
before it is timed, so a broken encoder cannot measure a refusal by accident.

``python -m benchmarks.intake --profile SOURCE [--cold]`` prints where the time goes (cProfile).
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import datetime as dt
import hashlib
import ipaddress
import os
import pstats
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from benchmarks import Stats, measure

NAME = "intake"
TITLE = "Certificate intake per request, µs (median / p90)"
GOAL_COLD_US = 100.0
GOAL_CACHED_US = 20.0
NOTES = [
    f"goal (issue #10, P4): median cold <= {GOAL_COLD_US:g} us, median cached <= "
    f"{GOAL_CACHED_US:g} us; 'miss' is reported, never enforced",
    "cold: parse caches cleared before every call (untimed); cached: the same value again",
    "pure: read_client_certificate(meta, config); django: get_client_certificate(fresh META "
    "copy) under override_settings",
    "sample: RSA-2048 client certificate issued by an RSA-2048 CA, leaf only",
]

TRUSTED = "127.0.0.1"
CALLABLE_PATH = "benchmarks.intake.certificate_from_meta"
CALLABLE_FIELD = "HTTP_X_BENCH_CLIENT_CERT_DER"
ABSENT_ROW = "(absent, nginx)"
CALLABLE_ROW = "(dotted-path callable)"

#: A realistic request without the certificate fields.
BASE_META: dict[str, Any] = {
    "REMOTE_ADDR": TRUSTED,
    "REMOTE_PORT": "51234",
    "REQUEST_METHOD": "POST",
    "PATH_INFO": "/o/token/",
    "QUERY_STRING": "",
    "SERVER_NAME": "auth.example.com",
    "SERVER_PORT": "443",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "CONTENT_TYPE": "application/x-www-form-urlencoded",
    "CONTENT_LENGTH": "120",
    "HTTP_HOST": "auth.example.com",
    "HTTP_USER_AGENT": "bench-client/1.0",
    "HTTP_ACCEPT": "application/json",
    "HTTP_X_FORWARDED_FOR": "198.51.100.7",
    "HTTP_X_FORWARDED_PROTO": "https",
    "wsgi.url_scheme": "https",
}


def certificate_from_meta(meta: Mapping[str, Any]) -> bytes | None:
    """The dotted-path source under test: base64 DER from a custom field."""
    value = meta.get(CALLABLE_FIELD)
    return base64.b64decode(value) if value else None


# --- the sample certificate and its encodings -------------------------------------------


@dataclass(frozen=True)
class Sample:
    pem: str
    der: bytes

    @property
    def b64(self) -> str:
        return base64.b64encode(self.der).decode("ascii")

    @property
    def x5t_s256(self) -> str:
        digest = hashlib.sha256(self.der).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def make_sample() -> Sample:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Clients CA"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Example Issuing CA 1"),
        ]
    )
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example, Inc."),
            x509.NameAttribute(NameOID.COMMON_NAME, "bench-client"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2036, 1, 1, tzinfo=dt.UTC))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False), True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("bench-client.example.com"),
                    x509.UniformResourceIdentifier("spiffe://example.org/bench-client"),
                    x509.RFC822Name("ops@example.com"),
                ]
            ),
            False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return Sample(
        pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        der=cert.public_bytes(serialization.Encoding.DER),
    )


def _envoy(sample: Sample) -> str:
    cert = quote(sample.pem, safe="")
    digest = hashlib.sha256(sample.der).hexdigest()
    return f'By=spiffe://example.org/proxy;Hash={digest};Cert="{cert}";Subject="CN=bench-client"'


#: How each proxy writes the certificate into its field (``docs/api.md``).
ENCODERS: dict[str, Callable[[Sample], str]] = {
    "rfc9440": lambda s: f":{s.b64}:",
    "nginx": lambda s: quote(s.pem, safe="-"),  # $ssl_client_escaped_cert
    "apache": lambda s: s.pem.strip().replace("\n", " "),  # %{SSL_CLIENT_CERT}s
    "haproxy": lambda s: s.b64,  # %[ssl_c_der,base64]
    "envoy": _envoy,
    "traefik": lambda s: s.b64,  # v3: base64 DER, no armour
    "aws_alb": lambda s: quote(s.pem, safe="-+=/"),
    "aws_alb_passthrough": lambda s: quote(s.pem, safe="-+=/"),
    "azure_app_service": lambda s: s.b64,
    "cloudflare": lambda s: f":{s.b64}:",
    "pem": lambda s: quote(s.pem, safe="-"),
    "wsgi_environ": lambda s: s.pem,
}
#: Verdict fields the proxies send along (read only with TRUST_PROXY_VERIFICATION).
VERDICTS: dict[str, dict[str, str]] = {
    "nginx": {"HTTP_X_SSL_CLIENT_VERIFY": "SUCCESS"},
    "apache": {"HTTP_X_SSL_CLIENT_VERIFY": "SUCCESS"},
    "haproxy": {"HTTP_X_SSL_CLIENT_VERIFY": "0"},
}


@dataclass(frozen=True)
class Case:
    """One table row: what ``CERTIFICATE_SOURCE`` says and the request's ``META``."""

    label: str
    setting: str
    meta: dict[str, Any]
    expected: str | None  # the thumbprint, or None for "absent"


def cases(sample: Sample) -> list[Case]:
    from django_oauth_mtls.proxies import SOURCES, IntakeConfig

    missing = sorted(set(SOURCES) - set(ENCODERS))
    if missing:
        raise RuntimeError(f"benchmarks/intake.py: add an encoder for the source(s) {missing}")
    rows = []
    for name in SOURCES:
        key = IntakeConfig.build(name).certificate_key
        meta = {**BASE_META, **VERDICTS.get(name, {}), key: ENCODERS[name](sample)}
        rows.append(Case(name, name, meta, sample.x5t_s256))
    callable_meta = {**BASE_META, CALLABLE_FIELD: sample.b64}
    rows.append(Case(CALLABLE_ROW, CALLABLE_PATH, callable_meta, sample.x5t_s256))
    rows.append(Case(ABSENT_ROW, "nginx", dict(BASE_META), None))
    return rows


# --- the two paths ----------------------------------------------------------------------------


def setup_django() -> None:
    """Minimal settings, unless a project's are configured (pytest, DJANGO_SETTINGS_MODULE)."""
    import django
    from django.conf import settings

    if not settings.configured and not os.environ.get("DJANGO_SETTINGS_MODULE"):
        settings.configure(
            SECRET_KEY="benchmarks-only",
            USE_TZ=True,
            INSTALLED_APPS=[],
            LOGGING_CONFIG=None,
            OAUTH2_MTLS={},
        )
    django.setup()


def pure_config(case: Case) -> Any:
    from django_oauth_mtls.proxies import IntakeConfig

    networks = (ipaddress.ip_network(f"{TRUSTED}/32"),)
    if case.setting == CALLABLE_PATH:
        return IntakeConfig.build(
            case.setting, certificate_callable=certificate_from_meta, trusted_proxies=networks
        )
    return IntakeConfig.build(case.setting, trusted_proxies=networks)


@contextmanager
def django_settings(case: Case) -> Iterator[None]:
    from django.test import override_settings

    mtls = {"CERTIFICATE_SOURCE": case.setting, "TRUSTED_PROXIES": [f"{TRUSTED}/32"]}
    with override_settings(OAUTH2_MTLS=mtls):
        yield


def clear_caches() -> None:
    from django_oauth_mtls.proxies import _parse_der, _parse_fields, is_trusted_peer

    _parse_fields.cache_clear()
    _parse_der.cache_clear()
    is_trusted_peer.cache_clear()


def check(case: Case, path: str, certificate: Any, problem: str | None) -> None:
    seen = certificate.x5t_s256 if certificate is not None else None
    wanted_problem = "absent" if case.expected is None else None
    if seen != case.expected or problem != wanted_problem:
        raise RuntimeError(
            f"{case.label} ({path}): got x5t#S256={seen} problem={problem}, "
            f"expected {case.expected} / {wanted_problem}: the sample encoding is wrong"
        )


def time_case(case: Case, cold_n: int, cached_n: int, warmup: int) -> list[dict[str, Any]]:
    from django_oauth_mtls.intake import get_client_certificate
    from django_oauth_mtls.proxies import read_client_certificate

    rows = []
    config = pure_config(case)
    meta = case.meta
    result = read_client_certificate(meta, config)
    check(case, "pure", result.certificate, result.problem)

    def pure(m: dict[str, Any]) -> object:
        return read_client_certificate(m, config)

    def same() -> dict[str, Any]:
        return meta

    def same_cold() -> dict[str, Any]:
        clear_caches()
        return meta

    rows.append(
        row(
            case,
            "pure",
            measure(pure, same_cold, cold_n, warmup),
            measure(pure, same, cached_n, warmup),
        )
    )
    with django_settings(case):
        check(case, "django", *get_client_certificate(dict(meta)))

        def fresh() -> dict[str, Any]:
            return dict(meta)

        def fresh_cold() -> dict[str, Any]:
            clear_caches()
            return dict(meta)

        rows.append(
            row(
                case,
                "django",
                measure(get_client_certificate, fresh_cold, cold_n, warmup),
                measure(get_client_certificate, fresh, cached_n, warmup),
            )
        )
    return rows


def row(case: Case, path: str, cold: Stats, cached: Stats) -> dict[str, Any]:
    misses = []
    if cold["median_us"] > GOAL_COLD_US:
        misses.append(f"cold {cold['median_us']:.0f} > {GOAL_COLD_US:g}")
    if cached["median_us"] > GOAL_CACHED_US:
        misses.append(f"cached {cached['median_us']:.1f} > {GOAL_CACHED_US:g}")
    return {
        "source": case.label,
        "certificate_source": case.setting,
        "path": path,
        "cold_median_us": cold["median_us"],
        "cold_p90_us": cold["p90_us"],
        "cached_median_us": cached["median_us"],
        "cached_p90_us": cached["p90_us"],
        "cold_iterations": int(cold["n"]),
        "cached_iterations": int(cached["n"]),
        "goal_cold_us": GOAL_COLD_US,
        "goal_cached_us": GOAL_CACHED_US,
        "goal": "pass" if not misses else "miss: " + ", ".join(misses),
    }


def run(quick: bool) -> list[dict[str, Any]]:
    setup_django()
    cold_n, cached_n, warmup = (30, 100, 5) if quick else (3000, 10000, 200)
    sample = make_sample()
    rows: list[dict[str, Any]] = []
    for case in cases(sample):
        rows += time_case(case, cold_n, cached_n, warmup)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    header = f"{'source':<24} {'path':<7} {'cold med / p90':>17} {'cached med / p90':>17}  goal"
    lines = [header, "-" * (len(header) + 10)]
    previous = None
    for r in rows:
        source = r["source"] if r["source"] != previous else ""
        previous = r["source"]
        cold = f"{r['cold_median_us']:7.1f} / {r['cold_p90_us']:7.1f}"
        cached = f"{r['cached_median_us']:7.1f} / {r['cached_p90_us']:7.1f}"
        lines.append(f"{source:<24} {r['path']:<7} {cold:>17} {cached:>17}  {r['goal']}")
    return "\n".join(lines)


# --- profiling -------------------------------------------------------------------------------


def profile(label: str, cold: bool, path: str, iterations: int) -> None:
    """cProfile of one row, ``iterations`` calls; prints the top functions by own time."""
    setup_django()
    from django_oauth_mtls.intake import get_client_certificate
    from django_oauth_mtls.proxies import read_client_certificate

    case = next((c for c in cases(make_sample()) if c.label == label), None)
    if case is None:
        raise SystemExit(f"unknown row {label!r}")
    config = pure_config(case)
    profiler = cProfile.Profile()
    with django_settings(case):
        get_client_certificate(dict(case.meta))
        for _ in range(iterations):
            if cold:
                clear_caches()
            meta = dict(case.meta)
            profiler.enable()
            if path == "pure":
                read_client_certificate(meta, config)
            else:
                get_client_certificate(meta)
            profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.intake")
    parser.add_argument("--profile", metavar="SOURCE", required=True, help="a row's source")
    parser.add_argument("--cold", action="store_true", help="clear the parse caches each call")
    parser.add_argument("--path", choices=("pure", "django"), default="django")
    parser.add_argument("--iterations", type=int, default=20000)
    args = parser.parse_args(argv)
    profile(args.profile, args.cold, args.path, args.iterations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
