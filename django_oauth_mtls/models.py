"""Side tables, one-to-one with DOT's (possibly swapped) models (RFC 8705 §2, §3; RFC 7591).

Keeping our columns in our own tables lets an existing DOT deployment adopt the app with one
``migrate``, works with swapped ``Application``/token models, and cannot collide with fields
DOT adds upstream. A DOT application without an ``MTLSClient`` row behaves exactly as in DOT.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from django.contrib.auth.hashers import identify_hasher
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import models, router, transaction
from django.utils.translation import gettext_lazy as _
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.settings import oauth2_settings

from . import limits, matching
from .conf import mtls_settings

TLS_CLIENT_AUTH = "tls_client_auth"
SELF_SIGNED_TLS_CLIENT_AUTH = "self_signed_tls_client_auth"
MTLS_METHODS = frozenset({TLS_CLIENT_AUTH, SELF_SIGNED_TLS_CLIENT_AUTH})
SUBJECT_FIELDS = matching.SUBJECT_FIELDS
#: ``ValidationError`` code of "tls_client_auth needs exactly one subject value".
SUBJECT_VALUE_COUNT = "subject_value_count"


class AuthMethod(models.TextChoices):
    CLIENT_SECRET_BASIC = "client_secret_basic", "client_secret_basic"
    CLIENT_SECRET_POST = "client_secret_post", "client_secret_post"
    NONE = "none", "none (public client)"
    TLS_CLIENT_AUTH = TLS_CLIENT_AUTH, "tls_client_auth (PKI certificate)"
    SELF_SIGNED_TLS_CLIENT_AUTH = (
        SELF_SIGNED_TLS_CLIENT_AUTH,
        "self_signed_tls_client_auth (self-signed certificate)",
    )


def normalise_spki_pin(value: str) -> str:
    """A trust pin as base64url SHA-256 of a CA's SubjectPublicKeyInfo (43 characters).

    Accepts that form, 64 hex digits (colons allowed), or a PEM CA certificate.
    """
    from cryptography import x509

    from .validation import spki_sha256

    text = value.strip()
    if not text:
        return ""
    if "BEGIN CERTIFICATE" in text:
        try:
            certificate = x509.load_pem_x509_certificate(text.encode("ascii"))
        except (ValueError, UnicodeError, x509.InvalidVersion) as exc:
            raise ValidationError(_("The pinned CA certificate is not a valid PEM.")) from exc
        digest = spki_sha256(certificate)
    else:
        compact = text.replace(":", "")
        try:
            if len(compact) == 64:
                digest = bytes.fromhex(compact)
            elif len(compact) == 43:
                digest = base64.urlsafe_b64decode(compact + "=")
            else:
                raise ValueError(compact)
        except (ValueError, binascii.Error) as exc:
            raise ValidationError(
                _(
                    "A trust pin is a CA certificate (PEM) or the SHA-256 of its public key "
                    "(64 hex digits or 43 base64url characters)."
                )
            ) from exc
        if len(digest) != hashlib.sha256().digest_size:
            raise ValidationError(_("A trust pin is a SHA-256 digest."))
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def client_type_problem(method: str, client_type: str | None) -> str | None:
    """Why ``method`` does not fit an application of ``client_type`` (docs/api.md), or None."""
    if method in MTLS_METHODS and client_type != "confidential":
        return str(_("mTLS methods require a confidential client."))
    if method == AuthMethod.NONE and client_type != "public":
        return str(_("The method none requires a public client."))
    return None


def algorithm_problem(method: str, algorithm: str | None) -> str | None:
    """Why ``method`` does not fit an application signing ID tokens with ``algorithm``, or None.

    HS256 signs with the client secret in clear; an mTLS client's secret is random, hashed and
    never shown (``MTLSClient.save``), so no relying party could verify such a token.
    """
    if method in MTLS_METHODS and algorithm == "HS256":
        return str(
            _(
                "HS256 signs ID tokens with the client secret; an mTLS client holds no usable "
                "secret. Choose RS256 or no algorithm."
            )
        )
    return None


class AccessTokenFormat(models.TextChoices):
    """``MTLSClient.access_token_format``: ``""`` follows ``ACCESS_TOKEN_FORMAT``."""

    SETTING = "", "as ACCESS_TOKEN_FORMAT"
    OPAQUE = "opaque", "opaque"
    JWT = "jwt", "jwt (RFC 9068)"


class MTLSClient(models.Model):
    """RFC 8705 client metadata for one DOT application."""

    application = models.OneToOneField(
        oauth2_settings.APPLICATION_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="mtls",
    )
    # Labels in words for people; the RFC 8705 / RFC 7591 metadata names are the help texts.
    token_endpoint_auth_method = models.CharField(
        _("client authentication method"),
        max_length=40,
        choices=AuthMethod.choices,
        default=AuthMethod.CLIENT_SECRET_BASIC,
        help_text="token_endpoint_auth_method (RFC 7591 §2, RFC 8705 §2)",
    )
    # RFC 8705 §2.1.2: exactly one of these for tls_client_auth.
    tls_client_auth_subject_dn = models.TextField(
        _("subject DN"), blank=True, default="", help_text="tls_client_auth_subject_dn (RFC 4514)"
    )
    tls_client_auth_san_dns = models.CharField(
        _("SAN DNS name"),
        max_length=255,
        blank=True,
        default="",
        help_text="tls_client_auth_san_dns",
    )
    tls_client_auth_san_uri = models.TextField(
        _("SAN URI"), blank=True, default="", help_text="tls_client_auth_san_uri"
    )
    tls_client_auth_san_ip = models.CharField(
        _("SAN IP address"),
        max_length=64,
        blank=True,
        default="",
        help_text="tls_client_auth_san_ip",
    )
    tls_client_auth_san_email = models.CharField(
        _("SAN email address"),
        max_length=320,
        blank=True,
        default="",
        help_text="tls_client_auth_san_email",
    )
    # RFC 8705 §2.2.2 / RFC 7591 §2: self-signed certificates are published as x5c of a JWK.
    jwks = models.JSONField(_("JWK set"), null=True, blank=True, help_text="jwks (RFC 7591 §2)")
    jwks_uri = models.URLField(
        _("JWK set URL"),
        max_length=2048,
        blank=True,
        default="",
        help_text="jwks_uri (RFC 7591 §2)",
    )
    tls_client_certificate_bound_access_tokens = models.BooleanField(
        _("certificate-bound access tokens"),
        default=False,
        help_text="tls_client_certificate_bound_access_tokens (RFC 8705 §3.4)",
    )
    # RFC 9068: this client's access tokens as JWTs or opaque strings ("" = the setting).
    access_token_format = models.CharField(
        _("access token format"),
        max_length=8,
        choices=AccessTokenFormat.choices,
        blank=True,
        default=AccessTokenFormat.SETTING,
        help_text=_(
            "The format of access tokens issued at the token endpoint: empty follows "
            "OAUTH2_MTLS['ACCESS_TOKEN_FORMAT']."
        ),
    )
    trust_pin_spki_sha256 = models.CharField(
        _("trust pin (SPKI SHA-256)"),
        max_length=43,
        blank=True,
        default="",
        help_text=_(
            "Optional: base64url SHA-256 of the public key of a CA that must be on the client's "
            "validated path (pinned by key, not by name)."
        ),
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("mTLS client metadata")
        verbose_name_plural = _("mTLS client metadata")

    def __str__(self) -> str:
        # The admin titles the inline with this: the method in words, no primary key.
        return str(self.get_token_endpoint_auth_method_display())

    @property
    def is_mtls(self) -> bool:
        return self.token_endpoint_auth_method in MTLS_METHODS

    @property
    def subject_field(self) -> tuple[str, str] | None:
        """The one registered (field, value) for ``tls_client_auth``."""
        for field in SUBJECT_FIELDS:
            value = getattr(self, field)
            if value:
                return field, value
        return None

    def clear_stale_fields(self) -> None:
        """Drop metadata that the current method does not use (P6)."""
        if self.token_endpoint_auth_method != TLS_CLIENT_AUTH:
            for field in SUBJECT_FIELDS:
                setattr(self, field, "")
        if self.token_endpoint_auth_method != SELF_SIGNED_TLS_CLIENT_AUTH:
            self.jwks = None
            self.jwks_uri = ""

    def bound_problems(self) -> dict[str, str]:
        """Each registered value this client's method uses that is over its bound → a fixed
        description naming the field and the bound (``limits``); empty when all are within.

        Cheap (lengths, and the size of an inline ``jwks``): the token endpoint asks it on
        every request of an mTLS client, before anything is parsed.
        """
        method = self.token_endpoint_auth_method
        if method == TLS_CLIENT_AUTH:
            fields: tuple[str, ...] = SUBJECT_FIELDS
        elif method == SELF_SIGNED_TLS_CLIENT_AUTH:
            fields = ("jwks_uri",)
        else:
            return {}
        problems = {
            field: problem
            for field in fields
            if (problem := limits.too_long(field, getattr(self, field)))
        }
        if method == SELF_SIGNED_TLS_CLIENT_AUTH:
            problem = limits.jwks_too_large(self.jwks, mtls_settings.JWKS_MAX_BYTES)
            if problem:
                problems["jwks"] = problem
        return problems

    def clean_fields(self, exclude: Any = None) -> None:
        errors: dict[str, Any] = {}
        # A pasted PEM or hex pin becomes the stored 43-character form before length checks.
        try:
            self.trust_pin_spki_sha256 = normalise_spki_pin(self.trust_pin_spki_sha256 or "")
        except ValidationError as exc:
            errors["trust_pin_spki_sha256"] = exc.messages
        # Issue 14: every registered value is bounded (limits.py). Values the method does not
        # use are dropped first (as save() would), so only what would be stored is measured; a
        # value over its bound is reported once, with our text, and never parsed (clean()).
        self.clear_stale_fields()
        excluded = set(exclude or ())
        over_bound = self.bound_problems()
        for field, problem in over_bound.items():
            if field not in excluded:
                errors[field] = [problem]
        try:
            super().clean_fields(exclude=excluded | set(errors) | set(over_bound))
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    def clean(self) -> None:
        errors: dict[str, Any] = {}
        self.clear_stale_fields()
        method = self.token_endpoint_auth_method
        over_bound = self.bound_problems()  # reported by clean_fields; never parsed here
        if method == TLS_CLIENT_AUTH:
            present = [f for f in SUBJECT_FIELDS if getattr(self, f)]
            if len(present) != 1:
                message = _(
                    "tls_client_auth needs exactly one of tls_client_auth_subject_dn, _san_dns, "
                    "_san_uri, _san_ip, _san_email (found %(count)d)."
                ) % {"count": len(present)}
                errors["__all__"] = ValidationError(message, code=SUBJECT_VALUE_COUNT)
            for field in present:
                if field in over_bound:
                    continue
                try:
                    setattr(
                        self,
                        field,
                        matching.normalise_registered_value(field, getattr(self, field)),
                    )
                except matching.RegisteredValueError as exc:
                    errors[field] = str(exc)
        if method == SELF_SIGNED_TLS_CLIENT_AUTH:
            if self.jwks and self.jwks_uri:
                errors["jwks_uri"] = _("Give jwks or jwks_uri, not both.")
            elif not self.jwks and not self.jwks_uri:
                errors["jwks"] = _("self_signed_tls_client_auth needs jwks or jwks_uri.")
            if self.jwks_uri and "jwks_uri" not in over_bound:
                from .jwks_addresses import uri_problem

                problem = uri_problem(
                    self.jwks_uri, allow_private=mtls_settings.JWKS_ALLOW_PRIVATE_ADDRESSES
                )
                if problem:
                    errors["jwks_uri"] = problem
            if self.jwks and "jwks" not in over_bound:
                from .jwks import JWKSetError, parse_jwk_set

                try:
                    parse_jwk_set(self.jwks)
                except JWKSetError as exc:
                    errors["jwks"] = str(exc)
        application = getattr(self, "application", None) if self.application_id else None
        if application is not None:
            problem = client_type_problem(
                method, getattr(application, "client_type", None)
            ) or algorithm_problem(method, getattr(application, "algorithm", None))
            if problem:
                errors.setdefault("token_endpoint_auth_method", problem)
        if errors:
            raise ValidationError(errors)

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save, dropping stale metadata; a client that becomes an mTLS client gets a new secret.

        Issue 14, "no secret to steal": DOT gives every application a secret. An mTLS client
        authenticates with its certificate (a secret is refused), yet its secret must be one
        nobody has seen: random, of DOT's usual length, hashed, never shown — never blank (an
        empty secret matches an empty password). Every path that makes a client an mTLS client
        (registration, RFC 7592 update, the admin, ``mtls_set_client``, code) saves this row, so
        the secret is replaced here: when the row is new or its method was not an mTLS one, or
        when the stored secret is blank or in clear (or DOT would compare it in clear). Not on
        every save: hashing costs what DOT's
        hasher costs (PBKDF2: a large fraction of a second) and a write to the application, and
        changes nothing once the secret is unknown. ``QuerySet.update`` and raw SQL bypass this.
        """
        self.clear_stale_fields()
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using):
            replace_secret = self.is_mtls and self._secret_may_be_known(using)
            super().save(*args, **kwargs)
            if replace_secret:
                application = self.application
                application.client_secret = generate_client_secret()
                application.hash_client_secret = True  # ClientSecretField hashes it on save
                application.save(using=using, update_fields=["client_secret", "hash_client_secret"])

    def _secret_may_be_known(self, using: str) -> bool:
        """Whether someone may know the application's secret: the row is new, its stored method
        is not an mTLS one, or the stored secret is blank, in clear, or not to be hashed."""
        previous = (
            type(self)
            ._default_manager.using(using)
            .filter(pk=self.pk)
            .values_list("token_endpoint_auth_method", flat=True)
            .first()
        )
        if previous not in MTLS_METHODS:
            return True
        application = self.application
        secret = getattr(application, "client_secret", "")
        if not secret or not getattr(application, "hash_client_secret", True):
            return True  # blank, or compared in clear by DOT (the stored text is the secret)
        try:
            identify_hasher(secret)
        except ValueError:
            return True
        return False


