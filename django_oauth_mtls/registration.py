"""Dynamic client registration with RFC 8705 metadata (RFC 7591, RFC 7592; RFC 8705 §2.1.2,
§2.2.2, §3.4).

DOT's registration views stay in charge of everything DOT knows: the permission classes
(``DCR_REGISTRATION_PERMISSION_CLASSES``), ``DCR_ENABLED``, grant types, redirect URIs, client
names, registration access tokens and their rotation. The subclasses here

1. hand DOT the request with ``token_endpoint_auth_method`` replaced by a method DOT knows, so
   DOT derives the client type as it always does (``none`` → public; anything else,
   ``tls_client_auth`` and ``self_signed_tls_client_auth`` included, → confidential);
2. validate the RFC 8705 metadata and store it in ``MTLSClient`` inside the same transaction as
   DOT's writes, so a ``400 invalid_client_metadata`` leaves nothing behind;
3. echo the metadata in POST, GET and PUT responses, and leave ``client_secret`` out for the
   mTLS methods (the client authenticates with its certificate; ``MTLSClient.save`` gives it a
   random secret, hashed, that nobody ever sees and that authenticates nothing);
4. bound what is registered (``limits``): each value's length, ``jwks``'s size, the body's
   nesting (checked by a scan before any parse, so no ``RecursionError`` can become a 500).

A client whose metadata DOT alone can express (``client_secret_basic`` or ``none``, no bound
tokens) gets no ``MTLSClient`` row and stays exactly a DOT client.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from cryptography import x509
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.compat import login_not_required
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import get_application_model
from oauth2_provider.views import (
    DynamicClientRegistrationManagementView,
    DynamicClientRegistrationView,
)

from .conf import mtls_settings
from .exceptions import ClientAuthError
from .jwks import JWKSetError, parse_jwk_set
from .jwks_addresses import uri_problem
from .limits import MAX_CHARACTERS, MAX_JSON_DEPTH, json_too_deep, jwks_too_large, too_long
from .matching import SUBJECT_FIELDS, RegisteredValueError, normalise_registered_value
from .models import MTLS_METHODS, SELF_SIGNED_TLS_CLIENT_AUTH, TLS_CLIENT_AUTH, MTLSClient
from .validation import check_key_strength

__all__ = [
    "AUTH_METHODS",
    "InvalidClientMetadata",
    "MTLSDynamicClientRegistrationManagementView",
    "MTLSDynamicClientRegistrationView",
    "RegistrationMetadata",
    "parse_metadata",
    "registered_metadata",
]

CLIENT_SECRET_BASIC: Final = "client_secret_basic"
CLIENT_SECRET_POST: Final = "client_secret_post"
NONE: Final = "none"
#: The methods DOT's own views accept (and derive the client type from).
DOT_METHODS: Final = frozenset({CLIENT_SECRET_BASIC, CLIENT_SECRET_POST, NONE})
#: Every ``token_endpoint_auth_method`` this server registers.
AUTH_METHODS: Final = (
    CLIENT_SECRET_BASIC,
    CLIENT_SECRET_POST,
    NONE,
    TLS_CLIENT_AUTH,
    SELF_SIGNED_TLS_CLIENT_AUTH,
)
#: RFC 7591 §2: the default when a client registers no method.
DEFAULT_AUTH_METHOD: Final = CLIENT_SECRET_BASIC
BOUND_TOKENS: Final = "tls_client_certificate_bound_access_tokens"
#: RFC 7591 §3.2.2 has no code for a body that is not valid metadata but invalid_client_metadata
#: (DOT answers "Request body must be valid JSON" with it too).
TOO_DEEP: Final = f"the request body nests JSON deeper than {MAX_JSON_DEPTH} levels"

log = logging.getLogger(__name__)

_JSON_TYPES: Final = {
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


class InvalidClientMetadata(ValueError):
    """RFC 7591 §3.2.2 ``invalid_client_metadata``; ``description`` is the error_description."""

    def __init__(self, description: str) -> None:
        self.description = description
        super().__init__(description)


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class RegistrationMetadata:
    """The RFC 8705 part of a registration request, validated."""

    token_endpoint_auth_method: str = DEFAULT_AUTH_METHOD
    subject: tuple[str, str] | None = None  # (field, normalised value) for tls_client_auth
    jwks: dict[str, Any] | None = None
    jwks_uri: str = ""
    tls_client_certificate_bound_access_tokens: bool = False

    def needs_row(self) -> bool:
        """Whether DOT's ``Application`` alone cannot express this registration."""
        return (
            self.token_endpoint_auth_method not in (CLIENT_SECRET_BASIC, NONE)
            or self.tls_client_certificate_bound_access_tokens
        )

    def apply(self, row: MTLSClient) -> None:
        """Write every registrable field (RFC 7592 §2.2: an update replaces them all)."""
        row.token_endpoint_auth_method = self.token_endpoint_auth_method
        for field in SUBJECT_FIELDS:
            setattr(row, field, "")
        if self.subject is not None:
            setattr(row, self.subject[0], self.subject[1])
        row.jwks = self.jwks
        row.jwks_uri = self.jwks_uri
        row.tls_client_certificate_bound_access_tokens = (
            self.tls_client_certificate_bound_access_tokens
        )


