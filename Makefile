# The two commands a newcomer types: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

# Learn CartPole-v1 with the offline generator; prints the best program and the run folder.
demo: $(STAMP)
	$(BIN)/scriptrl train CartPole-v1 --generator offline --target 500 --max-seconds 600

test: $(STAMP)
	$(BIN)/ruff check scriptrl tests benchmarks
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check scriptrl tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/eval_throughput.py

clean:
	rm -rf $(VENV) build *.egg-info
