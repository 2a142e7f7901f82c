# Labels in words for the admin (issue 17); the RFC names become help texts. No schema change:
# Django records verbose_name and help_text in migrations. The application field is untouched,
# so nothing here names DOT's (swappable) model.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("oauth_mtls", "0002_access_token_format"),
    ]

    operations = [
        migrations.AlterField(
            model_name="mtlsclient",
            name="access_token_format",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "as ACCESS_TOKEN_FORMAT"),
                    ("opaque", "opaque"),
                    ("jwt", "jwt (RFC 9068)"),
                ],
                default="",
                help_text="The format of access tokens issued at the token endpoint: empty follows OAUTH2_MTLS['ACCESS_TOKEN_FORMAT'].",
                max_length=8,
                verbose_name="access token format",
            ),
        ),
        migrations.AlterField(
            model_name="mtlsclient",
            name="jwks",
            field=models.JSONField(
                blank=True, help_text="jwks (RFC 7591 §2)", null=True, verbose_name="JWK set"
            ),
        ),
        migrations.AlterField(
            model_name="mtlsclient",
            name="jwks_uri",
            field=models.URLField(
                blank=True,
                default="",
                help_text="jwks_uri (RFC 7591 §2)",
                max_length=2048,
                verbose_name="JWK set URL",
            ),
        ),
        migrations.AlterField(
            model_name="mtlsclient",
            name="tls_client_auth_san_dns",
            field=models.CharField(
                blank=True,
                default="",
                help_text="tls_client_auth_san_dns",
                max_length=255,
                verbose_name="SAN DNS name",
            ),
        ),
        migrations.AlterField(
            model_name="mtlsclient",
            name="tls_client_auth_san_email",
            field=models.CharField(
                blank=True,
                default="",
                help_text="tls_client_auth_san_email",
                max_length=320,
                verbose_name="SAN email address",
            ),
        ),
        migrations.AlterField(
            model_name="mtlsclient",
            name="tls_client_auth_san_ip",
            field=models.CharField(
                blank=True,
                default="",
                help_text="tls_client_auth_san_ip",
                max_length=64,
                verbose_name="SAN IP address",
            ),
        ),
        migrations.AlterField(
            model_name="mtlsclient",
            name="tls_client_auth_san_uri",
            field=models.TextField(
                blank=True, default="", help_text="tls_client_auth_san_uri", verbose_name="SAN URI"
            ),
        ),
        migrations.AlterField(
            model_name="mtlsclient",
            name="tls_client_auth_subject_dn",
            field=models.TextField(
                blank=True,
                default="",
                help_text="tls_client_auth_subject_dn (RFC 4514)",
                verbose_name="subject DN",
            ),
        ),
        migrations.AlterField(
            model_name="mtlsclient",
            name="tls_client_certificate_bound_access_tokens",
            field=models.BooleanField(
                default=False,
                help_text="tls_client_certificate_bound_access_tokens (RFC 8705 §3.4)",
                verbose_name="certificate-bound access tokens",
            ),
        ),
        migrations.AlterField(
            model_name="mtlsclient",
            name="token_endpoint_auth_method",
            field=models.CharField(
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
                help_text="token_endpoint_auth_method (RFC 7591 §2, RFC 8705 §2)",
                max_length=40,
                verbose_name="client authentication method",
            ),
        ),
        migrations.AlterField(
            model_name="mtlsclient",
            name="trust_pin_spki_sha256",
            field=models.CharField(
                blank=True,
                default="",
                help_text="Optional: base64url SHA-256 of the public key of a CA that must be on the client's validated path (pinned by key, not by name).",
                max_length=43,
                verbose_name="trust pin (SPKI SHA-256)",
            ),
        ),
    ]
