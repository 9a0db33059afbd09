# kamado developer entry points. Every target installs what it needs first (idempotent).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
B ?=

.PHONY: install demo test lint bench soak clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "kamado needs Python >= 3.11, found " + sys.version' 
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,postgres,ray]'
	@touch $(STAMP)

demo: install
	$(VENV)/bin/kamado demo

test: install
	$(PY) -m pytest -q -p no:cacheprovider --durations=30

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

bench: install
	$(PY) -m benchmarks $(B)

soak: install
	KAMADO_SOAK=1 $(PY) -m pytest -q -p no:cacheprovider -m slow tests/chaos tests/scaleout/test_ray_chaos.py tests/security

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
