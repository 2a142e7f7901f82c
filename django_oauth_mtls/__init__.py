"""django-oauth-mtls: RFC 8705 mutual-TLS client authentication and certificate-bound tokens
for django-oauth-toolkit.

Public helpers are re-exported lazily, so importing the package imports no Django.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "get_client_certificate"]

if TYPE_CHECKING:
    from .intake import get_client_certificate


def __getattr__(name: str) -> Any:
    if name == "get_client_certificate":
        from .intake import get_client_certificate

        return get_client_certificate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
