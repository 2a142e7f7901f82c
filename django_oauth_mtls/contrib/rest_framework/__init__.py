"""DRF classes for certificate-bound tokens (RFC 8705 §3). DRF stays an optional extra."""

from __future__ import annotations

from .authentication import MTLSOAuth2Authentication
from .permissions import TokenIsCertificateBound

__all__ = ["MTLSOAuth2Authentication", "TokenIsCertificateBound"]
