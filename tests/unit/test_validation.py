"""``validation``: the client-certificate checks beside the chain (RFC 5280 §4.2.1.3, §4.2.1.12).

Pure: certificates made with ``tests/pki.py``, the validation time pinned.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from django_oauth_mtls.exceptions import CLIENT_AUTH_REASONS, ClientAuthError
from django_oauth_mtls.validation import (
    TrustStore,
    check_client_usage,
    check_key_usage,
    validate_chain,
    validation_cache,
)
from tests import pki

NOW = dt.datetime(2027, 6, 1, tzinfo=dt.UTC)  # inside pki's 2026–2036 validity
ROOT = pki.make_ca("Unit Root CA")
STORE = TrustStore(anchors=(ROOT.cert,), version="unit")


def leaf(**kwargs) -> pki.Issued:
    return pki.issue(pki.name(CN="client-one"), issuer=ROOT, **kwargs)


def code_of(call, *args, **kwargs) -> str:
    with pytest.raises(ClientAuthError) as caught:
        call(*args, **kwargs)
    return caught.value.code


def validate(issued: pki.Issued):
    return validate_chain(
        issued.cert, issued.der, [], STORE, now=NOW, skew_seconds=60, min_rsa_bits=2048
    )


@pytest.fixture(autouse=True)
def _empty_cache():
    validation_cache.clear()
    yield
    validation_cache.clear()


def test_wrong_key_usage_is_a_contract_code():
    assert "wrong_key_usage" in CLIENT_AUTH_REASONS


@pytest.mark.parametrize(
    ("usage", "code"),
    [
        ("default", None),  # digitalSignature
        (None, None),  # no keyUsage extension: not restricted
        (pki.key_usage(digital_signature=True, key_encipherment=True), None),
        (pki.key_usage(digital_signature=True, key_agreement=True), None),
        (pki.key_usage(key_encipherment=True), "wrong_key_usage"),
        (pki.key_usage(key_agreement=True), "wrong_key_usage"),
        (pki.key_usage(key_agreement=True, encipher_only=True), "wrong_key_usage"),
        (pki.key_usage(content_commitment=True), "wrong_key_usage"),
        (pki.key_usage(data_encipherment=True), "wrong_key_usage"),
    ],
)
def test_check_key_usage(usage, code):
    issued = leaf(key_usage=usage)
    if code is None:
        check_key_usage(issued.cert)
        check_client_usage(issued.cert)
        assert validate(issued).chain[0] == issued.cert
    else:
        assert code_of(check_key_usage, issued.cert) == code
        assert code_of(check_client_usage, issued.cert) == code
        assert code_of(validate, issued) == code


def test_a_refused_key_usage_is_not_cached_as_valid():
    bad = leaf(key_usage=pki.key_usage(key_encipherment=True))
    assert code_of(validate, bad) == "wrong_key_usage"
    assert code_of(validate, bad) == "wrong_key_usage"


def test_client_usage_checks_the_eku_too():
    server_only = leaf(eku=(ExtendedKeyUsageOID.SERVER_AUTH,))
    assert code_of(check_client_usage, server_only.cert) == "wrong_eku"
    check_key_usage(server_only.cert)  # keyUsage alone says nothing about the EKU


def test_the_log_description_names_the_extension():
    bad = leaf(key_usage=pki.key_usage(key_encipherment=True))
    with pytest.raises(ClientAuthError) as caught:
        check_key_usage(bad.cert)
    assert "digitalSignature" in caught.value.description
