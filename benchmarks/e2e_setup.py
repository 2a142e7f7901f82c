"""``python -m benchmarks.e2e_setup SAN_DNS`` (settings: ``benchmarks.server_settings``).

Migrates the database, switches SQLite to WAL, (re)creates two clients and prints them as JSON:
``bound`` (``tls_client_auth``, SAN dns, certificate-bound tokens) and ``plain`` (unhashed
``client_secret_basic``). Tokens are then issued through nginx by ``benchmarks.nginx_e2e``.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.server_settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from oauth2_provider.models import get_access_token_model, get_application_model

    from django_oauth_mtls.models import MTLSClient

    call_command("migrate", verbosity=0, interactive=False)
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=WAL")
    application = get_application_model()
    application.objects.filter(name__startswith="bench-e2e-").delete()
    get_access_token_model().objects.all().delete()
    secret = "bench-e2e-secret-0123456789abcdef"
    apps = {}
    for kind in ("bound", "plain"):
        apps[kind] = application.objects.create(
            name=f"bench-e2e-{kind}",
            client_type="confidential",
            authorization_grant_type="client-credentials",
            client_secret=secret,
            hash_client_secret=False,
        )
    row = MTLSClient(
        application=apps["bound"],
        token_endpoint_auth_method="tls_client_auth",
        tls_client_auth_san_dns=argv[0],
        tls_client_certificate_bound_access_tokens=True,
    )
    row.full_clean()
    row.save()
    print(
        json.dumps(
            {
                "bound": apps["bound"].client_id,
                "plain": apps["plain"].client_id,
                "secret": secret,
                "vendor": connection.vendor,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
