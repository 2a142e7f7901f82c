# Hand-checked: DOT's swappable application model is referenced through oauth2_settings, as in
# 0001, so projects with and without swapped models both migrate.
from django.db import migrations, models
from oauth2_provider.settings import oauth2_settings


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(oauth2_settings.APPLICATION_MODEL),
        ("oauth_mtls", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
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
            ),
        ),
    ]
