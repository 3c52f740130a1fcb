# stratacache: `make demo` shows the tiers at work, `make test` runs everything CI runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
# AWS SAM CLI pins its own boto3, so it lives in a virtual environment of its own.
SAM_VENV ?= .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed-sam
# `make demo` installs requirements/demo.txt alone, not the development environment.
DEMO_VENV ?= .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed-demo
ARCHS ?= x86_64 arm64
RUNTIMES ?= 3.10 3.11 3.12 3.13
DIST ?= dist

.PHONY: help venv sam-venv nginx test lint docs demo report bench mutate layer layer-lock sam-build validate clean

help:
	@echo "make demo    run the example handler against a local Redis-compatible server and moto"
	@echo "make test    install what the tests need, lint, run the whole suite"
	@echo "make report  the demo's EMF lines as hit rates and a monthly cost estimate (dist/report.*)"
	@echo "make bench   per-call cost ratios against cachetools, lru_cache, raw redis-py and boto3, and cold starts"
	@echo "make layer   dist/ layer zips per Python runtime and architecture, with their sizes"
	@echo "make lint    ruff, mypy --strict and the import layers (import-linter)"
	@echo "make mutate  mutation testing: the share of wrong versions of each module its tests catch"
	@echo "make docs    the documentation site, mkdocs build --strict, into dist/site"
	@echo "cd layer && sam build && sam deploy --guided   deploy the layer stack (.venv-sam/bin)"
	@echo "sam build && sam deploy --guided   then the cache table and example, which use it"

$(STAMP): requirements/dev.txt pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --disable-pip-version-check -r requirements/dev.txt
	# The library is used from python/ as it stands, as the layer ships it (no build step).
	$(PY) -c 'import os, site; open(os.path.join(site.getsitepackages()[0], "stratacache-dev.pth"), "w").write(os.path.abspath("python") + "\n")'
	touch $@

$(DEMO_STAMP): requirements/demo.txt
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install -qq --disable-pip-version-check -r requirements/demo.txt
	$(DEMO_VENV)/bin/python -c 'import os, site; open(os.path.join(site.getsitepackages()[0], "stratacache-dev.pth"), "w").write(os.path.abspath("python") + "\n")'
	touch $@

$(SAM_STAMP): requirements/sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install -qq --disable-pip-version-check -r requirements/sam.txt
	touch $@

venv: $(STAMP)

sam-venv: $(SAM_STAMP)

# The HTTP tests put nginx's proxy cache in front of a handler: Debian's nginx-light when
# the machine has no nginx (CI runs as root on a clean machine).
nginx:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light; }

test: $(STAMP) $(SAM_STAMP)
	$(MAKE) --no-print-directory nginx
	SAM_VENV=$(SAM_VENV) $(PY) -m pytest
	$(MAKE) --no-print-directory docs
	$(MAKE) --no-print-directory lint

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports --no-logo

# The user documentation (mkdocs.yml, docs/): a broken link or anchor fails the build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet

demo: $(DEMO_STAMP)
	$(DEMO_VENV)/bin/python -m devkit.demo

# The demo's EMF lines through the report (`stratacache-report`): text and chart under dist/.
# The demo lasts milliseconds, too short to extrapolate a month from: the volume is given.
REPORT_DIR ?= dist
report: $(STAMP)
	mkdir -p $(REPORT_DIR)
	$(PY) -m devkit.demo > $(REPORT_DIR)/demo.txt
	$(PY) -m stratacache.report $(REPORT_DIR)/demo.txt --monthly-requests 10000000 \
		--png $(REPORT_DIR)/report.png | tee $(REPORT_DIR)/report.txt

bench: $(STAMP)
	$(PY) -m devkit.bench

# mutmut on the breaker, keys, the envelope, serialization, the engine (_engine/) and the
# HTTP headers (tests/mutate.py lists them), each against its fast tests; prints the killed share per module. MUTATE_ARGS=--survivors
# lists the mutants that lived. Not part of `make test` (minutes); its quick mode is.
MUTATE_ARGS ?=
mutate: $(STAMP)
	$(PY) -m tests.mutate $(MUTATE_ARGS)

# One zip per Python runtime and architecture, built by the targets `sam build` runs; a
# runtime without an interpreter on this machine is skipped, and said so.
layer:
	rm -rf $(DIST)/layer && mkdir -p $(DIST)
	@built=""; skipped=""; \
	for version in $(RUNTIMES); do \
		if [ -z "$$(sh layer/find-python.sh $$version)" ]; then skipped="$$skipped python$$version"; continue; fi; \
		for arch in $(ARCHS); do \
			name=python$$version-$$arch; \
			$(MAKE) --no-print-directory -C layer build-StratacacheLayerPython$$(echo $$version | tr -d .) \
				ARCH=$$arch ARTIFACTS_DIR=$(abspath $(DIST))/layer/$$name >$(DIST)/layer-$$name.log 2>&1 \
				|| { cat $(DIST)/layer-$$name.log; exit 1; }; \
			$(PYTHON) -m devkit.layerzip $(DIST)/layer/$$name $(DIST)/stratacache-layer-$$name.zip || exit 1; \
			built="$$built $$name"; \
		done; \
	done; \
	for name in $$built; do \
		zip=$(DIST)/stratacache-layer-$$name.zip; \
		echo "$$zip: $$(wc -c < $$zip | tr -d ' ') bytes zipped, $$(du -sk $(DIST)/layer/$$name | cut -f1) KiB unzipped"; \
	done; \
	if [ -n "$$skipped" ]; then echo "skipped (no interpreter with pip found):$$skipped"; fi

# Re-resolve layer/requirements.in into the per-runtime hashed locks the layer build installs.
layer-lock:
	$(PYTHON) -m devkit.layerlock $(RUNTIMES)

sam-build: $(SAM_STAMP)
	cd layer && ../$(SAM_VENV)/bin/sam build
	$(SAM_VENV)/bin/sam build

validate: $(SAM_STAMP)
	$(SAM_VENV)/bin/cfn-lint template.yaml layer/template.yaml
	$(SAM_VENV)/bin/sam validate --lint
	cd layer && ../$(SAM_VENV)/bin/sam validate --lint

clean:
	rm -rf $(VENV) $(SAM_VENV) $(DEMO_VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis dist .aws-sam layer/.aws-sam build
