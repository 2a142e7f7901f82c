"""``make demo``: start the example project, show what it sees, stop everything, exit 0.

Bounded by design: every process it starts is stopped before it exits, even on failure.
``--serve`` keeps the example running until interrupted instead.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_client_certificate() -> tuple[str, str]:
    """A self-signed demo certificate (PEM) and its x5t#S256, made now with cryptography."""
    import base64
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "demo-client")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("demo-client.example")]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    digest = cert.fingerprint(hashes.SHA256())
    return pem, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited early with status {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).close()  # noqa: S310 - loopback only
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def show(title: str, method: str, url: str, headers: dict[str, str]) -> dict[str, object]:
    print(f"\n--- {title}")
    print(f"> {method} {url}")
    for key, value in headers.items():
        shown = value if len(value) <= 72 else value[:60] + f"…({len(value)} bytes)"
        print(f"> {key}: {shown}")
    request = urllib.request.Request(url, method=method, headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        body = json.loads(response.read())
        print(f"< HTTP {response.status}  Cache-Control: {response.headers.get('Cache-Control')}")
    print("< " + json.dumps(body, indent=2).replace("\n", "\n< "))
    return body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", action="store_true", help="keep the example running")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="oauth-mtls-demo-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "EXAMPLE_SQLITE_PATH": os.environ.get("EXAMPLE_SQLITE_PATH", str(workdir / "demo.sqlite3")),
        "OAUTH2_MTLS_CERTIFICATE_SOURCE": os.environ.get("OAUTH2_MTLS_CERTIFICATE_SOURCE", "nginx"),
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    print("== django-oauth-mtls demo ==")
    print(f"database: {env['EXAMPLE_SQLITE_PATH']} (SQLite)")
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    port = int(os.environ.get("DEMO_PORT") or free_port())
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "--limit-request-field_size", "32768", "--log-level", "warning",
         "example_project.wsgi:application"],
        cwd=ROOT,
        env=env,
    )
    try:
        wait_for(f"{base}/api/certificate/", server)
        print(f"example project running at {base} (gunicorn, pid {server.pid})")
        if args.serve:
            print("serving until Ctrl-C; GET /api/certificate/ shows what the app sees")
            server.wait()
            return 0
        pem, thumbprint = make_client_certificate()
        print(f"\nmade a client certificate: CN=demo-client, x5t#S256 {thumbprint}")
        seen = show(
            "the certificate as nginx forwards it ($ssl_client_escaped_cert), from loopback",
            "GET",
            f"{base}/api/certificate/",
            {"X-SSL-Client-Cert": quote(pem, safe="-")},
        )
        if seen.get("x5t#S256") != thumbprint:
            print("!! the app saw another thumbprint", file=sys.stderr)
            return 1
        print(f"\nthe app saw exactly the thumbprint the client computed: {thumbprint}")
        show("no certificate", "GET", f"{base}/api/certificate/", {})
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        print("\nstopped everything the demo started.")


if __name__ == "__main__":
    sys.exit(main())
