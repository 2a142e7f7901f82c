"""``manage.py mtls_jwt_key``: access-token signing keys (RFC 9068 §2.1; rotation: docs/keys.md).

``generate PATH [--type ec-p256|ec-p384|rsa|ed25519]`` writes a new private key to ``PATH``
(PKCS#8 PEM, unencrypted, mode 0600; an existing file is never overwritten) and its public key
to ``PATH.pub`` (SubjectPublicKeyInfo PEM, mode 0644), then prints the ``kid`` (RFC 7638
thumbprint) and the ``alg`` it will sign with. ``list`` prints each configured key file — the
one that signs, those only published, and those skipped with the reason — and DOT's OIDC keys,
which share the JWK set.
"""

from __future__ import annotations

import os
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_oauth_mtls.conf import mtls_settings
from django_oauth_mtls.jwt_keys import KeyFileError, key_from_pem, load_key_file

#: ``--type`` → a function making a new private key. RSA keys get 2048 bits (RFC 7518 §3.5's and
#: FAPI 2.0's floor): access-token keys rotate, and a 3072-bit key triples the signing time.
KEY_TYPES: dict[str, Any] = {
    "ec-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ec-p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}
PUBLIC_SUFFIX = ".pub"


class Command(BaseCommand):
    # A key is what fixes the JWT system checks (E008): they must not block making one.
    requires_system_checks: list[str] = []
    help = (
        "Access-token signing keys: 'generate PATH' writes a new private key (mode 0600) and "
        "PATH.pub and prints its kid; 'list' prints what is published and which key signs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        generate = actions.add_parser("generate", help="write a new private key and PATH.pub")
        generate.add_argument("path", help="where to write the private key (must not exist)")
        generate.add_argument(
            "--type",
            choices=sorted(KEY_TYPES),
            default="ec-p256",
            help="key type (default ec-p256: ES256)",
        )
        actions.add_parser("list", help="the configured keys: which signs, which are published")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "generate":
            self._generate(options["path"], options["type"])
        else:
            self._list()

    def _generate(self, path: str, key_type: str) -> None:
        public_path = path + PUBLIC_SUFFIX
        for target in (path, public_path):
            if os.path.lexists(target):
                raise CommandError(f"{target} exists; choose a new path (keys are never replaced)")
        private_key = KEY_TYPES[key_type]()
        private_pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public_pem = private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        _write(path, private_pem, 0o600)
        _write(public_path, public_pem, 0o644)
        key, _private = key_from_pem(private_pem)
        self.stdout.write(f"kid {key.kid}")
        self.stdout.write(f"alg {key.alg}")
        self.stdout.write(f"private key {path} (mode 0600)")
        self.stdout.write(f"public key  {public_path}")

    def _list(self) -> None:
        signing_found = False
        published: set[str] = set()
        entries = [("JWT_SIGNING_KEYS", path) for path in mtls_settings.JWT_SIGNING_KEYS]
        entries += [("JWT_PUBLISHED_KEYS", path) for path in mtls_settings.JWT_PUBLISHED_KEYS]
        if not entries:
            self.stdout.write("no access-token keys (JWT_SIGNING_KEYS and JWT_PUBLISHED_KEYS)")
        for setting, path in entries:
            try:
                key, private = load_key_file(path)
            except KeyFileError as exc:
                self.stdout.write(f"skipped    {setting} {path}: {exc}")
                continue
            if setting == "JWT_SIGNING_KEYS" and not signing_found and private is not None:
                role = "signs"
                signing_found = True
            else:
                role = "published"
            if key.kid in published:
                role = "duplicate"
            published.add(key.kid)
            self.stdout.write(f"{role:<10} {setting} {path} kid={key.kid} alg={key.alg}")
        for kid in _oidc_kids():
            self.stdout.write(f"oidc       OIDC_RSA_PRIVATE_KEY kid={kid} alg=RS256")
        if entries and not signing_found:
            self.stdout.write("no key signs: JWT access tokens cannot be issued")


def _write(path: str, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start (never readable by others, even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)  # the umask may have narrowed the public key's mode


def _oidc_kids() -> list[str]:
    """The kids of DOT's OIDC keys, as the JWK set publishes them (none while OIDC is off)."""
    from django_oauth_mtls.jwks_info import oidc_keys

    return [key["kid"] for key in oidc_keys()]
