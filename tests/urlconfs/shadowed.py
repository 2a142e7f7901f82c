"""Ours included, but DOT's base list first under the same prefix: DOT's views answer there."""

from django.urls import include, path
from oauth2_provider.urls import base_urlpatterns

urlpatterns = [
    path("o/", include((base_urlpatterns, "oauth2_provider"), namespace="dot")),
    path("o/", include("django_oauth_mtls.urls")),
]
