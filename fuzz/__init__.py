"""Fuzzing of the pure parsers and matchers (issue #11 item 1).

``fuzz.targets`` names every target with its contract (which exceptions are refusals, which
are bugs) and its input generators; ``python -m fuzz.run`` drives them with hypothesis, a
seeded mutation loop and, when installed, atheris. ``tests/unit/test_fuzz.py`` runs the same
targets under hypothesis on CI with a fixed budget.
"""

from __future__ import annotations
