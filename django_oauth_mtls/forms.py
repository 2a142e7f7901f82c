"""Operator forms for RFC 8705 client metadata (§2.1.2, §2.2), and the certificate check.

``MTLSClientForm`` is the admin inline's form: the model's own validation (exactly one subject
value for ``tls_client_auth``, a usable JWK set, trust pin normalisation) surfaces as form
errors, and a "from a certificate" helper registers the subject DN or a SAN of a pasted or
uploaded PEM (or the certificate itself, as a JWK for ``self_signed_tls_client_auth``).

``CertificateCheckForm`` is the "Check a certificate" page's form; the check itself lives in
``diagnosis``, shared with ``manage.py mtls_explain``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any, cast

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.files.uploadedfile import UploadedFile
from django.forms.fields import InvalidJSONInput
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from .certificate_metadata import (
    MAX_PEM_BYTES,
    USE_CHOICES,
    USE_JWKS,
    ValueChoiceError,
    add_to_jwk_set,
    certificate_values,
    choose_value,
    read_pem_certificate,
)
from .certificates import ClientCertificate
from .diagnosis import Explanation, Step, describe_certificate, explain
from .exceptions import IntakeError
from .limits import MAX_CHARACTERS, MAX_JSON_DEPTH, json_too_deep
from .matching import SUBJECT_FIELDS
from .models import (
    SELF_SIGNED_TLS_CLIENT_AUTH,
    SUBJECT_VALUE_COUNT,
    TLS_CLIENT_AUTH,
    MTLSClient,
    algorithm_problem,
    client_type_problem,
)

__all__ = ["BoundedJSONField", "CertificateCheckForm", "MTLSClientForm"]


def _read_upload(upload: UploadedFile[Any]) -> bytes:
    data = upload.read(MAX_PEM_BYTES + 1)
    upload.seek(0)
    return data if isinstance(data, bytes) else data.encode("latin-1")


def _label(name: str) -> Any:
    """The model field's label in words (``SAN DNS name``), as the admin shows it (lazy)."""
    field: Any = MTLSClient._meta.get_field(name)
    return capfirst(field.verbose_name)


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
    ``json.loads`` raises ``RecursionError`` deep enough (issue 14: never a 500). No value is
    shown as an empty text area, not as ``null``."""

    def __init__(self, *args: Any, metadata_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Named in errors: the RFC 7591 member (``jwks``), which the other errors name too.
        self.metadata_name = metadata_name

    def prepare_value(self, value: Any) -> Any:
        if value is None:
            return ""
        return super().prepare_value(value)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and json_too_deep(value):
            raise forms.ValidationError(
                _("%(field)s nests JSON deeper than %(depth)d levels")
                % {"field": self.metadata_name or self.label, "depth": MAX_JSON_DEPTH},
                code="invalid",
            )
        return super().to_python(value)

    def bound_data(self, data: Any, initial: Any) -> Any:
        if isinstance(data, str) and json_too_deep(data):
            return InvalidJSONInput(data)  # shown again as typed, never parsed
        return super().bound_data(data, initial)


class UseValueField(forms.ChoiceField):
    """The helper's choice: a value of the pasted certificate (``san_dns:host.example``), a kind
    of value (``san_dns``: the certificate's one DNS name), or ``jwks``. Kinds are valid before
    the certificate is read, so the helper works in one save."""

    def valid_value(self, value: Any) -> bool:
        return value in USE_CHOICES or value == USE_JWKS or super().valid_value(value)


def _kind_choices() -> list[tuple[str, str]]:
    kinds = [
        (use, f"{_label(field)} {_('of the certificate')}") for use, field in USE_CHOICES.items()
    ]
    return [*kinds, (USE_JWKS, f"{_label('jwks')}: {_('add the certificate')}")]


class MTLSClientForm(forms.ModelForm):  # type: ignore[type-arg]
    """RFC 8705 client metadata, with a helper that fills it from a certificate."""

    certificate_pem = forms.CharField(
        label=_("Certificate (PEM)"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 70, "spellcheck": "false"}),
        help_text=_(
            "Paste (or upload) the client's certificate, choose below what to register from it, "
            "and save. The registration is then checked against the certificate."
        ),
    )
    certificate_file = forms.FileField(label=_("…or upload a PEM file"), required=False)
    use_value = UseValueField(
        label=_("Register from the certificate"),
        required=False,
        help_text=_(
            "A subject value replaces the registered one (the other four are cleared; "
            "tls_client_auth); the JWK set entry adds the certificate to the client's jwks "
            "(self_signed_tls_client_auth). Left empty, saving lists the certificate's values."
        ),
    )
    # The model stores the 43-character form; the form accepts a PEM or hex too.
    trust_pin_spki_sha256 = forms.CharField(
        label=_label("trust_pin_spki_sha256"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 70, "spellcheck": "false"}),
        help_text=_(
            "trust_pin_spki_sha256, optional: a CA certificate (PEM), or the SHA-256 of its public "
            "key as 64 hex digits or 43 base64url characters; stored as base64url. A CA with this "
            "key must be on the client's validated path."
        ),
    )
    jwks = BoundedJSONField(
        metadata_name="jwks",
        label=_label("jwks"),
        required=False,
        help_text=_("jwks (RFC 7591 §2): the client's certificates, each as x5c[0] of a JWK."),
    )
    jwks_uri = forms.URLField(
        label=_label("jwks_uri"),
        required=False,
        max_length=MAX_CHARACTERS["jwks_uri"],
        assume_scheme="https",
        help_text=_(
            "jwks_uri (RFC 7591 §2): an https URL serving the client's JWK set; or give jwks, "
            "not both."
        ),
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

    def __init__(self, *args: Any, parent: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The application being edited, with the values posted for it (set by the admin).
        self.parent = parent
        #: The helper's certificate, when one was posted and could be read.
        self.certificate: ClientCertificate | None = None
        self.certificate_problem: str | None = None
        #: A certificate was given but no value chosen: the model's "found 0" is no news then.
        self.awaiting_choice = False
        use_value = cast(UseValueField, self.fields["use_value"])
        use_value.choices = [("", "—"), *_kind_choices()]
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
            (f"{use}:{value}", f"{_label(USE_CHOICES[use])} = {value}")
            for use, value in certificate_values(certificate)
        ]
        choices.append((USE_JWKS, f"{_label('jwks')}: {_('add this certificate')}"))
        use_value.choices = choices
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

    def add_error(self, field: str | None, error: Any) -> None:
        # While the operator still has to choose a value of the certificate, the model's
        # "tls_client_auth needs exactly one … (found 0)" repeats the helper's own message.
        if self.awaiting_choice and field is None and hasattr(error, "error_dict"):
            kept = [
                e
                for e in error.error_dict.get(NON_FIELD_ERRORS, [])
                if getattr(e, "code", None) != SUBJECT_VALUE_COUNT
            ]
            if kept:
                error.error_dict[NON_FIELD_ERRORS] = kept
            else:
                error.error_dict.pop(NON_FIELD_ERRORS, None)
            if not error.error_dict:
                return
        super().add_error(field, error)

    def _use_certificate(self, cleaned: dict[str, Any], certificate: ClientCertificate) -> None:
        choice = cleaned.get("use_value") or ""
        method = cleaned.get("token_endpoint_auth_method")
        if not choice:
            self.awaiting_choice = True
            self.add_error(
                "use_value",
                _(
                    "Choose which value of this certificate the client is registered with, "
                    "or clear the certificate field."
                ),
            )
            return
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
        use, _sep, wanted = choice.partition(":")
        if method != TLS_CLIENT_AUTH:
            self.add_error(
                "token_endpoint_auth_method",
                _("Choose tls_client_auth to register the certificate's %(field)s.")
                % {"field": USE_CHOICES[use]},
            )
            return
        try:
            value = choose_value(certificate, use, wanted if _sep else None)
        except ValueChoiceError as error:
            self.awaiting_choice = True
            self.add_error("use_value", self._choice_problem(error))
            return
        # RFC 8705 §2.1.2: exactly one subject value; the chosen one replaces the others.
        for name in SUBJECT_FIELDS:
            cleaned[name] = ""
        cleaned[USE_CHOICES[use]] = value

    @staticmethod
    def _choice_problem(error: ValueChoiceError) -> str:
        field = _label(USE_CHOICES[error.use])
        if error.problem == "none":
            return str(_("The certificate has no %(field)s.") % {"field": field})
        if error.problem == "several":
            return str(
                _("The certificate has %(count)d values of %(field)s: choose one.")
                % {"count": len(error.values), "field": field}
            )
        return str(
            _("%(value)s is not a %(field)s of this certificate.")
            % {"value": error.wanted, "field": field}
        )

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
