# bioverify developer commands. `make serve` installs everything and starts the service;
# `make check` runs lint, type checks and the whole test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export ORT_DISABLE_TELEMETRY := 1

.PHONY: install serve test lint typecheck check proto format bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

serve: install
	$(VENV)/bin/bioverify serve

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check service enrollment tests bench
	$(VENV)/bin/ruff format --check service enrollment tests bench

typecheck: install
	$(VENV)/bin/mypy

check: lint typecheck test

format: install
	$(VENV)/bin/ruff format service enrollment tests bench
	$(VENV)/bin/ruff check --fix service enrollment tests bench

proto: install
	$(PY) -m grpc_tools.protoc -I proto --python_out=service --pyi_out=service \
		--grpc_python_out=service proto/bioverify/v1/*.proto

bench: install
	$(PY) bench/face_bench.py
