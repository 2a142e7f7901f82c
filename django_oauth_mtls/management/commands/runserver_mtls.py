"""``manage.py runserver_mtls``: Django's development server over TLS, with client certificates.

DEVELOPMENT ONLY. None of the common Python app servers hands the client certificate of a TLS
connection to the application, so trying RFC 8705 locally needs a reverse proxy; this command
is the shortcut. It is Django's ``runserver`` (same address syntax, checks, auto-reloader,
threading, static files) whose socket speaks TLS through the standard library's ``ssl``. The
server asks every client for a certificate, optionally, and hands what it got to the WSGI
application the way mod_ssl/mod_wsgi do: ``environ["SSL_CLIENT_CERT"]`` (PEM), read by the
``wsgi_environ`` certificate source.

Client certificate verification (OpenSSL decides it during the handshake):

* ``--ca FILE`` (repeatable): ``CERT_OPTIONAL`` with those trust anchors; a certificate that
  does not verify against them fails the handshake (it is not downgraded to "no certificate").
* without ``--ca``: any certificate is accepted unverified, like nginx's
  ``ssl_verify_client optional_no_ca``. The stdlib has no switch for that (``CERT_OPTIONAL``
  without trust anchors fails every handshake that carries a certificate) and no verify
  callback, so this mode installs an always-accept OpenSSL verify callback on the context's
  ``SSL_CTX`` through ``ctypes`` (CPython only; see ``accept_any_client_certificate``).

Either way the application, not this server, decides what the certificate is worth.
"""

from __future__ import annotations

import atexit
import ctypes
import datetime as dt
import ipaddress
import logging
import os
import shutil
import signal
import socket
import ssl
import sys
import tempfile
from pathlib import Path
from typing import Any, ClassVar, cast

from django.apps import apps
from django.contrib.staticfiles.management.commands.runserver import (
    Command as StaticFilesRunserverCommand,
)
from django.core.handlers.wsgi import WSGIHandler
from django.core.management.base import CommandError, CommandParser
from django.core.management.commands.runserver import Command as RunserverCommand
from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer

from django_oauth_mtls.conf import mtls_settings
from django_oauth_mtls.proxies import WSGI_CERTIFICATE_KEY, WSGI_CHAIN_PREFIX

logger = logging.getLogger("django.server")

#: Seconds a client gets to finish the TLS handshake before its connection is dropped.
HANDSHAKE_TIMEOUT = 10.0
#: Where the reloader's parent tells its child which generated server certificate to reuse.
GENERATED_DIR_ENV = "DJANGO_OAUTH_MTLS_RUNSERVER_TLS_DIR"
#: mod_ssl's ``SSL_CLIENT_VERIFY`` values.
VERIFY_NONE, VERIFY_SUCCESS, VERIFY_GENEROUS = "NONE", "SUCCESS", "GENEROUS"
#: At most this many ``SSL_CLIENT_CERT_CHAIN_n`` keys are blanked or filled (the intake reads 32).
MAX_CHAIN = 32

DEVELOPMENT_ONLY = (
    "runserver_mtls is a DEVELOPMENT server. Never use it in production or expose it to a "
    "network you do not control: it is Django's runserver plus Python's ssl, unreviewed and "
    "unhardened. In production, terminate TLS in a reverse proxy (docs/proxies.md)."
)


class AcceptAnyUnavailable(RuntimeError):
    """This interpreter's ``ssl`` cannot be made to accept unverified client certificates."""


# --- the SSL context ------------------------------------------------------------------------

_SSL_VERIFY_NONE = 0x00
_SSL_VERIFY_PEER = 0x01
_VerifyCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)


def _accept(preverify_ok: int, store_context: int | None) -> int:
    """OpenSSL verify callback: every certificate is acceptable (the app judges it)."""
    return 1


#: Module-level, so the C function pointer outlives every context it is installed on.
_ACCEPT_CALLBACK = _VerifyCallback(_accept)