def parse_metadata(data: Mapping[str, Any]) -> RegistrationMetadata:
    """Validate the RFC 8705 members of a registration request; raise ``InvalidClientMetadata``.

    Members of other methods are refused when they name a certificate subject (a
    ``tls_client_auth_*`` member with another method is a mistake worth reporting); ``jwks``
    and ``jwks_uri`` are checked for type and exclusivity always (RFC 7591 §2) but stored only
    for ``self_signed_tls_client_auth``, the one method here that uses them.
    """
    # Issue 14: every registered value is bounded (limits.py), whatever the method, before any
    # work on it; the description names the field and the bound, never the value.
    for field in MAX_CHARACTERS:
        problem = too_long(field, data.get(field))
        if problem:
            raise InvalidClientMetadata(problem)
    if isinstance(data.get("jwks"), dict):
        problem = jwks_too_large(data["jwks"], mtls_settings.JWKS_MAX_BYTES)
        if problem:
            raise InvalidClientMetadata(problem)
    method = data.get("token_endpoint_auth_method", DEFAULT_AUTH_METHOD)
    if not isinstance(method, str):
        raise InvalidClientMetadata(
            f"token_endpoint_auth_method must be a string, not {_json_type(method)}"
        )
    if method not in AUTH_METHODS:
        raise InvalidClientMetadata(
            f"Unsupported token_endpoint_auth_method: {method!r}. "
            f"Supported values: {', '.join(AUTH_METHODS)}"
        )

    # RFC 8705 §2.1.2: each subject member is a single string; exactly one for tls_client_auth.
    present = [field for field in SUBJECT_FIELDS if field in data]
    for field in present:
        if not isinstance(data[field], str):
            raise InvalidClientMetadata(
                f"{field} must be a single string (RFC 8705 §2.1.2), not {_json_type(data[field])}"
            )
    subject: tuple[str, str] | None = None
    if method == TLS_CLIENT_AUTH:
        if len(present) != 1:
            found = f": {', '.join(present)}" if present else ""
            raise InvalidClientMetadata(
                "tls_client_auth requires exactly one of "
                f"{', '.join(SUBJECT_FIELDS)} (RFC 8705 §2.1.2); found {len(present)}{found}"
            )
        field = present[0]
        try:
            subject = (field, normalise_registered_value(field, data[field]))
        except RegisteredValueError as exc:
            raise InvalidClientMetadata(str(exc)) from None
    elif present:
        raise InvalidClientMetadata(
            f"{present[0]} is only used with token_endpoint_auth_method tls_client_auth"
        )

    flag = data.get(BOUND_TOKENS, False)
    if not isinstance(flag, bool):
        raise InvalidClientMetadata(
            f"{BOUND_TOKENS} must be a boolean (RFC 8705 §3.4), not {_json_type(flag)}"
        )

    if "jwks" in data and not isinstance(data["jwks"], dict):
        raise InvalidClientMetadata(
            f"jwks must be an object (a JWK set), not {_json_type(data['jwks'])}"
        )
    if "jwks_uri" in data and not isinstance(data["jwks_uri"], str):
        raise InvalidClientMetadata(
            f"jwks_uri must be a string, not {_json_type(data['jwks_uri'])}"
        )
    if "jwks" in data and "jwks_uri" in data:
        raise InvalidClientMetadata("jwks and jwks_uri must not both be present (RFC 7591 §2)")
    jwks: dict[str, Any] | None = None
    jwks_uri = ""
    if method == SELF_SIGNED_TLS_CLIENT_AUTH:
        if "jwks" in data:
            jwks = data["jwks"]
            _check_jwks(jwks)
        elif "jwks_uri" in data:
            jwks_uri = data["jwks_uri"].strip()
            problem = uri_problem(
                jwks_uri, allow_private=mtls_settings.JWKS_ALLOW_PRIVATE_ADDRESSES
            )
            if problem:
                raise InvalidClientMetadata(problem)
        else:
            raise InvalidClientMetadata(
                "self_signed_tls_client_auth requires jwks or jwks_uri holding the client's "
                "certificates as x5c (RFC 8705 §2.2.2)"
            )
    return RegistrationMetadata(
        token_endpoint_auth_method=method,
        subject=subject,
        jwks=jwks,
        jwks_uri=jwks_uri,
        tls_client_certificate_bound_access_tokens=flag,
    )


