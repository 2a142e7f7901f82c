"""``manage.py mtls_proxy_config PROXY``: print a shipped proxy recipe with your values filled in.

``PROXY`` is ``nginx``, ``haproxy`` or ``apache`` (the files the end-to-end suite runs in front
of the app), ``nginx_two_hosts`` (a dedicated mTLS host, RFC 8705 §5, also run) or
``ingress_nginx`` (an Ingress and a NetworkPolicy, written from ingress-nginx's documentation,
never run against a cluster). Options fill the placeholders; the certificate and verdict field
names come from ``OAUTH2_MTLS`` (``CERTIFICATE_HEADER``, ``VERIFY_HEADER``; by default
``X-SSL-Client-Cert`` and ``X-SSL-Client-Verify``). A placeholder without a value stays in the
output as ``{{ name }}``, which the proxy refuses, and is listed on stderr. The recipe alone goes
to stdout, so ``> nginx.conf`` keeps the notes out of it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_oauth_mtls.conf import mtls_settings
from django_oauth_mtls.recipes import (
    DEFAULT_CERTIFICATE_HEADER,
    DEFAULT_VERIFY_HEADER,
    FIELD_PLACEHOLDERS,
    RECIPES,
    Recipe,
    RecipeError,
    check_field_name,
    get_recipe,
    placeholders,
    render_recipe,
)

#: Help for each placeholder that an option fills.
OPTION_HELP = {
    "listen": "address:port the proxy listens on (0.0.0.0:443 suits every recipe)",
    "upstream": "host:port of the app server, reachable by the proxy alone",
    "server_cert": "the proxy's TLS certificate file (PEM, with its intermediates)",
    "server_key": "the proxy's TLS private key file (PEM)",
    "server_pem": "HAProxy: one PEM file with the certificate, its intermediates and the key",
    "client_ca": "HAProxy: the CA file it names to clients when asking for a certificate",
    "user": "the user the worker processes run as",
    "group": "the group the worker processes run as",
    "prefix": "nginx: the directory for the pid file, the error log and temporary files",
    "server_root": "Apache: ServerRoot (pid file, logs, session cache)",
    "modules": "Apache: the module directory (Debian: /usr/lib/apache2/modules)",
    "main_host": "nginx_two_hosts: the main host's name (no certificate is ever asked for)",
    "mtls_host": "nginx_two_hosts: the mTLS host's name (MTLS_BASE_URL)",
    "app": "ingress_nginx: the name of the Ingress and the app pods' app.kubernetes.io/name",
    "namespace": "ingress_nginx: the app's namespace",
    "host": "ingress_nginx: the host name clients use",
    "tls_secret": "ingress_nginx: the TLS secret of the host (tls.crt, tls.key)",
    "client_ca_secret": "ingress_nginx: the secret holding ca.crt, in the app's namespace",
    "service": "ingress_nginx: the app's Service",
    "service_port": "ingress_nginx: the Service's port number",
    "app_port": "ingress_nginx: the port the app server listens on in its pods",
    "controller_namespace": "ingress_nginx: the namespace of the ingress-nginx controller",
}


@cache
def option_names() -> tuple[str, ...]:
    """Every placeholder of every recipe that a user's option fills, in a stable order."""
    names: dict[str, None] = {}
    for recipe in RECIPES.values():
        for name in placeholders(recipe.text()):
            if name not in FIELD_PLACEHOLDERS:
                names[name] = None
    return tuple(names)


class Command(BaseCommand):
    requires_system_checks: list[str] = []  # it prints a file; `check --deploy` judges settings
    help = (
        "Print a proxy recipe (nginx, haproxy, apache, nginx_two_hosts, ingress_nginx) with "
        "your values and this project's certificate field names filled in. Placeholders "
        "without a value stay visible, and the proxy refuses them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "proxy", help=f"one of {', '.join(RECIPES)} (a hyphen works as an underscore)"
        )
        for name in option_names():
            parser.add_argument(
                "--" + name.replace("_", "-"),
                dest=name,
                metavar="VALUE",
                help=OPTION_HELP.get(name, f"the {{{{ {name} }}}} placeholder"),
            )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            recipe = get_recipe(str(options["proxy"]).replace("-", "_"))
        except RecipeError as exc:
            raise CommandError(str(exc)) from exc
        values = {name: options[name] for name in option_names() if options.get(name) is not None}
        certificate_header, verify_header = self._field_names(recipe)
        try:
            rendered = render_recipe(recipe, values, certificate_header, verify_header)
        except RecipeError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(rendered.text, ending="")
        for note in self._notes(recipe, rendered.unfilled):
            self.stderr.write(note)

    def _field_names(self, recipe: Recipe) -> tuple[str, str]:
        """The project's field names, checked; the proxy's own for a recipe that fixes them."""
        if recipe.fixed_fields:
            return recipe.fixed_fields
        names = []
        for key, default in (
            ("CERTIFICATE_HEADER", DEFAULT_CERTIFICATE_HEADER),
            ("VERIFY_HEADER", DEFAULT_VERIFY_HEADER),
        ):
            value = getattr(mtls_settings, key) or default
            try:
                names.append(check_field_name(str(value), f'OAUTH2_MTLS["{key}"]'))
            except RecipeError as exc:
                raise CommandError(str(exc)) from exc
        return names[0], names[1]

    def _notes(self, recipe: Recipe, unfilled: tuple[str, ...]) -> list[str]:
        notes = []
        if unfilled:
            options = " ".join(f"--{name.replace('_', '-')}" for name in unfilled)
            notes.append(
                "Placeholders left for you to fill (the proxy refuses the file until then): "
                + ", ".join(f"{{{{ {name} }}}}" for name in unfilled)
                + f". Options: {options}"
            )
        source = mtls_settings.CERTIFICATE_SOURCE
        if source and source != recipe.source:
            notes.append(
                f'This recipe feeds CERTIFICATE_SOURCE "{recipe.source}"; OAUTH2_MTLS has '
                f'"{source}", which reads another format.'
            )
        if recipe.fixed_fields:
            expected = zip(
                ("CERTIFICATE_HEADER", "VERIFY_HEADER"), recipe.fixed_fields, strict=True
            )
            for key, name in expected:
                configured = getattr(mtls_settings, key)
                if not configured or str(configured).lower() != name:
                    notes.append(
                        f'{recipe.name} sends "{name}": set OAUTH2_MTLS["{key}"] = "{name}".'
                    )
        if not recipe.tested:
            notes.append(
                f"The {recipe.name} recipe is NOT TESTED against a real deployment: check "
                f"yours as {recipe.docs}#check-your-deployment says before relying on it."
            )
        return notes
