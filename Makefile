# Make variables select a CI cell: PYTHON (interpreter), DJANGO (a version spec),
# VENV (derived from both unless given), PYTEST_ARGS.
PYTHON ?= python3
DJANGO ?= ~=5.2.0
PYTEST_ARGS ?=
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
DJANGO_TAG := $(shell printf '%s' '$(DJANGO)' | tr -c 'A-Za-z0-9.' '_')
VENV ?= .venv/py$(PYVER)-django$(DJANGO_TAG)
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv test lint typecheck pytest demo serve docs bench fuzz dist clean

help:
	@echo "make test   - create the venv if missing, install, run ruff, mypy and pytest"
	@echo "make demo   - walk through the example project with real certificates, then stop"
	@echo "make serve  - run the example project until interrupted"
	@echo "make docs   - build the documentation site (mkdocs --strict) into site/"
	@echo "make bench  - run the benchmarks"
	@echo "make fuzz   - fuzz every parser and matcher (>= 100,000 cases; atheris if installed)"
	@echo "make dist   - build the sdist and the wheel into dist/ and run twine check on them"
	@echo "variables: PYTHON=$(PYTHON) DJANGO='$(DJANGO)' VENV=$(VENV) PYTEST_ARGS='$(PYTEST_ARGS)'"

$(STAMP): pyproject.toml
	@test -n "$(PYVER)" || { echo "$(PYTHON) not found: set PYTHON=/path/to/python3.11+"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev,drf]' 'Django$(DJANGO)'
	@$(BIN)/python -c 'import django, oauth2_provider, sys; print("venv:", sys.version.split()[0], "Django", django.__version__, "DOT", oauth2_provider.__version__)'
	@touch $@

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/python -m example_project.demo

serve: $(STAMP)
	$(BIN)/python -m example_project.demo --serve

docs: $(STAMP)
	$(BIN)/mkdocs build --strict

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

fuzz: $(STAMP)
	$(BIN)/python -m fuzz.run --cases 100000

dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache example_project/example.sqlite3 build dist
