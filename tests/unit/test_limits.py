"""Issue 14 (security review), findings 2 and 3, the pure half: the bounds on registered values,
the non-recursive JSON depth scan, and the caches of parsed registered values bounded by size."""

from __future__ import annotations

import json
import threading

import pytest

from django_oauth_mtls import limits, matching

DN_FIELD = "tls_client_auth_subject_dn"


def nested(depth: int, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + close * depth


def nested_objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


# --- the numbers, in one place -------------------------------------------------------------------


def test_the_bounds():
    assert limits.MAX_CHARACTERS == {
        "tls_client_auth_subject_dn": 4096,
        "tls_client_auth_san_dns": 2048,
        "tls_client_auth_san_uri": 2048,
        "tls_client_auth_san_ip": 2048,
        "tls_client_auth_san_email": 2048,
        "jwks_uri": 2048,
    }
    assert limits.MAX_JSON_DEPTH == 32
    # Every RFC 8705 §2.1.2 field is bounded.
    assert set(matching.SUBJECT_FIELDS) <= set(limits.MAX_CHARACTERS)


@pytest.mark.parametrize("field", sorted(limits.MAX_CHARACTERS))
def test_too_long_names_the_field_and_the_bound_never_the_value(field):
    bound = limits.MAX_CHARACTERS[field]
    assert limits.too_long(field, "x" * bound) is None
    description = limits.too_long(field, "x" * (bound + 1))
    assert description == f"{field} is longer than {bound} characters"
    assert limits.too_long(field, 42) is None  # type errors are reported elsewhere


def test_jwks_too_large_measures_compact_utf8():
    jwks = {"keys": [{"kty": "EC", "x5c": ["é" * 10]}]}
    size = len(json.dumps(jwks, separators=(",", ":"), ensure_ascii=False).encode())
    assert limits.json_size(jwks) == size
    assert limits.jwks_too_large(jwks, size) is None
    assert limits.jwks_too_large(jwks, size - 1) == (
        f"jwks is larger than {size - 1} bytes; publish it at a jwks_uri"
    )


# --- finding 3: the depth scan ---------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1, 2, 31, 32])
def test_depth_within_the_bound(depth):
    assert not limits.json_too_deep(nested(depth).encode())
    assert not limits.json_too_deep(nested_objects(depth).encode())


@pytest.mark.parametrize("depth", [33, 921, 1000, 5000, 100_000, 1_000_000])
def test_depth_over_the_bound(depth):
    assert limits.json_too_deep(nested(depth).encode())
    assert limits.json_too_deep(nested_objects(depth).encode())
    assert limits.json_too_deep(("[" * depth).encode())  # unclosed counts too


def test_depth_ignores_brackets_in_strings_and_escapes():
    inside = json.dumps({"a": "[" * 100 + '\\"[[' + "{" * 100, "b": ["\\", "]]]"]})
    assert not limits.json_too_deep(inside.encode())
    # An escaped quote does not end the string; the brackets after it are still inside.
    tricky = '{"a": "\\"' + "[" * 100 + '"}'
    assert not limits.json_too_deep(tricky.encode())
    # After a string that ends in an escaped backslash, brackets count again.
    after = '{"a": "\\\\", "b": ' + nested(40) + "}"
    assert limits.json_too_deep(after.encode())


def test_depth_scan_is_not_fooled_by_utf16():
    text = '{"a": "' + "\u225b" * 50 + '", "b": ' + nested(40) + "}"
    assert limits.json_too_deep(text.encode("utf-16"))
    flat = json.dumps({"a": "\u225b\u5b22" * 50}, ensure_ascii=False)  # bytes 0x5b, 0x22 inside
    assert not limits.json_too_deep(flat.encode("utf-16-le"))
    assert not limits.json_too_deep(flat.encode("utf-32"))


def test_depth_scan_tolerates_garbage():
    for body in (b"", b"\xff\xfe\x00", b"\x00", b'"unterminated [[[[', b"]]]]]]", "é".encode()):
        assert not limits.json_too_deep(body)


def test_depth_scan_stops_early_on_a_huge_body():
    import time

    body = b"[" * 20_000_000
    started = time.perf_counter()
    assert limits.json_too_deep(body)
    assert time.perf_counter() - started < 0.5


# --- the caches: bounded by size, not only by entries ----------------------------------------------


def test_bounded_lru_evicts_by_weight_and_by_entries():
    cache: limits.BoundedLRU[str, int] = limits.BoundedLRU(max_entries=3, max_weight=10)
    cache.put("a", 1, weight=4)
    cache.put("b", 2, weight=4)
    assert (cache.get("a"), cache.weight) == (1, 8)  # "a" is now the most recent
    cache.put("c", 3, weight=4)  # over 10: the least recent ("b") goes
    assert (cache.get("b"), cache.get("a"), cache.get("c"), cache.weight) == (None, 1, 3, 8)
    cache.put("d", 4, weight=1)
    cache.put("e", 5, weight=1)  # four entries: the least recent ("a") goes
    assert len(cache) == 3 and cache.get("a") is None
    cache.put("huge", 6, weight=11)  # heavier than the whole budget: never cached
    assert cache.get("huge") is None and cache.weight <= 10
    cache.clear()
    assert (len(cache), cache.weight) == (0, 0)


def test_bounded_lru_is_thread_safe():
    cache: limits.BoundedLRU[int, int] = limits.BoundedLRU(max_entries=50, max_weight=500)

    def work(offset: int) -> None:
        for i in range(2000):
            cache.put((i + offset) % 120, i, weight=(i % 13) + 1)
            cache.get(i % 120)

    threads = [threading.Thread(target=work, args=(n * 7,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) <= 50 and cache.weight <= 500


def test_a_dn_over_the_bound_is_never_parsed_nor_cached():
    matching.PARSED_DNS.clear()
    huge = "CN=client-one" + " " * 2_400_000 + ",C=DE"  # 2.4 MB that would parse to CN, C
    with pytest.raises(matching.RegisteredValueError, match="longer than 4096 characters"):
        matching.parse_dn(huge)
    assert len(matching.PARSED_DNS) == 0
    at_bound = "CN=" + "a" * (4096 - 3)
    assert matching.parse_dn(at_bound)
    assert len(matching.PARSED_DNS) == 1


def test_the_dn_cache_is_bounded_by_characters():
    matching.PARSED_DNS.clear()
    for i in range(1024):
        matching.parse_dn(f"CN={i:04d}" + "a" * 4000)
    assert matching.PARSED_DNS.weight <= matching.PARSED_DNS.max_weight
    assert matching.PARSED_DNS.max_weight <= 2 * 1024 * 1024
    assert len(matching.PARSED_DNS) < 1024  # the size bound, not the entry bound, evicted
    matching.PARSED_DNS.clear()


def test_subject_dn_matches_refuses_an_over_bound_registration(client_cert):
    huge = "CN=client-one" + " " * 5000 + ",O=Example\\, Inc.,C=DE"
    assert matching.parse_dn(huge.replace(" " * 5000, ""))  # the same DN, within the bound
    assert not matching.subject_dn_matches(huge, client_cert.cert.subject)


def test_inline_jwk_set_cache_is_bounded_by_size():
    from django_oauth_mtls import jwks_client

    assert jwks_client.INLINE_SETS.max_weight <= 1024 * 1024
    assert jwks_client.INLINE_SETS.max_entries <= 256
