"""``jwks_addresses``: where a ``jwks_uri`` fetch may connect (RFC 8705 §2.2.2; RFC 6890).

Pure and free of Django, so this file also runs under a bare interpreter of every supported
Python (3.11 and 3.12 disagree on ``ipaddress``' ``is_global``/``is_private``; the policy must
not)::

    python3.12 -m pytest -p no:django -p no:cacheprovider --noconftest -c /dev/null \\
        --rootdir . tests/unit/test_jwks_addresses.py
"""

from __future__ import annotations

import ipaddress
import sys

import pytest

from django_oauth_mtls.jwks_addresses import address_problem, literal_address, uri_problem

REFUSED = [
    # IPv4: the IANA special-purpose blocks, each by name.
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "this-network"),
    ("10.0.0.1", "private"),
    ("10.255.255.255", "private"),
    ("100.64.0.1", "shared"),  # RFC 6598, carrier-grade NAT
    ("100.127.255.255", "shared"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("169.254.169.254", "link-local"),  # cloud metadata services
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.0.0.8", "ietf-protocol"),
    (
        "192.0.0.9",
        "ietf-protocol",
    ),  # PCP anycast: globally reachable per IANA, refused all the same
    ("192.0.2.1", "documentation"),
    ("192.88.99.1", "6to4-relay"),
    ("192.168.1.1", "private"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.255", "benchmarking"),
    ("198.51.100.1", "documentation"),
    ("203.0.113.1", "documentation"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    # IPv6 outside 2000::/3.
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("::7f00:1", "ipv4-compatible"),  # ::127.0.0.1, deprecated (RFC 4291 §2.5.5.1)
    ("::808:808", "ipv4-compatible"),  # even of a public address
    ("fec0::1", "site-local"),  # RFC 3879; Python 3.11 calls it global
    ("feff::1", "site-local"),
    ("fc00::1", "private"),
    ("fd00::1", "private"),
    ("fe80::1", "link-local"),
    ("fe80::1%2", "link-local"),
    ("ff02::1", "multicast"),
    ("100::1", "discard"),
    ("64:ff9b:1::a00:1", "reserved"),  # local-use NAT64 (RFC 8215)
    ("5f00::1", "reserved"),  # SRv6 SIDs (RFC 9602)
    ("4000::1", "reserved"),
    ("::ffff:0:808:808", "reserved"),  # SIIT IPv4-translated
    # IPv4-mapped and NAT64 (64:ff9b::/96): the embedded IPv4 address decides.
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:0.0.0.0", "unspecified"),
    ("::ffff:169.254.169.254", "link-local"),
    ("64:ff9b::a00:1", "private"),  # 10.0.0.1
    ("64:ff9b::7f00:1", "loopback"),
    ("64:ff9b::6440:1", "shared"),  # 100.64.0.1
    # Global unicast, but special-purpose.
    ("2001::1", "ietf-protocol"),  # Teredo
    ("2001:2::1", "ietf-protocol"),  # benchmarking
    ("2001:20::1", "ietf-protocol"),  # ORCHIDv2
    ("2001:1ff:ffff::1", "ietf-protocol"),  # the end of 2001::/23
    ("2001:db8::1", "documentation"),
    ("2001:db8:ffff::1", "documentation"),
    ("3fff::1", "documentation"),  # RFC 9637
    ("2002:7f00:1::", "6to4"),  # of 127.0.0.1
    ("2002:808:808::1", "6to4"),  # of a public address: 6to4 is refused whole (RFC 7526)
]

ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "9.255.255.255",  # just below 10/8
    "11.0.0.0",
    "100.63.255.255",  # around 100.64/10
    "100.128.0.0",
    "126.255.255.255",
    "128.0.0.1",
    "169.253.255.255",
    "172.15.255.255",  # around 172.16/12
    "172.32.0.0",
    "192.0.1.1",
    "192.0.3.1",
    "192.88.98.1",
    "192.169.0.1",
    "198.17.255.255",  # around 198.18/15
    "198.20.0.0",
    "198.51.99.1",
    "203.0.112.1",
    "223.255.255.255",
    "2606:4700::1111",
    "2606:2800:220:1:248:1893:25c8:1946",
    "2a00:1450:4001:80b::200e",
    "2001:4860:4860::8888",
    "2001:200::1",  # just past 2001::/23
    "2001:db7:ffff::1",  # around 2001:db8::/32
    "2001:db9::1",
    "2003::1",
    "3ffe::1",
    "3fff:1000::1",  # past 3fff::/20
    "2c0f:fb50:4003::1",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
]


@pytest.mark.parametrize(("address", "label"), REFUSED, ids=[a for a, _ in REFUSED])
def test_refused(address, label):
    assert address_problem(ipaddress.ip_address(address)) == label


@pytest.mark.parametrize("address", ALLOWED)
def test_allowed(address):
    assert address_problem(ipaddress.ip_address(address)) is None


def test_the_answer_does_not_depend_on_pythons_tables(monkeypatch):
    """No ``is_*`` property of ``ipaddress`` is consulted: they differ between 3.11 and 3.12."""
    for cls in (ipaddress.IPv4Address, ipaddress.IPv6Address):
        for name in (
            "is_global",
            "is_private",
            "is_reserved",
            "is_loopback",
            "is_link_local",
            "is_multicast",
            "is_unspecified",
            "is_site_local",
        ):
            if hasattr(cls, name):
                monkeypatch.setattr(cls, name, property(lambda self: pytest.fail("consulted")))
    assert address_problem(ipaddress.ip_address("fec0::1")) == "site-local"
    assert address_problem(ipaddress.ip_address("::ffff:10.0.0.1")) == "private"
    assert address_problem(ipaddress.ip_address("8.8.8.8")) is None


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("fec0::1", "fec0::1"),
        # Forms the system resolver reads as IPv4 (inet_aton) without asking DNS.
        ("127.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        # Names.
        ("client.example.com", None),
        ("deadbeef", None),
        ("cafe.be", None),
        ("1e100.net", None),
        ("localhost", None),
    ],
)
def test_literal_address(host, address):
    expected = None if address is None else ipaddress.ip_address(address)
    assert literal_address(host) == expected


@pytest.mark.parametrize(
    ("uri", "strict", "operator"),
    [
        ("https://client.example.com/jwks", None, None),
        ("http://client.example.com/jwks", "must be an https URL", "must be an https URL"),
        ("HTTPS://client.example.com/jwks", None, None),
        ("ftp://client.example.com/jwks", "must be an https URL", "must be an https URL"),
        ("https:///jwks", "has no host", "has no host"),
        ("https://u:p@client.example.com/", "must not carry credentials", "must not carry"),
        ("https://client.example.com:0/jwks", "invalid port", "invalid port"),
        ("https://client.example.com:99999/jwks", "not a valid URL", "not a valid URL"),
        ("https://127.1/jwks", "points to a loopback address", None),
        ("https://[fe80::1%25eth0]/jwks", "points to a link-local address", None),
        ("https://localhost/jwks", None, None),  # a name: judged when resolved, at each fetch
    ],
)
def test_uri_problem(uri, strict, operator):
    """The whole-URL rule the model, registration, the fetcher and the checks share; the
    address policy is the caller's (a client's URL, or an operator's)."""
    for allow_private, expected in ((False, strict), (True, operator)):
        found = uri_problem(uri, allow_private=allow_private)
        assert (found is None) if expected is None else (expected in (found or "")), found


def test_runs_on_this_interpreter():
    assert sys.version_info >= (3, 11)
