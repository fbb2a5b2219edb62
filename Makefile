# The two commands a newcomer runs: `make demo` and `make test`. Each creates .venv if missing.
#   make test       both tiers: unit tests and integration tests (real CAMELS data, a LocalCluster)
#   make test-fast  the unit tier only (synthetic data from lsegeo.testing), a couple of minutes
#   make lint       ruff over lsegeo/, tests/ and benchmarks/ (not part of `make test`)
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast lint env bench clean

# reinstalled when the version ranges (pyproject.toml) or the exact pins (constraints.txt) change
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[ml,torch,hpc,kubernetes,gateway,coiled,cloud,dev]"
	@touch $(STAMP)

env: $(STAMP)

demo: $(STAMP)
	$(BIN)/lsegeo demo

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not integration"

lint: $(STAMP)
	$(BIN)/ruff check lsegeo tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_ingest.py

clean:
	rm -rf work .pytest_cache .ruff_cache