def _check_jwks(jwks: dict[str, Any]) -> None:
    # Its size was checked first (parse_metadata).
    try:
        certificates = parse_jwk_set(jwks)
    except JWKSetError as exc:
        raise InvalidClientMetadata(f"jwks: {exc}") from None
    if not certificates:
        raise InvalidClientMetadata(
            "jwks holds no certificate: self_signed_tls_client_auth matches the presented "
            "certificate against x5c[0] of a key (RFC 8705 §2.2)"
        )
    for index, der in enumerate(certificates):
        try:
            check_key_strength(x509.load_der_x509_certificate(der), mtls_settings.MIN_RSA_KEY_BITS)
        except ClientAuthError as exc:
            raise InvalidClientMetadata(
                f"jwks: certificate {index + 1} would never authenticate: {exc.description}"
            ) from None


def registered_metadata(application: Any, row: MTLSClient | None) -> dict[str, Any]:
    """The RFC 8705 members of a registration response (RFC 7591 §3.2.1: all of them)."""
    if row is None:
        method = NONE if application.client_type == "public" else CLIENT_SECRET_BASIC
        return {"token_endpoint_auth_method": method, BOUND_TOKENS: False}
    data: dict[str, Any] = {"token_endpoint_auth_method": row.token_endpoint_auth_method}
    if row.token_endpoint_auth_method == TLS_CLIENT_AUTH and row.subject_field is not None:
        field, value = row.subject_field
        data[field] = value
    if row.token_endpoint_auth_method == SELF_SIGNED_TLS_CLIENT_AUTH:
        if row.jwks:
            data["jwks"] = row.jwks
        elif row.jwks_uri:
            data["jwks_uri"] = row.jwks_uri
    data[BOUND_TOKENS] = row.tls_client_certificate_bound_access_tokens
    return data


# --- glue -------------------------------------------------------------------------------------


def _json_object(request: HttpRequest) -> dict[str, Any] | None:
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeError, RecursionError):  # RecursionError: see _too_deep
        return None
    return data if isinstance(data, dict) else None


def _too_deep(request: HttpRequest) -> bool:
    """Issue 14: a body nested deeper than ``MAX_JSON_DEPTH`` (a scan, before any parse: ~920
    levels parsed here but raised RecursionError in DOT's parse, a 500) is swapped for one DOT
    refuses as invalid JSON after its permission or token checks; ``_refuse_too_deep`` then
    keeps DOT's 401 and turns its 400 into ours."""
    if not json_too_deep(request.body):
        return False
    request._body = b"\x00"
    return True


def _refuse_too_deep(response: HttpResponse, client_id: str | None) -> HttpResponse:
    return _metadata_error(TOO_DEEP, client_id) if response.status_code == 400 else response


def _hand_to_dot(request: HttpRequest, data: dict[str, Any]) -> None:
    """Let DOT see a method it knows; it then derives the client type (confidential)."""
    method = data.get("token_endpoint_auth_method", DEFAULT_AUTH_METHOD)
    if not (isinstance(method, str) and method in DOT_METHODS):
        # Our own check (after DOT's) reports unknown methods with the full list of values.
        substituted = {**data, "token_endpoint_auth_method": CLIENT_SECRET_BASIC}
        request._body = json.dumps(substituted).encode("utf-8")


def _row_of(application: Any) -> MTLSClient | None:
    return MTLSClient.objects.filter(application=application).first()


