"""Include this **instead of** ``oauth2_provider.urls``::

    path("o/", include("django_oauth_mtls.urls")),

Same ``app_name`` (``"oauth2_provider"``), so DOT's ``reverse()`` calls keep working. DOT's URL
lists are rebuilt with our views in place of DOT's where RFC 8705 extends them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.urls import URLPattern
from oauth2_provider import urls as dot_urls
from oauth2_provider import views as dot_views

from . import jwks_info, metadata, registration, views

app_name = "oauth2_provider"

#: URL name → our view replacing DOT's.
REPLACEMENTS: dict[str, Callable[..., Any]] = {
    # Endpoints whose parameters reach database lookups refuse a NUL character up front.
    "token": views.parameters_without_nul(views.MTLSTokenView.as_view()),
    "introspect": views.parameters_without_nul(views.MTLSIntrospectTokenView.as_view()),
    "revoke-token": views.parameters_without_nul(dot_views.RevokeTokenView.as_view()),
    "authorize": views.parameters_without_nul(dot_views.AuthorizationView.as_view()),
    "device-authorization": views.parameters_without_nul(
        views.MTLSDeviceAuthorizationView.as_view()
    ),
    "oauth-server-metadata": metadata.MTLSOAuthServerMetadataView.as_view(),
    "oauth-server-metadata-issuer": metadata.MTLSOAuthServerMetadataView.as_view(),
    "oauth-resource-metadata": metadata.MTLSOAuthProtectedResourceMetadataView.as_view(),
    "oauth-resource-metadata-path": metadata.MTLSOAuthProtectedResourceMetadataView.as_view(),
    "oidc-connect-discovery-info": metadata.MTLSConnectDiscoveryInfoView.as_view(),
    # RFC 9068 §4: served whether OIDC is on or off (DOT's view 404s while it is off).
    "jwks-info": jwks_info.MTLSJwksInfoView.as_view(),
    "dcr-register": registration.MTLSDynamicClientRegistrationView.as_view(),
    "dcr-register-management": registration.MTLSDynamicClientRegistrationManagementView.as_view(),
}


def _replace(patterns: Iterable[Any]) -> list[Any]:
    rebuilt: list[Any] = []
    for pattern in patterns:
        if isinstance(pattern, URLPattern) and pattern.name in REPLACEMENTS:
            pattern = URLPattern(
                pattern.pattern, REPLACEMENTS[pattern.name], pattern.default_args, pattern.name
            )
        rebuilt.append(pattern)
    return rebuilt


metadata_urlpatterns = _replace(dot_urls.metadata_urlpatterns)
base_urlpatterns = _replace(dot_urls.base_urlpatterns)
management_urlpatterns = _replace(dot_urls.management_urlpatterns)
oidc_urlpatterns = _replace(dot_urls.oidc_urlpatterns)
dcr_urlpatterns = _replace(dot_urls.dcr_urlpatterns)

urlpatterns = (
    metadata_urlpatterns
    + base_urlpatterns
    + management_urlpatterns
    + oidc_urlpatterns
    + dcr_urlpatterns
)
