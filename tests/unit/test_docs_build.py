"""The documentation site builds with warnings as errors, and lists every page.

``mkdocs build --strict`` fails on broken links and anchors between pages; pages left out of
``nav`` are only reported as INFO by MkDocs, so that is checked here. Skipped, with the reason,
when MkDocs is not installed (it is in the ``dev`` extra).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "mkdocs.yml"

needs_mkdocs = pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None,
    reason="mkdocs is not installed (pip install 'mkdocs>=1.6', part of the dev extra)",
)


@needs_mkdocs
def test_mkdocs_build_strict(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(CONFIG),
         "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "settings" / "index.html").is_file()


@needs_mkdocs
def test_every_page_is_in_the_nav() -> None:
    from mkdocs.config import load_config
    from mkdocs.structure.files import get_files
    from mkdocs.structure.nav import get_navigation

    config = load_config(str(CONFIG))
    files = get_files(config)
    nav = get_navigation(files, config)
    in_nav = {page.file.src_uri for page in nav.pages}
    pages = {path.relative_to(ROOT / "docs").as_posix() for path in (ROOT / "docs").rglob("*.md")}
    assert sorted(pages - in_nav) == [], "docs pages missing from nav in mkdocs.yml"
