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
        from . import jwt_keys, truststore

        checks.register(mtls_checks.check_settings, checks.Tags.security)
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
