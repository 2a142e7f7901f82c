"""The package for the index: what the sdist and the wheel carry, and metadata that says what CI
tests.

The build runs offline, in a copy of the files a build reads, with the installed setuptools
(PEP 517 hooks called directly, as ``python -m build --no-isolation`` does); it is skipped, with
the reason, where setuptools is older than the build-system's ``setuptools>=77`` (with build
isolation pip would fetch a newer one from the network). The dev extra installs it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE = ROOT / "django_oauth_mtls"
RECIPES = sorted(path.name for path in (PACKAGE / "recipes").glob("*.template"))

pytestmark = pytest.mark.packaging


def setuptools_version() -> Version | None:
    try:
        return Version(version("setuptools"))
    except PackageNotFoundError:
        return None


OLD_SETUPTOOLS = (
    f"setuptools {setuptools_version() or '(none)'} is installed; an offline build needs >=77 "
    "(PEP 639), which the dev extra installs (with build isolation pip would fetch it from the "
    "network)"
)


@dataclass
class Built:
    wheel: zipfile.ZipFile
    sdist: tarfile.TarFile

    def wheel_names(self) -> set[str]:
        return set(self.wheel.namelist())

    def sdist_names(self) -> set[str]:
        return {name.split("/", 1)[1] for name in self.sdist.getnames() if "/" in name}

    def metadata(self) -> dict[str, list[str]]:
        (name,) = [n for n in self.wheel.namelist() if n.endswith(".dist-info/METADATA")]
        message = HeaderParser().parsestr(self.wheel.read(name).decode("utf-8"))
        fields: dict[str, list[str]] = {}
        for key, value in message.items():
            fields.setdefault(key, []).append(value)
        return fields


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    installed = setuptools_version()
    if installed is None or installed < Version("77"):
        pytest.skip(OLD_SETUPTOOLS)
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(PACKAGE, source / PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    hooks = (
        "import sys\n"
        "from setuptools import build_meta\n"
        "out = sys.argv[1]  # build_meta rewrites sys.argv\n"
        "build_meta.build_sdist(out)\n"
        "build_meta.build_wheel(out)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", hooks, str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel_path,) = out.glob("*.whl")
    (sdist_path,) = out.glob("*.tar.gz")
    with zipfile.ZipFile(wheel_path) as wheel, tarfile.open(sdist_path) as sdist:
        yield Built(wheel, sdist)


def test_the_wheel_carries_the_license_the_types_the_recipes_the_templates_and_migrations(
    built: Built,
):
    names = built.wheel_names()
    assert f"django_oauth_mtls-{version_of_package()}.dist-info/licenses/LICENSE" in names
    assert "django_oauth_mtls/py.typed" in names
    assert {f"django_oauth_mtls/recipes/{name}" for name in RECIPES} <= names
    assert len(RECIPES) == 5  # nginx, haproxy, apache, two hosts, ingress-nginx
    for template in (PACKAGE / "templates").rglob("*.html"):
        assert template.relative_to(ROOT).as_posix() in names
    for migration in (PACKAGE / "migrations").glob("0*.py"):
        assert migration.relative_to(ROOT).as_posix() in names
    assert not [name for name in names if name.startswith(("tests/", "example_project/"))]


def test_the_wheel_ships_the_very_recipes_the_e2e_suite_runs(built: Built):
    for name in RECIPES:
        shipped = built.wheel.read(f"django_oauth_mtls/recipes/{name}")
        assert shipped == (PACKAGE / "recipes" / name).read_bytes(), name


def test_the_sdist_carries_the_license_the_readme_and_the_recipes(built: Built):
    names = built.sdist_names()
    assert {"LICENSE", "README.md", "pyproject.toml"} <= names
    assert {f"django_oauth_mtls/recipes/{name}" for name in RECIPES} <= names


def test_the_metadata_names_the_license_by_spdx_only(built: Built):
    metadata = built.metadata()
    assert metadata["Metadata-Version"] == ["2.4"]
    assert metadata["License-Expression"] == ["BSD-3-Clause"]
    assert metadata["License-File"] == ["LICENSE"]
    assert not [c for c in metadata["Classifier"] if c.startswith("License ::")]
    assert metadata["Author"] == ["django-oauth-mtls contributors"]
    urls = dict(url.split(", ", 1) for url in metadata["Project-URL"])
    assert set(urls) == {"Documentation", "Changelog"}
    assert all(url.startswith("https://") for url in urls.values())
    assert (ROOT / "LICENSE").read_text().startswith("BSD 3-Clause License\n")


# --- bounds and classifiers against .ci/run (no build needed) ----------------------------------


def ci_cells() -> set[tuple[str, str]]:
    """(Python, Django) minor versions of every ``make test`` cell of .ci/run."""
    ci = (ROOT / ".ci" / "run").read_text()
    pythons = dict(re.findall(r"^(PY\d+)=\$\(python_for (\d+\.\d+)\)", ci, re.MULTILINE))
    cells = re.findall(r"make test PYTHON=\"\$(PY\d+)\" DJANGO='~=(\d+\.\d+)\.0'", ci)
    assert cells, "no make test cell found in .ci/run"
    return {(pythons[python], django) for python, django in cells}


def test_python_bounds_and_classifiers_are_what_ci_tests():
    tested = {python for python, _ in ci_cells()}
    allowed = SpecifierSet(PYPROJECT["project"]["requires-python"])
    candidates = [f"3.{minor}" for minor in range(8, 16)]
    assert {v for v in candidates if f"{v}.0" in allowed} == tested
    classified = {
        c.rsplit(" :: ", 1)[1]
        for c in PYPROJECT["project"]["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    assert classified == tested


def test_django_bounds_and_classifiers_are_what_ci_tests():
    tested = {django for _, django in ci_cells()}
    (requirement,) = [d for d in PYPROJECT["project"]["dependencies"] if d.startswith("Django")]
    allowed = SpecifierSet(requirement.removeprefix("Django"))
    candidates = ["4.2", "5.0", "5.1", "5.2", "6.0", "6.1", "6.2", "7.0"]
    assert {v for v in candidates if f"{v}.0" in allowed and f"{v}.9" in allowed} == tested
    classified = {
        c.rsplit(" :: ", 1)[1]
        for c in PYPROJECT["project"]["classifiers"]
        if re.fullmatch(r"Framework :: Django :: \d+\.\d+", c)
    }
    assert classified == tested


def test_every_classifier_is_known_to_the_index():
    trove = pytest.importorskip("trove_classifiers", reason="trove-classifiers is in the dev extra")
    unknown = set(PYPROJECT["project"]["classifiers"]) - set(trove.classifiers)
    assert unknown == set()
    assert "Development Status :: 4 - Beta" in PYPROJECT["project"]["classifiers"]


def version_of_package() -> str:
    text = (PACKAGE / "__init__.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    assert match
    return match.group(1)


# --- the README is the package page ------------------------------------------------------------

README = (ROOT / "README.md").read_text()
DOCS_URL = "https://django-oauth-mtls.readthedocs.io/en/latest/"


def readme_links() -> list[str]:
    inline = re.findall(r"\]\(([^)\s]+)\)", README)
    auto = re.findall(r"<(https?://[^>\s]+)>", README)
    return inline + auto


def test_every_readme_link_is_absolute():
    links = readme_links()
    assert links
    assert [link for link in links if not link.startswith("https://")] == []


def test_every_documentation_link_names_a_page_that_exists():
    pages = {path.stem for path in (ROOT / "docs").glob("*.md")} | {"changelog"}
    for link in readme_links():
        if link.startswith(DOCS_URL):
            slug = link.removeprefix(DOCS_URL).split("#", 1)[0].strip("/")
            assert slug == "" or slug in pages, link
    assert PYPROJECT["project"]["urls"]["Documentation"] in README
    assert PYPROJECT["project"]["urls"]["Changelog"] == DOCS_URL + "changelog/"
    mkdocs = (ROOT / "mkdocs.yml").read_text()
    assert f"site_url: {DOCS_URL}" in mkdocs


def test_the_compatibility_table_is_what_ci_runs():
    rows = re.findall(
        r"^\| (3\.\d+) \| (\d+\.\d+)(?: LTS)? \| 3\.4 [^|]*\| ([^|]+) \|", README, re.M
    )
    assert {(python, django) for python, django, _ in rows} == ci_cells()
    assert {database.strip().split()[0] for _, _, database in rows} == {"SQLite", "PostgreSQL"}
    for bound in ("`>=3.11,<3.13`", "`>=5.2,!=6.0.*,<6.2`"):
        assert bound in README


def test_the_readme_demo_excerpt_is_from_the_transcript():
    block = README.split("```console\n$ make demo\n", 1)[1].split("```", 1)[0]
    transcript = (ROOT / "docs" / "demo-transcript.md").read_text().splitlines()
    shown = [line for line in block.splitlines() if line and line != "..."]
    assert len(shown) > 20
    assert [line for line in shown if line not in transcript] == []