def _store(application: Any, metadata: RegistrationMetadata) -> MTLSClient | None:
    row = _row_of(application)
    if row is None and not metadata.needs_row():
        return None  # exactly a DOT client
    if row is None:
        row = MTLSClient(application=application)
    metadata.apply(row)
    try:
        row.full_clean()
    except ValidationError as exc:
        raise InvalidClientMetadata(_describe(exc)) from None
    row.save()
    return row


def _describe(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return "; ".join(
            (" ".join(messages) if field == "__all__" else f"{field}: {' '.join(messages)}")
            for field, messages in exc.message_dict.items()
        )
    return "; ".join(exc.messages)


def _metadata_error(description: str, client_id: str | None = None) -> JsonResponse:
    log.warning(
        "registration refused: client_id=%s error=invalid_client_metadata detail=%s",
        client_id or "-",
        description,
    )
    response = JsonResponse(
        {"error": "invalid_client_metadata", "error_description": description}, status=400
    )
    response["Cache-Control"] = "no-store"
    return response


def _respond(body: dict[str, Any], status: int) -> JsonResponse:
    response = JsonResponse(body, status=status)
    # The body carries a registration access token (and perhaps a client secret).
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


def _application(client_id: str) -> Any:
    return get_application_model().objects.get(client_id=client_id)


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(login_not_required, name="dispatch")
class MTLSDynamicClientRegistrationView(DynamicClientRegistrationView):  # type: ignore[misc]
    """RFC 7591 registration (DOT's view) accepting and echoing the RFC 8705 metadata."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if _too_deep(request):
            return _refuse_too_deep(super().post(request, *args, **kwargs), None)
        data = _json_object(request)
        if data is None:
            return super().post(request, *args, **kwargs)  # type: ignore[no-any-return]
        _hand_to_dot(request, data)
        with transaction.atomic():
            response: HttpResponse = super().post(request, *args, **kwargs)
            if response.status_code != 201:
                return response  # DOT's refusal: permission, grant types, redirect URIs...
            body = json.loads(response.content)
            application = _application(body["client_id"])
            try:
                row = _store(application, parse_metadata(data))
            except InvalidClientMetadata as exc:
                transaction.set_rollback(True)  # the application and its token go too
                return _metadata_error(exc.description)
        body.update(registered_metadata(application, row))
        if body["token_endpoint_auth_method"] in MTLS_METHODS:
            body.pop("client_secret", None)  # RFC 8705 §2: the certificate is the credential
        return _respond(body, 201)


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(login_not_required, name="dispatch")
class MTLSDynamicClientRegistrationManagementView(
    DynamicClientRegistrationManagementView  # type: ignore[misc]
):
    """RFC 7592 read, update and delete (DOT's view) carrying the RFC 8705 metadata."""

    def get(self, request: HttpRequest, client_id: str, *args: Any, **kwargs: Any) -> HttpResponse:
        response: HttpResponse = super().get(request, client_id, *args, **kwargs)
        if response.status_code != 200:
            return response
        body = json.loads(response.content)
        application = _application(client_id)
        body.update(registered_metadata(application, _row_of(application)))
        return _respond(body, 200)

    def put(self, request: HttpRequest, client_id: str, *args: Any, **kwargs: Any) -> HttpResponse:
        if _too_deep(request):
            return _refuse_too_deep(super().put(request, client_id, *args, **kwargs), client_id)
        data = _json_object(request)
        if data is None:
            return super().put(request, client_id, *args, **kwargs)  # type: ignore[no-any-return]
        _hand_to_dot(request, data)
        with transaction.atomic():
            response: HttpResponse = super().put(request, client_id, *args, **kwargs)
            if response.status_code != 200:
                return response
            body = json.loads(response.content)
            application = _application(client_id)
            previous = _row_of(application)
            was_mtls = previous is not None and previous.is_mtls
            try:
                row = _store(application, parse_metadata(data))
            except InvalidClientMetadata as exc:
                transaction.set_rollback(True)  # DOT's update and token rotation go too
                return _metadata_error(exc.description, client_id)
            body.update(registered_metadata(application, row))
            method = body["token_endpoint_auth_method"]
            if was_mtls and method in (CLIENT_SECRET_BASIC, CLIENT_SECRET_POST):
                # The client never received a secret (registration withheld it): issue one now.
                secret = generate_client_secret()
                application.client_secret = secret
                application.save(update_fields=["client_secret"])
                body["client_secret"] = secret
        return _respond(body, 200)
