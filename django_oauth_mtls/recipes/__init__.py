"""Proxy recipes: the configurations that forward the client certificate (RFC 9440 §4).

The ``*.template`` files beside this module ship with the package. The nginx, HAProxy and
Apache ones (and nginx with a dedicated mTLS host, RFC 8705 §5) are complete configurations
that the end-to-end suite renders and runs in front of the app; the ingress-nginx manifest is
written from that controller's documentation and not run. Each ``{{ name }}`` is a placeholder.
:func:`render` fills those it has a value for and leaves the others visible as they are: nginx,
HAProxy, Apache and kubectl all refuse a configuration that still holds one, so a forgotten
value can never become an empty one. The certificate and verdict field names are placeholders
too (:func:`field_values`), so a project that renamed its fields gets a recipe that sets, and
strips client copies of, the names it reads.

Pure: no settings, no Django. ``manage.py mtls_proxy_config`` is the command over it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

#: Where the documentation is published; each recipe names its page under it.
DOCS_URL = "https://django-oauth-mtls.readthedocs.io/en/latest/"

#: ``{{ name }}``, the placeholder syntax of every recipe.
PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")

#: The fields the ``nginx``, ``apache`` and ``haproxy`` sources read by default (proxies.SOURCES).
DEFAULT_CERTIFICATE_HEADER = "X-SSL-Client-Cert"
DEFAULT_VERIFY_HEADER = "X-SSL-Client-Verify"

#: Placeholders filled from the field names, never from a user's option.
FIELD_PLACEHOLDERS = frozenset(
    {
        "certificate_header",
        "certificate_header_underscored",
        "verify_header",
        "verify_header_underscored",
        "certificate_fields_pattern",
    }
)

#: A field name the recipes can carry: letters and digits in hyphen-separated words (an
#: underscore would be dropped by nginx and HAProxy and refused by Apache, on purpose).
_FIELD_NAME = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")
#: Fields the recipes already set or strip for other purposes; a certificate field by one of
#: these names would be set twice or deleted.
_RESERVED_FIELDS = frozenset(
    {"host", "x-forwarded-proto", "x-forwarded-for", "client-cert", "client-cert-chain"}
)
#: Characters a value cannot carry unquoted in every recipe's syntax (and `$`, nginx's
#: variables): refused rather than escaped, since no sane path, address or name holds them.
_UNSAFE_VALUE = re.compile(r"[\s\"';{}#$\\]|[\x00-\x1f\x7f]")


class RecipeError(ValueError):
    """A recipe name, a value or a field name the recipes cannot use."""


@dataclass(frozen=True, slots=True)
class Recipe:
    """One shipped configuration: its file and the certificate source it feeds."""

    name: str
    filename: str
    source: str
    #: True when the end-to-end suite runs this file in front of the app.
    tested: bool
    #: The documentation page that explains it, under :data:`DOCS_URL`.
    page: str = "proxies/"
    #: Field names the proxy itself imposes (ingress-nginx), or None when they are placeholders.
    fixed_fields: tuple[str, str] | None = None

    @property
    def docs(self) -> str:
        """The absolute URL of its documentation."""
        return DOCS_URL + self.page

    def text(self) -> str:
        """The template as shipped."""
        return (resources.files(__name__) / self.filename).read_text(encoding="utf-8")


RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe("nginx", "nginx.conf.template", "nginx", tested=True),
        Recipe("haproxy", "haproxy.cfg.template", "haproxy", tested=True),
        Recipe("apache", "apache.conf.template", "apache", tested=True),
        Recipe(
            "nginx_two_hosts",
            "nginx-two-hosts.conf.template",
            "nginx",
            tested=True,
            page="metadata/",
        ),
        Recipe(
            "ingress_nginx",
            "ingress-nginx.yaml.template",
            "nginx",
            tested=False,
            page="proxies-vendors/",
            fixed_fields=("ssl-client-cert", "ssl-client-verify"),
        ),
    )
}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; :class:`RecipeError` naming the known ones otherwise."""
    try:
        return RECIPES[name]
    except KeyError:
        raise RecipeError(
            f"unknown proxy {name!r}; choose one of {', '.join(sorted(RECIPES))}"
        ) from None