def mtls_client_of(application: Any) -> MTLSClient | None:
    """The application's mTLS row, without a query when it was ``select_related``."""
    if application is None:
        return None
    try:
        return application.mtls  # type: ignore[no-any-return]
    except ObjectDoesNotExist:
        return None


class AccessTokenBinding(models.Model):
    """RFC 8705 §3: the certificate thumbprint an access token is bound to (``cnf``)."""

    access_token = models.OneToOneField(
        oauth2_settings.ACCESS_TOKEN_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="mtls_binding",
    )
    x5t_s256 = models.CharField(max_length=43, db_index=True)

    class Meta:
        verbose_name = _("certificate-bound access token")

    def __str__(self) -> str:
        return self.x5t_s256


class RefreshTokenBinding(models.Model):
    """RFC 8705 §4, §6.3: how a refresh token's grant is bound.

    ``x5t_s256`` binds the refresh token itself (public clients, or ``REFRESH_TOKEN_BINDING =
    "all"``); ``grant_bound`` remembers that the grant was issued bound, which outlives the old
    access token DOT deletes on refresh.
    """

    refresh_token = models.OneToOneField(
        oauth2_settings.REFRESH_TOKEN_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="mtls_binding",
    )
    x5t_s256 = models.CharField(max_length=43, blank=True, default="")
    grant_bound = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("certificate-bound refresh token")

    def __str__(self) -> str:
        return self.x5t_s256 or "grant bound"
