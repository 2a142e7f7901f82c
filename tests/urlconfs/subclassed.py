"""Ours, with the token view replaced by a project's subclass of ours: that is fine."""

from django.urls import include, path

from django_oauth_mtls.views import MTLSTokenView


class ProjectTokenView(MTLSTokenView):
    pass


urlpatterns = [
    path("o/token/", ProjectTokenView.as_view(), name="project-token"),
    path("o/", include("django_oauth_mtls.urls")),
]
