from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class DjangoOAuthMTLSConfig(AppConfig):
    name = "django_oauth_mtls"
    label = "oauth_mtls"
    verbose_name = "OAuth 2.0 mutual TLS"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks as mtls_checks
        from . import fapi, jwt_keys, jwt_resource_checks, truststore

        checks.register(mtls_checks.check_settings, checks.Tags.security)
        checks.register(fapi.check_profile, checks.Tags.security)
        checks.register(jwt_resource_checks.check_jwt_resource, checks.Tags.security)
        checks.register(mtls_checks.check_metadata, checks.Tags.security)
        # Reads the database: Django passes ``databases`` only when databases are checked.
        checks.register(
            mtls_checks.check_stored_values,
            checks.Tags.database,
            checks.Tags.security,
            deploy=False,
        )
        truststore.connect_signals()
        jwt_keys.connect_signals()
        # How the project wires the app in: its URLs (W030) and its Application admin (W031).
        from . import project_checks

        checks.register(project_checks.check_urls, checks.Tags.urls, checks.Tags.security)
        checks.register(project_checks.check_admin, checks.Tags.admin)
        # The SQLite backend of contrib without a transaction mode it acts on (W040).
        from .contrib.sqlite3 import checks as sqlite3_checks

        checks.register(sqlite3_checks.check_sqlite_backend)
        if self.apps is not None and self.apps.is_installed("django.contrib.admin"):
            # Our subclasses take the place of DOT's default admins whatever the order of
            # INSTALLED_APPS: admin.py does it when it loads after DOT's admin module, this when
            # DOT's module loaded ours (an APPLICATION_ADMIN_CLASS that imports our mixin) or
            # when the contrib admin's autodiscover comes after this app (it is idempotent).
            from .admin import add_to_dot_default_admins

            add_to_dot_default_admins()
