"""``manage.py mtls_set_client``: register a client's RFC 8705 metadata from its certificate.

``tls_client_auth`` (§2.1.2): the chosen subject value of the certificate (``--use subject_dn``
or one SAN type; ``--value`` picks among several SANs of that type) becomes the client's one
registered value. ``self_signed_tls_client_auth`` (§2.2.2): the certificate becomes ``x5c[0]`` of
a JWK in the client's ``jwks`` (``--append`` keeps the keys already there, for rotation).

The row is validated with the model's own rules (``full_clean``) before it is saved. Then the
certificate is checked against the saved registration as the token endpoint would check it
(``diagnosis.check_on_save``; a ``jwks_uri`` is never fetched): a refusal is printed as a
warning on stderr and the exit status stays 0, or is 1 with ``--strict``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from oauth2_provider.models import get_application_model

from django_oauth_mtls.certificate_metadata import (
    USE_CHOICES,
    ValueChoiceError,
    add_to_jwk_set,
    choose_value,
    read_pem_certificate,
    self_signed_jwk,
)
from django_oauth_mtls.certificates import ClientCertificate
from django_oauth_mtls.diagnosis import check_on_save, refusal_warning
from django_oauth_mtls.exceptions import IntakeError
from django_oauth_mtls.matching import SUBJECT_FIELDS
from django_oauth_mtls.models import SELF_SIGNED_TLS_CLIENT_AUTH, TLS_CLIENT_AUTH, MTLSClient


def read_file(path: str) -> bytes:
    """The bytes of ``path`` (``-`` = standard input); ``CommandError`` when unreadable."""
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from exc


def read_certificate_file(path: str) -> ClientCertificate:
    """A PEM file (``-`` = standard input) → its first certificate; ``CommandError`` otherwise."""
    data = read_file(path)
    try:
        return read_pem_certificate(data)
    except IntakeError as exc:
        raise CommandError(f"{path} is not a PEM certificate ({exc})") from exc


def _value(certificate: ClientCertificate, use: str, wanted: str | None) -> str:
    """``choose_value``, its refusal worded for the command line."""
    try:
        return choose_value(certificate, use, wanted)
    except ValueChoiceError as error:
        if error.problem == "none":
            message = f"the certificate has no {use} value"
        elif error.problem == "several":
            message = (
                f"the certificate has {len(error.values)} {use} values; choose one with "
                f"--value: {', '.join(error.values)}"
            )
        else:
            message = (
                f"{wanted!r} is not a {use} value of the certificate "
                f"(it has: {', '.join(error.values)})"
            )
        raise CommandError(message) from error


#: ``--access-token-format`` → ``MTLSClient.access_token_format``.
FORMAT_CHOICES = {"setting": "", "opaque": "opaque", "jwt": "jwt"}


def _apply_and_validate(mtls: MTLSClient, options: Any) -> None:
    """``--bound-tokens`` and ``--access-token-format``, then the model's validation."""
    if options["bound_tokens"] is not None:
        mtls.tls_client_certificate_bound_access_tokens = options["bound_tokens"]
    if options["access_token_format"] is not None:
        mtls.access_token_format = FORMAT_CHOICES[options["access_token_format"]]
    try:
        mtls.full_clean()
    except ValidationError as exc:
        messages = "; ".join(
            f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items()
        )
        raise CommandError(f"the client's metadata is not valid: {messages}") from exc


