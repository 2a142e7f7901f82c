"""The example project's URLs plus test-only views: DOT's plain DRF path and the plain-Django
decorator and mixin."""

from django.http import JsonResponse
from django.urls import path
from django.views import View
from oauth2_provider.contrib.rest_framework import OAuth2Authentication, TokenHasScope
from rest_framework.response import Response
from rest_framework.views import APIView

from django_oauth_mtls.contrib.rest_framework import MTLSOAuth2Authentication
from django_oauth_mtls.resource import MTLSProtectedResourceMixin, mtls_protected_resource
from example_project.urls import urlpatterns as example_urlpatterns


class DotPlain(APIView):
    """DOT's own DRF authentication: the baseline for query counts."""

    authentication_classes = [OAuth2Authentication]
    permission_classes = [TokenHasScope]
    required_scopes = ["read"]

    def get(self, request):
        return Response({"ok": True})


class MTLSAny(APIView):
    """Our authentication, any token (bound or not)."""

    authentication_classes = [MTLSOAuth2Authentication]
    permission_classes = [TokenHasScope]
    required_scopes = ["read"]

    def get(self, request):
        return Response({"ok": True})


@mtls_protected_resource(scopes=["read"])
def decorated(request):
    return JsonResponse({"ok": True})


@mtls_protected_resource(scopes=["read"], require_bound=True)
def decorated_bound_only(request):
    return JsonResponse({"ok": True})


class MixinView(MTLSProtectedResourceMixin, View):
    required_scopes = ["read"]
    require_bound_token = True

    def get(self, request):
        return JsonResponse({"ok": True})


urlpatterns = [
    *example_urlpatterns,
    path("test/dot-plain/", DotPlain.as_view()),
    path("test/mtls-any/", MTLSAny.as_view()),
    path("test/decorated/", decorated),
    path("test/decorated-bound/", decorated_bound_only),
    path("test/mixin/", MixinView.as_view()),
]
