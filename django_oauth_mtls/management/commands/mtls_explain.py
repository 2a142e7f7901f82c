"""``manage.py mtls_explain``: would this certificate authenticate this client, and if not, why?

The certificate is read as the token endpoint reads it: from a file, or from a header value
exactly as a proxy sends it (``--header``, through the same intake with ``--source``'s parser
and the project's ``OAUTH2_MTLS`` settings), then checked by
``client_auth.authenticate_certificate``, the function the token endpoint calls. Each step is
printed (intake, client, chain, pin, match) and then the verdict with the reason code the token
endpoint logs (RFC 8705 §2.1, §2.2).

Exit status: 0 for a match, 1 for a refusal, 2 when nothing could be checked (unknown client,
unreadable file, bad options).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from oauth2_provider.models import get_application_model

from django_oauth_mtls.certificate_metadata import read_pem_certificate
from django_oauth_mtls.certificates import ClientCertificate
from django_oauth_mtls.conf import mtls_settings
from django_oauth_mtls.diagnosis import Explanation, Step, describe_certificate, explain
from django_oauth_mtls.exceptions import IntakeError
from django_oauth_mtls.intake import intake_config
from django_oauth_mtls.proxies import (
    SOURCES,
    WSGI_CHAIN_PREFIX,
    IntakeConfig,
    read_client_certificate,
)

from .mtls_set_client import read_file

#: Exit status when nothing could be checked (a refusal is 1, as ``CommandError``'s default).
USAGE_ERROR = 2


def _usage(message: str) -> CommandError:
    return CommandError(message, returncode=USAGE_ERROR)


class Command(BaseCommand):
    help = (
        "Explain whether a client certificate (a PEM file, or a header value as your proxy "
        "sends it) would authenticate a client at the token endpoint, step by step, with the "
        "reason code the token endpoint logs. Exit status 0 = match, 1 = refused."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--client-id", required=True, help="the DOT application's client_id")
        given = parser.add_mutually_exclusive_group(required=True)
        given.add_argument(
            "--certificate",
            metavar="FILE",
            help="PEM file: the leaf, optionally followed by its chain (- reads stdin)",
        )
        given.add_argument(
            "--header",
            metavar="VALUE",
            help="the certificate field's value exactly as the proxy sends it",
        )
        parser.add_argument(
            "--source",
            choices=sorted(SOURCES),
            help="with --header: the proxy format (default: OAUTH2_MTLS CERTIFICATE_SOURCE)",
        )
        parser.add_argument(
            "--chain-header", metavar="VALUE", help="with --header: the chain field's value"
        )
        parser.add_argument(
            "--verify-header",
            metavar="VALUE",
            help="with --header: the proxy's verdict field (used with TRUST_PROXY_VERIFICATION)",
        )
        parser.add_argument(
            "--remote-addr",
            metavar="ADDR",
            help="with --header: the peer address the fields come from (default: the first "
            "TRUSTED_PROXIES address, i.e. the proxy)",
        )
        parser.add_argument(
            "--at",
            metavar="DATETIME",
            help="check at this ISO 8601 time instead of now (UTC unless an offset is given)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        Application = get_application_model()
        client_id: str = options["client_id"]
        try:
            application = Application.objects.select_related("mtls").get(client_id=client_id)
        except Application.DoesNotExist as exc:
            raise _usage(f"no application with client_id {client_id!r}") from exc
        now = self._parse_at(options["at"])
        if options["header"] is not None:
            certificate, intake, problem = self._from_header(options)
        else:
            for name in ("source", "chain_header", "verify_header", "remote_addr"):
                if options[name] is not None:
                    raise _usage(f"--{name.replace('_', '-')} applies to --header only")
            certificate, intake, problem = self._from_file(options["certificate"])
        result = explain(application, certificate, intake=intake, intake_problem=problem, now=now)
        self._print(result)
        if not result.matched:
            raise CommandError(f"refused: {result.reason}", returncode=1)

    @staticmethod
    def _parse_at(value: str | None) -> dt.datetime | None:
        if value is None:
            return None
        try:
            at = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise _usage(f"--at {value!r} is not an ISO 8601 date and time") from exc
        return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)

    @staticmethod
    def _from_file(path: str) -> tuple[ClientCertificate | None, Step, str | None]:
        label = "stdin" if path == "-" else path
        try:
            data = read_file(path)
        except CommandError as exc:
            raise _usage(str(exc)) from exc
        try:
            certificate = read_pem_certificate(data)
        except IntakeError as error:
            detail = f" ({error.detail})" if error.detail else ""
            return (
                None,
                Step("intake", f"file {label}: REFUSED {error.code}{detail}", ok=False),
                error.code,
            )
        return (
            certificate,
            Step("intake", f"file {label}: {describe_certificate(certificate)}"),
            None,
        )

    def _from_header(
        self, options: dict[str, Any]
    ) -> tuple[ClientCertificate | None, Step, str | None]:
        configured = mtls_settings.CERTIFICATE_SOURCE
        source = options["source"] or configured
        if source is None:
            raise _usage("OAUTH2_MTLS sets no CERTIFICATE_SOURCE: pass --source")
        if source not in SOURCES:
            raise _usage(
                f"CERTIFICATE_SOURCE {source!r} is a callable, not a header format: pass --source"
            )
        spec = SOURCES[source]
        if source == configured:
            config = intake_config()  # the project's field names, exactly as deployed
            header_name = mtls_settings.CERTIFICATE_HEADER or spec.certificate_header
        else:
            config = IntakeConfig.build(
                source,
                trusted_proxies=mtls_settings.TRUSTED_PROXIES,
                trust_unix_socket_peers=mtls_settings.TRUST_UNIX_SOCKET_PEERS,
                max_header_bytes=mtls_settings.MAX_HEADER_BYTES,
                trust_proxy_verification=mtls_settings.TRUST_PROXY_VERIFICATION,
            )
            header_name = spec.certificate_header
        meta: dict[str, Any] = {config.certificate_key: options["header"]}
        chain = options["chain_header"]
        if chain is not None:
            if source == "wsgi_environ":
                meta[f"{WSGI_CHAIN_PREFIX}0"] = chain
            elif config.chain_key is not None:
                meta[config.chain_key] = chain
            else:
                raise _usage(f"the {source} source has no chain field")
        if options["verify_header"] is not None:
            if config.verify_key is None:
                raise _usage(f"the {source} source has no verdict field (VERIFY_HEADER)")
            meta[config.verify_key] = options["verify_header"]
        peer = options["remote_addr"]
        if peer is None:
            networks = config.trusted_proxies
            peer = str(networks[0].network_address) if networks else ""
        meta["REMOTE_ADDR"] = peer
        where = f"source={source} field={header_name} peer={peer or '(unix socket)'}"
        result = read_client_certificate(meta, config)
        if result.certificate is None:
            problem = result.problem or "absent"
            detail = f" ({result.detail})" if result.detail else ""
            return None, Step("intake", f"{where}: REFUSED {problem}{detail}", ok=False), problem
        outcome = f"{where}: {describe_certificate(result.certificate)}"
        return result.certificate, Step("intake", outcome), None

    def _print(self, result: Explanation) -> None:
        for step in result.steps:
            line = f"{step.name}: {step.outcome}"
            self.stdout.write(line if step.ok else self.style.ERROR(line))
        verdict = f"verdict: {result.verdict}"
        self.stdout.write(
            self.style.SUCCESS(verdict) if result.matched else self.style.ERROR(verdict)
        )
