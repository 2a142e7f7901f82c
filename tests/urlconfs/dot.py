"""A project that kept DOT's URLs (issue 17): tokens bind, metadata and introspection do not say."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("o/", include("oauth2_provider.urls")),
]
