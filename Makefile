# The two set-up commands of the README:
#   make pipeline   install into .venv (if needed) and run the whole DVC pipeline on the built-in data
#   make test       install into .venv (if needed) and run the test suite (what CI runs)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.lsdc-installed

.PHONY: install lint pipeline test test-fast mlflow-ui clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip check
	touch $(STAMP)

pipeline: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

test: $(STAMP) lint
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q --durations=15

test-fast: $(STAMP) lint
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q -m "not slow"

mlflow-ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri "sqlite:///$(abspath mlflow.db)" --port 5000

clean-venv:
	rm -rf $(VENV)