def placeholders(text: str) -> list[str]:
    """The placeholder names in ``text``, in order of first appearance."""
    return list(dict.fromkeys(PLACEHOLDER.findall(text)))


def check_field_name(name: str, what: str) -> str:
    """``name`` if a recipe can set and strip a field called so; :class:`RecipeError` if not."""
    if not _FIELD_NAME.fullmatch(name):
        raise RecipeError(
            f"{what} {name!r} is not a field name the recipes can carry: use letters, digits "
            "and hyphens (a name with an underscore is dropped by nginx and HAProxy)"
        )
    if name.lower() in _RESERVED_FIELDS:
        raise RecipeError(f"{what} {name!r} is a field the recipes set or strip for other uses")
    return name


def field_values(
    certificate_header: str = DEFAULT_CERTIFICATE_HEADER,
    verify_header: str = DEFAULT_VERIFY_HEADER,
) -> dict[str, str]:
    """The field-name placeholders for these two fields.

    Besides the names, the underscore spellings a client could send so that WSGI maps them to
    the same ``META`` key (``X_SSL_Client_Cert``; HAProxy and Apache remove them by name), and
    Apache's pattern of every mixed spelling it refuses (``x.ssl.client.cert``).
    """
    check_field_name(certificate_header, "certificate field")
    check_field_name(verify_header, "verdict field")
    if certificate_header.lower() == verify_header.lower():
        raise RecipeError("the certificate field and the verdict field must differ")
    return {
        "certificate_header": certificate_header,
        "certificate_header_underscored": certificate_header.replace("-", "_"),
        "verify_header": verify_header,
        "verify_header_underscored": verify_header.replace("-", "_"),
        "certificate_fields_pattern": "|".join(
            name.lower().replace("-", ".") for name in (certificate_header, verify_header)
        ),
    }


def check_value(name: str, value: str) -> str:
    """``value`` if it can fill placeholder ``name`` as is; :class:`RecipeError` if not."""
    if not value:
        raise RecipeError(f"{name} is empty: give a value, or leave it out to keep the placeholder")
    if _UNSAFE_VALUE.search(value):
        raise RecipeError(
            f"{name} {value!r} holds a character the recipes cannot carry unquoted "
            "(white space, quotes, ; { } # $ or a backslash)"
        )
    return value


def render(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each placeholder that has a value filled in; the others stay as they are."""
    return PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), text)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A recipe with the values given filled in, and the placeholders still waiting for one."""

    text: str
    unfilled: tuple[str, ...]


def render_recipe(
    recipe: Recipe,
    values: Mapping[str, str],
    certificate_header: str = DEFAULT_CERTIFICATE_HEADER,
    verify_header: str = DEFAULT_VERIFY_HEADER,
) -> Rendered:
    """``recipe`` with ``values`` and the two field names filled in.

    Every value must name a placeholder of this recipe (a value meant for another proxy is a
    mistake worth saying) and be safe to write unquoted (:func:`check_value`). The field names
    are ignored by a recipe whose proxy imposes its own (:attr:`Recipe.fixed_fields`).
    """
    text = recipe.text()
    names = placeholders(text)
    foreign = [name for name in values if name not in names or name in FIELD_PLACEHOLDERS]
    if foreign:
        raise RecipeError(
            f"the {recipe.name} recipe has no {', '.join(sorted(foreign))}; its values are "
            f"{', '.join(name for name in names if name not in FIELD_PLACEHOLDERS)}"
        )
    filled = {name: check_value(name, value) for name, value in values.items()}
    if any(name in FIELD_PLACEHOLDERS for name in names):
        filled.update(field_values(certificate_header, verify_header))
    result = render(text, filled)
    return Rendered(result, tuple(placeholders(result)))
