"""Summarise a ``py-spy record --format raw`` profile of a server (collapsed stacks).

``python -m benchmarks.pyspy_summary profile.txt [--top 25]`` prints where the samples are:
self time by component (the innermost frame's package: our app, DOT, oauthlib, Django's ORM,
the SQLite driver, gunicorn, …), and inclusive time of the functions whose share matters for
issue #10 (client authentication, the intake, the token write, DOT's re-read of the token).
Used for P7's "what is the gap made of" (see README.md, Profiling).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

# py-spy names frames "Class.function (file:line)" (or "function (file:line)").
Q = r"(?:^|[;.])"  # start of a frame's function name
NEXT = r"[^;]*\);(?:[\w<>]+\.)*"  # the rest of this frame, then the next frame's qualifier

#: (component, pattern on one frame); the innermost frame that matches names the component of
#: a sample (its self time). First match wins.
COMPONENTS = [
    ("ours (django_oauth_mtls)", r"django_oauth_mtls/"),
    ("cryptography", r"cryptography/"),
    (
        "DB connect/close (CONN_MAX_AGE=0: per request)",
        Q + r"(connect|get_new_connection|ensure_connection|init_connection_state|close|_close|"
        r"close_if_unusable_or_obsolete) \(django/db/backends/",
    ),
    (
        "DB transaction (BEGIN, COMMIT: SQLite fsync)",
        Q + r"(commit|_commit|set_autocommit|_set_autocommit|_start_transaction_under_autocommit|"
        r"\w*savepoint\w*) \(django/db/",
    ),
    ("SQL execution (driver)", Q + r"\w*execute\w* \(django/db/backends/"),
    ("Django DB backend, other", r"django/db/backends/"),
    ("Django ORM (query building, model instances)", r"django/db/"),
    ("DOT (oauth2_provider)", r"oauth2_provider/"),
    ("oauthlib", r"oauthlib/"),
    ("DRF", r"rest_framework/"),
    (
        "Django request/response, middleware, URLs, signals",
        r"django/(core|http|middleware|urls|utils|views|dispatch|contrib)/",
    ),
    ("Django other", r"django/"),
    ("gunicorn (HTTP parsing, sockets)", r"gunicorn/"),
    ("Python stdlib", r"<frozen|lib/python3\.\d+/"),
]

#: Inclusive shares: a sample counts when its whole stack (frames joined by ";") matches.
FUNCTIONS = [
    (
        "our authenticate_client (incl. the application query DOT runs anyway)",
        Q + r"authenticate_client \([^;]*django_oauth_mtls",
    ),
    (
        "  of which the application query (select_related mtls; prepared since issue #16)",
        Q + r"_load_application \([^;]*django_oauth_mtls" + NEXT + r"(get|manager_method|first) \(",
    ),
    (
        "  of which certificate checks (authenticate_certificate)",
        Q + r"authenticate_certificate \(",
    ),
    ("certificate intake (get_client_certificate)", Q + r"get_client_certificate \("),
    (
        "bearer token check (validate_bearer_token, incl. its query)",
        Q + r"validate_bearer_token \(",
    ),
    (
        "oauthlib token endpoint (create_token_response)",
        Q + r"create_token_response \([^;]*oauthlib",
    ),
    ("token write (save_bearer_token, incl. INSERTs and COMMIT)", Q + r"save_bearer_token \("),
    (
        "  of which the access-token INSERT (Model.save; PreparedCreate since issue #16)",
        Q + r"_create_access_token \(.*;(?:Model\.save|PreparedCreate\.save_new) \(",
    ),
    (
        "  of which our binding INSERT (AccessTokenBinding)",
        Q
        + r"_create_access_token \([^;]*django_oauth_mtls"
        + NEXT
        + r"(create|manager_method|insert) \(",
    ),
    (
        "DOT re-reads the issued token for app_authorized",
        Q + r"authorization_flow_token_response" + NEXT + r"(get|manager_method) \(",
    ),
    (
        "DB connect/close",
        Q + r"(get_new_connection|ensure_connection|close_if_unusable_or_obsolete) \(",
    ),
    ("COMMIT", Q + r"(commit|_commit) \(django/db/backends"),
    ("gunicorn request parsing", r"gunicorn/http/"),
    ("Django URL resolving", Q + r"resolve \(django/urls/"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pyspy_summary")
    parser.add_argument("profile", type=Path)
    args = parser.parse_args(argv)
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    compiled = [(name, re.compile(p)) for name, p in COMPONENTS]
    functions = [(name, re.compile(p)) for name, p in FUNCTIONS]
    for line in args.profile.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        leaf = "other"
        for frame in reversed(frames):
            if frame.startswith("process ") or frame.startswith("thread "):
                continue
            match = next((name for name, pattern in compiled if pattern.search(frame)), None)
            if match:
                leaf = match
                break
        self_time[leaf] += count
        joined = ";".join(frames)
        for name, pattern in functions:
            if pattern.search(joined):
                inclusive[name] += count
    if not total:
        print("no samples")
        return 1
    print(f"{total} samples (active CPU only)")
    print("\nself time by component (innermost frame):")
    for name, count in self_time.most_common():
        print(f"  {100 * count / total:5.1f} %  {name}")
    print("\ninclusive time of selected functions:")
    for name, _ in FUNCTIONS:
        print(f"  {100 * inclusive[name] / total:5.1f} %  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