class Command(BaseCommand):
    help = (
        "Set a client's RFC 8705 mTLS metadata from its certificate: the subject DN or a SAN "
        "for tls_client_auth, or the certificate itself (jwks) for self_signed_tls_client_auth."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("client_id", help="the DOT application's client_id")
        parser.add_argument(
            "--certificate",
            metavar="FILE",
            help="the client's certificate, PEM (the first block is used; - reads stdin); "
            "required unless only --access-token-format or --bound-tokens change an existing "
            "registration",
        )
        parser.add_argument(
            "--method",
            choices=[TLS_CLIENT_AUTH, SELF_SIGNED_TLS_CLIENT_AUTH],
            default=TLS_CLIENT_AUTH,
            help="token_endpoint_auth_method (default: %(default)s)",
        )
        parser.add_argument(
            "--use",
            choices=list(USE_CHOICES),
            help="tls_client_auth: which value of the certificate the client is registered with",
        )
        parser.add_argument(
            "--value",
            help="with --use san_*: which of several SANs of that type (or confirm the one)",
        )
        parser.add_argument(
            "--bound-tokens",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="set tls_client_certificate_bound_access_tokens (default: leave as it is)",
        )
        parser.add_argument(
            "--access-token-format",
            choices=list(FORMAT_CHOICES),
            help="the client's access token format: jwt (RFC 9068, with cnf when bound), opaque, "
            "or setting (follow ACCESS_TOKEN_FORMAT); default: leave as it is",
        )
        parser.add_argument(
            "--append",
            action="store_true",
            help="self_signed_tls_client_auth: keep the JWKs already registered (rotation)",
        )
        parser.add_argument(
            "--strict",
            action="store_true",
            help="exit with status 1 when the saved registration would refuse this certificate "
            "(it is saved either way)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        Application = get_application_model()
        client_id: str = options["client_id"]
        try:
            application = Application.objects.get(client_id=client_id)
        except Application.DoesNotExist as exc:
            raise CommandError(f"no application with client_id {client_id!r}") from exc
        if options["certificate"] is None:
            self._update_only(application, options)
            return
        certificate = read_certificate_file(options["certificate"])
        method: str = options["method"]
        use: str | None = options["use"]
        if method == TLS_CLIENT_AUTH and use is None:
            raise CommandError(
                "tls_client_auth needs --use subject_dn|san_dns|san_uri|san_ip|san_email"
            )
        if method == SELF_SIGNED_TLS_CLIENT_AUTH and (use or options["value"]):
            raise CommandError("--use and --value apply to tls_client_auth only")
        if use == "subject_dn" and options["value"] is not None:
            raise CommandError("--value applies to the SAN types; subject_dn is the whole DN")
        if options["append"] and method != SELF_SIGNED_TLS_CLIENT_AUTH:
            raise CommandError("--append applies to self_signed_tls_client_auth only")

        try:
            mtls = application.mtls
        except ObjectDoesNotExist:
            mtls = MTLSClient(application=application)
        mtls.token_endpoint_auth_method = method
        if use is not None:
            value = _value(certificate, use, options["value"])
            # RFC 8705 §2.1.2: exactly one registered subject value.
            for field in SUBJECT_FIELDS:
                setattr(mtls, field, "")
            setattr(mtls, USE_CHOICES[use], value)
            registered = f"{USE_CHOICES[use]} = {value}"
        else:
            if options["append"]:
                mtls.jwks = add_to_jwk_set(mtls.jwks, certificate)
            else:
                mtls.jwks = {"keys": [self_signed_jwk(certificate)]}
            mtls.jwks_uri = ""
            registered = f"jwks with {len(mtls.jwks['keys'])} key(s), this certificate as x5c[0]"
        _apply_and_validate(mtls, options)
        mtls.save()
        self.stdout.write(f"client_id: {client_id}")
        self.stdout.write(f"token_endpoint_auth_method: {method}")
        self.stdout.write(f"registered: {registered}")
        self.stdout.write(f"certificate x5t#S256: {certificate.x5t_s256}")
        self.stdout.write(
            "tls_client_certificate_bound_access_tokens: "
            f"{str(mtls.tls_client_certificate_bound_access_tokens).lower()}"
        )
        self.stdout.write(self.style.SUCCESS("saved"))
        self._check(mtls, certificate, options)

    def _update_only(self, application: Any, options: Any) -> None:
        """No certificate: change the token format or the binding flag of a registration."""
        if options["access_token_format"] is None and options["bound_tokens"] is None:
            raise CommandError(
                "--certificate is required, unless --access-token-format or --bound-tokens "
                "changes an existing registration"
            )
        for name in ("use", "value", "append"):
            if options[name]:
                raise CommandError(f"--{name} needs --certificate")
        try:
            mtls = application.mtls
        except ObjectDoesNotExist as exc:
            raise CommandError(
                f"{application.client_id!r} has no mTLS registration yet: give --certificate"
            ) from exc
        _apply_and_validate(mtls, options)
        mtls.save()
        self.stdout.write(f"client_id: {application.client_id}")
        self.stdout.write(f"access_token_format: {mtls.access_token_format or 'setting'}")
        self.stdout.write(
            "tls_client_certificate_bound_access_tokens: "
            f"{str(mtls.tls_client_certificate_bound_access_tokens).lower()}"
        )
        self.stdout.write(self.style.SUCCESS("saved"))

    def _check(self, mtls: MTLSClient, certificate: ClientCertificate, options: Any) -> None:
        """Would the token endpoint accept this certificate for the registration just saved?
        A refusal is a warning (``--strict``: exit status 1); a jwks_uri is never fetched."""
        path = options["certificate"]
        source = f"file {'stdin' if path == '-' else path}"
        explanation = check_on_save(mtls, certificate, source=source)
        if explanation is None:
            return
        if explanation.matched:
            self.stdout.write(f"check: {explanation.verdict}")
            return
        client_id = mtls.application.client_id
        self.stderr.write(self.style.WARNING(f"warning: {refusal_warning(explanation, client_id)}"))
        self.stderr.write(
            f"Each step: manage.py mtls_explain --client-id {client_id} --certificate {path}"
        )
        if options["strict"]:
            raise CommandError(
                f"saved, but the certificate would be refused: {explanation.reason}", returncode=1
            )
