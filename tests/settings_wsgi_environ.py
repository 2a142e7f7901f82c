"""Test settings with the ``wsgi_environ`` source, the one ``runserver_mtls`` feeds."""

from tests.settings import *  # noqa: F403

OAUTH2_MTLS = {"CERTIFICATE_SOURCE": "wsgi_environ"}
