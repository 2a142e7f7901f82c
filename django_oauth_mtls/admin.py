"""Operator tools in Django's admin: RFC 8705 client metadata (§2) and bound tokens (§3).

DOT registers its Application and AccessToken admins; this module replaces those two
registrations with subclasses of DOT's configured admin classes (``APPLICATION_ADMIN_CLASS``,
``ACCESS_TOKEN_ADMIN_CLASS``), for DOT's models or swapped ones, so whatever a project set there
keeps working:

* Application: an inline for ``MTLSClient`` (the model's validation shows as form errors; a
  helper fills the subject value or the JWK set from a certificate) and a "Check a certificate"
  page (``<pk>/check-certificate/``) that runs ``client_auth.authenticate_certificate`` step by
  step and shows the reason code the token endpoint would log. An mTLS client's secret (random,
  hashed, never shown: ``MTLSClient.save``) is neither shown nor editable; a note says why.
* AccessToken: the ``x5t#S256`` a token is bound to, as a column and a read-only field,
  searchable, with a "certificate-bound" filter.
"""

from __future__ import annotations

from typing import Any

# DOT registers its admins when this is imported; importing it first makes the order of
# INSTALLED_APPS irrelevant.
import oauth2_provider.admin  # noqa: F401
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db.models import Model, QuerySet
from django.forms import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from oauth2_provider.models import (
    get_access_token_admin_class,
    get_access_token_model,
    get_application_admin_class,
    get_application_model,
)

from .certificates import certificate_from_der
from .conf import mtls_settings
from .exceptions import IntakeError
from .forms import CertificateCheckForm, MTLSClientForm
from .jwks import JWKSetError, parse_jwk_set
from .matching import SUBJECT_FIELDS
from .models import MTLS_METHODS, MTLSClient

__all__ = [
    "CertificateBoundFilter",
    "MTLSAccessTokenAdmin",
    "MTLSApplicationAdmin",
    "MTLSClientInline",
]

CHECK_TEMPLATE = "admin/django_oauth_mtls/check_certificate.html"
CHANGE_FORM_TEMPLATE = "admin/django_oauth_mtls/application_change_form.html"

#: Issue 14, "no secret to steal": what an mTLS client's secret is (shown instead of it).
MTLS_SECRET_NOTE = _(
    "This client authenticates with its certificate. It holds a random, hashed secret that was "
    "never shown and authenticates nothing: a secret sent with its certificate is refused. To "
    "give it a secret it can use, choose client_secret_basic or client_secret_post below, save, "
    "then enter a new secret here."
)
#: Next to a secret that an mTLS method would replace.
REPLACED_SECRET_NOTE = _(
    "If you choose tls_client_auth or self_signed_tls_client_auth below, this secret is replaced "
    "on save by a random, hashed secret that is never shown and authenticates nothing."
)
#: DOT's script swaps the secret's help text for these when "hash client secret" is toggled.
SECRET_HELP_ATTRIBUTES = (
    "data-client-secret-help-when-hashed",
    "data-client-secret-help-when-unhashed",
)


def check_certificate_url(application_pk: Any, site_name: str = "admin") -> str:
    """The "Check a certificate" page of one application."""
    opts = get_application_model()._meta
    return reverse(
        f"{site_name}:{opts.app_label}_{opts.model_name}_check_certificate",
        args=[application_pk],
    )


class MTLSClientFormSet(BaseInlineFormSet):  # type: ignore[type-arg]
    """Hands each form the application being edited, with the values posted for it."""

    def get_form_kwargs(self, index: int | None) -> dict[str, Any]:
        return {**super().get_form_kwargs(index), "parent": self.instance}


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
                    "Paste or upload the client's certificate and save once: the form then "
                    "offers its subject DN and SANs. Choose one and save again."
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
        return format_html(
            '<a href="{}">{}</a>',
            check_certificate_url(obj.pk, self.admin_site.name),
            _("Check a certificate against this client"),
        )


_ApplicationAdminBase: Any = get_application_admin_class()
_ApplicationFormBase: Any = _ApplicationAdminBase.form


class MTLSApplicationForm(_ApplicationFormBase):  # type: ignore[misc]
    """The (configured) Application admin's form, saying beside the secret what an mTLS method
    does to it (DOT's script swaps the help text when "hash client secret" is toggled)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "client_secret" in self.fields:
            field = self.fields["client_secret"]
            field.help_text = format_html("{} {}", field.help_text or "", REPLACED_SECRET_NOTE)
        if "hash_client_secret" in self.fields:
            attrs = self.fields["hash_client_secret"].widget.attrs
            for name in SECRET_HELP_ATTRIBUTES:
                if name in attrs:
                    attrs[name] = f"{attrs[name]} {REPLACED_SECRET_NOTE}"


def _is_mtls_client(application: Any) -> bool:
    if application is None or application.pk is None:
        return False
    try:
        return application.mtls.token_endpoint_auth_method in MTLS_METHODS
    except ObjectDoesNotExist:
        return False


def _without_secret(fields: Any, seen: set[str] | None = None) -> tuple[Any, ...]:
    """A fieldset's fields with the secret replaced by the note, once, and no hash checkbox."""
    seen = set() if seen is None else seen
    kept: list[Any] = []
    for item in fields:
        if isinstance(item, list | tuple):
            row = _without_secret(item, seen)
            if row:
                kept.append(row)
            continue
        name = "mtls_client_secret" if item == "client_secret" else item
        if name == "hash_client_secret" or name in seen:
            continue
        seen.add(name)
        kept.append(name)
    return tuple(kept)


