# One venv, created or reused; every target installs what it needs into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install lint test demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,gcp,fastapi,emulator,postgresql,monitor]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy --strict src

# pytest-xdist workers: most tests wait on real processes (the emulator, revisions,
# PostgreSQL, CLI children), so four keep two cores busy. Each worker starts its own
# emulator and PostgreSQL cluster. PYTEST_WORKERS=0 runs everything in one process.
PYTEST_WORKERS ?= 4

test: lint
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist worksteal

# The main job: the staging incident played on the local emulator (see README).
demo: install
	$(BIN)/rollsafe demo

# every benchmark the README lists
bench: install
	$(BIN)/python benchmarks/check_scale.py
	$(BIN)/python benchmarks/rules_speed.py
	$(BIN)/python benchmarks/emulator.py
	$(BIN)/python benchmarks/router.py
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/rollback.py
	$(BIN)/python benchmarks/drift_scale.py
	$(BIN)/python benchmarks/state.py
	$(BIN)/python benchmarks/monitor_scale.py
	$(BIN)/python benchmarks/status_page.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
