# Two commands: `make demo` (a readiness run on the local sandbox) and `make test`
# (`make test-quick` for the edit loop: the tests that start no process, in about a minute).
# Each builds its own virtualenv in .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Parallel test workers (pytest-xdist). Most sandbox tests wait on sleeps and subprocesses,
# so more workers than cores pays: on 2 cores 3 workers left the CPU 30 % idle (480 s),
# 4 leave 15 % (383 s with the order below); tests sharing a sandbox stay on one worker
# (loadgroup, groups set in tests/conftest.py), longest units first.
TEST_JOBS  ?= 4
QUICK_JOBS ?= 2
XDIST       = --dist loadgroup --no-loadscope-reorder

.PHONY: venv demo test test-quick lint bench clean

venv: $(STAMP)

# The packages go in with uv (from the registry, like pip): it installs the 13k files in
# parallel from its cache, 17 s here where pip took 52 s; pip is the fallback where uv
# cannot run. uv also writes the bytecode, in parallel (about 19 s on 2 cores): without
# it the suite's first processes each compiled boto3/moto/pandas/locust again from source
# at the same time, and a fresh clone's suite took 615 s where a warm one takes 480 s.
# PYTHONDONTWRITEBYTECODE, set on some machines, is cleared for our commands: with it
# every process recompiled from source (suite +50 %).
export PYTHONDONTWRITEBYTECODE :=

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]' \
	  || $(BIN)/python -m pip install --quiet --no-compile -e '.[dev]'
	touch $(STAMP)

demo: venv
	$(BIN)/peakready run plans/sandbox-demo.yaml

test: venv
	$(BIN)/ruff check .
	$(BIN)/pytest -n $(TEST_JOBS) $(XDIST)

test-quick: venv
	$(BIN)/ruff check .
	$(BIN)/pytest --quick -n $(QUICK_JOBS) $(XDIST)

lint: venv
	$(BIN)/ruff check .

bench: venv
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .peakready .pytest_cache
