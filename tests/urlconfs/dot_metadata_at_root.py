"""Ours under o/, but DOT's own metadata list mounted at the root (DOT's documentation does)."""

from django.urls import include, path
from oauth2_provider.urls import metadata_urlpatterns

urlpatterns = [
    path("", include((metadata_urlpatterns, "oauth2_provider"), namespace="oauth2_metadata")),
    path("o/", include("django_oauth_mtls.urls")),
]
