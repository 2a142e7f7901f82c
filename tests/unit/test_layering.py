"""The package's import graph: acyclic, pure modules at the bottom, models free of network code.

Read from the source with ``ast`` (nothing is imported): every ``import django_oauth_mtls.x``,
``from django_oauth_mtls[.x] import y`` and relative ``from .x import y`` / ``from . import x``,
at module level and inside functions alike (a function-level import is still an edge: it only
moves the cycle to run time), ``if TYPE_CHECKING:`` blocks included.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "django_oauth_mtls"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE

#: Modules that take values and return values: no Django, no DOT, no oauthlib, no settings
#: (STYLE: "pure logic apart from Django glue"); the README names them; tested without Django.
PURE = frozenset(
    {
        "binding",
        "certificates",
        "descriptions",
        "exceptions",
        "jwks",
        "jwks_addresses",
        "jwt_checks",
        "jwt_keysets",
        "limits",
        "matching",
        "proxies",
        "state",
        "validation",
    }
)
#: Third-party roots a pure module must not import, at any level.
FRAMEWORKS = frozenset({"django", "oauth2_provider", "oauthlib", "rest_framework"})
#: Modules that open sockets (or sit on top of a module that does, for that purpose).
NETWORK = frozenset({"jwks_fetch", "jwks_client", "jwt_resource_keys", "resource_server"})


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for path in sorted(ROOT.rglob("*.py"))
        if "migrations" not in path.parts
    }


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """(absolute module name, line) of every import in the file, whatever its level."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level > 1:
                    base = base[: -(node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target, node.lineno
            for alias in node.names:  # ``from . import x``: x may be a module
                yield f"{target}.{alias.name}", node.lineno


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        edges = graph.setdefault(name, set())
        for target, _line in _imports(name, path):
            if target in MODULES and target != name and target != PACKAGE:
                edges.add(target)
    return graph


GRAPH = _graph()


def _short(name: str) -> str:
    return name.removeprefix(f"{PACKAGE}.")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(_short(m) for m in component))
    return found


def _reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in GRAPH[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_the_walk_sees_the_package():
    # Guards the test itself: known edges, module-level and function-level, are found.
    assert f"{PACKAGE}.models" in GRAPH
    assert f"{PACKAGE}.conf" in GRAPH[f"{PACKAGE}.models"]  # module level
    assert f"{PACKAGE}.jwks_client" in GRAPH[f"{PACKAGE}.client_auth"]  # inside a function
    assert f"{PACKAGE}.signals" in GRAPH[f"{PACKAGE}.validator_jwt"]  # ``from . import x``
    assert f"{PACKAGE}.oauth2_validators" in GRAPH[f"{PACKAGE}.checks"]
    assert set(PURE | NETWORK) <= {_short(name) for name in MODULES}


def test_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_has_no_cycle():
    assert _cycles(GRAPH) == []


@pytest.mark.parametrize("module", sorted(PURE))
def test_pure_module_imports_no_framework(module):
    name = f"{PACKAGE}.{module}"
    offending = [
        f"line {line}: {target}"
        for target, line in _imports(name, MODULES[name])
        if target.split(".")[0] in FRAMEWORKS
    ]
    assert offending == [], f"{module} is meant to be pure"


@pytest.mark.parametrize("module", sorted(PURE))
def test_pure_module_imports_only_pure_modules(module):
    # Otherwise a framework arrives through the back door (e.g. conf imports django.conf).
    reached = {_short(target) for target in _reachable(f"{PACKAGE}.{module}")}
    assert sorted(reached - PURE) == []


def test_models_import_no_network_code():
    reached = {_short(target) for target in _reachable(f"{PACKAGE}.models")}
    assert sorted(reached & NETWORK) == []


def test_the_jwk_set_parser_does_not_know_the_fetcher():
    assert f"{PACKAGE}.jwks_fetch" not in _reachable(f"{PACKAGE}.jwks")
