"""This package's per-request state on oauthlib's request, out of reach of request parameters.

oauthlib's ``Request.__getattr__`` answers any body or query parameter for an attribute that was
never set, so ``getattr(request, "mtls_bind_to", None)`` would read attacker input whenever the
attribute was not set on this path. Everything this package decides during a request lives in
one ``RequestState`` kept in the request's instance ``__dict__``: it is written explicitly and
read with ``vars()``, which never falls back to the parameters. A parameter with the same name
as the key only lands in oauthlib's ``_params``, never here.

Attributes that DOT and oauthlib themselves read with a fallback (``client``, ``encoding``,
``oauth2_error``, ``refresh_token_instance``) cannot move here; ``set_default`` writes them
explicitly before DOT or oauthlib reads them on the paths this package owns.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from .certificates import ClientCertificate

#: The instance-``__dict__`` key of the state (a parameter of that name never reaches it).
STATE_KEY = "_django_oauth_mtls_state"


@dataclass(slots=True)
class RequestState:
    """What this package decided about one oauthlib request."""

    #: Primary key of the application a certificate authenticated in this request, or ``None``.
    authenticated_client_pk: Any = None
    #: The certificate that authenticated it.
    certificate: ClientCertificate | None = None
    #: RFC 8705 §3: the thumbprint new tokens are bound to, or ``None`` (unbound).
    bind_to: str | None = None
    #: A token-endpoint grant (``validate_grant_type``): its access token may be a JWT.
    token_endpoint: bool = False
    #: The refresh token's grant was issued bound (FAPI 2: keep it bound).
    grant_bound: bool = False
    #: The answer depended on the certificate (RFC 9440 §2.4: ``Cache-Control: no-store``).
    certificate_dependent: bool = False
    #: A bound token was refused for its certificate (a 401 ``invalid_token``, not anonymous).
    binding_refused: bool = False
    #: Remote introspection refused the token (``oauth2_error`` says why).
    introspection_refused: bool = False
    #: The client-auth reason code of a refusal.
    error_code: str | None = None
    #: Why a protected resource refused the access token (``descriptions.ACCESS_TOKEN_REASONS``).
    refusal_reason: str | None = None
    #: The refused token's ``client_id`` when it is known (a verified JWT's claim).
    refusal_client_id: str | None = None


def request_state(request: Any) -> RequestState:
    """The request's state, created empty on first use. Never reads a request parameter."""
    namespace = vars(request)
    state = namespace.get(STATE_KEY)
    if type(state) is not RequestState:
        state = RequestState()
        namespace[STATE_KEY] = state
    return state


def explicit(request: Any, name: str, default: Any = None) -> Any:
    """An attribute that was really set on ``request`` (never a request parameter)."""
    if request is None:
        return default
    return vars(request).get(name, default)


def set_default(request: Any, name: str, value: Any) -> None:
    """Set ``name`` unless this request already carries it as a real attribute, so that a
    reader with a fallback (DOT, oauthlib) never sees a request parameter of that name."""
    namespace = vars(request)
    if name not in namespace:
        namespace[name] = value


def oauth2_error_of(oauthlib_request: Any) -> dict[str, str] | None:
    """The error DOT or this package set on ``oauthlib_request`` (never a request parameter
    of that name), or ``None``."""
    error = explicit(oauthlib_request, "oauth2_error")
    if not isinstance(error, Mapping):
        return None
    return {str(key): str(value) for key, value in error.items()}


#: The access tokens the validator created during the current token request, collected for the
#: token view so it can send DOT's ``app_authorized`` with the object in hand instead of reading
#: it back from the database (``None`` outside ``collecting_issued_tokens``).
_issued: ContextVar[list[Any] | None] = ContextVar("django_oauth_mtls_issued", default=None)


@contextmanager
def collecting_issued_tokens() -> Iterator[list[Any]]:
    """Collect the access tokens created while the block runs (this thread or task only)."""
    holder: list[Any] = []
    token = _issued.set(holder)
    try:
        yield holder
    finally:
        _issued.reset(token)


def note_issued(access_token: Any) -> None:
    """Called by the validator for each access token it created."""
    holder = _issued.get()
    if holder is not None:
        holder.append(access_token)
