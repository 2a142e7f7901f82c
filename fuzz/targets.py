"""Fuzz targets: every intake parser, the DN parser, the registered-value checks, the SAN
matchers, the trust gate, the JWK-set parser and the JOSE checks of JWT access tokens
(``fuzz.jwt_targets``), each with its contract.

A target's ``run(case)`` returns when the code under test behaved as documented: it returned a
value of the documented shape, or raised one of the documented refusal exceptions
(``IntakeError``, ``RegisteredValueError``, ``JWKSetError``). Any other exception, or a broken
invariant (``ContractViolation``), is a finding. Inputs come from three generators per target:

* ``strategy`` — a hypothesis strategy (raw text/bytes and seeded mutations);
* ``generate(rng)`` — a plain mutation loop over real encodings (the seeds below), with
  structure-aware operators: DER mutated *inside* each proxy's encoding, fields duplicated with
  ``,``, percent-(de)coding, splicing, nesting;
* ``from_bytes(data)`` — atheris's byte string mapped onto the same input shape.

Pure: no Django import (``django_oauth_mtls.proxies``, ``certificates``, ``matching`` and
``jwks.parse_jwk_set`` are pure modules).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import random
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import strategies as st

from django_oauth_mtls import proxies
from django_oauth_mtls.certificates import (
    ClientCertificate,
    b64decode_strict,
    certificate_from_der,
    der_from_pem,
    ders_from_pem,
)
from django_oauth_mtls.exceptions import INTAKE_REASONS, IntakeError
from django_oauth_mtls.jwks import JWKSetError, parse_jwk_set
from django_oauth_mtls.matching import (
    SUBJECT_FIELDS,
    RegisteredValueError,
    certificate_matches,
    normalise_registered_value,
    parse_dn,
    san_dns_matches,
    san_email_matches,
    san_ip_matches,
    san_uri_matches,
    subject_dn_matches,
)
from django_oauth_mtls.proxies import SOURCES, IntakeConfig, read_client_certificate
from tests import pki

__all__ = ["KNOWN_FINDINGS", "TARGETS", "ContractViolation", "Target", "known_finding"]


SAFETY_NET = "parser errors caught by the intake's ValueError/UnicodeError net"


class ContractViolation(AssertionError):
    """The code returned, but not what its contract promises."""


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[Any], None]
    generate: Callable[[random.Random], Any]
    strategy: st.SearchStrategy[Any]
    from_bytes: Callable[[bytes], Any]
    doc: str = ""
    seeds: Sequence[Any] = field(default=(), repr=False)
    #: Informational counts a target keeps (e.g. errors an outer safety net catches).
    counters: dict[str, int] = field(default_factory=dict, repr=False)


# --- findings already reported (issue #11): package bugs, with the fix in the report -------------

#: id → (what escapes, where, what it breaks). ``known_finding`` classifies an exception.
KNOWN_FINDINGS: dict[str, str] = {}
# B1 (x509.InvalidVersion), B2 (RecursionError on deep JSON) and B3 (non-ASCII thumbprint
# members) were found here and fixed; their regressions are in tests/unit/test_fuzz.py.


def known_finding(target_name: str, exc: BaseException) -> str | None:
    """The id of an already-reported bug this exception is, or ``None`` (a new finding)."""
    return None


# --- material: real certificates and their encodings --------------------------------------------

ROOT = pki.make_ca("Fuzz Root CA")
INTERMEDIATE = pki.issue(pki.name(CN="Fuzz Issuing CA", O="Fuzz PKI"), issuer=ROOT, ca=True)
LEAF = pki.issue(
    pki.name(C="DE", O="Example, Inc.", OU="R+D", CN="client-one"),
    issuer=INTERMEDIATE,
    dns=("client-one.example.com", "*.example.com", "xn--bcher-kva.example"),
    uris=("spiffe://example.org/client-one", "https://[2001:db8::1]:8443/a?b#c"),
    emails=("ops@example.com", "Ops.Team@EXAMPLE.com"),
    ips=("192.0.2.10", "2001:db8::1", "::ffff:10.0.0.1"),
)
RSA_LEAF = pki.issue(pki.name(CN="rsa-client"), key=pki.make_key("rsa", 2048), dns=("rsa.example",))
NO_SAN = pki.issue(pki.name(CN="no-san", serialNumber="12345", organizationIdentifier="PSDDE-1"))
DERS: tuple[bytes, ...] = (LEAF.der, INTERMEDIATE.der, ROOT.der, RSA_LEAF.der, NO_SAN.der)
CERTIFICATES: tuple[ClientCertificate, ...] = tuple(certificate_from_der(der) for der in DERS)

LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))
NETWORKS = (
    *LOOPBACK,
    ipaddress.ip_network("10.0.0.0/8"),
    ipaddress.ip_network("fd00::/8"),
)


def _pem(der: bytes) -> str:
    body = base64.b64encode(der).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def _b64(der: bytes) -> str:
    return base64.b64encode(der).decode("ascii")


def _xfcc(leaf: bytes, chain: Sequence[bytes] = (), *, hash_ok: bool = True) -> str:
    digest = hashlib.sha256(leaf if hash_ok else leaf + b"x").hexdigest()
    parts = [
        "By=spiffe://cluster.local/ns/default/sa/api",
        f"Hash={digest}",
        f'Cert="{quote(_pem(leaf), safe="")}"',
    ]
    if chain:
        parts.append(f'Chain="{quote("".join(_pem(d) for d in (leaf, *chain)), safe="")}"')
    parts += [
        'Subject="CN=client-one,O=Example\\, Inc.,C=DE"',
        "URI=spiffe://example.org/c",
        "DNS=a",
    ]
    return ";".join(parts)


#: How each source encodes (leaf DER, chain DERs) into (certificate field, chain field).
ENCODERS: dict[str, Callable[[bytes, Sequence[bytes]], tuple[str, str | None]]] = {
    "rfc9440": lambda leaf, chain: (
        f":{_b64(leaf)}:",
        ", ".join(f":{_b64(d)}:" for d in chain) or None,
    ),
    "cloudflare": lambda leaf, chain: (
        f":{_b64(leaf)}:",
        ", ".join(f":{_b64(d)}:" for d in chain) or None,
    ),
    "nginx": lambda leaf, chain: (quote(_pem(leaf), safe="-"), None),
    "apache": lambda leaf, chain: (_pem(leaf).strip().replace("\n", " "), None),
    "haproxy": lambda leaf, chain: (_b64(leaf), None),
    "azure_app_service": lambda leaf, chain: (_b64(leaf), None),
    "envoy": lambda leaf, chain: (_xfcc(leaf, chain), None),
    "traefik": lambda leaf, chain: (",".join(_b64(d) for d in (leaf, *chain)), None),
    "aws_alb": lambda leaf, chain: (quote(_pem(leaf), safe="+=/-"), None),
    "aws_alb_passthrough": lambda leaf, chain: (
        quote("".join(_pem(d) for d in (leaf, *chain)), safe="+=/-"),
        None,
    ),
    "pem": lambda leaf, chain: (_pem(leaf), None),
    "wsgi_environ": lambda leaf, chain: (_pem(leaf), "".join(_pem(d) for d in chain) or None),
}
assert set(ENCODERS) == set(SOURCES), "a source without an encoder: add it above"

# --- mutation operators -----------------------------------------------------------------------

SPECIAL_TEXT = [
    ",",
    ";",
    ":",
    '"',
    "\\",
    "=",
    "%",
    "+",
    "/",
    " ",
    "\t",
    "\n",
    "\r",
    "\x00",
    "#",
    "(null)",
    "%0A",
    "%2C",
    "%2",
    "%%",
    "%ZZ",
    "%C3%A9",
    "%FF",
    "-----BEGIN CERTIFICATE-----",
    "-----END CERTIFICATE-----",
    "-----BEGIN CERTIFICATE-----\n",
    ":=:",
    "::",
    "é",
    "\u00ff",
    "\u0100",
    "☃",
    "😀",
    "\ud800",
    "\u2028",
    "\x85",
    "Cert=",
    "Hash=",
    "Chain=",
    'Cert=""',
    "By=",
    '\\"',
    "==",
    "A" * 70,
    "\xa0",
]
SPECIAL_BYTES = [
    0x00,
    0x01,
    0x02,
    0x03,
    0x04,
    0x05,
    0x06,
    0x0C,
    0x13,
    0x16,
    0x17,
    0x18,
    0x1E,
    0x30,
    0x31,
    0x7F,
    0x80,
    0x81,
    0x82,
    0x83,
    0x84,
    0xA0,
    0xA3,
    0xFF,
]


def _random_char(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.5:
        return rng.choice(string.printable)
    if pick < 0.8:
        return chr(rng.randrange(0x80, 0x100))
    while True:
        char = chr(rng.randrange(0x100, 0x110000))
        if rng.random() < 0.05 or not 0xD800 <= ord(char) <= 0xDFFF:
            return char


def mutate_text(rng: random.Random, text: str, others: Sequence[str] = ()) -> str:
    """One to four random edits of ``text``; ``others`` are splice partners."""
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(12)
        n = len(text)
        i = rng.randint(0, n)
        j = rng.randint(i, min(n, i + rng.choice((1, 2, 8, 64, 512))))
        if op == 0:  # truncate
            text = text[:i]
        elif op == 1:  # delete a slice
            text = text[:i] + text[j:]
        elif op == 2:  # insert a special token
            text = text[:i] + rng.choice(SPECIAL_TEXT) + text[i:]
        elif op == 3:  # insert random characters
            text = (
                text[:i] + "".join(_random_char(rng) for _ in range(rng.randint(1, 4))) + text[i:]
            )
        elif op == 4:  # replace one character
            if n:
                k = rng.randrange(n)
                text = text[:k] + _random_char(rng) + text[k + 1 :]
        elif op == 5:  # duplicate a slice
            text = text[:j] + text[i:j] + text[j:]
        elif op == 6 and others:  # splice another seed
            other = rng.choice(others)
            k = rng.randint(0, len(other))
            text = text[:i] + other[k:] if rng.random() < 0.5 else other[:k] + text[i:]
        elif op == 7:  # the field sent twice (WSGI joins with a comma)
            text = text + rng.choice((",", ", ", ",\t")) + (rng.choice(others) if others else text)
        elif op == 8:  # case flip of a slice
            text = text[:i] + text[i:j].swapcase() + text[j:]
        elif op == 9:  # percent-encode a slice
            safe = rng.choice(("", "-", "+=/"))
            text = text[:i] + quote(text[i:j], safe=safe, errors="surrogatepass") + text[j:]
        elif op == 10:  # percent-decode
            text = unquote(text)
        else:  # whitespace folding as proxies do it
            text = text.replace("\n", rng.choice((" ", "\t", "", "\r\n", "\n ")))
    return text


def mutate_bytes(rng: random.Random, data: bytes, others: Sequence[bytes] = ()) -> bytes:
    """One to eight random edits of a DER (or any byte string)."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(10)
        n = len(buf)
        i = rng.randint(0, n)
        if op == 9:  # rewrite a one-octet INTEGER (02 01 xx: the X.509 version, small counts)
            k = buf.find(b"\x02\x01", rng.randrange(max(n, 1)))
            k = buf.find(b"\x02\x01") if k < 0 else k
            if 0 <= k < n - 2:
                buf[k + 2] = rng.choice((0, 1, 2, 3, 0x16, 0x7F, 0x80, 0xFF))
        elif op == 0 and n:  # flip a bit
            k = rng.randrange(n)
            buf[k] ^= 1 << rng.randrange(8)
        elif op == 1 and n:  # set an interesting byte (tags, lengths)
            buf[rng.randrange(n)] = rng.choice(SPECIAL_BYTES)
        elif op == 2:  # insert bytes
            buf[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        elif op == 3:  # delete a slice
            del buf[i : i + rng.randint(1, 16)]
        elif op == 4:  # truncate
            del buf[i:]
        elif op == 5:  # duplicate a slice
            j = min(n, i + rng.randint(1, 64))
            buf[j:j] = buf[i:j]
        elif op == 6 and others:  # splice
            other = rng.choice(others)
            k = rng.randint(0, len(other))
            buf = buf[:i] + bytearray(other[k:])
        elif op == 7 and n > 4:  # long-form length: replace a byte with 0x8N and N bytes
            k = rng.randrange(n)
            width = rng.randint(1, 4)
            buf[k : k + 1] = bytes([0x80 | width]) + bytes(rng.randrange(256) for _ in range(width))
        elif n:  # random byte
            buf[rng.randrange(n)] = rng.randrange(256)
    return bytes(buf)


def _splice_from_bytes(data: bytes, seeds: Sequence[str]) -> str:
    """atheris: raw text, or a seed with the rest of the bytes inserted at a chosen position."""
    if not data:
        return ""
    mode, rest = data[0], data[1:]
    text = rest.decode("latin-1") if mode & 1 else rest.decode("utf-8", "replace")
    if mode < 0x40 or not seeds or len(rest) < 2:
        return text
    seed = seeds[mode % len(seeds)]
    position = int.from_bytes(rest[:2], "big") % (len(seed) + 1)
    cut = int.from_bytes(rest[:2], "little") % 64 if mode & 2 else 0
    return seed[:position] + text[2:] + seed[position + cut :]


def _patch_from_bytes(data: bytes, seeds: Sequence[bytes]) -> bytes:
    """atheris: raw bytes, or a seed DER patched at positions the input chooses."""
    if not data or data[0] < 0x40 or not seeds:
        return data[1:]
    seed = bytearray(seeds[data[0] % len(seeds)])
    rest = data[1:]
    for k in range(0, len(rest) - 2, 3):
        position = int.from_bytes(rest[k : k + 2], "big") % (len(seed) + 1)
        if position < len(seed):
            seed[position] = rest[k + 2]
        else:
            seed.append(rest[k + 2])
    if len(rest) % 3 == 1:
        del seed[rest[-1] * len(seed) // 256 :]  # truncate
    return bytes(seed)


def _raw_text() -> st.SearchStrategy[str]:
    return st.text(max_size=300) | st.text(st.characters(max_codepoint=255), max_size=300)


def _with_randoms(
    generate: Callable[[random.Random], Any], raw: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    mutated = st.randoms(use_true_random=False, note_method_calls=False).map(generate)
    return st.one_of(mutated, mutated, raw)


# --- intake: one target per source -------------------------------------------------------------


def _intake_seeds(source: str) -> list[tuple[str, str | None]]:
    encode = ENCODERS[source]
    seeds = [
        encode(LEAF.der, ()),
        encode(LEAF.der, (INTERMEDIATE.der,)),
        encode(LEAF.der, (INTERMEDIATE.der, ROOT.der)),
        encode(RSA_LEAF.der, ()),
        encode(NO_SAN.der, ()),
    ]
    if source == "envoy":
        seeds += [
            (_xfcc(NO_SAN.der) + "," + _xfcc(LEAF.der, (INTERMEDIATE.der,)), None),
            (_xfcc(LEAF.der, hash_ok=False), None),
            ("By=spiffe://x;URI=spiffe://y", None),
            ('By=spiffe://x;Chain="' + quote(_pem(LEAF.der), safe="") + '"', None),
        ]
    if source in ("rfc9440", "cloudflare"):
        seeds.append(("", f":{_b64(INTERMEDIATE.der)}:"))
    if source == "apache":
        seeds.append(("(null)", None))
    return seeds


def _intake_target(source_name: str) -> Target:
    source = SOURCES[source_name]
    config = IntakeConfig.build(source_name, trusted_proxies=LOOPBACK)
    seeds = _intake_seeds(source_name)
    texts = [value for value, _ in seeds] + [c for _, c in seeds if c]
    counters = {SAFETY_NET: 0}

    def run(case: tuple[str, str | None]) -> None:
        value, chain = case
        meta: dict[str, Any] = {"REMOTE_ADDR": "127.0.0.1", config.certificate_key: value}
        if chain is not None:
            if source_name == "wsgi_environ":
                meta["SSL_CLIENT_CERT_CHAIN_0"] = chain
            elif config.chain_key:
                meta[config.chain_key] = chain
        result = read_client_certificate(meta, config)
        if result.certificate is None:
            if result.problem not in INTAKE_REASONS:
                raise ContractViolation(f"no certificate and problem={result.problem!r}")
        else:
            if result.problem is not None or len(result.certificate.x5t_s256) != 43:
                raise ContractViolation(f"certificate with problem={result.problem!r}")
        # The parser itself: IntakeError is a refusal; ValueError/UnicodeError are caught by
        # the intake's safety net (counted, not a finding); anything else escapes the intake.
        try:
            source.parse(value, chain)
        except IntakeError as exc:
            if exc.code not in INTAKE_REASONS:  # pragma: no cover - IntakeError checks it
                raise ContractViolation(exc.code) from exc
        except (ValueError, UnicodeError):
            counters[SAFETY_NET] += 1

    def generate(rng: random.Random) -> tuple[str, str | None]:
        value, chain = rng.choice(seeds)
        kind = rng.randrange(4)
        if kind == 0:  # the DER mutated inside a valid encoding: reaches the X.509 parser
            leaf = mutate_bytes(rng, rng.choice(DERS), DERS)
            encoded = ENCODERS[source_name](leaf, (INTERMEDIATE.der,) if rng.random() < 0.3 else ())
            return encoded
        if kind == 1 and chain is not None:
            return value, mutate_text(rng, chain, texts)
        return mutate_text(rng, value, texts), chain

    def from_bytes(data: bytes) -> tuple[str, str | None]:
        if data[:1] == b"\xff":
            return ENCODERS[source_name](_patch_from_bytes(data[1:], DERS), ())
        return _splice_from_bytes(data, texts), None

    strategy = _with_randoms(generate, st.tuples(_raw_text(), st.none() | _raw_text()))
    return Target(
        f"intake.{source_name}",
        run,
        generate,
        strategy,
        from_bytes,
        doc=f"read_client_certificate with source {source_name!r} (trusted peer), and its parser",
        seeds=seeds,
        counters=counters,
    )


def _callable_target() -> Target:
    def run(case: Any) -> None:
        def certificate_callable(meta: Any) -> Any:
            if isinstance(case, Exception):
                raise case
            return case

        config = IntakeConfig.build(
            "fuzz.callable", certificate_callable=certificate_callable, trusted_proxies=LOOPBACK
        )
        result = read_client_certificate({"REMOTE_ADDR": "127.0.0.1"}, config)
        if (result.certificate is None) == (result.problem is None):
            raise ContractViolation("certificate and problem both set, or neither")
        if result.problem is not None and result.problem not in INTAKE_REASONS:
            raise ContractViolation(f"problem={result.problem!r}")

    def generate(rng: random.Random) -> Any:
        pick = rng.randrange(6)
        if pick == 0:
            return rng.choice([None, "", 0, [], "text", 1.5, object(), ValueError("x"), KeyError()])
        if pick == 1:
            return bytearray(mutate_bytes(rng, rng.choice(DERS), DERS))
        return mutate_bytes(rng, rng.choice(DERS), DERS)

    raw = st.binary(max_size=600) | st.sampled_from([None, "", "x", 3, b"", bytearray(LEAF.der)])
    return Target(
        "intake.callable",
        run,
        generate,
        _with_randoms(generate, raw),
        lambda data: _patch_from_bytes(data, DERS),
        doc="a dotted-path source returning anything (or raising)",
    )


# --- the RFC 9440 SF parsing and the XFCC splitter ------------------------------------------------


SF_SEEDS = [
    f":{_b64(LEAF.der)}:",
    f":{_b64(LEAF.der).rstrip('=')}:",
    f":{_b64(INTERMEDIATE.der)}:, :{_b64(ROOT.der)}:",
    ":aGVsbG8=:",
    "::",
    ":",
    ": :",
    ":a:;param=1",
]


def _sf_run(value: str) -> None:
    for parse in (proxies._sf_byte_sequence, proxies._sf_byte_sequence_list):
        try:
            result = parse(value)
        except IntakeError:
            continue
        if parse is proxies._sf_byte_sequence_list:
            if not isinstance(result, tuple) or not all(isinstance(b, bytes) for b in result):
                raise ContractViolation("SF list: not a tuple of bytes")
        elif not isinstance(result, bytes):
            raise ContractViolation("SF byte sequence: not bytes")


def _sf_generate(rng: random.Random) -> str:
    if rng.random() < 0.3:  # any bytes, correctly armoured: must decode to exactly them
        return f":{_b64(mutate_bytes(rng, rng.choice(DERS)))}:"
    return mutate_text(rng, rng.choice(SF_SEEDS), SF_SEEDS)


XFCC_SEEDS = [
    _xfcc(LEAF.der, (INTERMEDIATE.der,)),
    _xfcc(NO_SAN.der) + "," + _xfcc(LEAF.der),
    'By=a;Subject="CN=x\\"y,O=z";URI=,DNS=a',
    'Cert="unterminated',
    "Hash=;=;;,,",
    'a="\\\\";b="\\""',
]


def _xfcc_run(value: str) -> None:
    try:
        elements = proxies.split_xfcc(value)
    except IntakeError:
        return
    if not isinstance(elements, list) or not elements:
        raise ContractViolation("split_xfcc returned no element list")
    for pairs in elements:
        for key, val in pairs:
            if not isinstance(key, str) or not isinstance(val, str):
                raise ContractViolation("XFCC pair is not (str, str)")
            if not key or key != key.strip().lower():
                raise ContractViolation(f"XFCC key not normalised: {key!r}")


# --- certificates ---------------------------------------------------------------------------------


def _der_run(case: tuple[bytes, tuple[bytes, ...]]) -> None:
    der, chain = case
    try:
        certificate = certificate_from_der(der, chain)
    except IntakeError as exc:
        if exc.code != "not_a_certificate":
            raise ContractViolation(f"certificate_from_der raised {exc.code}") from exc
        return
    if len(certificate.x5t_s256) != 43 or not isinstance(certificate.subject, str):
        raise ContractViolation("parsed certificate without thumbprint or subject")
    # What client authentication reads later must be readable too.
    for name in ("san_dns", "san_uri", "san_email"):
        if not all(isinstance(v, str) for v in getattr(certificate, name)):
            raise ContractViolation(f"{name} holds a non-string")


def _der_generate(rng: random.Random) -> tuple[bytes, tuple[bytes, ...]]:
    der = mutate_bytes(rng, rng.choice(DERS), DERS)
    chain = (mutate_bytes(rng, INTERMEDIATE.der),) if rng.random() < 0.2 else ()
    return der, chain


PEM_SEEDS = [
    _pem(LEAF.der).encode(),
    (_pem(LEAF.der) + _pem(INTERMEDIATE.der)).encode(),
    _pem(LEAF.der).replace("\n", " ").encode(),
    b"-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----",
]


def _pem_run(data: bytes) -> None:
    for parse in (ders_from_pem, der_from_pem, b64decode_strict):
        try:
            parse(data)
        except IntakeError as exc:
            if exc.code != "malformed":
                raise ContractViolation(f"{parse.__name__} raised {exc.code}") from exc


def _pem_generate(rng: random.Random) -> bytes:
    text = mutate_text(rng, rng.choice(PEM_SEEDS).decode(), [s.decode() for s in PEM_SEEDS])
    return text.encode("utf-8", "surrogatepass")


# --- matching -----------------------------------------------------------------------------------

DN_SEEDS = [
    "CN=client-one,O=Example\\, Inc.,C=DE",
    "c=DE, o=Example\\, Inc., cn=CLIENT-ONE",
    "CN=a+OU=b;O=c",
    "2.5.4.3=#0c03616263,OID.2.5.4.97=PSDDE-1",
    "CN=\\C3\\A9t\\C3\\A9,serialNumber=12345",
    'CN="quoted, value",E=ops@example.com',
    "CN=x\\ ,1.3.6.1.4.1.311.60.2.1.3=DE",
    "CN=#1e0400410042,UID=#0303000102",
]
DN_FRAGMENTS = [
    "CN=",
    "cn = ",
    "OID.2.5.4.3=",
    "3.1=",
    "1.40=",
    "2.999999999999999999=",
    ",",
    ";",
    "+",
    "\\",
    "\\2C",
    "\\FF",
    "#",
    "#0c8182",
    "#1c0400",
    "#",
    '"',
    "=",
    " ",
    "\x00",
]


def _parse_dn_run(text: str) -> None:
    try:
        rdns = parse_dn(text)
    except RegisteredValueError:
        return
    if not rdns or not all(rdn and isinstance(rdn, frozenset) for rdn in rdns):
        raise ContractViolation("parse_dn returned an empty RDN")


def _dn_generate(rng: random.Random) -> str:
    return mutate_text(rng, rng.choice(DN_SEEDS), DN_SEEDS + DN_FRAGMENTS)


SAN_SEEDS = {
    "tls_client_auth_subject_dn": DN_SEEDS,
    "tls_client_auth_san_dns": [
        "client-one.example.com",
        "*.example.com",
        "CLIENT-ONE.example.com.",
        "xn--bcher-kva.example",
        "bücher.example",
        "a..b",
        "-a.b",
    ],
    "tls_client_auth_san_uri": [
        "spiffe://example.org/client-one",
        "HTTPS://[2001:DB8::1]:8443/a?b#c",
        "https://a.example",
        "urn:x",
        "//no-scheme",
        "https://[::1",
    ],
    "tls_client_auth_san_ip": [
        "192.0.2.10",
        "2001:db8::1",
        "2001:0db8:0:0:0:0:0:1",
        "::ffff:10.0.0.1",
        "010.0.0.1",
        "fe80::1%eth0",
        "10.0.0.0/8",
        "1.2.3",
    ],
    "tls_client_auth_san_email": [
        "ops@example.com",
        "ops@EXAMPLE.COM",
        "Ops.Team@example.com",
        "a@b@c",
        "@x",
        "x@",
        "o p@x.y",
    ],
}
ALL_SAN_TEXT = [text for values in SAN_SEEDS.values() for text in values]


def _normalise_run(case: tuple[str, str]) -> None:
    field_name, value = case
    try:
        stored = normalise_registered_value(field_name, value)
    except RegisteredValueError:
        return
    if not isinstance(stored, str) or not stored:
        raise ContractViolation("normalise_registered_value stored an empty value")
    if field_name == "tls_client_auth_subject_dn" and parse_dn(stored) != parse_dn(value):
        raise ContractViolation("the stored DN parses differently")


def _normalise_generate(rng: random.Random) -> tuple[str, str]:
    field_name = rng.choice(SUBJECT_FIELDS + ("tls_client_auth_unknown",))
    seeds = SAN_SEEDS.get(field_name, ALL_SAN_TEXT)
    return field_name, mutate_text(rng, rng.choice(seeds), ALL_SAN_TEXT)


Matcher = Callable[[str, Sequence[Any]], bool]


def _matcher_target(name: str, matcher: Matcher, seeds: list[str]) -> Target:
    values_seeds = [v for c in CERTIFICATES for v in (c.san_dns + c.san_uri + c.san_email)]

    def run(case: tuple[str, list[str]]) -> None:
        registered, values = case
        result = matcher(registered, values)
        if result is not True and result is not False:
            raise ContractViolation(f"{name} returned {result!r}")
        if result and not values:
            raise ContractViolation(f"{name} matched an empty SAN list")

    def generate(rng: random.Random) -> tuple[str, list[str]]:
        registered = mutate_text(rng, rng.choice(seeds), seeds)
        values = [
            mutate_text(rng, rng.choice(seeds + values_seeds)) if rng.random() < 0.5 else v
            for v in rng.sample(seeds + values_seeds, rng.randint(0, 3))
        ]
        if rng.random() < 0.3 and values:
            registered = rng.choice(values)  # the interesting case: equal up to folding
        return registered, values

    raw = st.tuples(_raw_text(), st.lists(_raw_text(), max_size=4))
    return Target(
        f"matching.{name}",
        run,
        generate,
        _with_randoms(generate, raw),
        lambda data: (_splice_from_bytes(data, seeds), list(values_seeds[:2])),
        doc=f"{matcher.__name__}(registered, SAN values) → bool",
    )


def _ip_from(rng: random.Random) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if rng.random() < 0.5:
        return ipaddress.IPv4Address(rng.getrandbits(32))
    if rng.random() < 0.3:
        return ipaddress.IPv6Address((0xFFFF << 32) | rng.getrandbits(32))  # IPv4-mapped
    return ipaddress.IPv6Address(rng.getrandbits(128))


def _san_ip_run(case: tuple[str, list[Any]]) -> None:
    registered, values = case
    result = san_ip_matches(registered, values)
    if result is not True and result is not False:
        raise ContractViolation(f"san_ip_matches returned {result!r}")
    expected = False
    if "%" not in registered:
        try:
            packed = ipaddress.ip_address(registered.strip()).packed
        except ValueError:
            packed = None
        expected = packed is not None and any(v.packed == packed for v in values)
    if result is not expected:
        raise ContractViolation(f"san_ip_matches is not binary equality ({registered!r})")


def _san_ip_generate(rng: random.Random) -> tuple[str, list[Any]]:
    values = [_ip_from(rng) for _ in range(rng.randint(0, 3))]
    if values and rng.random() < 0.5:
        value = rng.choice(values)
        registered = rng.choice(
            (str(value), value.exploded, f" {value} ", value.compressed.upper())
        )
    else:
        registered = str(_ip_from(rng))
    if rng.random() < 0.5:
        registered = mutate_text(rng, registered, SAN_SEEDS["tls_client_auth_san_ip"])
    return registered, values


def _certificate_matches_run(case: tuple[int, str, str, bool]) -> None:
    index, field_name, registered, order = case
    certificate = CERTIFICATES[index % len(CERTIFICATES)]
    result = certificate_matches(certificate, field_name, registered, match_order=order)
    if result is not True and result is not False:
        raise ContractViolation(f"certificate_matches returned {result!r}")


def _certificate_matches_generate(rng: random.Random) -> tuple[int, str, str, bool]:
    field_name = rng.choice(SUBJECT_FIELDS + ("unknown",))
    certificate = rng.randrange(len(CERTIFICATES))
    seeds = SAN_SEEDS.get(field_name, ALL_SAN_TEXT) + [CERTIFICATES[certificate].subject]
    return certificate, field_name, mutate_text(rng, rng.choice(seeds), seeds), rng.random() < 0.5


# Random subjects: attribute types by OID, values with RFC 4514 specials.
NAME_TYPES = [
    NameOID.COMMON_NAME,
    NameOID.ORGANIZATION_NAME,
    NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.LOCALITY_NAME,
    NameOID.SERIAL_NUMBER,
    NameOID.EMAIL_ADDRESS,
    NameOID.DOMAIN_COMPONENT,
    NameOID.ORGANIZATION_IDENTIFIER,
    x509.ObjectIdentifier("1.3.6.1.4.1.99999.7"),
]


def _attribute_value(rng: random.Random) -> str:
    """A value a certificate can carry: UTF-8 encodable (no lone surrogates), 1-32 characters."""
    value = mutate_text(rng, rng.choice(("x", "Ä b", "#1", " a ", "+,;")))[:32] or "v"
    return value.encode("utf-8", "replace").decode("utf-8")


def _name_from(rng: random.Random) -> x509.Name:
    rdns = []
    for _ in range(rng.randint(1, 4)):
        oids = rng.sample(NAME_TYPES, rng.randint(1, 2))
        attributes = [x509.NameAttribute(oid, _attribute_value(rng)) for oid in oids]
        rdns.append(x509.RelativeDistinguishedName(attributes))
    return x509.Name(rdns)


def _subject_dn_run(case: tuple[x509.Name, str, bool]) -> None:
    name, registered, order = case
    result = subject_dn_matches(registered, name, match_order=order)
    if result is not True and result is not False:
        raise ContractViolation(f"subject_dn_matches returned {result!r}")
    if registered == name.rfc4514_string() and not result:
        raise ContractViolation(f"a name does not match its own RFC 4514 string: {registered!r}")


def _subject_dn_generate(rng: random.Random) -> tuple[x509.Name, str, bool]:
    while True:
        try:
            name = _name_from(rng)
            text = name.rfc4514_string()
            break
        except ValueError:  # an attribute value cryptography refuses: draw again
            continue
    if rng.random() < 0.4:
        registered = text
    elif rng.random() < 0.5:
        registered = x509.Name(list(reversed(name.rdns))).rfc4514_string()
    else:
        registered = mutate_text(rng, text, DN_SEEDS + DN_FRAGMENTS)
    return name, registered, rng.random() < 0.5


# --- the trust gate ---------------------------------------------------------------------------

PEER_SEEDS = [
    "127.0.0.1",
    "::1",
    "::ffff:127.0.0.1",
    "10.1.2.3",
    "fe80::1%eth0",
    "",
    " 127.0.0.1 ",
    "127.0.0.1, 10.0.0.1",
    "unix:",
    "0177.0.0.1",
    "2130706433",
    "[::1]",
    "fd00::1%25x",
]


def _trust_gate_run(case: tuple[str, bool]) -> None:
    remote, unix = case
    result = proxies.is_trusted_peer(remote, NETWORKS, unix)
    if result is not True and result is not False:
        raise ContractViolation(f"is_trusted_peer returned {result!r}")
    if result and remote.strip():
        text = remote.strip().split("%", 1)[0]
        address = ipaddress.ip_address(text)  # trusted ⇒ it was an address
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not any(address in network for network in NETWORKS):
            raise ContractViolation(f"{remote!r} trusted outside TRUSTED_PROXIES")
    if not remote and result is not unix:
        raise ContractViolation("an empty REMOTE_ADDR is trusted only with TRUST_UNIX_SOCKET_PEERS")


def _trust_gate_generate(rng: random.Random) -> tuple[str, bool]:
    return mutate_text(rng, rng.choice(PEER_SEEDS), PEER_SEEDS), rng.random() < 0.2


# --- JWK sets ------------------------------------------------------------------------------------


def _jwk(issued: pki.Issued) -> dict[str, Any]:
    from jwcrypto import jwk

    data: dict[str, Any] = jwk.JWK.from_pyca(issued.cert.public_key()).export_public(as_dict=True)
    data["x5c"] = [_b64(issued.der)]
    return data


JWKS_SEEDS = [
    json.dumps({"keys": [_jwk(NO_SAN)]}),
    json.dumps({"keys": [_jwk(RSA_LEAF), {**_jwk(NO_SAN), "x5c": [_b64(RSA_LEAF.der)]}]}),
    json.dumps({"keys": [{**_jwk(NO_SAN), "x5t#S256": "x"}, {"kty": "oct", "k": "AA"}]}),
    '{"keys": []}',
    '{"keys": [{"kty": "EC"}]}',
]


def _jwks_run(case: str | dict[str, Any]) -> None:
    try:
        certificates = parse_jwk_set(case)
    except JWKSetError:
        return
    if not isinstance(certificates, tuple) or not all(isinstance(c, bytes) for c in certificates):
        raise ContractViolation("parse_jwk_set returned something else than DER certificates")


def _jwks_generate(rng: random.Random) -> str | dict[str, Any]:
    text = rng.choice(JWKS_SEEDS)
    if rng.random() < 0.3:  # structure-aware: change one member of one key
        document = json.loads(text)
        keys = document.get("keys") or [{}]
        key = rng.choice(keys)
        member = rng.choice(
            ["kty", "crv", "x", "y", "n", "e", "x5c", "x5t", "x5t#S256", "d", "use"]
        )
        key[member] = rng.choice(
            [None, 1, "", [], {}, ["@@"], mutate_text(rng, str(key.get(member, "")))]
        )
        return document if rng.random() < 0.5 else json.dumps(document)
    if rng.random() < 0.05:  # deep nesting: a JSON parser's recursion limit
        depth = rng.choice((10, 500, 5000, 50000))
        return '{"keys": ' + "[" * depth + "]" * depth + "}"
    return mutate_text(rng, text, JWKS_SEEDS)


# --- the registry ---------------------------------------------------------------------------------


def _text_target(
    name: str,
    run: Callable[[str], None],
    generate: Callable[[random.Random], str],
    seeds: list[str],
    doc: str,
) -> Target:
    return Target(
        name,
        run,
        generate,
        _with_randoms(generate, _raw_text()),
        lambda data: _splice_from_bytes(data, seeds),
        doc=doc,
        seeds=seeds,
    )


def _build() -> dict[str, Target]:
    targets = [_intake_target(name) for name in sorted(SOURCES)]
    targets.append(_callable_target())
    targets.append(
        _text_target(
            "parser.xfcc",
            _xfcc_run,
            lambda rng: mutate_text(rng, rng.choice(XFCC_SEEDS), XFCC_SEEDS),
            XFCC_SEEDS,
            "proxies.split_xfcc: elements of (key, value) or IntakeError",
        )
    )
    targets.append(
        _text_target(
            "parser.rfc9440_sf",
            _sf_run,
            _sf_generate,
            SF_SEEDS,
            "RFC 8941 byte sequence and list parsing: bytes or IntakeError",
        )
    )
    targets.append(
        Target(
            "certificates.der",
            _der_run,
            _der_generate,
            _with_randoms(_der_generate, st.tuples(st.binary(max_size=800), st.just(()))),
            lambda data: (_patch_from_bytes(data, DERS), ()),
            doc="certificate_from_der: a ClientCertificate or IntakeError('not_a_certificate')",
        )
    )
    targets.append(
        Target(
            "certificates.pem",
            _pem_run,
            _pem_generate,
            _with_randoms(_pem_generate, st.binary(max_size=600)),
            lambda data: _splice_from_bytes(data, [s.decode() for s in PEM_SEEDS]).encode(
                "utf-8", "surrogatepass"
            ),
            doc="ders_from_pem / der_from_pem / b64decode_strict: DER or IntakeError('malformed')",
        )
    )
    targets.append(
        _text_target(
            "matching.parse_dn",
            _parse_dn_run,
            _dn_generate,
            DN_SEEDS,
            "parse_dn: RDNs or RegisteredValueError",
        )
    )
    targets.append(
        Target(
            "matching.normalise_registered_value",
            _normalise_run,
            _normalise_generate,
            _with_randoms(
                _normalise_generate, st.tuples(st.sampled_from(SUBJECT_FIELDS), _raw_text())
            ),
            lambda data: (
                SUBJECT_FIELDS[data[0] % 5] if data else SUBJECT_FIELDS[0],
                _splice_from_bytes(data[1:], ALL_SAN_TEXT),
            ),
            doc="normalise_registered_value: the value to store or RegisteredValueError",
        )
    )
    targets += [
        _matcher_target("san_dns", san_dns_matches, SAN_SEEDS["tls_client_auth_san_dns"]),
        _matcher_target("san_uri", san_uri_matches, SAN_SEEDS["tls_client_auth_san_uri"]),
        _matcher_target("san_email", san_email_matches, SAN_SEEDS["tls_client_auth_san_email"]),
    ]
    targets.append(
        Target(
            "matching.san_ip",
            _san_ip_run,
            _san_ip_generate,
            _with_randoms(
                _san_ip_generate, st.tuples(_raw_text(), st.lists(st.ip_addresses(), max_size=3))
            ),
            lambda data: (
                _splice_from_bytes(data, SAN_SEEDS["tls_client_auth_san_ip"]),
                list(CERTIFICATES[0].san_ip),
            ),
            doc="san_ip_matches: binary equality, never raises",
        )
    )
    targets.append(
        Target(
            "matching.certificate_matches",
            _certificate_matches_run,
            _certificate_matches_generate,
            _with_randoms(
                _certificate_matches_generate,
                st.tuples(
                    st.integers(0, 9), st.sampled_from(SUBJECT_FIELDS), _raw_text(), st.booleans()
                ),
            ),
            lambda data: (
                data[0] if data else 0,
                SUBJECT_FIELDS[(data[1] if len(data) > 1 else 0) % 5],
                _splice_from_bytes(data[2:], ALL_SAN_TEXT),
                bool(data[:1]) and data[0] & 1 == 1,
            ),
            doc="certificate_matches(certificate, field, registered): bool, never raises",
        )
    )
    targets.append(
        Target(
            "matching.subject_dn",
            _subject_dn_run,
            _subject_dn_generate,
            _with_randoms(_subject_dn_generate, st.nothing()),
            lambda data: _subject_dn_generate(random.Random(data)),
            doc="subject_dn_matches(registered, any subject): bool; a name matches its own string",
        )
    )
    targets.append(
        Target(
            "proxies.trust_gate",
            _trust_gate_run,
            _trust_gate_generate,
            _with_randoms(_trust_gate_generate, st.tuples(_raw_text(), st.booleans())),
            lambda data: (
                _splice_from_bytes(data, PEER_SEEDS),
                bool(data[:1]) and data[0] & 1 == 1,
            ),
            doc="is_trusted_peer: bool, trusted only inside TRUSTED_PROXIES",
        )
    )
    targets.append(
        Target(
            "jwks.parse_jwk_set",
            _jwks_run,
            _jwks_generate,
            _with_randoms(_jwks_generate, _raw_text()),
            lambda data: _splice_from_bytes(data, JWKS_SEEDS),
            doc="parse_jwk_set: DER certificates or JWKSetError",
        )
    )
    from fuzz.jwt_targets import jwt_targets  # JWT access tokens (RFC 9068 §4)

    targets += jwt_targets()
    return {target.name: target for target in targets}


TARGETS: dict[str, Target] = _build()
