# The commands people type. Every target builds the virtual environment first when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed

.PHONY: install demo test bench lint format lock clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	$(BIN)/uv pip install --python $(BIN)/python -r requirements-dev.txt -c constraints.txt
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/codec.py
	$(BIN)/python benchmarks/repeat_run.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lock: $(STAMP)
	{ echo "# Full lock of requirements-dev.txt (which includes requirements.txt) for Python 3.11."; \
	  echo "# Regenerate with \`make lock\` after changing either file."; \
	  $(BIN)/uv pip compile requirements-dev.txt --python-version 3.11 --no-header --annotation-style line --quiet; \
	} > constraints.txt.new && mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) .airflow .pytest_cache .ruff_cache
