"""Certificate intake from a TLS-terminating reverse proxy (RFC 9440; RFC 8705 §2, §3).

Pure module: no Django import. Each supported proxy format is one small ``Source``: which
fields it uses and a parser from their raw values to DER. ``read_client_certificate`` applies the
trust gate (RFC 9440 §4: fields are read only from a configured proxy, never from anyone else,
and ``X-Forwarded-For`` is never consulted), the size and singleton rules, and a bounded cache
keyed by the source and the raw field values, so a busy client's certificate is parsed once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

from .certificates import (
    ClientCertificate,
    b64decode_strict,
    certificate_from_der,
    der_from_pem,
    ders_from_pem,
)
from .exceptions import IntakeError

__all__ = [
    "SOURCES",
    "IntakeConfig",
    "IntakeResult",
    "Source",
    "is_trusted_peer",
    "meta_key",
    "read_client_certificate",
]

#: Parsed fields: the leaf's DER and the DER of what the chain field carried.
Parsed = tuple[bytes, tuple[bytes, ...]]
#: A dotted-path source: ``(meta) -> DER bytes or None``.
CertificateCallable = Callable[[Mapping[str, Any]], bytes | None]

WSGI_CERTIFICATE_KEY = "SSL_CLIENT_CERT"
WSGI_CHAIN_PREFIX = "SSL_CLIENT_CERT_CHAIN_"
APACHE_NULL = "(null)"
_SF_BYTES = re.compile(r"^:([A-Za-z0-9+/=]*):$")
_HEX64 = re.compile(r"^[0-9A-Fa-f]{64}$")
_XFCC_SPECIAL = re.compile(r'[\\";,]')


def meta_key(header: str) -> str:
    """``"X-SSL-Client-Cert"`` → ``"HTTP_X_SSL_CLIENT_CERT"`` (the WSGI/Django META key)."""
    return "HTTP_" + header.strip().upper().replace("-", "_")


# --- parsers: raw field values → DER ------------------------------------------------------


def _sf_byte_sequence(item: str) -> bytes:
    """RFC 8941 §3.3.5 Byte Sequence: ``:base64:``, standard alphabet, padding optional."""
    match = _SF_BYTES.match(item.strip())
    if match is None:
        raise IntakeError("malformed", "not an RFC 8941 byte sequence (:base64:)")
    return b64decode_strict(match.group(1).encode("ascii"))


def _sf_byte_sequence_list(value: str | None) -> tuple[bytes, ...]:
    """RFC 9440 §2.3: ``Client-Cert-Chain`` is an SF List of Byte Sequences."""
    if not value or not value.strip():
        return ()
    return tuple(_sf_byte_sequence(item) for item in value.split(","))


def parse_rfc9440(value: str, chain: str | None) -> Parsed:
    """RFC 9440 §2.2 ``Client-Cert: :<base64 DER>:`` and §2.3 ``Client-Cert-Chain``."""
    return _sf_byte_sequence(value), _sf_byte_sequence_list(chain)


def parse_url_encoded_pem(value: str, chain: str | None) -> Parsed:
    """nginx ``$ssl_client_escaped_cert`` and AWS ALB: percent-decoded with ``unquote``.

    Never ``unquote_plus``: ALB keeps ``+`` literal and it is base64 (RFC 9440 §2.1 aside).
    """
    return der_from_pem(unquote_to_bytes(value)), ()


def parse_loose_pem(value: str, chain: str | None) -> Parsed:
    """Apache ``%{SSL_CLIENT_CERT}s``: PEM whose newlines became spaces."""
    return der_from_pem(value.encode("latin-1")), ()


def parse_pem(value: str, chain: str | None) -> Parsed:
    """A PEM, URL-encoded or not (Azure Application Gateway rewrites, custom setups)."""
    raw = unquote_to_bytes(value) if "%" in value else value.encode("latin-1")
    return der_from_pem(raw), ()


def parse_base64_der(value: str, chain: str | None) -> Parsed:
    """HAProxy ``%[ssl_c_der,base64]`` and Azure App Service ``X-ARR-ClientCert``."""
    return b64decode_strict(value.encode("latin-1")), ()


def parse_pem_chain(value: str, chain: str | None) -> Parsed:
    """AWS ALB passthrough: the whole chain, leaf first, URL-encoded PEM with ``+=/`` literal."""
    ders = ders_from_pem(unquote_to_bytes(value))
    return ders[0], tuple(ders[1:])


def parse_traefik(value: str, chain: str | None) -> Parsed:
    """Traefik ``passTLSClientCert.pem``: base64 DER without armour, comma-separated, leaf first.

    Traefik v2 URL-escapes the value (``%2F``, ``%2B``, ``%3D``, ``%2C``), v3 does not; base64
    never contains ``%``, so unescaping is safe for both.
    """
    if "%" in value:
        value = unquote(value, errors="strict")
    items = [item.strip() for item in value.split(",")]
    ders = [b64decode_strict(item.encode("ascii", "strict")) for item in items]
    return ders[0], tuple(ders[1:])


def split_xfcc(value: str) -> list[list[tuple[str, str]]]:
    """Split an Envoy ``x-forwarded-client-cert`` value into elements of ``(key, value)`` pairs.

    Elements are separated by ``,`` and pairs by ``;`` outside double quotes; a quoted value may
    contain ``\\"`` (Envoy's escaping). Keys are case-insensitive and returned lower-cased.
    """
    elements: list[list[tuple[str, str]]] = []
    pairs: list[tuple[str, str]] = []

    def close_pair(text: str) -> None:
        if not text.strip():
            return
        key, sep, val = text.partition("=")
        if not sep or not key.strip():
            raise IntakeError("malformed", "XFCC pair without key=value")
        val = val.strip()
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1].replace('\\"', '"')
        pairs.append((key.strip().lower(), val))

    # Only the four special characters are visited (found by a regex), not every character
    # of the URL-encoded PEM.
    quoted = False
    escaped_at = -1  # the index of the character a backslash escapes
    start = 0
    for match in _XFCC_SPECIAL.finditer(value):
        position = match.start()
        if position == escaped_at:
            continue
        char = value[position]
        if char == "\\":
            if quoted:
                escaped_at = position + 1
        elif char == '"':
            quoted = not quoted
        elif not quoted:
            close_pair(value[start:position])
            start = position + 1
            if char == ",":
                elements.append(pairs)
                pairs = []
    if quoted:
        raise IntakeError("malformed", "unterminated quote in XFCC")
    close_pair(value[start:])
    elements.append(pairs)
    return elements


def parse_envoy(value: str, chain: str | None) -> Parsed:
    """Envoy XFCC: the last element (added by the nearest proxy); ``Cert`` is URL-encoded PEM.

    ``Chain`` includes the leaf; ``Hash`` is the hex SHA-256 of the leaf's DER and must agree
    with ``Cert`` when both are present.
    """
    last = dict(split_xfcc(value)[-1])
    cert_value = last.get("cert")
    chain_value = last.get("chain")
    if not cert_value:
        if chain_value:
            raise IntakeError("chain_without_leaf", "XFCC element has Chain but no Cert")
        raise IntakeError(
            "malformed",
            "XFCC element has no Cert (Envoy needs set_current_client_cert_details.cert)",
        )
    leaf = der_from_pem(unquote_to_bytes(cert_value))
    expected_hash = last.get("hash")
    if expected_hash is not None:
        if not _HEX64.match(expected_hash):
            raise IntakeError("malformed", "XFCC Hash is not hex SHA-256")
        actual = hashlib.sha256(leaf).hexdigest()
        if not hmac.compare_digest(actual, expected_hash.lower()):
            raise IntakeError("hash_mismatch", "XFCC Hash does not match Cert")
    intermediates: tuple[bytes, ...] = ()
    if chain_value:
        ders = ders_from_pem(unquote_to_bytes(chain_value))
        intermediates = tuple(ders[1:] if ders[0] == leaf else ders)
    return leaf, intermediates


def parse_wsgi_environ(value: str, chain: str | None) -> Parsed:
    """mod_wsgi, ``runserver_mtls``: ``SSL_CLIENT_CERT`` PEM; chain ``SSL_CLIENT_CERT_CHAIN_n``."""
    leaf = der_from_pem(value.encode("latin-1"))
    intermediates = tuple(ders_from_pem(chain.encode("latin-1"))) if chain else ()
    return leaf, intermediates


# --- the sources ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Source:
    """One proxy format: its default fields and its parser."""

    name: str
    certificate_header: str
    chain_header: str | None
    verify_header: str | None
    verify_success: tuple[str, ...]
    parse: Callable[[str, str | None], Parsed]
    singleton: bool = True
    gated: bool = True
    implicit_verified: bool = False
    absent_values: tuple[str, ...] = ()


SOURCES: dict[str, Source] = {
    source.name: source
    for source in (
        Source("rfc9440", "Client-Cert", "Client-Cert-Chain", None, (), parse_rfc9440),
        Source(
            "nginx",
            "X-SSL-Client-Cert",
            None,
            "X-SSL-Client-Verify",
            ("SUCCESS",),
            parse_url_encoded_pem,
        ),
        Source(
            "apache",
            "X-SSL-Client-Cert",
            None,
            "X-SSL-Client-Verify",
            ("SUCCESS",),
            parse_loose_pem,
            absent_values=(APACHE_NULL,),
        ),
        Source(
            "haproxy",
            "X-SSL-Client-Cert",
            None,
            "X-SSL-Client-Verify",
            ("0",),
            parse_base64_der,
        ),
        Source(
            "envoy",
            "X-Forwarded-Client-Cert",
            None,
            None,
            (),
            parse_envoy,
            singleton=False,
        ),
        Source(
            "traefik",
            "X-Forwarded-Tls-Client-Cert",
            None,
            None,
            (),
            parse_traefik,
            singleton=False,
        ),
        Source(
            "aws_alb",
            "X-Amzn-Mtls-Clientcert-Leaf",
            None,
            None,
            (),
            parse_url_encoded_pem,
            implicit_verified=True,
        ),
        Source("aws_alb_passthrough", "X-Amzn-Mtls-Clientcert", None, None, (), parse_pem_chain),
        Source("azure_app_service", "X-ARR-ClientCert", None, None, (), parse_base64_der),
        Source("cloudflare", "Client-Cert", "Client-Cert-Chain", None, ("true",), parse_rfc9440),
        Source("pem", "X-Client-Cert", None, None, (), parse_pem),
        Source(
            "wsgi_environ",
            WSGI_CERTIFICATE_KEY,
            None,
            None,
            (),
            parse_wsgi_environ,
            gated=False,
        ),
    )
}


# --- the trust gate ---------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def is_trusted_peer(
    remote_addr: str,
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
    trust_unix_socket_peers: bool = False,
) -> bool:
    """RFC 9440 §4: only a configured proxy may deliver a certificate field.

    An empty ``REMOTE_ADDR`` is a unix-socket peer (trusted only when configured); an
    IPv4-mapped IPv6 address is matched as its IPv4 address; anything unparseable is untrusted.
    """
    if not remote_addr:
        return trust_unix_socket_peers
    try:
        address = ipaddress.ip_address(remote_addr.strip().split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


# --- intake -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IntakeConfig:
    """Everything the intake needs, resolved once from the settings."""

    source: Source | None
    certificate_callable: CertificateCallable | None = None
    callable_name: str = ""
    certificate_key: str = ""
    chain_key: str | None = None
    verify_key: str | None = None
    verify_success: frozenset[str] = frozenset()
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    trust_unix_socket_peers: bool = False
    max_header_bytes: int = 16384
    trust_proxy_verification: bool = False

    @classmethod
    def build(
        cls,
        source: str | None,
        *,
        certificate_callable: CertificateCallable | None = None,
        certificate_header: str | None = None,
        chain_header: str | None = None,
        verify_header: str | None = None,
        verify_success: Sequence[str] | None = None,
        trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (),
        trust_unix_socket_peers: bool = False,
        max_header_bytes: int = 16384,
        trust_proxy_verification: bool = False,
    ) -> IntakeConfig:
        """Resolve a source name (or a callable) and the per-source defaults of ``docs/api.md``."""
        common: dict[str, Any] = {
            "trusted_proxies": trusted_proxies,
            "trust_unix_socket_peers": trust_unix_socket_peers,
            "max_header_bytes": max_header_bytes,
            "trust_proxy_verification": trust_proxy_verification,
        }
        if certificate_callable is not None:
            return cls(
                source=None,
                certificate_callable=certificate_callable,
                callable_name=source or "",
                **common,
            )
        spec = SOURCES.get(source or "")
        if spec is None:
            return cls(source=None, **common)
        if spec.name == "wsgi_environ":
            certificate_key = WSGI_CERTIFICATE_KEY
            chain_key: str | None = WSGI_CHAIN_PREFIX
        else:
            certificate_key = meta_key(certificate_header or spec.certificate_header)
            chain_name = chain_header or spec.chain_header
            chain_key = meta_key(chain_name) if chain_name else None
        verify_name = verify_header or spec.verify_header
        return cls(
            source=spec,
            certificate_key=certificate_key,
            chain_key=chain_key,
            verify_key=meta_key(verify_name) if verify_name else None,
            verify_success=frozenset(
                verify_success if verify_success is not None else spec.verify_success
            ),
            **common,
        )


@dataclass(frozen=True, slots=True)
class IntakeResult:
    """What the intake concluded: a certificate, or ``None`` with a reason code."""

    certificate: ClientCertificate | None
    problem: str | None
    detail: str = ""


DISABLED = IntakeResult(None, "source_disabled")
ABSENT = IntakeResult(None, "absent")


def _wsgi_chain(meta: Mapping[str, Any]) -> str | None:
    """Concatenate ``SSL_CLIENT_CERT_CHAIN_0..n`` (mod_ssl's names) into one PEM text."""
    parts: list[str] = []
    for index in range(32):
        value = meta.get(f"{WSGI_CHAIN_PREFIX}{index}")
        if not value:
            break
        parts.append(str(value))
    return "\n".join(parts) if parts else None


@lru_cache(maxsize=512)
def _parse_fields(source: Source, value: str, chain: str | None) -> ClientCertificate | IntakeError:
    """Parse and cache by the raw values; errors are cached too, so garbage costs once."""
    try:
        leaf, intermediates = source.parse(value, chain)
        return certificate_from_der(leaf, intermediates)
    except IntakeError as exc:
        return exc
    except (ValueError, UnicodeError) as exc:  # a parser's library error that slipped through
        return IntakeError("malformed", type(exc).__name__)


@lru_cache(maxsize=512)
def _parse_der(der: bytes) -> ClientCertificate | IntakeError:
    try:
        return certificate_from_der(der)
    except IntakeError as exc:
        return exc


def read_client_certificate(meta: Mapping[str, Any], config: IntakeConfig) -> IntakeResult:
    """Which certificate, if any, did this request present through the trusted proxy?

    Never raises for anything the request carries: every refusal is a reason code.
    """
    if config.certificate_callable is not None:
        return _read_from_callable(meta, config)
    source = config.source
    if source is None:
        return DISABLED
    value = meta.get(config.certificate_key)
    if source.name == "wsgi_environ":
        chain = _wsgi_chain(meta)
    else:
        chain = meta.get(config.chain_key) if config.chain_key else None
    has_value = bool(value) and str(value).strip() not in source.absent_values
    has_chain = bool(chain) and bool(str(chain).strip())
    if not has_value and not has_chain:
        return ABSENT
    if source.gated and not is_trusted_peer(
        meta.get("REMOTE_ADDR") or "", config.trusted_proxies, config.trust_unix_socket_peers
    ):
        return IntakeResult(None, "untrusted_peer", "peer is not in TRUSTED_PROXIES")
    if not has_value:
        # RFC 9440 §2.3: Client-Cert-Chain MUST NOT appear without Client-Cert.
        return IntakeResult(None, "chain_without_leaf", "chain field without a certificate field")
    if not isinstance(value, str) or (chain is not None and not isinstance(chain, str)):
        return IntakeResult(None, "malformed", "field is not text")
    if len(value) > config.max_header_bytes or (chain and len(chain) > config.max_header_bytes):
        return IntakeResult(None, "too_large", f"field longer than {config.max_header_bytes} bytes")
    if source.singleton and "," in value:
        # RFC 9440 §2.2: a singleton field; a comma means the field was sent twice.
        return IntakeResult(None, "duplicate", "singleton field holds a list (sent twice?)")
    parsed = _parse_fields(source, value, chain)
    if isinstance(parsed, IntakeError):
        return IntakeResult(None, parsed.code, parsed.detail)
    verdict = _proxy_verdict(meta, config)
    if verdict is not None:
        parsed = dataclasses.replace(parsed, proxy_verified=verdict)
    return IntakeResult(parsed, None)


def _proxy_verdict(meta: Mapping[str, Any], config: IntakeConfig) -> bool | None:
    """The proxy's chain verdict, read only when the project trusts it."""
    if not config.trust_proxy_verification or config.source is None:
        return None
    if config.source.implicit_verified:
        return True
    if config.verify_key is None:
        return None
    return str(meta.get(config.verify_key, "")).strip() in config.verify_success


def _read_from_callable(meta: Mapping[str, Any], config: IntakeConfig) -> IntakeResult:
    if not is_trusted_peer(
        meta.get("REMOTE_ADDR") or "", config.trusted_proxies, config.trust_unix_socket_peers
    ):
        return IntakeResult(None, "untrusted_peer", "peer is not in TRUSTED_PROXIES")
    certificate_callable = config.certificate_callable
    if certificate_callable is None:
        return DISABLED
    try:
        der = certificate_callable(meta)
    except Exception as exc:  # a user callable must never turn into a 500
        return IntakeResult(
            None, "malformed", f"{config.callable_name} raised {type(exc).__name__}"
        )
    if der is None or der == b"":
        return ABSENT
    if not isinstance(der, bytes | bytearray | memoryview):
        return IntakeResult(None, "malformed", f"{config.callable_name} did not return bytes")
    der = bytes(der)
    if len(der) > config.max_header_bytes:
        return IntakeResult(
            None, "too_large", f"certificate larger than {config.max_header_bytes} bytes"
        )
    parsed = _parse_der(der)
    if isinstance(parsed, IntakeError):
        return IntakeResult(None, parsed.code, parsed.detail)
    return IntakeResult(parsed, None)
