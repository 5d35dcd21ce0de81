# The commands people type. Every target builds the virtual environment first when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: install demo test bench bench-krx lint format lock clean

# Bytecode is compiled at install: Airflow task processes run with -B and would otherwise
# compile every module they import from source, in every task.
install: $(STAMP)

$(BIN)/uv:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"

$(STAMP): $(BIN)/uv requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	$(BIN)/uv pip install --python $(BIN)/python --compile-bytecode -r requirements-dev.txt -c constraints.txt
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest

# The benchmark environment: the core package without Airflow, plus ArcticDB for comparison.
$(BENCH_STAMP): requirements-bench.txt constraints-bench.txt pyproject.toml
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"
	$(BENCH_VENV)/bin/uv pip install --python $(BENCH_VENV)/bin/python --compile-bytecode -r requirements-bench.txt -c constraints-bench.txt
	$(BENCH_VENV)/bin/uv pip install --python $(BENCH_VENV)/bin/python --no-deps -e .
	touch $(BENCH_STAMP)

bench: $(STAMP) $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python benchmarks/codec.py
	$(BENCH_VENV)/bin/python benchmarks/cache.py
	$(BENCH_VENV)/bin/python benchmarks/research.py
	$(BIN)/python benchmarks/repeat_run.py
	$(BIN)/python benchmarks/failover.py

# ohlcv_indexer over 2,900 synthetic tickers under the real scheduler, LocalExecutor then Celery
# with two workers (about 25 minutes here).
bench-krx: $(STAMP)
	$(BIN)/python benchmarks/vendor_gaps.py
	$(BIN)/python benchmarks/krx_scale.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Needs only uv, not an environment installed from the old lock (which a new pin contradicts).
lock: $(BIN)/uv
	{ echo "# Full lock of requirements-dev.txt (which includes requirements.txt) for Python 3.11."; \
	  echo "# Regenerate with \`make lock\` after changing either file."; \
	  $(BIN)/uv pip compile requirements-dev.txt --python-version 3.11 --no-header --annotation-style line --quiet; \
	} > constraints.txt.new && mv constraints.txt.new constraints.txt
	{ echo "# Full lock of requirements-bench.txt for Python 3.11. Regenerate with \`make lock\`."; \
	  $(BIN)/uv pip compile requirements-bench.txt --python-version 3.11 --no-header --annotation-style line --quiet; \
	} > constraints-bench.txt.new && mv constraints-bench.txt.new constraints-bench.txt

clean:
	rm -rf $(VENV) $(BENCH_VENV) .airflow .pytest_cache .ruff_cache