def accept_any_client_certificate(context: ssl.SSLContext) -> None:
    """Request a client certificate, optionally, and accept it without verifying it.

    OpenSSL's ``SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, callback)`` with a callback that
    returns 1, which is what nginx's ``optional_no_ca`` does. Python exposes neither the
    ``SSL_CTX`` nor verify callbacks, so: the ``SSL_CTX *`` is the first field after the object
    header of CPython's ``PySSLContext`` (unchanged from 3.6 through 3.14), and the OpenSSL
    functions are looked up through the ``_ssl`` extension module (``dlsym`` on its handle
    searches the libssl it is linked against). Before anything is written, the pointer is
    checked: flipping ``verify_mode`` and ``options`` from Python must show through the C API.

    Must be the last change to ``verify_mode``: CPython's setter resets the callback. Raises
    ``AcceptAnyUnavailable`` where this is impossible (not CPython, OpenSSL not reachable).
    """
    if sys.implementation.name != "cpython":
        raise AcceptAnyUnavailable(f"needs CPython, this is {sys.implementation.name}")
    try:
        import _ssl

        library = ctypes.CDLL(_ssl.__file__)
        get_verify_mode = library.SSL_CTX_get_verify_mode
        get_options = library.SSL_CTX_get_options
        set_verify = library.SSL_CTX_set_verify
    except (ImportError, OSError, AttributeError) as exc:
        raise AcceptAnyUnavailable(f"OpenSSL's C API is not reachable: {exc}") from exc
    get_verify_mode.argtypes = [ctypes.c_void_p]
    get_verify_mode.restype = ctypes.c_int
    get_options.argtypes = [ctypes.c_void_p]
    get_options.restype = ctypes.c_uint64 if ssl.OPENSSL_VERSION_INFO >= (3,) else ctypes.c_ulong
    set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, _VerifyCallback]
    set_verify.restype = None

    pointer = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
    if not pointer:
        raise AcceptAnyUnavailable("no SSL_CTX found in the SSLContext object")
    for mode, expected in (
        (ssl.CERT_OPTIONAL, _SSL_VERIFY_PEER),
        (ssl.CERT_NONE, _SSL_VERIFY_NONE),
    ):
        context.verify_mode = mode
        if get_verify_mode(pointer) != expected:
            raise AcceptAnyUnavailable("the SSLContext layout is not the one expected")
    context.options |= ssl.OP_NO_TICKET
    if get_options(pointer) != int(context.options):
        raise AcceptAnyUnavailable("the SSLContext layout is not the one expected")
    context.options &= ~ssl.OP_NO_TICKET
    set_verify(pointer, _SSL_VERIFY_PEER, _ACCEPT_CALLBACK)
    if context.verify_mode != ssl.CERT_OPTIONAL:  # read back through CPython
        raise AcceptAnyUnavailable("SSL_CTX_set_verify did not take effect")


