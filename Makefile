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
	$(BIN)/python -m pip install --quiet -e '.[dev,gcp,fastapi,emulator]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy --strict src

test: lint
	$(BIN)/pytest -q

# Until the deploy pipeline exists, the demo is the incident's check: it must find the
# causes, so exit 1 (findings block) is the expected result and anything else fails.
demo: install
	@$(BIN)/rollsafe check -f examples/incident/rollsafe.yaml --env staging \
		--store dotenv:examples/incident/staging.env; \
	code=$$?; if [ $$code -ne 1 ]; then echo "demo: expected exit 1, got $$code"; exit 1; fi; \
	echo "demo: the deploy would have been refused (exit 1); every cause found before it."

bench: install
	$(BIN)/python benchmarks/check_scale.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
