from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("o/", include("django_oauth_mtls.urls")),
    path("api/certificate/", views.certificate, name="api-certificate"),
    path("api/whoami/", views.WhoAmI.as_view(), name="api-whoami"),
]
