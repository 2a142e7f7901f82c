"""Operator forms for RFC 8705 client metadata (§2.1.2, §2.2), and the certificate check.

``MTLSClientForm`` is the admin inline's form: the model's own validation (exactly one subject
value for ``tls_client_auth``, a usable JWK set, trust pin normalisation) surfaces as form
errors, and a "from a certificate" helper offers the subject DN and each SAN of a pasted or
uploaded PEM (or the certificate itself, as a JWK for ``self_signed_tls_client_auth``).

``explain`` runs a certificate through ``client_auth.authenticate_certificate`` — the function
the token endpoint uses — and records each step, so the admin's "check a certificate" page and
``manage.py mtls_explain`` report the same reason codes the token endpoint logs.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any, cast

from django import forms
from django.core.exceptions import ObjectDoesNotExist
from django.core.files.uploadedfile import UploadedFile
from django.forms.fields import InvalidJSONInput
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .certificates import ClientCertificate, certificate_from_der, ders_from_pem
from .client_auth import authenticate_certificate
from .exceptions import ClientAuthError, IntakeError
from .jwks import JWKSetError, parse_jwk_set
from .limits import MAX_CHARACTERS, MAX_JSON_DEPTH, json_too_deep
from .matching import SAN_DNS, SAN_EMAIL, SAN_IP, SAN_URI, SUBJECT_DN, SUBJECT_FIELDS
from .models import (
    SELF_SIGNED_TLS_CLIENT_AUTH,
    TLS_CLIENT_AUTH,
    MTLSClient,
    algorithm_problem,
    client_type_problem,
)

__all__ = [
    "USE_CHOICES",
    "CertificateCheckForm",
    "Explanation",
    "MTLSClientForm",
    "Step",
    "add_to_jwk_set",
    "certificate_values",
    "describe_certificate",
    "describe_client",
    "explain",
    "read_pem_certificate",
    "self_signed_jwk",
]

#: ``--use`` names (and the helper's choice prefixes) → the RFC 8705 §2.1.2 metadata field.
USE_CHOICES: dict[str, str] = {
    "subject_dn": SUBJECT_DN,
    "san_dns": SAN_DNS,
    "san_uri": SAN_URI,
    "san_ip": SAN_IP,
    "san_email": SAN_EMAIL,
}
#: The helper's choice that registers the certificate itself (RFC 8705 §2.2.2, ``x5c``).
USE_JWKS = "jwks"
#: A pasted or uploaded PEM larger than this is refused (a certificate is a few kilobytes).
MAX_PEM_BYTES = 65536


# --- certificates ---------------------------------------------------------------------------


def read_pem_certificate(text: bytes) -> ClientCertificate:
    """The first certificate of a PEM text (the leaf); later blocks become its presented chain.

    Raises ``IntakeError`` (``malformed``, ``not_a_certificate``), as the intake would.
    """
    if len(text) > MAX_PEM_BYTES:
        raise IntakeError("too_large", f"more than {MAX_PEM_BYTES} bytes")
    ders = ders_from_pem(text)
    return certificate_from_der(ders[0], tuple(ders[1:]))


def certificate_values(certificate: ClientCertificate) -> list[tuple[str, str]]:
    """``(use name, value)`` for the subject DN and every SAN the certificate carries, in order."""
    values = [("subject_dn", certificate.subject)]
    values += [("san_dns", value) for value in certificate.san_dns]
    values += [("san_uri", value) for value in certificate.san_uri]
    values += [("san_ip", str(value)) for value in certificate.san_ip]
    values += [("san_email", value) for value in certificate.san_email]
    return values


def self_signed_jwk(certificate: ClientCertificate) -> dict[str, Any]:
    """A public JWK of the certificate's key with the certificate as ``x5c[0]`` (RFC 7517 §4.7).

    ``kid`` and ``x5t#S256`` are the certificate's thumbprint, so operators can find it again.
    """
    from jwcrypto import jwk

    leaf = certificate.certificate
    if leaf is None:  # pragma: no cover - certificate_from_der always sets it
        raise ValueError("the certificate was not parsed")
    key: dict[str, Any] = jwk.JWK.from_pyca(leaf.public_key()).export_public(as_dict=True)
    key["kid"] = certificate.x5t_s256
    key["x5t#S256"] = certificate.x5t_s256
    key["x5c"] = [base64.b64encode(certificate.der).decode("ascii")]
    return key


def add_to_jwk_set(jwks: Any, certificate: ClientCertificate) -> dict[str, Any]:
    """``jwks`` with a JWK for ``certificate`` appended (unless it is already x5c[0] of one).

    Keeping the existing keys lets a client rotate: both certificates work until the old JWK
    is removed. An unusable existing set is replaced.
    """
    keys: list[Any] = []
    if isinstance(jwks, dict) and isinstance(jwks.get("keys"), list):
        try:
            if certificate.der in parse_jwk_set(jwks):
                return jwks
            keys = list(jwks["keys"])
        except JWKSetError:
            keys = []
    return {"keys": [*keys, self_signed_jwk(certificate)]}


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


# --- the check shared by the admin and mtls_explain -----------------------------------------


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


def _mtls_of(application: Any) -> MTLSClient | None:
    try:
        return application.mtls  # type: ignore[no-any-return]
    except ObjectDoesNotExist:
        return None


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
    result = Explanation(steps=[intake], intake_problem=intake_problem)
    mtls = _mtls_of(application)
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


def _read_upload(upload: UploadedFile[Any]) -> bytes:
    data = upload.read(MAX_PEM_BYTES + 1)
    upload.seek(0)
    return data if isinstance(data, bytes) else data.encode("latin-1")


class CertificateCheckForm(forms.Form):
    """The admin's "check a certificate against this client" form."""

    certificate_pem = forms.CharField(
        label=_("Certificate (PEM)"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 12, "cols": 70, "spellcheck": "false"}),
        help_text=_(
            "The client's certificate; further PEM blocks after it are treated as the chain "
            "the proxy passed on."
        ),
    )
    certificate_file = forms.FileField(label=_("…or upload a PEM file"), required=False)

    def __init__(self, *args: Any, proxy_verification: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if proxy_verification:
            # TRUST_PROXY_VERIFICATION: the proxy's verdict stands in for chain validation.
            self.fields["proxy_verified"] = forms.BooleanField(
                label=_("The proxy verified this certificate's chain"),
                required=False,
                help_text=_("TRUST_PROXY_VERIFICATION is on: the app relies on this verdict."),
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        upload = cleaned.get("certificate_file")
        text = _read_upload(upload) if upload else cleaned.get("certificate_pem", "").encode()
        if not text.strip():
            raise forms.ValidationError(_("Paste or upload a certificate."), code="required")
        cleaned["pem"] = text
        return cleaned

    def explain(self, application: Any, *, now: dt.datetime | None = None) -> Explanation:
        """Run the check on the valid form's certificate."""
        source = "uploaded file" if self.cleaned_data.get("certificate_file") else "pasted PEM"
        try:
            certificate = read_pem_certificate(self.cleaned_data["pem"])
        except IntakeError as error:
            detail = f" ({error.detail})" if error.detail else ""
            intake = Step("intake", f"{source}: REFUSED {error.code}{detail}", ok=False)
            return explain(application, None, intake=intake, intake_problem=error.code, now=now)
        if "proxy_verified" in self.fields:
            certificate = replace(
                certificate, proxy_verified=bool(self.cleaned_data.get("proxy_verified"))
            )
        intake = Step("intake", f"{source}: {describe_certificate(certificate)}")
        return explain(application, certificate, intake=intake, now=now)


# --- the admin inline's form ------------------------------------------------------------------


class BoundedJSONField(forms.JSONField):
    """A JSON field that refuses text nested deeper than ``limits.MAX_JSON_DEPTH`` unparsed:
    ``json.loads`` raises ``RecursionError`` deep enough (issue 14: never a 500)."""

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and json_too_deep(value):
            raise forms.ValidationError(
                _("%(field)s nests JSON deeper than %(depth)d levels")
                % {"field": self.label, "depth": MAX_JSON_DEPTH},
                code="invalid",
            )
        return super().to_python(value)

    def bound_data(self, data: Any, initial: Any) -> Any:
        if isinstance(data, str) and json_too_deep(data):
            return InvalidJSONInput(data)  # shown again as typed, never parsed
        return super().bound_data(data, initial)


class MTLSClientForm(forms.ModelForm):  # type: ignore[type-arg]
    """RFC 8705 client metadata, with a helper that fills it from a certificate."""

    certificate_pem = forms.CharField(
        label=_("Certificate (PEM)"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 70, "spellcheck": "false"}),
        help_text=_(
            "Paste (or upload) the client's certificate and save: the form then offers its "
            "subject DN and each SAN under “Use this value for”, and shows its x5t#S256."
        ),
    )
    certificate_file = forms.FileField(label=_("…or upload a PEM file"), required=False)
    use_value = forms.ChoiceField(
        label=_("Use this value for"),
        required=False,
        choices=[("", _("— paste a certificate and save to see its values —"))],
        help_text=_(
            "The chosen value replaces the registered subject value (the other four are "
            "cleared); “jwks” adds the certificate to the client's JWK set."
        ),
    )
    # The model stores the 43-character form; the form accepts a PEM or hex too.
    trust_pin_spki_sha256 = forms.CharField(
        label=_("Trust pin (SPKI SHA-256)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 70, "spellcheck": "false"}),
        help_text=_(
            "Optional: a CA certificate (PEM), or the SHA-256 of its public key as 64 hex "
            "digits or 43 base64url characters; stored as base64url. A CA with this key must "
            "be on the client's validated path."
        ),
    )
    jwks = BoundedJSONField(label="jwks", required=False)
    jwks_uri = forms.URLField(
        label="jwks_uri",
        required=False,
        max_length=MAX_CHARACTERS["jwks_uri"],
        assume_scheme="https",
        help_text=_("An https URL serving the client's JWK set; or give jwks, not both."),
    )

    class Meta:
        model = MTLSClient
        fields = [
            "token_endpoint_auth_method",
            "tls_client_certificate_bound_access_tokens",
            "access_token_format",
            *SUBJECT_FIELDS,
            "trust_pin_spki_sha256",
            "jwks",
            "jwks_uri",
        ]
        # RFC 8705 / RFC 7591 metadata names verbatim: what clients and specs call them.
        labels = {name: name for name in fields}

    def __init__(self, *args: Any, parent: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The application being edited, with the values posted for it (set by the admin).
        self.parent = parent
        #: The helper's certificate, when one was posted and could be read.
        self.certificate: ClientCertificate | None = None
        self.certificate_problem: str | None = None
        text = self._posted_pem()
        if not text.strip():
            return
        try:
            self.certificate = read_pem_certificate(text)
        except IntakeError as error:
            detail = f": {error.detail}" if error.detail else ""
            self.certificate_problem = f"{error.code}{detail}"
            return
        certificate = self.certificate
        choices: list[tuple[str, str]] = [("", str(_("— choose —")))]
        choices += [
            (f"{use}:{value}", f"{USE_CHOICES[use]} = {value}")
            for use, value in certificate_values(certificate)
        ]
        choices.append(
            (USE_JWKS, f"jwks: {_('add this certificate')} ({SELF_SIGNED_TLS_CLIENT_AUTH})")
        )
        cast(forms.ChoiceField, self.fields["use_value"]).choices = choices
        self.fields["certificate_pem"].help_text = format_html(
            '{}: <code class="x5t-s256">{}</code><br>{}: {}',
            _("This certificate's x5t#S256"),
            certificate.x5t_s256,
            _("subject"),
            certificate.subject,
        )

    def _posted_pem(self) -> bytes:
        """The helper's PEM from this POST; an upload is copied into the textarea's value, so
        the second submit (choosing a value) still has it."""
        if not self.is_bound:
            return b""
        upload = self.files.get(self.add_prefix("certificate_file"))
        if isinstance(upload, UploadedFile):
            data = _read_upload(upload)
            posted = self.data.copy()  # type: ignore[attr-defined]
            posted[self.add_prefix("certificate_pem")] = data.decode("latin-1")
            self.data = posted
            return data
        value = self.data.get(self.add_prefix("certificate_pem")) or ""
        return str(value).encode("utf-8", "replace")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.certificate_problem:
            self.add_error(
                "certificate_pem",
                _("This is not a usable PEM certificate (%(problem)s).")
                % {"problem": self.certificate_problem},
            )
        elif self.certificate is not None:
            self._use_certificate(cleaned, self.certificate)
        self._check_client_type(cleaned)
        return cleaned

    def _use_certificate(self, cleaned: dict[str, Any], certificate: ClientCertificate) -> None:
        choice = cleaned.get("use_value") or ""
        if not choice:
            self.add_error(
                "use_value",
                _(
                    "Choose which value of this certificate the client is registered with, "
                    "or clear the certificate field."
                ),
            )
            return
        method = cleaned.get("token_endpoint_auth_method")
        if choice == USE_JWKS:
            if method != SELF_SIGNED_TLS_CLIENT_AUTH:
                self.add_error(
                    "token_endpoint_auth_method",
                    _("Choose self_signed_tls_client_auth to register the certificate in jwks."),
                )
                return
            cleaned["jwks"] = add_to_jwk_set(cleaned.get("jwks"), certificate)
            cleaned["jwks_uri"] = ""
            return
        use, _sep, value = choice.partition(":")
        if method != TLS_CLIENT_AUTH:
            self.add_error(
                "token_endpoint_auth_method",
                _("Choose tls_client_auth to register the certificate's %(field)s.")
                % {"field": USE_CHOICES[use]},
            )
            return
        # RFC 8705 §2.1.2: exactly one subject value; the chosen one replaces the others.
        for name in SUBJECT_FIELDS:
            cleaned[name] = ""
        cleaned[USE_CHOICES[use]] = value

    def _check_client_type(self, cleaned: dict[str, Any]) -> None:
        """The model checks the client type against the saved application; on the admin's add
        page there is none yet, so check the application being added (``parent``)."""
        parent = self.parent
        if parent is not None and parent.pk is not None:
            # The model checks the type of its application: the posted one, not the stored
            # one, so changing both in one save works.
            self.instance.application = parent
        if parent is None or self.instance.application_id is not None:
            return
        method = cleaned.get("token_endpoint_auth_method") or ""
        problem = client_type_problem(
            method, getattr(parent, "client_type", None)
        ) or algorithm_problem(method, getattr(parent, "algorithm", None))
        if problem:
            self.add_error("token_endpoint_auth_method", problem)
