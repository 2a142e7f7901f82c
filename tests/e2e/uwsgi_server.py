"""The example under uWSGI for the end-to-end tests, run as docs/proxies.md runs it.

:func:`uwsgi_arguments` is the documented command line (``test_the_documented_command_is_the_
tested_one`` compares them). uWSGI loads :mod:`tests.e2e.uwsgi_probe`, the example wrapped so
that every certificate field reaching uWSGI is recorded per request, as ``gunicorn_probe.py``
does under gunicorn (:func:`tests.e2e.servers.reached` reads both).
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.conftest import require_tool
from tests.e2e.servers import ROOT, Managed, example_env, free_port, start_probed_example

#: uWSGI's ``--buffer-size``: its default, 4096 bytes, bounds the whole request head, below the
#: app's MAX_HEADER_BYTES (16384) for the certificate field alone (docs/proxies.md).
BUFFER_SIZE = 32768
#: SIGTERM lets the requests in flight finish (``--die-on-term`` would cut them off).
GRACEFUL_TERM = "unix_signal:15 gracefully_kill_them_all"


def uwsgi_executable() -> str:
    """uWSGI from the test venv (the ``pyuwsgi`` wheel of the ``dev`` extra), else on PATH."""
    beside = Path(sys.executable).with_name("uwsgi")
    return str(beside) if beside.exists() else require_tool("uwsgi")


def uwsgi_arguments(
    port: int,
    module: str = "example_project.wsgi:application",
    processes: int = 2,
    buffer_size: int | None = BUFFER_SIZE,
) -> list[str]:
    """docs/proxies.md's command: ``--http-socket`` (the peer, and so ``REMOTE_ADDR``, is the
    proxy), ``--buffer-size``, a graceful SIGTERM; ``buffer_size=None`` leaves uWSGI's
    default."""
    argv = [
        "--strict",
        "--http-socket", f"127.0.0.1:{port}",
        "--module", module,
        "--master", "--need-app",
        "--hook-master-start", GRACEFUL_TERM,
        "--processes", str(processes),
    ]  # fmt: skip
    if buffer_size is not None:
        argv += ["--buffer-size", str(buffer_size)]
    return argv


def start_uwsgi(
    directory: Path,
    sqlite_path: Path,
    extra_env: dict[str, str] | None = None,
    buffer_size: int | None = BUFFER_SIZE,
) -> Managed:
    """uWSGI on 127.0.0.1 serving the example (certificate source ``nginx``) through the
    probe; its record is ``server.extra["probe"]``."""
    port = free_port()
    probe = directory / "probe.jsonl"
    env = example_env(sqlite_path, "nginx")
    env.update(extra_env or {})
    env["E2E_PROBE_FILE"] = str(probe)
    argv = [
        uwsgi_executable(),
        *uwsgi_arguments(port, "tests.e2e.uwsgi_probe:application", buffer_size=buffer_size),
        "--chdir", str(ROOT),
    ]  # fmt: skip
    return start_probed_example("uwsgi", argv, directory / "uwsgi.log", port, env, probe)
