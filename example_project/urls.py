from django.contrib import admin
from django.urls import include, path

from django_oauth_mtls.urls import metadata_urlpatterns

from . import views

urlpatterns = [
    # RFC 8414 at the origin's root; a second instance namespace keeps reverse() on the o/ mount.
    path("", include((metadata_urlpatterns, "oauth2_provider"), namespace="oauth2_metadata")),
    path("admin/", admin.site.urls),
    path("o/", include("django_oauth_mtls.urls")),
    path("api/certificate/", views.certificate, name="api-certificate"),
    path("api/whoami/", views.WhoAmI.as_view(), name="api-whoami"),
]
