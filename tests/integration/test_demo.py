"""``make demo`` and ``make serve`` (example_project/demo.py), run as the README runs them.

The README promises that ``make demo`` walks through the example with real certificates, stops
everything it started and exits 0. These tests run it in a subprocess — nginx in front when it
is installed, and ``runserver_mtls`` — and check the exit status, the key answers (200 with the
certificate, 401 without it and with a stranger's, the introspected ``cnf``), and that no
process the demo started, nor its temporary directory, is left behind. They are ordinary
integration tests: ``make test`` and every CI cell run them.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from example_project import demo

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 180

STARTED = re.compile(r"started (\S+) \(pid (\d+)\)")
WORKDIR = re.compile(r"working directory (\S+) ")
X5T = r"[A-Za-z0-9_-]{43}"


def demo_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    return env


def run_demo(*args: str) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", "example_project.demo", *args],
        cwd=ROOT,
        env=demo_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def processes_mentioning(text: str) -> list[int]:
    """Processes whose command line or environment names ``text`` (Linux; others: none)."""
    found = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        for name in ("cmdline", "environ"):
            with contextlib.suppress(OSError):
                if text.encode() in (entry / name).read_bytes():
                    found.append(int(entry.name))
                    break
    return found


def assert_nothing_left(output: str) -> None:
    started = [(name, int(pid)) for name, pid in STARTED.findall(output)]
    assert started, output
    for name, pid in started:
        assert f"stopped {name} (pid {pid})" in output, output
    deadline = time.monotonic() + 10
    while any(alive(pid) for _, pid in started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [(n, p) for n, p in started if alive(p)] == [], output
    workdir = WORKDIR.search(output)
    assert workdir, output
    assert not Path(workdir.group(1)).exists()
    assert processes_mentioning(workdir.group(1)) == []


def status_line(output: str, status: int, title: str) -> bool:
    return (
        re.search(rf"^  {status}  \(expected {status}\)  {re.escape(title)}$", output, re.M)
        is not None
    )


@pytest.mark.parametrize(
    ("server", "registration"),
    [("auto", "auto"), ("runserver", "command")],
    ids=["nginx-if-installed+registration-over-http", "runserver_mtls+mtls_set_client"],
)
def test_demo_walks_through_and_stops_everything(server: str, registration: str) -> None:
    started = time.monotonic()
    status, output = run_demo("--server", server, "--registration", registration)
    assert status == 0, output
    assert "exit status 0" in output
    assert time.monotonic() - started < TIMEOUT

    if server == "runserver":
        assert "OAUTH2_MTLS_CERTIFICATE_SOURCE=wsgi_environ" in output
    if registration == "command":
        assert "$ python manage.py mtls_set_client" in output
    else:
        assert status_line(output, 201, "register the PKI client (tls_client_auth, SAN dns)")
        assert "register the self-signed client" in output

    assert '"tls_client_certificate_bound_access_tokens": true' in output
    assert status_line(
        output, 401, "token request without the certificate (refused: it is the credential)"
    )
    assert status_line(output, 200, "with the PKI client's certificate"), output
    assert status_line(output, 401, "the same token without a certificate (a stolen token)"), output
    assert status_line(output, 401, "the same token with a stranger's certificate"), output
    assert status_line(output, 200, "whoami with the self-signed certificate"), output

    pki_client = re.search(rf"PKI client .*\n\s+x5t#S256 ({X5T})", output)
    cnf = re.search(rf"ok: cnf x5t#S256 ({X5T}) is the PKI client's certificate", output)
    assert pki_client and cnf, output
    assert cnf.group(1) == pki_client.group(1)
    assert re.search(rf'"cnf": {{\n<\s+"x5t#S256": "{cnf.group(1)}"', output), output

    assert_nothing_left(output)


def test_a_status_other_than_expected_fails_the_demo(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Registered with a SAN the certificate does not carry, the PKI client's token request
    gets 401 where 200 is expected: the demo stops there, cleans up and exits 1."""
    monkeypatch.setattr(
        demo,
        "pki_client_metadata",
        lambda: {
            "client_name": "wrong SAN",
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_san_dns": "someone-else.demo.example",
            "tls_client_certificate_bound_access_tokens": True,
        },
    )
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        status = demo.main(["--server", "runserver"])
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    output = capsys.readouterr().out
    assert status == 1, output
    assert "!! FAILED: token request, client_credentials" in output
    assert "expected HTTP 200, got 401" in output
    assert "exit status 1" in output
    assert_nothing_left(output)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_runs_until_ctrl_c() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "example_project.demo", "--serve", "--port", str(port)],
        cwd=ROOT,
        env=demo_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert process.stdout is not None
    stdout = process.stdout
    reader = threading.Thread(target=lambda: lines.extend(stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + TIMEOUT
        while not any("serving until Ctrl-C" in line for line in lines):
            assert process.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        output = "".join(lines)
        ca = re.search(r"demo CA\s+(\S+)", output)
        password = re.search(r"\(user demo, password (\S+)\)", output)
        assert ca and password, output
        assert f"admin       https://localhost:{port}/admin/" in output
        context = ssl.create_default_context(cafile=ca.group(1))
        with urllib.request.urlopen(
            f"https://localhost:{port}/admin/login/", context=context, timeout=20
        ) as response:
            assert response.status == 200
            assert b"Django" in response.read()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=10)
    output = "".join(lines)
    assert "interrupted" in output and "exit status 0" in output, output
    assert_nothing_left(output)
