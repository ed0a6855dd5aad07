# Two entry points for a fresh machine: `make demo` and `make test` (and `make docs`).
# Each creates .venv on first use. torch==2.13.0 is pinned so that pip takes the
# CPU build on this disk instead of pulling a multi-GB CUDA build.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[web,dev,docs]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/coordsr demo --out demo_out

test: $(STAMP)
	$(BIN)/python -m pytest

# The documentation site, strict (a broken link or reference fails): site/index.html
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

.PHONY: venv demo test docs
