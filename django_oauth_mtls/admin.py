"""Operator tools in Django's admin: RFC 8705 client metadata (§2) and bound tokens (§3).

* ``MTLSClientInline`` (``admin_inline``): the client's metadata on the Application page (the
  model's validation shows as form errors; a helper registers a value of a pasted or uploaded
  certificate, then checks the registration against that certificate and says so in a message).
* ``MTLSApplicationAdminMixin``: that inline, a "Check a certificate" page
  (``<pk>/check-certificate/``) that runs ``client_auth.authenticate_certificate`` step by step
  and shows the reason code the token endpoint would log, and an mTLS client's secret (random,
  hashed, never shown: ``MTLSClient.save``) neither shown nor editable, with a note saying why.
* ``MTLSAccessTokenAdminMixin``: the ``x5t#S256`` a token is bound to, as a column and a
  read-only field, searchable, with a "certificate-bound" filter.

Registration: DOT registers its admins; this module adds the mixins to **DOT's own default
classes only** (``oauth2_provider.admin.ApplicationAdmin`` and ``AccessTokenAdmin``, for DOT's
models or swapped ones). An admin a project registered itself, or named in DOT's
``APPLICATION_ADMIN_CLASS`` / ``ACCESS_TOKEN_ADMIN_CLASS``, is left exactly as it is: the project
adds ``MTLSClientInline`` or the mixins to it, and system check ``oauth_mtls.W031`` says when
the Application admin on ``admin.site`` lacks the inline.

Order in ``INSTALLED_APPS`` does not matter: a project's registration wins whether its
``admin.py`` runs before this one or after it, and the templates have names of their own
(``admin/django_oauth_mtls/…``), overriding none of Django's or DOT's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.loader import select_template
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from oauth2_provider.models import get_access_token_model, get_application_model

from .admin_inline import MTLSClientInline, check_certificate_url
from .conf import mtls_settings
from .forms import CertificateCheckForm
from .models import MTLS_METHODS

__all__ = [
    "CertificateBoundFilter",
    "MTLSAccessTokenAdmin",
    "MTLSAccessTokenAdminMixin",
    "MTLSApplicationAdmin",
    "MTLSApplicationAdminMixin",
    "MTLSClientInline",
    "add_to_dot_default_admins",
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

if TYPE_CHECKING:
    _ModelAdminBase = admin.ModelAdmin[Any]
else:
    _ModelAdminBase = object


def _with_secret_note(form_class: Any) -> Any:
    """The Application admin's form, saying beside the secret what an mTLS method does to it
    (DOT's script swaps the help text when "hash client secret" is toggled)."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        form_class.__init__(self, *args, **kwargs)
        if "client_secret" in self.fields:
            field = self.fields["client_secret"]
            field.help_text = format_html("{} {}", field.help_text or "", REPLACED_SECRET_NOTE)
        if "hash_client_secret" in self.fields:
            attrs = self.fields["hash_client_secret"].widget.attrs
            for name in SECRET_HELP_ATTRIBUTES:
                if name in attrs:
                    attrs[name] = f"{attrs[name]} {REPLACED_SECRET_NOTE}"

    return type(form_class.__name__, (form_class,), {"__init__": __init__})


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


class MTLSApplicationAdminMixin(_ModelAdminBase):
    """Put in front of an Application ``ModelAdmin``'s bases: ``MTLSClientInline``, the
    "Check a certificate" page, and an mTLS client's secret hidden::

        class MyApplicationAdmin(MTLSApplicationAdminMixin, oauth2_provider.admin.ApplicationAdmin):
            list_display = (..., "my_column")
    """

    def get_inlines(self, request: HttpRequest, obj: Any) -> Any:
        inlines = list(super().get_inlines(request, obj))
        if not any(issubclass(inline, MTLSClientInline) for inline in inlines):
            inlines.append(MTLSClientInline)
        return inlines

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        return _with_secret_note(super().get_form(request, obj, change=change, **kwargs))

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

    def get_urls(self) -> list[Any]:
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
            return self._get_obj_does_not_exist_redirect(  # type: ignore[attr-defined,no-any-return]
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
        response = super().render_change_form(request, context, *args, **kwargs)
        # A project's own change_form_template wins; otherwise ours adds the "Check a
        # certificate" button and extends whichever template the admin would have used.
        if (
            self.change_form_template is None
            and isinstance(response, TemplateResponse)
            and response.context_data is not None
        ):
            names: Any = response.template_name
            response.context_data["mtls_parent_template"] = select_template(names)
            response.template_name = CHANGE_FORM_TEMPLATE
        return response


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


class MTLSAccessTokenAdminMixin(_ModelAdminBase):
    """Put in front of an AccessToken ``ModelAdmin``'s bases: the ``x5t#S256`` a token is bound
    to, as a column, a filter, a search field and a read-only field."""

    def get_list_display(self, request: HttpRequest) -> Any:
        return (*super().get_list_display(request), "x5t_s256")

    def get_list_filter(self, request: HttpRequest) -> Any:
        return (*super().get_list_filter(request), CertificateBoundFilter)

    # The thumbprint is public (it is in every cnf claim): unlike the token, safe to search by.
    def get_search_fields(self, request: HttpRequest) -> Any:
        return (*super().get_search_fields(request), "mtls_binding__x5t_s256")

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


# DOT's admin module is imported only now: a project's APPLICATION_ADMIN_CLASS that mixes in the
# classes above may be imported by DOT's module while this one is still loading.
from oauth2_provider import admin as dot_admin  # noqa: E402


class MTLSApplicationAdmin(MTLSApplicationAdminMixin, dot_admin.ApplicationAdmin):  # type: ignore[misc]
    """DOT's default Application admin with the mTLS inline and the certificate check."""


class MTLSAccessTokenAdmin(MTLSAccessTokenAdminMixin, dot_admin.AccessTokenAdmin):  # type: ignore[misc]
    """DOT's default AccessToken admin with the ``x5t#S256`` a token is bound to."""


def add_to_dot_default_admins(site: admin.AdminSite = admin.site) -> None:
    """Register our subclasses in place of DOT's own default admins on ``site``; any other
    registration (a project's) is left alone. Idempotent."""
    for model, dot_class, ours in (
        (get_application_model(), dot_admin.ApplicationAdmin, MTLSApplicationAdmin),
        (get_access_token_model(), dot_admin.AccessTokenAdmin, MTLSAccessTokenAdmin),
    ):
        if type(site._registry.get(model)) is dot_class:
            site.unregister(model)
            site.register(model, ours)


# Nothing is registered yet when DOT's module is still loading (see above): apps.ready() runs
# this again.
add_to_dot_default_admins()
