# stratacache: `make demo` shows the tiers at work, `make test` runs everything CI runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
# AWS SAM CLI pins its own boto3, so it lives in a virtual environment of its own.
SAM_VENV ?= .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed-sam
ARCHS := x86_64 arm64

.PHONY: help venv sam-venv test lint demo report bench layer sam-build validate clean

help:
	@echo "make demo    run the example handler against a local Redis-compatible server and moto"
	@echo "make test    install what the tests need, lint, run the whole suite"
	@echo "make report  the demo's EMF lines as hit rates and a monthly cost estimate (dist/report.*)"
	@echo "make bench   per-call cost ratios against cachetools, lru_cache, raw redis-py and boto3"
	@echo "make layer   dist/ layer zips for x86_64 and arm64, with their sizes"
	@echo "make lint    ruff and mypy --strict"
	@echo "sam build && sam deploy --guided   deploy the layer, cache table and example (.venv-sam/bin)"

$(STAMP): requirements/dev.txt pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --disable-pip-version-check -r requirements/dev.txt
	# The library is used from python/ as it stands, as the layer ships it (no build step).
	$(PY) -c 'import os, site; open(os.path.join(site.getsitepackages()[0], "stratacache-dev.pth"), "w").write(os.path.abspath("python") + "\n")'
	touch $@

$(SAM_STAMP): requirements/sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install -qq --disable-pip-version-check -r requirements/sam.txt
	touch $@

venv: $(STAMP)

sam-venv: $(SAM_STAMP)

test: $(STAMP) $(SAM_STAMP)
	$(PY) -m pytest
	$(MAKE) --no-print-directory lint

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

demo: $(STAMP)
	$(PY) -m devkit.demo

# The demo's EMF lines through `python -m stratacache.report`: text and chart under dist/.
# The demo lasts milliseconds, so the month's volume is given rather than extrapolated.
REPORT_DIR ?= dist
report: $(STAMP)
	mkdir -p $(REPORT_DIR)
	$(PY) -m devkit.demo > $(REPORT_DIR)/demo.txt
	$(PY) -m stratacache.report $(REPORT_DIR)/demo.txt --monthly-requests 10000000 \
		--png $(REPORT_DIR)/report.png | tee $(REPORT_DIR)/report.txt

bench: $(STAMP)
	$(PY) -m devkit.bench

# One zip per architecture, built by the same target `sam build` runs.
layer:
	rm -rf dist/layer && mkdir -p dist
	@for arch in $(ARCHS); do \
		$(MAKE) --no-print-directory -C layer build-StratacacheLayer ARCH=$$arch \
			ARTIFACTS_DIR=$(CURDIR)/dist/layer/$$arch PYTHON=$(PYTHON) || exit 1; \
		$(PYTHON) -m devkit.layerzip dist/layer/$$arch dist/stratacache-layer-$$arch.zip || exit 1; \
	done
	@for arch in $(ARCHS); do \
		zip=dist/stratacache-layer-$$arch.zip; \
		echo "$$zip: $$(wc -c < $$zip | tr -d ' ') bytes zipped, $$(du -sk dist/layer/$$arch | cut -f1) KiB unzipped"; \
	done

sam-build: $(SAM_STAMP)
	$(SAM_VENV)/bin/sam build

validate: $(SAM_STAMP)
	$(SAM_VENV)/bin/cfn-lint template.yaml
	$(SAM_VENV)/bin/sam validate --lint

clean:
	rm -rf $(VENV) $(SAM_VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis dist .aws-sam build