def build_server_context(certificate: str, key: str | None, ca_files: list[str]) -> ssl.SSLContext:
    """TLS 1.2+ server context that asks for a client certificate without requiring one."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certificate, key)
    except (OSError, ssl.SSLError) as exc:
        raise CommandError(f"cannot load the server certificate {certificate}: {exc}") from exc
    if ca_files:
        context.verify_mode = ssl.CERT_OPTIONAL
        # An intermediate, or a self-signed client certificate itself, may be the anchor.
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        for ca_file in ca_files:
            try:
                context.load_verify_locations(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise CommandError(f"cannot load the CA file {ca_file}: {exc}") from exc
    else:
        try:
            accept_any_client_certificate(context)
        except AcceptAnyUnavailable as exc:
            raise CommandError(
                f"cannot accept unverified client certificates here ({exc}); "
                "give --ca FILE with the issuers (or the self-signed certificates) to accept"
            ) from exc
    return context


def generate_server_certificate(directory: Path, hosts: list[str]) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for ``localhost`` (and ``hosts``), valid 30 days."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "django-oauth-mtls runserver_mtls"),
            x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
        ]
    )
    names: list[x509.GeneralName] = []
    for host in ["localhost", "127.0.0.1", "::1", *hosts]:
        try:
            general: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            general = x509.DNSName(host)
        if host and host not in ("0", "0.0.0.0", "::") and general not in names:
            names.append(general)
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "localhost.pem", directory / "localhost-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


# --- the server -------------------------------------------------------------------------------


def tls_environ(connection: ssl.SSLSocket, verified: bool) -> dict[str, str]:
    """mod_ssl's variables for this connection, as strings.

    Keys that do not apply are set to ``""`` rather than left out: wsgiref starts every
    ``environ`` from a copy of the process environment, so a stale ``SSL_CLIENT_CERT`` exported
    in the developer's shell would otherwise look like a certificate.
    """
    cipher = connection.cipher()
    environ = {
        "HTTPS": "on",
        "SSL_PROTOCOL": connection.version() or "",
        "SSL_CIPHER": cipher[0] if cipher else "",
    }
    der = connection.getpeercert(binary_form=True)
    chain: list[bytes] = []
    get_unverified_chain = getattr(connection, "get_unverified_chain", None)  # Python 3.13+
    if der and get_unverified_chain is not None:
        chain = [c for c in (get_unverified_chain() or []) if c != der][: MAX_CHAIN - 1]
    environ[WSGI_CERTIFICATE_KEY] = ssl.DER_cert_to_PEM_cert(der) if der else ""
    environ["SSL_CLIENT_VERIFY"] = (
        VERIFY_NONE if not der else VERIFY_SUCCESS if verified else VERIFY_GENEROUS
    )
    for index in range(MAX_CHAIN):
        environ[f"{WSGI_CHAIN_PREFIX}{index}"] = (
            ssl.DER_cert_to_PEM_cert(chain[index]) if index < len(chain) else ""
        )
    return environ


class MTLSRequestHandler(WSGIRequestHandler):
    """Django's request handler plus the TLS variables of the connection."""

    def get_environ(self) -> dict[str, str]:
        environ = super().get_environ()
        server = cast(MTLSWSGIServer, self.server)
        connection = cast(ssl.SSLSocket, self.connection)
        environ.update(tls_environ(connection, server.client_certificates_verified))
        return environ


class MTLSWSGIServer(WSGIServer):
    """Django's WSGI server whose connections are TLS; the handshake runs per connection.

    ``django.core.servers.basehttp.run()`` always passes Django's ``WSGIRequestHandler``; this
    class puts ``MTLSRequestHandler`` in its place. The command makes a subclass per run that
    carries the context.
    """

    ssl_context: ClassVar[ssl.SSLContext]
    client_certificates_verified: ClassVar[bool] = False

    def __init__(self, server_address: Any, request_handler: Any, **kwargs: Any) -> None:
        super().__init__(server_address, MTLSRequestHandler, **kwargs)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        try:
            wrapped = self.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        except OSError:
            sock.close()
            raise
        return wrapped, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        # In the request's own thread (threaded mode), so a slow handshake blocks nobody.
        connection = cast(ssl.SSLSocket, request)
        connection.settimeout(HANDSHAKE_TIMEOUT)
        try:
            connection.do_handshake()
        except ssl.SSLError as exc:
            if exc.reason == "HTTP_REQUEST":
                logger.warning("plain HTTP from %s on a TLS port: use https://", client_address[0])
            else:
                logger.warning("TLS handshake with %s failed: %s", client_address[0], exc)
            return
        except OSError as exc:
            logger.warning("TLS handshake with %s failed: %s", client_address[0], exc)
            return
        connection.settimeout(None)
        super().finish_request(request, client_address)


# --- the command ------------------------------------------------------------------------------


