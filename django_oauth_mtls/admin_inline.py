"""The mTLS inline on the Application admin page (RFC 8705 §2): ``MTLSClientInline``.

Usable on its own in a project's Application admin (``inlines = [MTLSClientInline]``); the
"Check a certificate" page it links to comes with ``admin.MTLSApplicationAdminMixin``. After a
save with a certificate at hand (the "from a certificate" helper), the registration is checked
against that certificate (``diagnosis.check_on_save``) and the verdict becomes an admin message:
the registration is saved either way.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.forms import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from oauth2_provider.models import get_application_model

from .certificates import certificate_from_der
from .diagnosis import check_on_save, refusal_warning
from .exceptions import IntakeError
from .forms import MTLSClientForm
from .jwks import JWKSetError, parse_jwk_set
from .matching import SUBJECT_FIELDS
from .models import MTLSClient

__all__ = ["MTLSClientFormSet", "MTLSClientInline", "check_certificate_url"]


def check_certificate_url(application_pk: Any, site_name: str = "admin") -> str | None:
    """The "Check a certificate" page of one application; ``None`` when the Application admin
    of that site has none (a project's admin with ``MTLSClientInline`` but not the mixin)."""
    opts = get_application_model()._meta
    try:
        return reverse(
            f"{site_name}:{opts.app_label}_{opts.model_name}_check_certificate",
            args=[application_pk],
        )
    except NoReverseMatch:
        return None


class MTLSClientFormSet(BaseInlineFormSet):  # type: ignore[type-arg]
    """Hands each form the application being edited, with the values posted for it; after a
    save with a certificate at hand, says whether that certificate authenticates the client."""

    #: Set by ``MTLSClientInline.get_formset``: where the check's messages go.
    request: HttpRequest | None = None

    def get_form_kwargs(self, index: int | None) -> dict[str, Any]:
        return {**super().get_form_kwargs(index), "parent": self.instance}

    def save(self, commit: bool = True) -> list[Any]:
        saved = super().save(commit)
        if commit and self.request is not None:
            for form in self.forms:
                self._check_saved(self.request, form)
        return saved

    def _check_saved(self, request: HttpRequest, form: Any) -> None:
        certificate = getattr(form, "certificate", None)
        mtls = form.instance
        if certificate is None or mtls.pk is None or form in self.deleted_forms:
            return
        upload = form.cleaned_data.get("certificate_file")
        explanation = check_on_save(
            mtls, certificate, source="uploaded file" if upload else "pasted PEM"
        )
        if explanation is None:
            return
        client_id = mtls.application.client_id
        if explanation.matched:
            messages.success(
                request,
                _("Checked: the certificate x5t#S256=%(x5t)s authenticates client_id=%(client)s.")
                % {"x5t": certificate.x5t_s256, "client": client_id},
                fail_silently=True,
            )
        else:
            messages.warning(request, refusal_warning(explanation, client_id), fail_silently=True)


class MTLSClientInline(admin.StackedInline):  # type: ignore[type-arg]
    """RFC 8705 metadata on the Application page (one row per application, optional)."""

    model = MTLSClient
    form = MTLSClientForm
    formset = MTLSClientFormSet
    fk_name = "application"
    extra = 1
    max_num = 1
    can_delete = True
    verbose_name = _("mTLS client authentication (RFC 8705)")
    verbose_name_plural = verbose_name
    readonly_fields = ("registered_certificates", "check_link")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "token_endpoint_auth_method",
                    "tls_client_certificate_bound_access_tokens",
                    "access_token_format",
                    "check_link",
                ),
                "description": _(
                    "A tls_client_auth or self_signed_tls_client_auth client authenticates with "
                    "its certificate only; saving gives it a random, hashed secret that is never "
                    "shown and authenticates nothing."
                ),
            },
        ),
        (
            _("From a certificate"),
            {
                "fields": ("certificate_pem", "certificate_file", "use_value"),
                "description": _(
                    "Paste or upload the client's certificate, choose what to register from it "
                    "and save: the registration is checked against the certificate."
                ),
            },
        ),
        (
            _("tls_client_auth: exactly one subject value (RFC 8705 §2.1.2)"),
            {"fields": (*SUBJECT_FIELDS, "trust_pin_spki_sha256")},
        ),
        (
            _("self_signed_tls_client_auth: the client's certificates (RFC 8705 §2.2)"),
            {"fields": ("jwks", "jwks_uri", "registered_certificates")},
        ),
    )

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        return type(formset.__name__, (formset,), {"request": request})

    @admin.display(description=_("registered certificates (x5t#S256)"))
    def registered_certificates(self, obj: MTLSClient | None) -> str:
        if obj is None or not obj.jwks:
            if obj is not None and obj.jwks_uri:
                return str(_("fetched from jwks_uri when the client authenticates"))
            return "-"
        try:
            ders = parse_jwk_set(obj.jwks)
        except JWKSetError as exc:
            return str(exc)
        rows = []
        for der in ders:
            try:
                certificate = certificate_from_der(der)
            except IntakeError:
                continue
            rows.append((certificate.x5t_s256, certificate.subject))
        if not rows:
            return str(_("the set has no x5c certificates"))
        return format_html_join("", "<div><code>{}</code> {}</div>", rows)

    @admin.display(description=_("check"))
    def check_link(self, obj: MTLSClient | None) -> str:
        if obj is None or obj.pk is None:
            return str(_("Save first; then check certificates against this client."))
        url = check_certificate_url(obj.pk, self.admin_site.name)
        if url is None:
            return format_html(
                "{} <code>manage.py mtls_explain --client-id {} --certificate FILE</code>",
                _("This admin has no check page;"),
                obj.application.client_id,
            )
        return format_html('<a href="{}">{}</a>', url, _("Check a certificate against this client"))
