# stratacache: `make demo` shows the tiers at work, `make test` runs everything CI runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: help venv test unit lint demo bench clean

help:
	@echo "make demo   run the example handler against a local Redis-compatible server and moto"
	@echo "make test   install what the tests need into $(VENV), lint, run the whole suite"
	@echo "make bench  per-call cost ratios against cachetools, lru_cache, raw redis-py and boto3"
	@echo "make lint   ruff and mypy --strict"

$(STAMP): requirements/dev.txt pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --disable-pip-version-check -r requirements/dev.txt
	# The library is used from python/ as it stands, as the layer ships it (no build step).
	$(PY) -c 'import os, site; open(os.path.join(site.getsitepackages()[0], "stratacache-dev.pth"), "w").write(os.path.abspath("python") + "\n")'
	touch $@

venv: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest
	$(MAKE) --no-print-directory lint

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

demo: $(STAMP)
	$(PY) -m devkit.demo

bench: $(STAMP)
	$(PY) -m devkit.bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis dist .aws-sam build
