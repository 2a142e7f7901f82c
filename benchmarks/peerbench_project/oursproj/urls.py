from __future__ import annotations

from django.urls import include, path

from .views import DotResourceView, JWTResourceView, ResourceView

urlpatterns = [
    path("o/", include("django_oauth_mtls.urls")),
    path("api/resource", ResourceView.as_view()),
    path("api/resource-dot", DotResourceView.as_view()),
    path("api/resource-jwt", JWTResourceView.as_view()),
]
