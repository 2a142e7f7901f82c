"""Which addresses a ``jwks_uri`` fetch may connect to (RFC 8705 §2.2.2; RFC 6890, RFC 4291).

Pure module: no Django import. A ``jwks_uri`` is a URL the client chose and the authorization
server fetches, so the fetcher connects only to addresses this module allows. The policy is an
explicit allow-list written out here, never ``ipaddress``' ``is_global``/``is_private``: their
tables differ between Python 3.11 and 3.12 (3.11 calls the deprecated site-local ``fec0::/10``
and ``192.0.0.8`` global), and the answer must not depend on the interpreter.

* IPv4: allowed unless inside one of the IANA special-purpose blocks listed in ``IPV4_REFUSED``
  (RFC 6890 and the IANA IPv4 Special-Purpose Address Registry). The few blocks of that registry
  IANA marks globally reachable and that lie inside a listed block (``192.0.0.9/32``,
  ``192.0.0.10/32``: PCP and TURN anycast) are refused with their block: they are protocol
  anycasts, never a JWK set's host.
* IPv6: allowed only inside ``2000::/3`` (global unicast, RFC 4291 §2.4) and outside its
  special blocks: ``2001::/23`` whole (IETF protocol assignments: Teredo, benchmarking, ORCHID,
  AMT, AS112…), ``2001:db8::/32`` and ``3fff::/20`` (documentation), ``2002::/16`` whole (6to4,
  deprecated by RFC 7526; its relays are anycast and its embedded address is not the host).
* An IPv4-mapped address (``::ffff:a.b.c.d``) and a NAT64 address of the well-known prefix
  (``64:ff9b::/96``, RFC 6052: what DNS64 gives an IPv6-only network for an IPv4 host) are
  judged as the IPv4 address they carry. IPv4-compatible addresses (``::a.b.c.d``, deprecated by
  RFC 4291 §2.5.5.1) and the local-use NAT64 prefix (``64:ff9b:1::/48``) are refused.

``address_problem`` names the block that refuses an address (for the log and the registration
error) or returns ``None``. ``literal_address`` reads a URL host the way the system resolver
would without asking DNS, including the numeric IPv4 forms ``inet_aton`` accepts (``127.1``,
``2130706433``, ``0x7f.1``). ``uri_problem`` judges a whole ``jwks_uri`` before any lookup (the
model, registration, the fetcher and the system checks share it); the caller passes the address
policy, so this module reads no setting.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Final
from urllib.parse import urlsplit

__all__ = [
    "IPV4_REFUSED",
    "IPV6_REFUSED",
    "IPAddress",
    "address_problem",
    "literal_address",
    "uri_problem",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

#: IPv4 blocks refused, first match names the reason (IANA IPv4 Special-Purpose Registry).
IPV4_REFUSED: Final[tuple[tuple[ipaddress.IPv4Network, str], ...]] = (
    (_V4("0.0.0.0/32"), "unspecified"),  # Linux connects it to the host itself
    (_V4("0.0.0.0/8"), "this-network"),  # RFC 791
    (_V4("10.0.0.0/8"), "private"),  # RFC 1918
    (_V4("100.64.0.0/10"), "shared"),  # RFC 6598, carrier-grade NAT
    (_V4("127.0.0.0/8"), "loopback"),  # RFC 1122
    (_V4("169.254.0.0/16"), "link-local"),  # RFC 3927; cloud metadata services live here
    (_V4("172.16.0.0/12"), "private"),  # RFC 1918
    (_V4("192.0.0.0/24"), "ietf-protocol"),  # RFC 6890 (DS-Lite, NAT64 discovery, anycasts)
    (_V4("192.0.2.0/24"), "documentation"),  # RFC 5737 TEST-NET-1
    (_V4("192.88.99.0/24"), "6to4-relay"),  # RFC 7526, deprecated anycast
    (_V4("192.168.0.0/16"), "private"),  # RFC 1918
    (_V4("198.18.0.0/15"), "benchmarking"),  # RFC 2544
    (_V4("198.51.100.0/24"), "documentation"),  # RFC 5737 TEST-NET-2
    (_V4("203.0.113.0/24"), "documentation"),  # RFC 5737 TEST-NET-3
    (_V4("224.0.0.0/4"), "multicast"),  # RFC 5771
    (_V4("255.255.255.255/32"), "broadcast"),  # RFC 919
    (_V4("240.0.0.0/4"), "reserved"),  # RFC 1112
)

#: The only IPv6 space a fetch may reach: global unicast (RFC 4291 §2.4).
IPV6_GLOBAL_UNICAST: Final = _V6("2000::/3")

#: Refused inside ``2000::/3``, first match names the reason (IANA IPv6 Special-Purpose Registry).
IPV6_REFUSED: Final[tuple[tuple[ipaddress.IPv6Network, str], ...]] = (
    (_V6("2001::/23"), "ietf-protocol"),  # RFC 2928: Teredo, benchmarking, ORCHID, AMT, AS112…
    (_V6("2001:db8::/32"), "documentation"),  # RFC 3849
    (_V6("2002::/16"), "6to4"),  # RFC 3056, deprecated by RFC 7526
    (_V6("3fff::/20"), "documentation"),  # RFC 9637
)

#: Names for what lies outside ``2000::/3`` (all of it refused; unnamed space is "reserved").
_IPV6_OUTSIDE: Final[tuple[tuple[ipaddress.IPv6Network, str], ...]] = (
    (_V6("::/128"), "unspecified"),
    (_V6("::1/128"), "loopback"),
    (_V6("::/96"), "ipv4-compatible"),  # RFC 4291 §2.5.5.1, deprecated
    (_V6("100::/64"), "discard"),  # RFC 6666
    (_V6("fc00::/7"), "private"),  # RFC 4193 unique local
    (_V6("fe80::/10"), "link-local"),
    (_V6("fec0::/10"), "site-local"),  # RFC 3879, deprecated
    (_V6("ff00::/8"), "multicast"),
)

#: Prefixes whose last 32 bits are an IPv4 address that decides (mapped; RFC 6052 NAT64).
_EMBEDDING: Final = (_V6("::ffff:0:0/96"), _V6("64:ff9b::/96"))

#: What ``inet_aton`` may read as a number: digits, hex digits after ``0x``, dots.
_NUMERIC_HOST: Final = re.compile(r"[0-9a-fx.]+", re.IGNORECASE)


def address_problem(address: IPAddress) -> str | None:
    """The name of the block that refuses ``address`` (``"loopback"``, ``"site-local"``…), or
    ``None`` when a ``jwks_uri`` fetch may connect to it."""
    if isinstance(address, ipaddress.IPv4Address):
        return next((label for net, label in IPV4_REFUSED if address in net), None)
    value = int(address)  # drops a zone id (fe80::1%eth0): the address alone decides
    plain = ipaddress.IPv6Address(value)
    if any(plain in prefix for prefix in _EMBEDDING):
        return address_problem(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if plain not in IPV6_GLOBAL_UNICAST:
        return next((label for net, label in _IPV6_OUTSIDE if plain in net), "reserved")
    return next((label for net, label in IPV6_REFUSED if plain in net), None)


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an address when it is one (no DNS involved), else ``None`` (a name).

    Besides the standard forms this reads what the system resolver reads as IPv4 without a
    lookup (``inet_aton``: ``127.1``, ``2130706433``, ``0x7f000001``, octal), so a URL cannot
    hide a refused address behind a form ``ipaddress`` does not parse.
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not _NUMERIC_HOST.fullmatch(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def uri_problem(uri: str, *, allow_private: bool) -> str | None:
    """What is wrong with ``uri`` as a ``jwks_uri`` before any lookup, or ``None``.

    https only, a host, no credentials; an IP-literal host is judged like a resolved address
    unless ``allow_private`` (``JWKS_ALLOW_PRIVATE_ADDRESSES`` for a client's URL; ``True`` for
    an operator's, such as ``RESOURCE_SERVER_JWKS_URI``). A host name is judged when it is
    resolved, at each fetch.
    """
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return "jwks_uri is not a valid URL"
    # RFC 8705 §2.2.2 with RFC 7591 §2: the set is fetched over TLS, never in the clear.
    if parts.scheme.lower() != "https":
        return "jwks_uri must be an https URL"
    if not parts.hostname:
        return "jwks_uri has no host"
    if parts.username is not None or parts.password is not None:
        return "jwks_uri must not carry credentials"
    if port == 0:
        return "jwks_uri has an invalid port"
    literal = literal_address(parts.hostname)
    if literal is None or allow_private:
        return None
    problem = address_problem(literal)
    return f"jwks_uri points to a {problem} address" if problem else None
