"""Which Application admin a project ends up with (issue 17), whatever the INSTALLED_APPS order.

The registry is global and filled once, at start-up, so each case runs in a fresh interpreter
under ``tests.settings_project_admin`` (``MTLS_TEST_ORDER``, ``MTLS_TEST_ADMIN_ROUTE``) and
reports the admin classes registered on ``admin.site``, their inlines and columns, and the
``oauth_mtls`` check ids. Rule: DOT's own default admins get our mixins; a project's admin is
left exactly as it is, and W031 says when it lacks the inline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

REPORT = """
import json
import django
django.setup()
from django.contrib import admin
from django.core.checks import run_checks
from oauth2_provider.models import get_access_token_model, get_application_model
application = admin.site._registry[get_application_model()]
token = admin.site._registry[get_access_token_model()]
print(json.dumps({
    "application": type(application).__qualname__,
    "inlines": [i.__name__ for i in application.get_inlines(None, None)],
    "list_display": list(application.list_display),
    "check_page": any(
        (getattr(p, "name", None) or "").endswith("_check_certificate") for p in application.get_urls()
    ),
    "token": type(token).__qualname__,
    "ids": sorted(m.id for m in run_checks() if m.id and m.id.startswith("oauth_mtls.W03")),
}))
"""

OURS = ["MTLSClientInline"]
DOT_COLUMNS = [
    "pk",
    "name",
    "user",
    "client_type",
    "authorization_grant_type",
    "registration_source",
]


def registered(order: str, route: str) -> dict:
    env = {**os.environ, "MTLS_TEST_ORDER": order, "MTLS_TEST_ADMIN_ROUTE": route}
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings_project_admin"
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", REPORT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("order", ["documented", "appended", "first", "admin_last"])
def test_dot_default_admins_get_the_mixins_in_any_order(order):
    assert registered(order, "") == {
        "application": "MTLSApplicationAdmin",
        "inlines": OURS,
        "list_display": DOT_COLUMNS,
        "check_page": True,
        "token": "MTLSAccessTokenAdmin",
        "ids": [],
    }


@pytest.mark.parametrize("order", ["documented", "appended", "first", "admin_last"])
def test_a_project_registration_is_left_in_place_and_w031_says_so(order):
    """Before, the project's admin lost its columns (ours registered after it) or ours was
    dropped without a word (ours registered before it)."""
    assert registered(order, "register") == {
        "application": "ProjectApplicationAdmin",
        "inlines": [],
        "list_display": [*DOT_COLUMNS, "client_id"],
        "check_page": False,
        "token": "MTLSAccessTokenAdmin",
        "ids": ["oauth_mtls.W031"],
    }


def test_a_project_registration_with_the_inline():
    assert registered("appended", "register_inline") == {
        "application": "ProjectApplicationAdminWithInline",
        "inlines": OURS,
        "list_display": [*DOT_COLUMNS, "client_id"],
        "check_page": False,  # the mixin brings the page; the inline links to mtls_explain
        "token": "MTLSAccessTokenAdmin",
        "ids": [],
    }


@pytest.mark.parametrize("order", ["documented", "appended", "first", "admin_last"])
def test_application_admin_class_setting_with_the_mixin(order):
    """DOT's APPLICATION_ADMIN_CLASS naming a class in the project's admin.py that mixes ours
    in: DOT imports that module while loading its own, which imports ours."""
    assert registered(order, "setting") == {
        "application": "SettingApplicationAdmin",
        "inlines": OURS,
        "list_display": [*DOT_COLUMNS, "client_id"],
        "check_page": True,
        "token": "MTLSAccessTokenAdmin",
        "ids": [],
    }
