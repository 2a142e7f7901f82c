"""Would this certificate authenticate this client, and if not, why? (RFC 8705 §2.1, §2.2)

``explain`` runs a certificate through ``client_auth.authenticate_certificate`` — the function
the token endpoint calls — and records each step (intake, client, chain, pin, match), so the
admin's "Check a certificate" page and ``manage.py mtls_explain`` report the reason codes the
token endpoint logs.

``check_on_save`` is the same check for a registration just saved with a certificate at hand
(the admin's helper, ``manage.py mtls_set_client``): the registration stays saved, and a
refusal becomes a warning. It never fetches a ``jwks_uri``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

from .certificates import ClientCertificate
from .client_auth import authenticate_certificate
from .conf import mtls_settings
from .exceptions import ClientAuthError
from .models import SELF_SIGNED_TLS_CLIENT_AUTH, TLS_CLIENT_AUTH, MTLSClient, mtls_client_of

__all__ = [
    "Explanation",
    "Step",
    "check_on_save",
    "describe_certificate",
    "describe_client",
    "explain",
    "explain_registration",
    "refusal_warning",
]


def describe_certificate(certificate: ClientCertificate) -> str:
    """One line: thumbprint, subject, SANs, validity, and what the chain field carried."""
    sans = [
        f"{kind}={','.join(str(v) for v in values)}"
        for kind, values in (
            ("dns", certificate.san_dns),
            ("uri", certificate.san_uri),
            ("ip", certificate.san_ip),
            ("email", certificate.san_email),
        )
        if values
    ]
    parts = [
        f"x5t#S256={certificate.x5t_s256}",
        f'subject="{certificate.subject}"',
        f"SAN {' '.join(sans)}" if sans else "no SAN",
    ]
    if certificate.not_before and certificate.not_after:
        parts.append(
            f"valid {certificate.not_before.isoformat()} to {certificate.not_after.isoformat()}"
        )
    if certificate.chain:
        parts.append(f"{len(certificate.chain)} chain certificate(s)")
    if certificate.proxy_verified is not None:
        parts.append(f"proxy verified: {'yes' if certificate.proxy_verified else 'no'}")
    return ", ".join(parts)


def describe_client(application: Any, mtls: MTLSClient | None) -> str:
    """One line: the client and what it registered."""
    head = f"client_id={application.client_id}"
    if mtls is None:
        return f"{head}, no mTLS metadata (authenticates as in DOT)"
    method = mtls.token_endpoint_auth_method
    parts = [head, f"method={method}"]
    if method == TLS_CLIENT_AUTH:
        registered = mtls.subject_field
        parts.append(
            f'registered {registered[0]}="{registered[1]}"' if registered else "no subject value"
        )
        if mtls.trust_pin_spki_sha256:
            parts.append(f"trust pin {mtls.trust_pin_spki_sha256}")
    elif method == SELF_SIGNED_TLS_CLIENT_AUTH:
        if mtls.jwks:
            keys = mtls.jwks.get("keys") if isinstance(mtls.jwks, dict) else None
            parts.append(f"jwks with {len(keys) if isinstance(keys, list) else 0} key(s)")
        elif mtls.jwks_uri:
            parts.append(f"jwks_uri={mtls.jwks_uri}")
    parts.append(
        "bound tokens"
        if mtls.tls_client_certificate_bound_access_tokens
        else "tokens not bound by default"
    )
    return ", ".join(parts)


@dataclass(frozen=True)
class Step:
    """One step of a check: its name (``intake``, ``client``, ``chain``, ``pin``, ``match``…);
    a failed step's outcome says ``REFUSED`` and the reason code."""

    name: str
    outcome: str
    ok: bool = True


@dataclass
class Explanation:
    """The steps of a check and its verdict; ``reason`` is ``None`` for a match."""

    steps: list[Step] = field(default_factory=list)
    reason: str | None = None
    description: str = ""
    intake_problem: str | None = None

    @property
    def matched(self) -> bool:
        return self.reason is None

    @property
    def verdict(self) -> str:
        if self.reason is None:
            return f"match — {self.description}"
        text = f"refused — reason={self.reason}"
        if self.intake_problem:
            text += f" (intake: {self.intake_problem})"
        return f"{text}: {self.description}"


