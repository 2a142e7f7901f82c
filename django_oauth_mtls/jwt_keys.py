"""The keys that sign JWT access tokens (RFC 9068 §2.1) and the JWK set that publishes them.

Two halves, as in ``truststore``:

* PURE (no Django, no settings): a PEM → :class:`AccessTokenKey`, its ``kid`` (the RFC 7638
  SHA-256 thumbprint of the public key, jwcrypto's ``thumbprint()``) and its ``alg``, chosen by
  key type — EC P-256 ``ES256``, P-384 ``ES384``, RSA of at least 2048 bits ``PS256`` (RFC 7518
  §3.5; FAPI 2.0 §5.4 allows PS256, ES256 and EdDSA), Ed25519 ``EdDSA`` (RFC 8037 §3.1). Any
  other key (smaller RSA, other curves, DSA, Ed448, X25519) is refused with
  :class:`KeyFileError`.
* Glue: ``OAUTH2_MTLS["JWT_SIGNING_KEYS"]`` (private keys: the first usable one signs, all are
  published) and ``JWT_PUBLISHED_KEYS`` (published only; a private key PEM is accepted there too
  and only its public half is used). Files are re-read when they change — their inode,
  modification time or size, checked at most once per ``RELOAD_CHECK_SECONDS`` per process — so
  a rotation needs no restart. An unreadable or refused file is skipped with a log line (and is
  the system check ``oauth_mtls.E011``); the parsed private key object is cached, so signing
  parses no PEM.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

if TYPE_CHECKING:
    from jwcrypto.jwk import JWK

__all__ = [
    "MIN_RSA_KEY_BITS",
    "RELOAD_CHECK_SECONDS",
    "AccessTokenKey",
    "KeyFileError",
    "algorithm_for",
    "key_from_pem",
    "load_key_file",
    "published_keys",
    "reset",
    "signing_key",
]

log = logging.getLogger(__name__)

RELOAD_CHECK_SECONDS = 5.0
#: RFC 7518 §3.3 / §3.5: "A key of size 2048 bits or larger MUST be used".
MIN_RSA_KEY_BITS = 2048
#: A key file larger than this is not a key (protects the reload from a mistaken path).
MAX_KEY_FILE_BYTES = 65536
_CURVE_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384"}


class KeyFileError(ValueError):
    """A key file that cannot be used: unreadable, not a PEM key, or a refused key type/size."""


# --- pure: PEM → AccessTokenKey --------------------------------------------------------------


@dataclass(frozen=True)
class AccessTokenKey:
    """A public access-token key as published in the JWK set (RFC 7517 §4)."""

    #: RFC 7638 SHA-256 thumbprint of the public key (base64url), jwcrypto's ``thumbprint()``.
    kid: str
    #: The one ``alg`` this key signs with (RFC 7518 §3.1 name).
    alg: str
    #: The PUBLIC key.
    jwk: JWK = field(compare=False, repr=False)
    #: The public members plus ``kid``, ``alg`` and ``use: "sig"``.
    public_jwk: dict[str, Any] = field(compare=False, repr=False)


def algorithm_for(public_key: Any) -> str:
    """The JWS ``alg`` for a ``cryptography`` public key; ``KeyFileError`` for a refused key."""
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_KEY_BITS:
            raise KeyFileError(
                f"an RSA key of {public_key.key_size} bits (at least {MIN_RSA_KEY_BITS} are needed)"
            )
        return "PS256"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        alg = _CURVE_ALGORITHMS.get(public_key.curve.name)
        if alg is None:
            raise KeyFileError(f"an EC key on {public_key.curve.name} (use P-256 or P-384)")
        return alg
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "EdDSA"
    name = type(public_key).__name__.removeprefix("_").removesuffix("PublicKey") or "unknown"
    raise KeyFileError(
        f"an unsupported key type, {name} (use EC P-256, EC P-384, RSA of 2048 bits or more, "
        "or Ed25519)"
    )


def _public_key(public_key: Any) -> AccessTokenKey:
    from jwcrypto.jwk import JWK

    alg = algorithm_for(public_key)
    jwk = JWK.from_pyca(public_key)
    kid = jwk.thumbprint()
    members: dict[str, Any] = jwk.export_public(as_dict=True)
    members.update(kid=kid, alg=alg, use="sig")
    return AccessTokenKey(kid=kid, alg=alg, jwk=jwk, public_jwk=members)


def key_from_pem(data: bytes) -> tuple[AccessTokenKey, JWK | None]:
    """A PEM private or public key → (its public :class:`AccessTokenKey`, the private JWK or
    ``None`` for a public key). Encrypted keys are refused (no passphrase is configured)."""
    from jwcrypto.jwk import JWK

    if b"-----BEGIN" not in data:
        raise KeyFileError("no PEM data")
    try:
        private_key: Any = serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:  # a passphrase is needed
        raise KeyFileError("an encrypted private key (store it unencrypted, mode 0600)") from exc
    except (ValueError, UnsupportedAlgorithm):
        private_key = None
    if private_key is not None:
        key = _public_key(private_key.public_key())
        return key, JWK.from_pyca(private_key)
    try:
        public_key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFileError("no private or public key in the PEM data") from exc
    return _public_key(public_key), None


def load_key_file(path: str) -> tuple[AccessTokenKey, JWK | None]:
    """:func:`key_from_pem` of a file; ``KeyFileError`` says why a file cannot be used."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise KeyFileError(f"cannot be read ({exc.strerror})") from exc
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"is larger than {MAX_KEY_FILE_BYTES} bytes")
    return key_from_pem(data)


