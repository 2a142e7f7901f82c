"""The project's admin module (see the package docstring). Only the routes that use our classes
import ``django_oauth_mtls.admin``: a project that re-registers DOT's admin knows nothing of it."""

import os

from django.contrib import admin
from oauth2_provider.admin import ApplicationAdmin
from oauth2_provider.models import get_application_model

ROUTE = os.environ.get("MTLS_TEST_ADMIN_ROUTE", "")


class ProjectApplicationAdmin(ApplicationAdmin):
    """The project's columns and filters, which must survive."""

    list_display = (*ApplicationAdmin.list_display, "client_id")
    list_filter = (*ApplicationAdmin.list_filter, "algorithm")


if ROUTE == "register":
    Application = get_application_model()
    admin.site.unregister(Application)
    admin.site.register(Application, ProjectApplicationAdmin)

elif ROUTE == "register_inline":
    from django_oauth_mtls.admin import MTLSClientInline

    class ProjectApplicationAdminWithInline(ProjectApplicationAdmin):
        inlines = [MTLSClientInline]

    Application = get_application_model()
    admin.site.unregister(Application)
    admin.site.register(Application, ProjectApplicationAdminWithInline)

elif ROUTE == "setting":
    from django_oauth_mtls.admin import MTLSApplicationAdminMixin

    class SettingApplicationAdmin(MTLSApplicationAdminMixin, ProjectApplicationAdmin):
        """Named in OAUTH2_PROVIDER["APPLICATION_ADMIN_CLASS"]: DOT registers it."""
