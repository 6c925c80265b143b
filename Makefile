# The README's commands. Everything installs itself: python3, make and npm are all a clone needs.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_DB ?= var/demo.db

.PHONY: setup test lint demo bench serve clean

setup: $(VENV)/.installed node_modules/.package-lock.json

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Browser libraries of the console and portal (htmx, Chart.js), served from node_modules.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest -n 2 --dist loadgroup

demo: setup
	METERPLANE_DATABASE_URL=sqlite:///$(DEMO_DB) $(VENV)/bin/meterplane demo --host $(HOST) --port $(PORT)

bench: setup
	$(PY) bench/run_all.py

serve: setup
	$(VENV)/bin/meterplane db upgrade
	$(VENV)/bin/meterplane serve --host $(HOST) --port $(PORT)

clean:
	rm -rf $(VENV) node_modules var .pytest_cache .mypy_cache .ruff_cache
