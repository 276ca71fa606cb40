# `make run`: set up everything on a fresh machine and serve the library on 127.0.0.1:8000.
# `make test`: set up with dev extras, lint (`make lint`), then run the whole test suite.
# `make lint`: ruff, the types (mypy) and the layer contracts (lint-imports).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
KB := $(VENV)/bin/kb
# torch==2.13.0 (CPU) lies in /opt/wheels on our machines; elsewhere pip finds it on its index.
PIP_FLAGS := $(if $(wildcard /opt/wheels/torch-*),--find-links /opt/wheels,)

.PHONY: install run test lint format bench eval examples clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(PIP_FLAGS) -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install
	$(KB) prepare-model
	$(KB) serve --seed examples/

test: lint
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-logo

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) bench/embed_throughput.py
	$(PY) bench/cross_language.py
	$(PY) bench/search_latency.py

# The standard retrieval evaluation (about half an hour on 2 cores); see docs/EVALUATION.md.
eval: install
	$(PY) bench/eval_retrieval.py --markdown docs/eval-latest.md

examples: install
	$(PY) scripts/make_examples.py

clean:
	rm -rf $(VENV) kb-data .pytest_cache .ruff_cache .mypy_cache .import_linter_cache .grimp_cache
