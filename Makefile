# The two commands a newcomer types: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-offline test lint bench bench-llm bench-suite bench-quick clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[dev,ray,llm,baselines,prove,driving]"  # driving: highway-env for tests/envs/test_driving_env.py; prove: z3 for verify --prove; ray: tests/evaluate/test_ray.py starts a real Ray head; llm: the embedded model; baselines: SB3 + torch (CPU) for tests/baselines/test_baselines.py
	touch $(STAMP)

# Learn CartPole-v1 with a real language model running inside scriptrl (no internet needed: the
# model is fetched once, sha256-verified, into ~/.cache/scriptrl/models); prints the best program,
# its holdout score, the model calls and tokens, and the run folder.
demo: $(STAMP)
	$(BIN)/scriptrl train CartPole-v1 --generator llm --max-seconds 600

# The same without a model: the offline generator alone.
demo-offline: $(STAMP)
	$(BIN)/scriptrl train CartPole-v1 --generator offline --target 500 --max-seconds 600

test: $(STAMP)
	$(BIN)/ruff check scriptrl tests benchmarks
	$(BIN)/ruff format --check scriptrl tests benchmarks
	$(BIN)/mypy scriptrl
	$(BIN)/python -m pytest -q
	$(BIN)/python benchmarks/suite.py --quick --runs-root "$$(mktemp -d)" --results "$$(mktemp)" >/dev/null  # smoke run of the suite

lint: $(STAMP)
	$(BIN)/ruff check scriptrl tests benchmarks
	$(BIN)/ruff format --check scriptrl tests benchmarks
	$(BIN)/mypy scriptrl

bench: $(STAMP)
	$(BIN)/python benchmarks/eval_throughput.py

# The embedded 1.5B model vs the offline generator vs PPO (writes its section of benchmarks/RESULTS.md).
bench-llm: $(STAMP)
	$(BIN)/python benchmarks/llm_learning.py

# scriptrl vs PPO/DQN vs the physical limit; writes its section of benchmarks/RESULTS.md (about an hour on 2 cores).
bench-suite: $(STAMP)
	$(BIN)/python benchmarks/suite.py

bench-quick: $(STAMP)
	$(BIN)/python benchmarks/suite.py --quick

clean:
	rm -rf $(VENV) build *.egg-info
