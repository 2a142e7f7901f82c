"""``descriptions``: the fixed ``error_description`` a refused client is told (RFC 6749 §5.2).

Pure: no Django. Every client-auth reason code has one phrase (and, for ``no_certificate``, one
per intake reason code); no phrase carries variable content — a DN, a repr, a library's message,
a host, a port, a number.
"""

from __future__ import annotations

import re

import pytest

from django_oauth_mtls.descriptions import client_auth_description
from django_oauth_mtls.exceptions import CLIENT_AUTH_REASONS, INTAKE_REASONS

METHODS = [None, "tls_client_auth", "self_signed_tls_client_auth", "client_secret_basic"]
INTAKES = [None, *sorted(INTAKE_REASONS), "not-a-code"]
#: What must never reach a client: reprs, library text, addresses, numbers, our own log words.
FORBIDDEN = re.compile(
    r"[<>{}\[\]\\%=@\d]|Certificate\(|Name\(|encountered|Error|Exception|\brepr\b|"
    r"https?:|localhost|\bports?\b|\bhosts?\b|address|timed out|refused \(|connect|DNS|resolv",
    re.IGNORECASE,
)


def every_phrase():
    for code in [*sorted(CLIENT_AUTH_REASONS), "not-a-code"]:
        for intake in INTAKES:
            for method in METHODS:
                yield code, intake, method, client_auth_description(code, intake, method)


def test_every_code_has_its_own_phrase():
    phrases = {code: client_auth_description(code) for code in CLIENT_AUTH_REASONS}
    assert all(phrases.values())
    assert len(set(phrases.values())) == len(phrases), "two codes share a phrase"


def test_every_intake_code_has_its_own_phrase_for_no_certificate():
    phrases = {i: client_auth_description("no_certificate", i) for i in INTAKE_REASONS}
    assert len(set(phrases.values())) == len(phrases)


def test_no_phrase_carries_variable_content():
    for code, intake, method, phrase in every_phrase():
        assert isinstance(phrase, str) and phrase.strip() == phrase and phrase, (code, intake)
        assert not FORBIDDEN.search(phrase), (code, intake, method, phrase)
        assert phrase.isascii(), phrase
        assert len(phrase) <= 120, phrase


def test_phrases_are_a_closed_set():
    """However it is called, the answer is one of a small fixed set (no echo of arguments)."""
    seen = {phrase for *_args, phrase in every_phrase()}
    assert client_auth_description("bogus", "<script>", "x" * 500) in seen
    assert client_auth_description("no_certificate", "<Certificate(subject=...)>", "8443") in seen
    # Other codes: one each; no_certificate: 3 openings × (each intake + a fallback); generic.
    assert len(seen) == (len(CLIENT_AUTH_REASONS) - 1) + 3 * (len(INTAKE_REASONS) + 1) + 1


def test_a_failed_fetch_does_not_say_what_answered():
    phrase = client_auth_description("jwk_set_unavailable")
    for word in ("timed", "time", "connect", "answer", "respon", "reach", "TLS", "HTTP", "JSON"):
        assert word.lower() not in phrase.lower(), word
    for intake in INTAKES:
        assert client_auth_description("jwk_set_unavailable", intake) == phrase


@pytest.mark.parametrize(
    ("code", "intake", "method", "phrase"),
    [
        (
            "no_certificate",
            "absent",
            "tls_client_auth",
            "tls_client_auth requires a client certificate: no client certificate was presented",
        ),
        (
            "no_certificate",
            "untrusted_peer",
            "self_signed_tls_client_auth",
            "self_signed_tls_client_auth requires a client certificate: "
            "the certificate did not come through a trusted proxy",
        ),
        (
            "no_certificate",
            "source_disabled",
            None,
            "a client certificate is required: the server reads no client certificates",
        ),
        (
            "no_certificate",
            "malformed",
            "tls_client_auth",
            "tls_client_auth requires a client certificate: the client certificate could not be decoded",
        ),
        (
            "no_certificate",
            "not_a_certificate",
            None,
            "a client certificate is required: the client certificate could not be parsed",
        ),
        (
            "no_certificate",
            "too_large",
            None,
            "a client certificate is required: the client certificate field is too large",
        ),
        (
            "no_certificate",
            "duplicate",
            None,
            "a client certificate is required: more than one client certificate field was received",
        ),
        (
            "no_certificate",
            "chain_without_leaf",
            None,
            "a client certificate is required: the certificate chain carries no client certificate",
        ),
        (
            "no_certificate",
            "hash_mismatch",
            None,
            "a client certificate is required: the certificate does not match the hash the proxy sent",
        ),
        (
            "no_certificate",
            None,
            None,
            "a client certificate is required: the client certificate was refused",
        ),
        (
            "no_certificate",
            "no-such-intake",
            "client_secret_basic",
            "a client certificate is required: the client certificate was refused",
        ),
        ("client_id_missing", None, None, "client_id is required with certificate authentication"),
        (
            "method_conflict",
            None,
            "tls_client_auth",
            "this client authenticates with its certificate alone: "
            "no client secret, Basic credentials or client assertion",
        ),
        (
            "chain_invalid",
            None,
            None,
            "the client certificate does not validate to a trusted certification authority",
        ),
        ("expired", None, None, "the client certificate has expired"),
        ("not_yet_valid", None, None, "the client certificate is not yet valid"),
        (
            "wrong_eku",
            None,
            None,
            "the client certificate's extended key usage does not allow TLS client authentication",
        ),
        (
            "wrong_key_usage",
            None,
            None,
            "the client certificate's key usage does not allow digital signatures",
        ),
        (
            "weak_key",
            None,
            None,
            "the client certificate's key is too weak or of an unsupported type",
        ),
        (
            "pin_mismatch",
            None,
            None,
            "the client certificate is not issued under the certification authority pinned for this client",
        ),
        (
            "subject_mismatch",
            None,
            None,
            "the client certificate does not match the subject registered for this client",
        ),
        (
            "not_in_jwk_set",
            None,
            None,
            "the client certificate is not in the client's registered JWK set",
        ),
        ("jwk_set_unavailable", None, None, "the client's JWK set could not be obtained"),
        ("expired", "absent", "tls_client_auth", "the client certificate has expired"),
        ("no-such-code", None, None, "client authentication failed"),
    ],
)
def test_table(code, intake, method, phrase):
    assert client_auth_description(code, intake, method) == phrase
