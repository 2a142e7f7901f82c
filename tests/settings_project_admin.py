"""Test settings: a project with its own Application admin (``tests.project_admin``), the apps
in the order ``MTLS_TEST_ORDER`` names, the admin registered as ``MTLS_TEST_ADMIN_ROUTE`` says."""

import os

from tests.settings import *  # noqa: F403

CONTRIB = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
ORDERS = {
    # getting-started's order: DOT, ours, then the project's apps
    "documented": [
        *CONTRIB,
        "oauth2_provider",
        "django_oauth_mtls",
        "rest_framework",
        "tests.project_admin",
    ],
    # INSTALLED_APPS += [...]: ours after the project's apps
    "appended": [
        *CONTRIB,
        "oauth2_provider",
        "rest_framework",
        "tests.project_admin",
        "django_oauth_mtls",
    ],
    # ours first of all, even before django.contrib.admin and DOT
    "first": [
        "django_oauth_mtls",
        *CONTRIB,
        "tests.project_admin",
        "oauth2_provider",
        "rest_framework",
    ],
    # the contrib admin last of all: autodiscover runs after every other app's ready()
    "admin_last": [
        *CONTRIB[1:],
        "oauth2_provider",
        "django_oauth_mtls",
        "rest_framework",
        "tests.project_admin",
        CONTRIB[0],
    ],
}
INSTALLED_APPS = ORDERS[os.environ.get("MTLS_TEST_ORDER", "documented")]
if os.environ.get("MTLS_TEST_ADMIN_ROUTE") == "setting":
    OAUTH2_PROVIDER = {
        **OAUTH2_PROVIDER,  # noqa: F405
        "APPLICATION_ADMIN_CLASS": "tests.project_admin.admin.SettingApplicationAdmin",
    }
