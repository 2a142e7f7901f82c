"""Test settings with DOT's Application swapped (``swapped.SwappedApplication``)."""

from tests.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.swapped"]  # noqa: F405
OAUTH2_PROVIDER_APPLICATION_MODEL = "swapped.SwappedApplication"
