"""The reference pages agree with the code.

- docs/settings.md documents every key of ``django_oauth_mtls.conf.DEFAULTS`` with its exact
  default (``### `KEY` `` then ``Default: `<Python literal>` ``), and no other key;
- docs/checks.md lists every system-check id the package registers (checks.py, metadata.py,
  jwt_issue_checks.py, jwt_resource_checks.py, fapi.py, project_checks.py,
  contrib/sqlite3/checks.py), and no id the code does not have.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from django_oauth_mtls.conf import DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_DOC = ROOT / "docs" / "settings.md"
CHECKS_DOC = ROOT / "docs" / "checks.md"
CHECK_MODULES = [
    ROOT / "django_oauth_mtls" / "checks.py",
    ROOT / "django_oauth_mtls" / "metadata.py",
    ROOT / "django_oauth_mtls" / "jwt_issue_checks.py",
    ROOT / "django_oauth_mtls" / "jwt_resource_checks.py",
    ROOT / "django_oauth_mtls" / "fapi.py",
    ROOT / "django_oauth_mtls" / "project_checks.py",
    ROOT / "django_oauth_mtls" / "contrib" / "sqlite3" / "checks.py",
]

HEADING = re.compile(r"^### `([A-Z][A-Z0-9_]*)`\s*$")
DEFAULT = re.compile(r"^Default: `([^`]+)`")
CHECK_ID = re.compile(r"oauth_mtls\.[ECWIF]\d{3}")  # F: the FAPI 2.0 profile (fapi.py)


def documented_settings() -> dict[str, str]:
    """``{KEY: the text of its default}``; every heading must be followed by a Default line."""
    found: dict[str, str] = {}
    lines = SETTINGS_DOC.read_text().splitlines()
    for number, line in enumerate(lines):
        heading = HEADING.match(line)
        if not heading:
            continue
        key = heading.group(1)
        assert key not in found, f"{key} is documented twice"
        following = next((text for text in lines[number + 1 :] if text.strip()), "")
        default = DEFAULT.match(following)
        assert default, f"### `{key}` is not followed by a 'Default: `…`' line: {following!r}"
        found[key] = default.group(1)
    return found


def test_every_setting_is_documented_and_nothing_else():
    documented = documented_settings()
    assert sorted(set(DEFAULTS) - set(documented)) == [], "settings missing from docs/settings.md"
    assert sorted(set(documented) - set(DEFAULTS)) == [], "docs/settings.md documents unknown keys"


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_the_documented_default_is_the_code_default(key: str):
    text = documented_settings()[key]
    value = ast.literal_eval(text)
    expected = DEFAULTS[key]
    # Exact: 5.0 is not 5, [] is not None, "error" is not error.
    assert (type(value), value) == (type(expected), expected), (
        f"docs/settings.md says {key} defaults to {text}, the code to {expected!r}"
    )


def registered_check_ids() -> set[str]:
    ids: set[str] = set()
    for module in CHECK_MODULES:
        ids |= set(re.findall(r"""id=["'](oauth_mtls\.[A-Z]\d{3})["']""", module.read_text()))
    return ids


def test_every_registered_check_id_is_in_docs_checks():
    registered = registered_check_ids()
    assert registered, "no check ids found: did checks.py change its style?"
    documented = set(CHECK_ID.findall(CHECKS_DOC.read_text()))
    assert sorted(registered - documented) == [], "check ids missing from docs/checks.md"
    assert sorted(documented - registered) == [], "docs/checks.md lists ids the code lacks"
