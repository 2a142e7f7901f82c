"""System checks on how a project wires the app in (``oauth_mtls.W030``, ``W031``; docs/checks.md).

Both mistakes fail silently. A project that keeps DOT's ``oauth2_provider.urls`` still binds
tokens, but its RFC 8414 metadata lacks the RFC 8705 members (§3.3 ``tls_client_certificate_
bound_access_tokens``, §5 ``mtls_endpoint_aliases``, the mTLS ``token_endpoint_auth_methods``) and
its introspection responses lack ``cnf`` (§3.2), so remote resource servers cannot enforce
binding. A project that registers its own Application admin loses the mTLS inline. Neither
check reads the database.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Warning
from django.urls import NoReverseMatch, Resolver404, get_resolver, resolve, reverse

#: DOT's URL namespace, which ``django_oauth_mtls.urls`` keeps.
APP_NAME = "oauth2_provider"
#: Values tried for a URL name's parameters (``<path:issuer_path>``, ``<str:client_id>``…).
SAMPLE_PARAMETERS = ("x", "1")


def _view_class(view: Any) -> Any:
    return getattr(view, "view_class", None) or getattr(view, "cls", None)


def _parameter_names(name: str) -> list[str]:
    """The parameters of URL ``name`` in our own URL list (the same routes as DOT's)."""
    from . import urls as mtls_urls

    for pattern in mtls_urls.urlpatterns:
        if getattr(pattern, "name", None) == name:
            converters = getattr(pattern.pattern, "converters", None)
            if converters is not None:
                return list(converters)
            return list(pattern.pattern.regex.groupindex)
    return []


def _path_of(namespace: str, name: str) -> str | None:
    """The path the project serves ``namespace:name`` at, or ``None`` when it has no such URL."""
    parameters = _parameter_names(name)
    for sample in SAMPLE_PARAMETERS:
        try:
            return reverse(f"{namespace}:{name}", kwargs=dict.fromkeys(parameters, sample))
        except NoReverseMatch:
            continue
    return None


def _instances(resolver: Any, prefix: str = "") -> list[str]:
    """Every instance namespace of DOT's URL app in the URLconf, nested ones included."""
    found = [f"{prefix}{namespace}" for namespace in resolver.app_dict.get(APP_NAME, [])]
    for namespace, (_prefix, sub) in resolver.namespace_dict.items():
        found += _instances(sub, f"{prefix}{namespace}:")
    return found


def _dotted(view_class: Any, view: Any) -> str:
    target = view_class or view
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"


def check_urls(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W030: each of DOT's URL names we replace is answered by our view (or a subclass of it).

    Each name is reversed in every instance namespace of ``oauth2_provider`` in the root URLconf
    and the path resolved: what answers there is what clients get.
    """
    from .urls import REPLACEMENTS

    others: list[tuple[str, str, str]] = []
    for namespace in dict.fromkeys(_instances(get_resolver())):
        for name, ours in REPLACEMENTS.items():
            url = _path_of(namespace, name)
            if url is None:
                continue  # a project may include only some of DOT's lists
            try:
                match = resolve(url)
            except Resolver404:
                continue
            answering = _view_class(match.func)
            if isinstance(answering, type) and issubclass(answering, _view_class(ours)):
                continue
            others.append((f"{namespace}:{name}", url, _dotted(answering, match.func)))
    if not others:
        return []
    _name, url, view = others[0]
    return [
        Warning(
            f"DOT's own views answer {len(others)} URL(s) that django_oauth_mtls.urls replaces "
            f"({', '.join(name for name, _url, _view in others)}; {url} is answered by {view}). "
            "Tokens are still bound, but the authorization server metadata lacks the RFC 8705 "
            "members and introspection responses lack cnf, so resource servers that "
            "introspect cannot enforce the binding.",
            hint='Include django_oauth_mtls.urls instead of oauth2_provider.urls, e.g. path("o/", '
            'include("django_oauth_mtls.urls")); mount django_oauth_mtls.urls.metadata_urlpatterns '
            "for the RFC 8414 document at the root (docs/getting-started.md).",
            obj=settings.ROOT_URLCONF,
            id="oauth_mtls.W030",
        )
    ]


def check_admin(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W031: the Application admin on ``admin.site`` includes ``MTLSClientInline``."""
    if not apps.is_installed("django.contrib.admin"):
        return []
    from django.contrib import admin
    from oauth2_provider.models import get_application_model

    from .admin import MTLSApplicationAdminMixin, MTLSClientInline

    model = get_application_model()
    model_admin = admin.site._registry.get(model)
    if model_admin is None or isinstance(model_admin, MTLSApplicationAdminMixin):
        return []  # no Application admin at all, or one with our inline (get_inlines)
    inlines = getattr(model_admin, "inlines", ()) or ()
    if any(isinstance(i, type) and issubclass(i, MTLSClientInline) for i in inlines):
        return []
    registered = f"{type(model_admin).__module__}.{type(model_admin).__qualname__}"
    return [
        Warning(
            f"The {model._meta.label} admin registered on admin.site ({registered}) has no "
            "MTLSClientInline: operators cannot see or edit the clients' RFC 8705 metadata "
            "there, nor check a certificate against a client.",
            hint="Put django_oauth_mtls.admin.MTLSApplicationAdminMixin in front of its bases "
            "(the inline, the Check a certificate page, the mTLS secret handling), or add "
            "MTLSClientInline to its inlines (docs/operators.md).",
            obj=model,
            id="oauth_mtls.W031",
        )
    ]
