"""Mint a pool of certificate-bound JWT access tokens for P10 (issue #15); standard library only.

    python mint_tokens.py URL CLIENT_ID CLIENT_CERT_HEADER_FILE COUNT > tokens.txt

``COUNT`` real ``client_credentials`` requests (``tls_client_auth``, the certificate in peerbench's
RFC 9440 ``Client-Cert`` field, read from ``CLIENT_CERT_HEADER_FILE``) on one keep-alive
connection. Every answer must be 200 with a JWS whose header says ``typ: at+jwt`` and whose
``cnf.x5t#S256`` is the SHA-256 thumbprint of that certificate; the tokens must all differ.
Prints one token per line; the ``alg`` and ``kid`` go to stderr (the label of the scenario).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import sys
from urllib.parse import urlencode, urlsplit


def b64json(segment: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def main() -> int:
    url, client_id, header_file, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    with open(header_file) as handle:
        field = handle.read().strip()  # RFC 9440: ":<base64 DER>:"
    thumbprint = (
        base64.urlsafe_b64encode(hashlib.sha256(base64.b64decode(field.strip(":"))).digest())
        .rstrip(b"=")
        .decode("ascii")
    )
    parts = urlsplit(url)
    body = urlencode(
        {"grant_type": "client_credentials", "scope": "read", "client_id": client_id}
    ).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Client-Cert": field}
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    tokens: list[str] = []
    header: dict = {}
    for _ in range(count):
        connection.request("POST", parts.path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        if response.status != 200:
            print(f"token request failed: {response.status} {data[:300]!r}", file=sys.stderr)
            return 1
        token = json.loads(data)["access_token"]
        pieces = token.split(".")
        if len(pieces) != 3:
            print("not a JWS: is the client's access_token_format jwt?", file=sys.stderr)
            return 1
        header, claims = b64json(pieces[0]), b64json(pieces[1])
        if header.get("typ") != "at+jwt" or claims.get("cnf") != {"x5t#S256": thumbprint}:
            print(f"unexpected JWT: header {header} cnf {claims.get('cnf')}", file=sys.stderr)
            return 1
        tokens.append(token)
        if response.getheader("Connection", "").lower() == "close":
            connection.close()
    if len(set(tokens)) != count:
        print("the token endpoint answered the same token twice", file=sys.stderr)
        return 1
    sys.stdout.write("".join(f"{token}\n" for token in tokens))
    print(f"alg={header.get('alg')} kid={header.get('kid')} tokens={count}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