class Command(StaticFilesRunserverCommand):
    help = (
        "DEVELOPMENT ONLY: Django's runserver over TLS that asks for a client certificate "
        "and puts it in environ['SSL_CLIENT_CERT'] for the wsgi_environ certificate source."
    )
    default_port = "8443"
    protocol = "https"

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--certificate",
            help="server certificate (PEM, may hold the key and intermediates); "
            "default: a self-signed localhost certificate generated into a temporary directory",
        )
        parser.add_argument("--key", help="server private key (PEM), unless in --certificate")
        parser.add_argument(
            "--ca",
            action="append",
            default=[],
            metavar="FILE",
            help="verify client certificates against the certificates in FILE (repeatable; "
            "issuers or self-signed client certificates); a certificate that does not verify "
            "fails the handshake. Default: accept any client certificate unverified",
        )

    def get_handler(self, *args: Any, **options: Any) -> WSGIHandler:
        if not apps.is_installed("django.contrib.staticfiles"):
            return RunserverCommand.get_handler(self, *args, **options)
        return super().get_handler(*args, **options)

    def run(self, **options: Any) -> None:
        """After the address is parsed and before the reloader starts: set up TLS."""
        if options["key"] and not options["certificate"]:
            raise CommandError("--key needs --certificate")
        certificate, key = options["certificate"], options["key"]
        self.generated = not certificate
        if not certificate:
            certificate, key = self._generated_certificate()
        self.certificate_path = str(certificate)
        self.ca_files = list(options["ca"])
        context = build_server_context(self.certificate_path, key, self.ca_files)
        self.server_cls = type(
            "MTLSWSGIServer",
            (MTLSWSGIServer,),
            {"ssl_context": context, "client_certificates_verified": bool(self.ca_files)},
        )
        super().run(**options)

    def _generated_certificate(self) -> tuple[Path, Path]:
        """Generate once per command: the reloader's child reuses its parent's certificate."""
        inherited = os.environ.get(GENERATED_DIR_ENV)
        if inherited:
            directory = Path(inherited)
            cert_path, key_path = directory / "localhost.pem", directory / "localhost-key.pem"
            if cert_path.is_file() and key_path.is_file():
                return cert_path, key_path
        directory = Path(tempfile.mkdtemp(prefix="runserver-mtls-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            # Make a plain ``kill`` run the cleanup above (and stop the reloader's child).
            signal.signal(signal.SIGTERM, _exit_on_sigterm)
        os.environ[GENERATED_DIR_ENV] = str(directory)
        return generate_server_certificate(directory, [str(getattr(self, "addr", ""))])

    def on_bind(self, server_port: int) -> None:
        super().on_bind(server_port)
        write = self.stdout.write
        write(self.style.ERROR(f"*** {DEVELOPMENT_ONLY} ***"))
        if self.generated:
            write(
                f"TLS server certificate: {self.certificate_path} (self-signed, generated for "
                f"this run, deleted on exit; e.g. curl --cacert {self.certificate_path})"
            )
        else:
            write(f"TLS server certificate: {self.certificate_path}")
        if self.ca_files:
            write(
                "client certificates: requested, optional; verified against "
                f"{', '.join(self.ca_files)} (one that does not verify fails the handshake)"
            )
        else:
            write(
                "client certificates: requested, optional; accepted WITHOUT verification "
                "(like nginx ssl_verify_client optional_no_ca): the application judges them"
            )
        write('the certificate reaches the application as environ["SSL_CLIENT_CERT"] (PEM)')
        if mtls_settings.CERTIFICATE_SOURCE != "wsgi_environ":
            write(
                self.style.WARNING(
                    f"OAUTH2_MTLS CERTIFICATE_SOURCE is {mtls_settings.CERTIFICATE_SOURCE!r}: "
                    'set it to "wsgi_environ" for the application to see these certificates'
                )
            )


def _exit_on_sigterm(signum: int, frame: object) -> None:
    sys.exit(0)
