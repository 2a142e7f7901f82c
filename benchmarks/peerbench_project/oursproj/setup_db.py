"""Migrate, switch SQLite to WAL and (re)create the clients of the "ours" target. Idempotent."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oursproj.settings")
import django  # noqa: E402

django.setup()
from cryptography import x509  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from jwcrypto import jwk  # noqa: E402
from oauth2_provider.models import get_access_token_model, get_application_model  # noqa: E402

from django_oauth_mtls.models import MTLSClient  # noqa: E402

certs = os.environ.get("PEERBENCH_CERTS", "/tmp/peerbench/certs")
call_command("migrate", verbosity=0)
if connection.vendor == "sqlite":
    with connection.cursor() as c:
        c.execute("PRAGMA journal_mode=WAL")
Application = get_application_model()
with open(os.path.join(certs, "selfsigned.crt"), "rb") as f:
    selfsigned = x509.load_pem_x509_certificate(f.read())
import base64  # noqa: E402

from cryptography.hazmat.primitives.serialization import Encoding  # noqa: E402

member = {
    **jwk.JWK.from_pyca(selfsigned.public_key()).export_public(as_dict=True),
    "x5c": [base64.b64encode(selfsigned.public_bytes(Encoding.DER)).decode()],
}
CLIENTS = [
    # client_id, secret, hash_client_secret, mTLS row (or None)
    ("ours-plain", "ours-plain-secret-0123456789abcdef", False, None),
    (
        "ours-pki",
        "unused-0123456789abcdef",
        False,
        {
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_san_dns": "pki-client.peerbench.test",
            "tls_client_certificate_bound_access_tokens": True,
        },
    ),
    (
        # P10 (issue #15): as ours-pki, its access tokens JWTs (used only in the JWT phase).
        "ours-pki-jwt",
        "unused-0123456789abcdef",
        False,
        {
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_san_dns": "pki-client.peerbench.test",
            "tls_client_certificate_bound_access_tokens": True,
            "access_token_format": "jwt",
        },
    ),
    (
        "ours-selfsigned",
        "unused-0123456789abcdef",
        False,
        {
            "token_endpoint_auth_method": "self_signed_tls_client_auth",
            "jwks": {"keys": [member]},
            "tls_client_certificate_bound_access_tokens": True,
        },
    ),
]
for cid, secret, hashed, mtls in CLIENTS:
    Application.objects.filter(client_id=cid).delete()
    app = Application.objects.create(
        name=cid,
        client_id=cid,
        client_secret=secret,
        hash_client_secret=hashed,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
    )
    if mtls:
        row = MTLSClient(application=app, **mtls)
        row.full_clean()
        row.save()
get_access_token_model().objects.all().delete()
jwt_key = os.environ.get("PEERBENCH_OURS_JWT_KEY")
if jwt_key and not os.path.exists(jwt_key):
    # mtls_jwt_key generate: ec-p256 (ES256) unless PEERBENCH_OURS_JWT_KEY_TYPE says otherwise.
    key_type = os.environ.get("PEERBENCH_OURS_JWT_KEY_TYPE") or "ec-p256"
    call_command("mtls_jwt_key", "generate", jwt_key, "--type", key_type)
print("ours setup ok")
