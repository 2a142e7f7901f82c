"""Signals for observability: connect a receiver to count or alert on refusals."""

from __future__ import annotations

from django.dispatch import Signal

#: Sent when a client fails certificate authentication.
#: Arguments: ``request`` (oauthlib request), ``client_id``, ``reason`` (a client-auth reason
#: code), ``description`` (the detail for logs and alerts; the client was told only the fixed
#: phrase of ``descriptions.client_auth_description``), ``x5t_s256`` (or ``None``).
client_authentication_failed = Signal()

#: Sent when a client authenticates with a certificate: ``request``, ``client_id``, ``method``,
#: ``x5t_s256``.
client_authenticated = Signal()

#: Sent when a protected resource refuses an access token (RFC 6750 §3.1 ``invalid_token``),
#: opaque or JWT. Arguments: ``request`` (oauthlib request), ``reason`` (a code of
#: ``descriptions.ACCESS_TOKEN_REASONS``), ``client_id`` (or ``None`` when unknown) and
#: ``x5t_s256`` (the presented certificate's thumbprint, or ``None``).
access_token_refused = Signal()
