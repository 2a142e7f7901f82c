# Hand-checked: DOT's swappable models are referenced through oauth2_settings, as DOT's own
# migrations do, so projects with and without swapped models both migrate (DOT docs §1.4).
import django.db.models.deletion
from django.db import migrations, models
from oauth2_provider.settings import oauth2_settings


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(oauth2_settings.APPLICATION_MODEL),
        migrations.swappable_dependency(oauth2_settings.ACCESS_TOKEN_MODEL),
        migrations.swappable_dependency(oauth2_settings.REFRESH_TOKEN_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="MTLSClient",
            fields=[
                (
                    "application",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="mtls",
                        serialize=False,
                        to=oauth2_settings.APPLICATION_MODEL,
                    ),
                ),
                (
                    "token_endpoint_auth_method",
                    models.CharField(
                        choices=[
                            ("client_secret_basic", "client_secret_basic"),
                            ("client_secret_post", "client_secret_post"),
                            ("none", "none (public client)"),
                            ("tls_client_auth", "tls_client_auth (PKI certificate)"),
                            (
                                "self_signed_tls_client_auth",
                                "self_signed_tls_client_auth (self-signed certificate)",
                            ),
                        ],
                        default="client_secret_basic",
                        max_length=40,
                    ),
                ),
                ("tls_client_auth_subject_dn", models.TextField(blank=True, default="")),
                (
                    "tls_client_auth_san_dns",
                    models.CharField(blank=True, default="", max_length=255),
                ),
                ("tls_client_auth_san_uri", models.TextField(blank=True, default="")),
                ("tls_client_auth_san_ip", models.CharField(blank=True, default="", max_length=64)),
                (
                    "tls_client_auth_san_email",
                    models.CharField(blank=True, default="", max_length=320),
                ),
                ("jwks", models.JSONField(blank=True, null=True)),
                ("jwks_uri", models.URLField(blank=True, default="", max_length=2048)),
                ("tls_client_certificate_bound_access_tokens", models.BooleanField(default=False)),
                (
                    "trust_pin_spki_sha256",
                    models.CharField(
                        blank=True,
                        default="",
                        help_text="Optional: base64url SHA-256 of the public key of a CA that must be on the client's validated path (pinned by key, not by name).",
                        max_length=43,
                    ),
                ),
                ("created", models.DateTimeField(auto_now_add=True)),
                ("updated", models.DateTimeField(auto_now=True)),
            ],
            options={
                "verbose_name": "mTLS client metadata",
                "verbose_name_plural": "mTLS client metadata",
            },
        ),
        migrations.CreateModel(
            name="AccessTokenBinding",
            fields=[
                (
                    "access_token",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="mtls_binding",
                        serialize=False,
                        to=oauth2_settings.ACCESS_TOKEN_MODEL,
                    ),
                ),
                ("x5t_s256", models.CharField(db_index=True, max_length=43)),
            ],
            options={
                "verbose_name": "certificate-bound access token",
            },
        ),
        migrations.CreateModel(
            name="RefreshTokenBinding",
            fields=[
                (
                    "refresh_token",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="mtls_binding",
                        serialize=False,
                        to=oauth2_settings.REFRESH_TOKEN_MODEL,
                    ),
                ),
                ("x5t_s256", models.CharField(blank=True, default="", max_length=43)),
                ("grant_bound", models.BooleanField(default=True)),
            ],
            options={
                "verbose_name": "certificate-bound refresh token",
            },
        ),
    ]