class MTLSApplicationAdmin(_ApplicationAdminBase):  # type: ignore[misc]
    """DOT's (configured) Application admin with the mTLS inline and the certificate check."""

    form = MTLSApplicationForm
    inlines = (*getattr(_ApplicationAdminBase, "inlines", ()), MTLSClientInline)
    # A project's own change form template wins; the inline links to the check page anyway.
    change_form_template = (
        getattr(_ApplicationAdminBase, "change_form_template", None) or CHANGE_FORM_TEMPLATE
    )

    # Issue 14: an mTLS client's secret is shown nowhere and cannot be set here (a secret typed
    # in would be one somebody knows); the note takes its place.
    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if not _is_mtls_client(obj):
            return fieldsets
        seen: set[str] = set()
        return [
            (name, {**options, "fields": _without_secret(options.get("fields", ()), seen)})
            for name, options in fieldsets
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        if _is_mtls_client(obj):
            fields += ("mtls_client_secret",)
        return fields

    @admin.display(description=_("client secret"))
    def mtls_client_secret(self, obj: Any) -> str:
        return str(MTLS_SECRET_NOTE)

    def get_urls(self) -> list[URLPattern | URLResolver]:
        opts = self.opts
        return [
            path(
                "<path:object_id>/check-certificate/",
                self.admin_site.admin_view(self.check_certificate_view),
                name=f"{opts.app_label}_{opts.model_name}_check_certificate",
            ),
            *super().get_urls(),
        ]

    def check_certificate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Paste a PEM: does it authenticate this client, and if not, why (the reason code)?"""
        application = self.get_object(request, unquote(object_id))
        if application is None:
            return self._get_obj_does_not_exist_redirect(  # type: ignore[no-any-return]
                request, self.opts, object_id
            )
        if not self.has_view_or_change_permission(request, application):
            raise PermissionDenied
        proxy_verification = mtls_settings.TRUST_PROXY_VERIFICATION
        if request.method == "POST":
            form = CertificateCheckForm(
                request.POST, request.FILES, proxy_verification=proxy_verification
            )
        else:
            form = CertificateCheckForm(proxy_verification=proxy_verification)
        explanation = form.explain(application) if form.is_bound and form.is_valid() else None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Check a certificate against %(client)s") % {"client": application},
            "subtitle": None,
            "opts": self.opts,
            "original": application,
            "form": form,
            "explanation": explanation,
            "media": self.media + form.media,
            "has_view_permission": True,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, CHECK_TEMPLATE, context)

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> HttpResponse:
        original = context.get("original")
        if original is not None and original.pk is not None:
            context["check_certificate_url"] = check_certificate_url(
                original.pk, self.admin_site.name
            )
        return super().render_change_form(  # type: ignore[no-any-return]
            request, context, *args, **kwargs
        )


class CertificateBoundFilter(admin.SimpleListFilter):
    """RFC 8705 §3: tokens bound to a certificate, or not."""

    title = _("certificate-bound")
    parameter_name = "certificate_bound"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", str(_("Yes"))), ("no", str(_("No")))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(mtls_binding__isnull=False)
        if self.value() == "no":
            return queryset.filter(mtls_binding__isnull=True)
        return queryset


_AccessTokenAdminBase: Any = get_access_token_admin_class()


class MTLSAccessTokenAdmin(_AccessTokenAdminBase):  # type: ignore[misc]
    """DOT's (configured) AccessToken admin with the ``x5t#S256`` a token is bound to."""

    list_display = (*_AccessTokenAdminBase.list_display, "x5t_s256")
    list_filter = (*_AccessTokenAdminBase.list_filter, CertificateBoundFilter)
    # The thumbprint is public (it is in every cnf claim): unlike the token, safe to search by.
    search_fields = (*_AccessTokenAdminBase.search_fields, "mtls_binding__x5t_s256")

    def get_list_select_related(self, request: HttpRequest) -> Any:
        selected = super().get_list_select_related(request)
        if selected is True:  # select_related() with no names follows no reverse relation
            return selected
        return (*(selected or ()), "mtls_binding")

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        if obj is not None and "x5t_s256" not in fields:
            fields += ("x5t_s256",)
        return fields

    @admin.display(description=_("bound to x5t#S256"), ordering="mtls_binding__x5t_s256")
    def x5t_s256(self, obj: Any) -> str | None:
        try:
            return obj.mtls_binding.x5t_s256  # type: ignore[no-any-return]
        except ObjectDoesNotExist:
            return None


def _replace_registration(model: type[Model], admin_class: type[admin.ModelAdmin[Any]]) -> None:
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, admin_class)


_replace_registration(get_application_model(), MTLSApplicationAdmin)
_replace_registration(get_access_token_model(), MTLSAccessTokenAdmin)