# --- glue: the configured files, re-read when they change --------------------------------------

_Signature = tuple[int, int, int]  # (inode, mtime_ns, size); (-1, -1, -1) when absent


@dataclass
class _Loaded:
    signature: _Signature
    key: AccessTokenKey | None
    private: JWK | None
    problem: str | None


@dataclass
class _State:
    config: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    signatures: tuple[_Signature, ...] = ()
    signing: tuple[AccessTokenKey, JWK] | None = None
    published: tuple[AccessTokenKey, ...] = ()
    checked: float = float("-inf")
    files: dict[str, _Loaded] = field(default_factory=dict)


_lock = threading.Lock()
_state = _State()


def _signature(path: str) -> _Signature:
    try:
        stat = os.stat(path)
    except OSError:
        return (-1, -1, -1)
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


def _load(path: str, signature: _Signature, setting: str) -> _Loaded:
    cached = _state.files.get(path)
    if cached is not None and cached.signature == signature:
        return cached
    try:
        key, private = load_key_file(path)
    except KeyFileError as exc:
        log.error("access-token key skipped: setting=%s path=%s problem=%s", setting, path, exc)
        loaded = _Loaded(signature, None, None, str(exc))
    else:
        log.info("access-token key loaded: setting=%s path=%s kid=%s", setting, path, key.kid)
        loaded = _Loaded(signature, key, private, None)
    _state.files[path] = loaded
    return loaded


def _rebuild(signing_paths: Sequence[str], published_paths: Sequence[str]) -> None:
    signing: tuple[AccessTokenKey, JWK] | None = None
    published: dict[str, AccessTokenKey] = {}
    for setting, paths in (("JWT_SIGNING_KEYS", signing_paths),
                           ("JWT_PUBLISHED_KEYS", published_paths)):  # fmt: skip
        for path in paths:
            loaded = _load(path, _signature(path), setting)
            if loaded.key is None:
                continue
            if setting == "JWT_SIGNING_KEYS" and signing is None:
                if loaded.private is not None:
                    signing = (loaded.key, loaded.private)
                else:
                    log.error("access-token key cannot sign (a public key): path=%s", path)
            published.setdefault(loaded.key.kid, loaded.key)
    _state.signing = signing
    _state.published = tuple(published.values())
    for path in set(_state.files) - {*signing_paths, *published_paths}:
        del _state.files[path]


def _current() -> _State:
    """The loaded keys; cheap on the hot path (a clock read, and a few stats every few
    seconds)."""
    now = time.monotonic()
    if now - _state.checked < RELOAD_CHECK_SECONDS:
        return _state
    from .conf import mtls_settings

    with _lock:
        config = (mtls_settings.JWT_SIGNING_KEYS, mtls_settings.JWT_PUBLISHED_KEYS)
        signatures = tuple(_signature(path) for path in (*config[0], *config[1]))
        if config != _state.config or signatures != _state.signatures:
            _rebuild(*config)
            _state.config = config
            _state.signatures = signatures
        _state.checked = now
    return _state


def signing_key() -> tuple[AccessTokenKey, JWK] | None:
    """The key that signs (the first usable ``JWT_SIGNING_KEYS`` entry) and its private JWK, or
    ``None`` when no entry is usable."""
    return _current().signing


def published_keys() -> tuple[AccessTokenKey, ...]:
    """Every usable key of ``JWT_SIGNING_KEYS`` then ``JWT_PUBLISHED_KEYS``, public only,
    deduplicated by ``kid``."""
    return _current().published


def reset() -> None:
    """Forget the loaded keys (tests, and ``setting_changed`` for ``OAUTH2_MTLS``)."""
    with _lock:
        fresh = _State()
        for name in vars(fresh):
            setattr(_state, name, getattr(fresh, name))


def _on_setting_changed(*, setting: str, **kwargs: object) -> None:
    if setting == "OAUTH2_MTLS":
        reset()


def connect_signals() -> None:
    from django.core.signals import setting_changed

    setting_changed.connect(_on_setting_changed, dispatch_uid="django_oauth_mtls.jwt_keys")
