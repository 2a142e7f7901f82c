"""MkDocs hook: publish the repository's CHANGELOG.md as the site's changelog page.

The changelog lives at the top of the repository (Keep a Changelog); the site serves it at
``changelog/``, which is the package's ``Changelog`` URL (pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

CHANGELOG = Path(__file__).resolve().parents[2] / "CHANGELOG.md"


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, "changelog.md", abs_src_path=str(CHANGELOG)))
    return files