#: Which step a client-auth reason code fails (self-signed certificates have no chain).
_FAILED_STEP = {
    "method_conflict": "client",
    "chain_invalid": "chain",
    "expired": "chain",
    "not_yet_valid": "chain",
    "wrong_eku": "chain",
    "wrong_key_usage": "chain",
    "weak_key": "chain",
    "pin_mismatch": "pin",
    "subject_mismatch": "match",
    "not_in_jwk_set": "match",
    "jwk_set_unavailable": "match",
}


def explain(
    application: Any,
    certificate: ClientCertificate | None,
    *,
    intake: Step,
    intake_problem: str | None = None,
    now: dt.datetime | None = None,
) -> Explanation:
    """Would ``certificate`` authenticate ``application`` at the token endpoint? Step by step.

    ``intake`` is the caller's account of how the certificate was read. A client without mTLS
    metadata is checked as the token endpoint sees it: its method is not a certificate method
    (``method_conflict``).
    """
    return explain_registration(
        application,
        mtls_client_of(application),
        certificate,
        intake=intake,
        intake_problem=intake_problem,
        now=now,
    )


def explain_registration(
    application: Any,
    mtls: MTLSClient | None,
    certificate: ClientCertificate | None,
    *,
    intake: Step,
    intake_problem: str | None = None,
    now: dt.datetime | None = None,
) -> Explanation:
    """``explain`` against the registration ``mtls`` as given (saved or not)."""
    result = Explanation(steps=[intake], intake_problem=intake_problem)
    result.steps.append(Step("client", describe_client(application, mtls)))
    if certificate is None:
        result.reason = "no_certificate"
        result.description = "the token endpoint would see no usable client certificate"
        return result
    if mtls is None:
        mtls = MTLSClient(application=application)

    def record(name: str, outcome: str) -> None:
        result.steps.append(Step(name, outcome))

    try:
        authenticate_certificate(mtls, certificate, now=now, step=record)
    except ClientAuthError as error:
        failed = _FAILED_STEP.get(error.code, "match")
        if failed == "chain" and mtls.token_endpoint_auth_method == SELF_SIGNED_TLS_CLIENT_AUTH:
            failed = "certificate"
        result.steps.append(Step(failed, f"REFUSED {error.code}: {error.description}", ok=False))
        result.reason = error.code
        result.description = error.description
        return result
    result.description = (
        f"client {application.client_id!r} authenticates with this certificate "
        f"({mtls.token_endpoint_auth_method})"
    )
    return result


def check_on_save(
    mtls: MTLSClient,
    certificate: ClientCertificate,
    *,
    source: str,
    now: dt.datetime | None = None,
) -> Explanation | None:
    """Would ``certificate`` authenticate the client just registered as ``mtls``?

    ``None`` when that cannot be told here: the client is not an mTLS client, or its JWK set
    lives at a ``jwks_uri`` (fetched when the client authenticates, never on save). With
    ``TRUST_PROXY_VERIFICATION`` the proxy's verdict is assumed: the chain is the proxy's to
    judge, everything else (validity, key, EKU, the subject value) is checked.
    """
    if not mtls.is_mtls:
        return None
    if mtls.token_endpoint_auth_method == SELF_SIGNED_TLS_CLIENT_AUTH and not mtls.jwks:
        return None  # a jwks_uri: never fetched on save
    if mtls_settings.TRUST_PROXY_VERIFICATION and certificate.proxy_verified is None:
        certificate = replace(certificate, proxy_verified=True)
    intake = Step("intake", f"{source}: {describe_certificate(certificate)}")
    return explain_registration(mtls.application, mtls, certificate, intake=intake, now=now)


def refusal_warning(explanation: Explanation, client_id: str) -> str:
    """What the admin and ``mtls_set_client`` say when a saved registration refuses its
    certificate."""
    return (
        f"The registration of client_id={client_id} is saved, but the token endpoint would "
        f"refuse this certificate for it: {explanation.verdict}"
    )
