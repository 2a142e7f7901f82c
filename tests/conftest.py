"""Shared fixtures: a test PKI and the rule that absent system tools skip (or fail on CI)."""

from __future__ import annotations

import os
import shutil

import pytest
from hypothesis import HealthCheck, settings

from tests import pki

# Property tests: at least 2,000 examples per parser on CI (issue #2), fewer locally.
settings.register_profile(
    "ci", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=300, deadline=None)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)

ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(*names: str) -> str:
    """The path of the first tool found; skip with a reason when none is, fail instead on CI."""
    for tool in names:
        path = shutil.which(tool) or next(
            (p for p in (f"/usr/sbin/{tool}", f"/sbin/{tool}") if os.access(p, os.X_OK)), None
        )
        if path:
            return path
    message = f"{' / '.join(names)} is not installed (bash .ci/run installs it)"
    if ON_CI:
        pytest.fail(f"CI=true and {message}")
    pytest.skip(message)


@pytest.fixture(scope="session")
def root_ca() -> pki.Issued:
    return pki.make_ca("Test Root CA")


@pytest.fixture(scope="session")
def client_cert(root_ca: pki.Issued) -> pki.Issued:
    """A PKI client: CN=client-one, SAN dns/uri/email/ip, EKU clientAuth; valid 2026–2036."""
    return pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"),
        issuer=root_ca,
        dns=("client-one.example.com",),
        uris=("spiffe://example.org/client-one",),
        emails=("ops@example.com",),
        ips=("192.0.2.10", "2001:db8::1"),
    )
